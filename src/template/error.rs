//! What can go wrong with a template, with the byte offset inside the template text when known.
//!
//! Offsets are byte positions in the template string the caller passed in; the runbook loader
//! adds them to the YAML scalar's own position to point `file:line:col` at the exact variable.

use thiserror::Error;

/// Helpers a template may call; anything else is [`TemplateError::UnknownHelper`].
pub(crate) const HELPERS: &[&str] = &[
    "eq", "ne", "lt", "gt", "le", "ge", "and", "or", "not", "if", "unless", "each", "with",
    "lookup", "len",
];

/// How many defined names an [`TemplateError::Undefined`] hint lists before eliding the rest.
const LISTED_NAMES: usize = 12;

/// A template that cannot be parsed, reads an undefined value, or renders a bad condition.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum TemplateError {
    /// The text is not valid Handlebars, or uses a construct opsgate does not support
    /// (partials, decorators, inline `if`/`each`).
    #[error("invalid template: {message}")]
    Syntax {
        /// What is wrong, in user terms.
        message: String,
        /// Byte offset of the problem inside the template.
        offset: Option<usize>,
    },
    /// The template reads a variable that the context does not define (strict mode: never an
    /// empty string). A variable defined as `null` is not undefined.
    #[error("template variable `{path}` is not defined")]
    Undefined {
        /// The variable as a dotted path (`params.keep`), or as written for paths local to an
        /// `each`/`with` block (`this.name`).
        path: String,
        /// Byte offset of the variable inside the template.
        offset: Option<usize>,
        /// Names defined at the level where the lookup stopped (`params.kep` → the keys of
        /// `params`), sorted; empty when unknown.
        available: Vec<String>,
    },
    /// The template calls a helper that does not exist.
    #[error("unknown template helper `{name}`")]
    UnknownHelper {
        /// The helper name as written.
        name: String,
        /// Byte offset of the name inside the template.
        offset: Option<usize>,
    },
    /// In command text, a shell-quoted `{{x}}` sits inside the author's own quotes or a
    /// here-document, where opsgate's quoting would end theirs instead of protecting the value.
    #[error("a shell-quoted value cannot go inside {context} in command text")]
    QuotedExpression {
        /// Where it sits: `single quotes`, `double quotes`, `` `$'…'` quotes ``, `a here-document`.
        context: String,
        /// Byte offset of the `{{` inside the template.
        offset: Option<usize>,
    },
    /// A condition rendered something other than `true` or `false`.
    #[error("condition rendered `{rendered}`, not `true` or `false`")]
    NotABoolean {
        /// The trimmed rendered text.
        rendered: String,
    },
    /// Rendering failed for another reason (a helper given values it cannot compare, a value
    /// that cannot go into a shell command).
    #[error("cannot render template: {message}")]
    Render {
        /// What went wrong.
        message: String,
        /// Byte offset of the expression that failed, when known.
        offset: Option<usize>,
    },
}

impl TemplateError {
    /// Byte offset of the problem inside the template text, when known.
    #[must_use]
    pub fn offset(&self) -> Option<usize> {
        match self {
            Self::Syntax { offset, .. }
            | Self::Undefined { offset, .. }
            | Self::UnknownHelper { offset, .. }
            | Self::QuotedExpression { offset, .. }
            | Self::Render { offset, .. } => *offset,
            Self::NotABoolean { .. } => None,
        }
    }

    /// Adds `base` to the offset, for templates cut out of a larger text.
    #[must_use]
    pub fn shifted(mut self, base: usize) -> Self {
        match &mut self {
            Self::Syntax { offset, .. }
            | Self::Undefined { offset, .. }
            | Self::UnknownHelper { offset, .. }
            | Self::QuotedExpression { offset, .. }
            | Self::Render { offset, .. } => {
                if let Some(offset) = offset {
                    *offset += base;
                }
            }
            Self::NotABoolean { .. } => {}
        }
        self
    }

    /// How to fix it, one sentence per hint, for the `hint:` lines of a diagnostic.
    #[must_use]
    pub fn hints(&self) -> Vec<String> {
        match self {
            Self::Syntax { .. } => vec![
                "templates are Handlebars: `{{params.name}}`, `{{#if (eq params.env 'production')}}…{{/if}}`"
                    .to_owned(),
                "a literal `{{` is written `\\{{`".to_owned(),
            ],
            Self::Undefined { available, .. } if !available.is_empty() => {
                let mut names: Vec<String> =
                    available.iter().take(LISTED_NAMES).map(|name| format!("`{name}`")).collect();
                if available.len() > LISTED_NAMES {
                    names.push("…".to_owned());
                }
                vec![format!("defined at that level: {}", names.join(", "))]
            }
            Self::Undefined { .. } => vec![
                "the context holds `params`, `host`, `vars`, `facts`, `run` and registered step results"
                    .to_owned(),
            ],
            Self::UnknownHelper { .. } => {
                vec![format!("available helpers: {}", HELPERS.join(" "))]
            }
            Self::QuotedExpression { context, .. } if context == "a here-document" => vec![
                "a here-document expands `$(…)` in values; write the file with a `copy` step (`content:`) or a `template` step"
                    .to_owned(),
            ],
            Self::QuotedExpression { .. } => vec![
                "remove the quotes around the `{{…}}`: opsgate makes each value exactly one shell word, spaces and quotes included"
                    .to_owned(),
            ],
            Self::NotABoolean { .. } => vec![
                "a condition must render `true` or `false`; compare with a helper, e.g. `{{eq params.env 'production'}}`"
                    .to_owned(),
            ],
            Self::Render { .. } => Vec::new(),
        }
    }
}

/// The byte offset of 1-based `line` and 1-based character `column` in `text`, as handlebars
/// (through pest) reports positions.
pub(crate) fn offset_of(text: &str, line: usize, column: usize) -> usize {
    let mut line_start = 0;
    for _ in 1..line {
        match text[line_start..].find('\n') {
            Some(newline) => line_start += newline + 1,
            None => return text.len(),
        }
    }
    text[line_start..]
        .char_indices()
        .nth(column.saturating_sub(1))
        .map_or(text.len(), |(index, _)| line_start + index)
}

/// Rewrites a pest "expected …" message, which names grammar rules, in user terms.
pub(crate) fn friendly_syntax_message(message: &str) -> String {
    let mut parts = Vec::new();
    for part in message.split("; ") {
        let (verb, list) = if let Some(list) = part.strip_prefix("expected ") {
            ("expected", list)
        } else if let Some(list) = part.strip_prefix("unexpected ") {
            ("unexpected", list)
        } else {
            parts.push(part.to_owned());
            continue;
        };
        let mut items: Vec<&str> = Vec::new();
        for item in list.split(", ").flat_map(|item| item.split(" or ")) {
            let item = item.trim().trim_start_matches("or ").trim();
            let friendly = match item {
                "" | "leading_tilde_to_omit_whitespace" => continue,
                "identifier"
                | "opt_identifier"
                | "partial_identifier"
                | "opt_partial_identifier" => "a name",
                "helper_parameter" | "literal" | "string_literal" | "number_literal"
                | "boolean_literal" | "null_literal" | "array_literal" | "object_literal" => {
                    "a value"
                }
                "path_inline" | "reference" | "path_id" | "path_raw_id" | "path_item" => {
                    "a variable"
                }
                "path_up" => "`..`",
                "subexpression" => "`(`",
                "trailing_tilde_to_omit_whitespace" => "`}}`",
                "hash" => "`name=value`",
                "block_param" => "`as |name|`",
                "EOI" => "the end of the template",
                "helper_block_end" => "a closing `{{/…}}`",
                "invert_tag" | "invert_chain_tag" => "`{{else}}`",
                "raw_text" | "expression" | "html_expression" | "helper_block_start" => {
                    "text or `{{…}}`"
                }
                other => other,
            };
            if !items.contains(&friendly) {
                items.push(friendly);
            }
        }
        let list = match items.as_slice() {
            [] => "something else".to_owned(),
            [one] => (*one).to_owned(),
            [init @ .., final_item] => format!("{} or {final_item}", init.join(", ")),
        };
        parts.push(format!("{verb} {list}"));
    }
    parts.join("; ")
}

#[cfg(test)]
mod tests {
    use super::{TemplateError, friendly_syntax_message, offset_of};

    #[test]
    fn offsets_count_bytes_from_character_columns() {
        let text = "ab\nçd{{x\n";
        assert_eq!(offset_of(text, 1, 1), 0);
        assert_eq!(offset_of(text, 2, 1), 3);
        // `ç` is two bytes: column 3 (the first `{`) is byte 3 + 2 + 1.
        assert_eq!(offset_of(text, 2, 3), 6);
        assert_eq!(offset_of(text, 9, 1), text.len());
    }

    #[test]
    fn pest_rule_names_become_words() {
        let cases = [
            (
                "expected trailing_tilde_to_omit_whitespace",
                "expected `}}`",
            ),
            (
                "expected identifier, helper_parameter, or trailing_tilde_to_omit_whitespace",
                "expected a name, a value or `}}`",
            ),
            (
                "expected identifier, subexpression, leading_tilde_to_omit_whitespace, or path_inline",
                "expected a name, `(` or a variable",
            ),
            ("expected path_id or path_up", "expected a variable or `..`"),
        ];
        for (pest, expected) in cases {
            assert_eq!(friendly_syntax_message(pest), expected);
        }
    }

    #[test]
    fn display_is_lower_case_and_names_the_subject() {
        let error = TemplateError::Undefined {
            path: "params.kep".to_owned(),
            offset: Some(2),
            available: vec!["env".to_owned(), "keep".to_owned()],
        };
        assert_eq!(
            error.to_string(),
            "template variable `params.kep` is not defined"
        );
        assert_eq!(
            error.hints(),
            vec!["defined at that level: `env`, `keep`".to_owned()]
        );
        assert_eq!(error.clone().shifted(10).offset(), Some(12));
        let error = TemplateError::NotABoolean {
            rendered: "yes".to_owned(),
        };
        assert_eq!(
            error.to_string(),
            "condition rendered `yes`, not `true` or `false`"
        );
        assert_eq!(error.offset(), None);
    }
}
