//! Param values from `-p`, `--params-file` and prompts → typed values in declaration order.

use crate::diagnostic::{Diagnostic, Diagnostics};
use crate::runbook::Runbook;
use crate::runbook::model::{ParamValue, backticked};
use crate::secret::{MASK, Secret};

/// Typed param values in declaration order.
pub type Params = Vec<(String, Param)>;

/// A typed param value; a secret param's value is held as a [`Secret`], so no `Debug` of a
/// plan or a request shows it.
#[derive(Debug, Clone, PartialEq)]
pub enum Param {
    /// A param not declared `secret`.
    Public(ParamValue),
    /// A `secret: true` param.
    Secret(Secret<ParamValue>),
}

impl Param {
    /// The value, for the template context and comparisons; never for showing.
    #[must_use]
    pub fn expose(&self) -> &ParamValue {
        match self {
            Param::Public(value) => value,
            Param::Secret(secret) => secret.expose(),
        }
    }

    /// The value as text, a secret as the mask: what displays and records show.
    #[must_use]
    pub fn masked_text(&self) -> String {
        match self {
            Param::Public(value) => value.to_text(),
            Param::Secret(_) => MASK.to_owned(),
        }
    }

    /// The value as JSON (ints stay numbers), a secret as the mask.
    #[must_use]
    pub fn masked_json(&self) -> serde_json::Value {
        match self {
            Param::Public(value) => value.to_json(),
            Param::Secret(_) => MASK.into(),
        }
    }
}

/// Where a param value came from; decides whether a secret given this way earns a warning.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParamSource {
    /// `-p name=value`: visible in `ps` and shell history.
    CommandLine,
    /// `-p name=@path`: read from a file.
    FileReference,
    /// `--params-file FILE`.
    ParamsFile,
    /// A no-echo prompt on the terminal.
    Prompt,
    /// A saved plan's own (never secret) params, for `run --plan`.
    SavedPlan,
}

/// One value as the caller gave it.
#[derive(Debug, Clone)]
pub struct ParamInput {
    /// Param name.
    pub name: String,
    /// Value as text, converted to the declared type here. Held as a secret until the
    /// declaration says whether it is one.
    pub value: Secret<String>,
    /// Where it came from.
    pub source: ParamSource,
}

/// Checks every input against the runbook's declarations, applies defaults and reports every
/// problem at once. Later inputs for the same name win (a `-p` after `--params-file`).
pub fn resolve(
    runbook: &Runbook,
    inputs: &[ParamInput],
) -> Result<(Params, Vec<Diagnostic>), Diagnostics> {
    let mut diagnostics = Diagnostics::new();
    let declared: Vec<String> = runbook
        .params
        .iter()
        .map(|param| param.name.clone())
        .collect();
    for input in inputs {
        if runbook.param(&input.name).is_none() {
            let hint = if declared.is_empty() {
                format!("runbook `{}` declares no params", runbook.id)
            } else {
                format!(
                    "runbook `{}` declares {}",
                    runbook.id,
                    backticked(&declared)
                )
            };
            diagnostics
                .push(Diagnostic::error(format!("unknown param `{}`", input.name)).hint(hint));
        }
    }
    let mut values = Vec::new();
    for spec in &runbook.params {
        let given = inputs.iter().rev().find(|input| input.name == spec.name);
        let value = match given {
            Some(input) => match spec.kind.parse(input.value.expose()) {
                Ok(value) => {
                    if spec.secret && input.source == ParamSource::CommandLine {
                        diagnostics.push(
                            Diagnostic::warning(format!(
                                "secret param `{}` was given on the command line, where `ps` and shell history show it",
                                spec.name
                            ))
                            .hint(format!("use `-p {}=@FILE`, `--params-file FILE` (mode 0600) or the prompt", spec.name)),
                        );
                    }
                    Some(value)
                }
                Err(reason) => {
                    // The value itself is not echoed for secrets: the reason may quote it.
                    let reason = if spec.secret {
                        "value does not fit the declared type".to_owned()
                    } else {
                        reason.to_string()
                    };
                    diagnostics.push(
                        Diagnostic::error(format!("param `{}`: {reason}", spec.name)).hint(
                            format!("`{}` is declared as {}", spec.name, describe(&spec.kind)),
                        ),
                    );
                    None
                }
            },
            None => spec.default.clone(),
        };
        let value = value.map(|value| {
            if spec.secret {
                Param::Secret(Secret::new(value))
            } else {
                Param::Public(value)
            }
        });
        match value {
            Some(value) => values.push((spec.name.clone(), value)),
            None if given.is_none() && spec.required => diagnostics.push(
                Diagnostic::error(format!("param `{}` is required", spec.name)).hint(if spec.secret {
                    format!("give it with `-p {}=@FILE` or `--params-file FILE`, or run on a terminal to be prompted", spec.name)
                } else {
                    format!("give it with `-p {}=VALUE`", spec.name)
                }),
            ),
            None => {}
        }
    }
    diagnostics.into_result(values)
}

fn describe(kind: &crate::runbook::model::ParamKind) -> String {
    use crate::runbook::model::ParamKind;
    match kind {
        ParamKind::Int { min, max } => match (min, max) {
            (Some(min), Some(max)) => format!("an int from {min} to {max}"),
            (Some(min), None) => format!("an int of at least {min}"),
            (None, Some(max)) => format!("an int of at most {max}"),
            (None, None) => "an int".to_owned(),
        },
        ParamKind::Bool => "a bool (true or false)".to_owned(),
        ParamKind::Enum(values) => format!("one of {}", backticked(values)),
        ParamKind::String => "a string".to_owned(),
    }
}
