//! The top-level error, exit codes and the error renderer.
//!
//! Modules return their own error types; `cli` converts them into [`Error`] and renders them
//! exactly once, on stderr, with [`Error::render`]. Exit codes (SPEC §6, also in `--help`):
//!
//! | code | meaning |
//! |---|---|
//! | 0 | every host ok |
//! | 1 | a host failed or was unreachable, or opsgate itself could not work (I/O) |
//! | 2 | invalid input: usage, YAML, validation, params, host patterns |
//! | 3 | denied by policy |
//! | 4 | approval rejected or timed out, or audit verification failed |
//! | 130 | interrupted (Ctrl-C) |

use crate::diagnostic::{Diagnostic, Diagnostics, Style};

/// Process exit codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// 0: all hosts ok.
    Ok,
    /// 1: a host failed or was unreachable.
    Failed,
    /// 2: invalid input.
    Invalid,
    /// 3: denied by policy.
    Denied,
    /// 4: approval rejected or timed out, or audit verification failed.
    Rejected,
    /// 130: interrupted.
    Interrupted,
}

impl Exit {
    /// The numeric code.
    #[must_use]
    pub fn code(self) -> u8 {
        match self {
            Exit::Ok => 0,
            Exit::Failed => 1,
            Exit::Invalid => 2,
            Exit::Denied => 3,
            Exit::Rejected => 4,
            Exit::Interrupted => 130,
        }
    }
}

/// Anything that stops a command, with the exit code it maps to.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Problems in the user's input, each with a location and hints.
    #[error(transparent)]
    Invalid(#[from] Diagnostics),
    /// One problem without a file location (a bad flag combination, a missing file).
    #[error("{}", .0.message)]
    Usage(Box<Diagnostic>),
    /// The gate refused (exit 3): the message names the rule and the operator's level, the
    /// hints what would allow it.
    #[error("{message}")]
    Denied {
        /// What was refused, and by which rule.
        message: String,
        /// What level, approval or change would allow it.
        hints: Vec<String>,
    },
    /// A verification failed or an approval was refused (exit 4).
    #[error("{message}")]
    Rejected {
        /// What failed.
        message: String,
        /// What to do about it.
        hints: Vec<String>,
    },
    /// The environment failed opsgate (I/O, a missing program).
    #[error("{message}")]
    Environment {
        /// What could not be done.
        message: String,
        /// How to fix it.
        hints: Vec<String>,
    },
}

impl From<Diagnostic> for Error {
    fn from(diagnostic: Diagnostic) -> Self {
        Error::Usage(Box::new(diagnostic))
    }
}

impl From<crate::gate::Denial> for Error {
    fn from(denial: crate::gate::Denial) -> Self {
        Error::Denied {
            hints: denial.hints(),
            message: denial.to_string(),
        }
    }
}

impl Error {
    /// An environment error with hints.
    #[must_use]
    pub fn environment(message: impl Into<String>, hints: Vec<String>) -> Self {
        Error::Environment {
            message: message.into(),
            hints,
        }
    }

    /// The exit code this error ends the process with.
    #[must_use]
    pub fn exit(&self) -> Exit {
        match self {
            Error::Invalid(_) | Error::Usage(_) => Exit::Invalid,
            Error::Environment { .. } => Exit::Failed,
            Error::Denied { .. } => Exit::Denied,
            Error::Rejected { .. } => Exit::Rejected,
        }
    }

    /// Renders the error for stderr: every diagnostic with its snippet and hints.
    #[must_use]
    pub fn render(&self, style: Style) -> String {
        match self {
            Error::Invalid(diagnostics) => {
                let count = diagnostics.error_count();
                let mut out: Vec<String> = diagnostics
                    .clone()
                    .sorted()
                    .iter()
                    .map(|diagnostic| diagnostic.render(style))
                    .collect();
                if count > 1 {
                    out.push(format!("{count} errors; nothing was run\n"));
                }
                out.join("\n")
            }
            Error::Usage(diagnostic) => diagnostic.render(style),
            Error::Environment { message, hints }
            | Error::Denied { message, hints }
            | Error::Rejected { message, hints } => {
                let mut diagnostic = Diagnostic::error(message.clone());
                diagnostic.hints.clone_from(hints);
                diagnostic.render(style)
            }
        }
    }
}
