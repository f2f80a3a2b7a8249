//! A field rendered for one host: the text the host gets, its typed value, and the text with
//! secrets masked, which is all its `Debug` ever shows.
//!
//! Rendered text can hold a secret param (`command: mysql -p{{ params.password }}`). Rather than
//! trust every holder of a plan to redact before formatting, the masked form is computed once,
//! where the text is rendered and the secrets are known, and `Debug` prints only that: a plan,
//! a step or an error that formats a [`Rendered`] cannot show the secret.

use std::fmt;

use crate::runbook::model::FieldValue;
use crate::secret::Secret;

/// A rendered field (see the module doc).
#[derive(Clone, PartialEq)]
pub struct Rendered {
    /// Exactly what the host gets, secrets included.
    text: String,
    /// `text` with every secret masked, when it holds one.
    masked: Option<String>,
    /// `text` parsed as the field's type.
    value: FieldValue,
}

impl Rendered {
    /// A field rendered to `text`, already parsed as `value`; `secrets` are the values to mask
    /// when it is shown.
    #[must_use]
    pub fn new(text: String, value: FieldValue, secrets: &[Secret<String>]) -> Self {
        let masked = super::redact(&text, secrets);
        Self {
            masked: (masked != text).then_some(masked),
            text,
            value,
        }
    }

    /// The text the host gets, secrets included: for running, never for showing (use
    /// [`Rendered::shown`]).
    #[must_use]
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The text with secrets masked: what may be shown, logged or hashed.
    #[must_use]
    pub fn shown(&self) -> &str {
        self.masked.as_deref().unwrap_or(&self.text)
    }

    /// The typed value: what the executor acts on for a scalar field.
    #[must_use]
    pub fn value(&self) -> FieldValue {
        self.value
    }
}

impl From<Rendered> for String {
    fn from(rendered: Rendered) -> Self {
        rendered.text
    }
}

/// The masked text only, as a string literal: `Step<Field>`'s `Debug` (which
/// [`super::Plan::rendered_digest`] hashes) reads `Ready("…")` as it always has. The typed value is
/// left out: it is derived from the text, and a condition on a secret would tell something of it.
impl fmt::Debug for Rendered {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.shown(), formatter)
    }
}

#[cfg(test)]
mod tests {
    use super::Rendered;
    use crate::runbook::model::FieldValue;
    use crate::secret::Secret;

    #[test]
    fn debug_shows_the_masked_text_and_text_gives_the_value() {
        let secrets = [Secret::new("hunter2".to_owned())];
        let rendered = Rendered::new("mysql -phunter2".into(), FieldValue::Text, &secrets);
        assert_eq!(format!("{rendered:?}"), "\"mysql -p***\"");
        assert_eq!(format!("{rendered:#?}"), "\"mysql -p***\"");
        assert_eq!(rendered.shown(), "mysql -p***");
        assert_eq!(rendered.text(), "mysql -phunter2");
        let plain = Rendered::new("uptime".into(), FieldValue::Text, &secrets);
        assert_eq!(format!("{plain:?}"), "\"uptime\"");
    }
}
