//! Scalar values of runbook fields — booleans, conditions, durations, counts, ports, modes,
//! amounts and param values — parsed from text in one place, with a typed reason when they do
//! not parse.
//!
//! The same parsers serve every stage that meets the text: validation (literal fields), the plan
//! (fields rendered before any host is contacted), the executor (fields rendered on the host) and
//! the command line (`--wait 30m`). A rendered value is parsed once, where it is rendered; what
//! comes out is the typed value, never text to be parsed again with a fallback.

use std::time::Duration;

/// Why a field's text is not a value of its type. The message quotes the text as written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValueError {
    /// Not `true`/`false` (or `yes`/`no` where booleans allow them).
    #[error("`{0}` is not true or false")]
    NotBool(String),
    /// Not a non-negative integer.
    #[error("`{0}` is not a non-negative integer")]
    NotCount(String),
    /// Not a TCP port (1–65535).
    #[error("`{0}` is not a TCP port")]
    NotPort(String),
    /// Not a number followed by a known unit.
    #[error("`{0}` is not a duration (use 500ms, 30s, 15m, 1h or seconds)")]
    NotDuration(String),
    /// A number followed by an unknown unit.
    #[error("`{text}` has unknown unit `{unit}` (use ms, s, m or h)")]
    UnknownUnit {
        /// The whole text.
        text: String,
        /// What followed the number.
        unit: String,
    },
    /// Longer than any step may wait.
    #[error("`{0}` is longer than a year")]
    TooLong(String),
    /// Not an octal mode string.
    #[error("`{0}` is not an octal mode like \"0640\"")]
    NotMode(String),
    /// Neither `N` nor `P%`.
    #[error("`{0}` is neither a number of hosts nor a percentage")]
    NotAmount(String),
    /// A percentage above 100.
    #[error("`{0}` is not a percentage from 0% to 100%")]
    NotPercent(String),
    /// Not an integer.
    #[error("`{0}` is not an integer")]
    NotInt(String),
    /// An integer below the param's minimum.
    #[error("{value} is below the minimum {min}")]
    BelowMinimum {
        /// The value given.
        value: i64,
        /// The declared minimum.
        min: i64,
    },
    /// An integer above the param's maximum.
    #[error("{value} is above the maximum {max}")]
    AboveMaximum {
        /// The value given.
        value: i64,
        /// The declared maximum.
        max: i64,
    },
    /// Not a boolean param value.
    #[error("`{0}` is not a boolean (use true or false)")]
    NotBoolParam(String),
    /// Not one of an enum param's values.
    #[error("`{text}` is not one of {allowed}")]
    NotInEnum {
        /// The value given.
        text: String,
        /// The allowed values, backticked and comma-separated.
        allowed: String,
    },
}

/// A condition's rendered text (SPEC §2): exactly `true` or `false` once trimmed.
#[must_use]
pub fn parse_condition(text: &str) -> Option<bool> {
    match text.trim() {
        "true" => Some(true),
        "false" => Some(false),
        _ => None,
    }
}

/// Parses `true`/`false` (and the YAML spellings `yes`/`no`), trimmed.
#[must_use]
pub fn parse_bool(text: &str) -> Option<bool> {
    match text.trim() {
        "true" | "True" | "yes" => Some(true),
        "false" | "False" | "no" => Some(false),
        _ => None,
    }
}

/// [`parse_bool`], saying why not.
pub fn bool_value(text: &str) -> Result<bool, ValueError> {
    parse_bool(text).ok_or_else(|| ValueError::NotBool(text.trim().to_owned()))
}

/// [`parse_condition`], saying why not.
pub fn condition_value(text: &str) -> Result<bool, ValueError> {
    parse_condition(text).ok_or_else(|| ValueError::NotBool(text.trim().to_owned()))
}

/// A non-negative integer such as `retries: 3`.
pub fn count_value(text: &str) -> Result<u32, ValueError> {
    text.trim()
        .parse::<u32>()
        .map_err(|_| ValueError::NotCount(text.trim().to_owned()))
}

/// A TCP port, 1–65535.
pub fn port_value(text: &str) -> Result<u16, ValueError> {
    match text.trim().parse::<u16>() {
        Ok(port) if port > 0 => Ok(port),
        _ => Err(ValueError::NotPort(text.trim().to_owned())),
    }
}

/// Parses `500ms`, `30s`, `15m`, `1h` or a bare number of seconds.
pub fn parse_duration(text: &str) -> Result<Duration, ValueError> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: u64 = number
        .parse()
        .map_err(|_| ValueError::NotDuration(text.to_owned()))?;
    match unit {
        "" | "s" => Some(Duration::from_secs(number)),
        "ms" => Some(Duration::from_millis(number)),
        "m" => number.checked_mul(60).map(Duration::from_secs),
        "h" => number.checked_mul(3600).map(Duration::from_secs),
        _ => {
            return Err(ValueError::UnknownUnit {
                text: text.to_owned(),
                unit: unit.to_owned(),
            });
        }
    }
    // A year is more than any step may wait; larger values are typos, and would overflow the
    // deadline arithmetic downstream.
    .filter(|duration| *duration <= Duration::from_secs(366 * 24 * 3600))
    .ok_or_else(|| ValueError::TooLong(text.to_owned()))
}

/// Parses a quoted octal mode string such as `"0640"` into its permission bits.
pub fn parse_mode(text: &str) -> Result<u32, ValueError> {
    let text = text.trim();
    if text.len() < 3 || text.len() > 4 || !text.chars().all(|c| ('0'..='7').contains(&c)) {
        return Err(ValueError::NotMode(text.to_owned()));
    }
    u32::from_str_radix(text, 8).map_err(|_| ValueError::NotMode(text.to_owned()))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::{ValueError, count_value, parse_duration, parse_mode, port_value};

    #[test]
    fn durations_accept_every_documented_unit() {
        for (text, expected) in [
            ("500ms", Duration::from_millis(500)),
            ("30s", Duration::from_secs(30)),
            ("15m", Duration::from_secs(900)),
            ("1h", Duration::from_secs(3600)),
            ("42", Duration::from_secs(42)),
        ] {
            assert_eq!(parse_duration(text), Ok(expected), "{text}");
        }
        assert_eq!(
            parse_duration("5d"),
            Err(ValueError::UnknownUnit {
                text: "5d".into(),
                unit: "d".into()
            })
        );
        assert_eq!(
            parse_duration("m"),
            Err(ValueError::NotDuration("m".into()))
        );
        assert_eq!(
            parse_duration("9000h"),
            Err(ValueError::TooLong("9000h".into()))
        );
    }

    #[test]
    fn modes_are_octal_strings() {
        assert_eq!(parse_mode("0640"), Ok(0o640));
        assert_eq!(parse_mode("755"), Ok(0o755));
        assert!(parse_mode("0948").is_err());
        assert!(parse_mode("rw").is_err());
    }

    #[test]
    fn counts_and_ports_say_what_is_wrong() {
        assert_eq!(count_value(" 3 "), Ok(3));
        assert_eq!(
            count_value("-1").map_err(|error| error.to_string()),
            Err("`-1` is not a non-negative integer".to_owned())
        );
        assert_eq!(port_value("22"), Ok(22));
        assert!(port_value("0").is_err());
        assert!(port_value("70000").is_err());
    }
}
