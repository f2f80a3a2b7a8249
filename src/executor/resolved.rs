//! A step made ready to run on one host: every field rendered, and every scalar field the
//! executor acts on (`become`, `timeout`, `retries`, `retry_delay`, `ignore_errors`, a reboot's
//! `timeout`) parsed once into its typed value.
//!
//! Rendering checks a field against its type already ([`crate::plan::render_text`]), so a bad
//! value normally stops the step there; parsing here is where the typed value comes from, and a
//! value that still does not parse fails the step with [`StepError::Invalid`] — never a silent
//! default. Defaults apply only to fields the runbook left out.

use std::time::Duration;

use thiserror::Error;

use super::facts::FactsError;
use super::reboot;
use crate::runbook::model::{Action, Step, ValueError, bool_value, count_value, parse_duration};

/// Pause between attempts when `retries` is set without `retry_delay` (Ansible's default).
const DEFAULT_RETRY_DELAY: Duration = Duration::from_secs(5);

/// Why a step could not be made ready to run on a host. Each message is one line of the step's
/// report, so causes are part of it rather than a chain.
#[derive(Debug, Error)]
pub(super) enum StepError {
    /// `facts.*` were needed and could not be gathered.
    #[error("gathering facts: {0}")]
    Facts(FactsError),
    /// A template failed, or rendered to a value its field does not take; secrets are masked.
    #[error("{0}")]
    Render(String),
    /// A scalar field's rendered text is not a value of its type.
    #[error("`{field}`: {error}")]
    Invalid {
        /// The field's YAML key.
        field: &'static str,
        /// Why its text does not parse.
        error: ValueError,
    },
    /// A condition the plan rendered is not `true` or `false`.
    #[error("`{0}` is not true or false")]
    NotCondition(String),
    /// Rendering returned another number of fields than it was given.
    #[error("internal error: step fields changed while rendering")]
    FieldsChanged,
}

/// The typed step-level settings of a rendered step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Settings {
    /// `become`; `None` when the step leaves it to the runbook.
    pub(super) become_root: Option<bool>,
    /// The limit on each remote command; `None` when the step sets none.
    pub(super) timeout: Option<Duration>,
    /// Extra attempts after a failure.
    pub(super) retries: u32,
    /// Pause between attempts.
    pub(super) retry_delay: Duration,
    /// A failure does not stop the host.
    pub(super) ignore_errors: bool,
    /// How long a `reboot` step waits for the host to come back (its default otherwise).
    pub(super) reboot_timeout: Duration,
}

impl Settings {
    /// Parses the step's scalar fields, naming the first that does not parse.
    pub(super) fn parse(step: &Step<String>) -> Result<Self, StepError> {
        let reboot_timeout = match &step.action {
            Action::Reboot(spec) => optional(spec.timeout.as_deref(), "timeout", parse_duration)?,
            _ => None,
        };
        Ok(Self {
            become_root: optional(step.become_root.as_deref(), "become", bool_value)?,
            timeout: optional(step.timeout.as_deref(), "timeout", parse_duration)?,
            retries: optional(step.retries.as_deref(), "retries", count_value)?.unwrap_or(0),
            retry_delay: optional(step.retry_delay.as_deref(), "retry_delay", parse_duration)?
                .unwrap_or(DEFAULT_RETRY_DELAY),
            ignore_errors: optional(step.ignore_errors.as_deref(), "ignore_errors", bool_value)?
                .unwrap_or(false),
            reboot_timeout: reboot_timeout.unwrap_or(reboot::DEFAULT_TIMEOUT),
        })
    }
}

/// Parses a field the step may leave out.
fn optional<T>(
    text: Option<&str>,
    field: &'static str,
    parse: fn(&str) -> Result<T, ValueError>,
) -> Result<Option<T>, StepError> {
    text.map(parse)
        .transpose()
        .map_err(|error| StepError::Invalid { field, error })
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::{Settings, StepError};
    use crate::runbook::model::{Action, Assert, Step};

    fn step() -> Step<String> {
        Step {
            name: "s".into(),
            span: crate::diagnostic::Span::default(),
            action: Action::Assert(Assert {
                that: vec![],
                message: None,
            }),
            when: None,
            register: None,
            secret: false,
            become_root: None,
            become_user: None,
            env: vec![],
            timeout: None,
            retries: None,
            retry_delay: None,
            changed_when: None,
            failed_when: None,
            ignore_errors: None,
            check_mode: false,
        }
    }

    #[test]
    fn settings_are_typed_once_with_defaults_only_for_absent_fields() {
        let settings = Settings::parse(&step()).expect("defaults");
        assert_eq!(settings.retries, 0);
        assert_eq!(settings.retry_delay, Duration::from_secs(5));
        assert_eq!(settings.timeout, None);
        let mut written = step();
        written.timeout = Some("90s".into());
        written.retries = Some(" 2 ".into());
        written.ignore_errors = Some("yes".into());
        let settings = Settings::parse(&written).expect("valid");
        assert_eq!(settings.timeout, Some(Duration::from_secs(90)));
        assert_eq!(settings.retries, 2);
        assert!(settings.ignore_errors);
    }

    #[test]
    fn a_bad_value_fails_instead_of_falling_back() {
        let mut written = step();
        written.retry_delay = Some("soon".into());
        let error = Settings::parse(&written).expect_err("not a duration");
        assert!(matches!(
            error,
            StepError::Invalid {
                field: "retry_delay",
                ..
            }
        ));
        assert_eq!(
            error.to_string(),
            "`retry_delay`: `soon` is not a duration (use 500ms, 30s, 15m, 1h or seconds)"
        );
    }
}
