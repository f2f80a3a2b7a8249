//! Counted nouns in messages: `1 host`, `3 hosts`, `0 errors`. One helper, so no message says
//! "1 hosts".

use std::fmt;

/// `count` and `noun` in agreement; displays as `1 step`, `2 steps`. Only regular nouns (plural
/// = singular + `s`): every noun opsgate counts in its messages is one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Counted<'a> {
    count: u64,
    noun: &'a str,
}

/// `count` of a regular `noun` (singular form): `counted(2, "host")` displays `2 hosts`.
#[must_use]
pub(crate) fn counted(count: impl TryInto<u64>, noun: &str) -> Counted<'_> {
    Counted {
        // Counts come from lengths and store columns; none is negative or beyond u64.
        count: count.try_into().unwrap_or(u64::MAX),
        noun,
    }
}

impl fmt::Display for Counted<'_> {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.count {
            1 => write!(formatter, "1 {}", self.noun),
            count => write!(formatter, "{count} {}s", self.noun),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::counted;

    #[test]
    fn one_is_singular_and_every_other_count_plural() {
        let cases = [
            (counted(0_usize, "host").to_string(), "0 hosts"),
            (counted(1_usize, "host").to_string(), "1 host"),
            (counted(2_u32, "step").to_string(), "2 steps"),
            (counted(1_u64, "event").to_string(), "1 event"),
        ];
        for (actual, expected) in cases {
            assert_eq!(actual, expected);
        }
    }
}
