//! Values that must never be shown or stored: secret params, what `secret: true` steps register,
//! the inputs of a saved plan's HMACs.
//!
//! A [`Secret`] formats as [`MASK`] (both `Debug` and `Display`), so a struct that holds one can
//! derive `Debug`, be logged or hashed through its `Debug` form, and still never show the value.
//! The one way to the value is [`Secret::expose`]; grep for it to find every place a secret is
//! used. [`MASK`] is the one spelling of the redaction: plan display, JSON output, saved plans,
//! the audit record and the executor's redaction of outputs all use it.
//!
//! Modelled on cargo-credential's `Secret<T>`.

use std::fmt;

/// What a secret shows instead of its value.
pub const MASK: &str = "***";

/// A value that formats as [`MASK`]; [`Secret::expose`] gives the value.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Secret<T>(T);

impl<T> Secret<T> {
    /// Holds `value` as a secret.
    pub fn new(value: T) -> Self {
        Self(value)
    }

    /// The value itself: only where it is used (a template context, an HMAC, a comparison),
    /// never to show it.
    pub fn expose(&self) -> &T {
        &self.0
    }

    /// Converts the value, keeping it secret.
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Secret<U> {
        Secret(f(self.0))
    }
}

impl<T> From<T> for Secret<T> {
    fn from(value: T) -> Self {
        Self(value)
    }
}

impl<T> fmt::Debug for Secret<T> {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(MASK)
    }
}

impl<T> fmt::Display for Secret<T> {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(MASK)
    }
}

#[cfg(test)]
mod tests {
    use super::{MASK, Secret};

    #[test]
    fn debug_and_display_show_the_mask_and_expose_gives_the_value() {
        let secret = Secret::new("hunter2".to_owned());
        assert_eq!(format!("{secret:?}"), MASK);
        assert_eq!(format!("{secret:#?}"), MASK);
        assert_eq!(format!("{secret}"), MASK);
        assert_eq!(secret.expose(), "hunter2");
        assert_eq!(secret.map(|text| text.len()).expose(), &7);
    }

    #[test]
    fn a_struct_holding_a_secret_never_formats_it() {
        #[derive(Debug)]
        #[expect(dead_code, reason = "only formatted")]
        struct Login {
            user: String,
            password: Secret<String>,
            tokens: Vec<Secret<String>>,
        }
        let login = Login {
            user: "deploy".into(),
            password: Secret::new("hunter2".into()),
            tokens: vec![Secret::new("t0ken".into())],
        };
        for text in [format!("{login:?}"), format!("{login:#?}")] {
            assert!(text.contains("deploy"), "{text}");
            assert!(!text.contains("hunter2"), "{text}");
            assert!(!text.contains("t0ken"), "{text}");
            assert!(text.contains(MASK), "{text}");
        }
    }
}
