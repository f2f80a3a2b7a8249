//! The top-level error, exit codes and the error renderer.
//!
//! Modules return their own typed errors; [`Error`] gathers them with the data they carry, and
//! the edge (`cli`, later the service) renders it exactly once with [`Error::render`]: the
//! message, one `caused by:` line per source in the chain, then the hints. Exit codes (SPEC §6,
//! also in `--help`) are decided per variant by [`Error::exit`]:
//!
//! | code | meaning |
//! |---|---|
//! | 0 | every host ok |
//! | 1 | a host failed or was unreachable, or opsgate itself could not work (I/O) |
//! | 2 | invalid input: usage, YAML, validation, params, host patterns |
//! | 3 | denied by policy |
//! | 4 | approval rejected or timed out, or audit verification failed |
//! | 130 | interrupted (Ctrl-C) |

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use crate::approval::SignatureError;
use crate::audit::{AuditError, RunId};
use crate::diagnostic::{Diagnostic, Diagnostics, Paint, Style};
use crate::gate::{Denial, IdentityError};
use crate::lab::LabError;
use crate::plan::saved::SavedPlanError;

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

    /// The exit for a numeric code (the service sends codes); an unknown code is a failure.
    #[must_use]
    pub fn from_code(code: u8) -> Exit {
        match code {
            0 => Exit::Ok,
            2 => Exit::Invalid,
            3 => Exit::Denied,
            4 => Exit::Rejected,
            130 => Exit::Interrupted,
            _ => Exit::Failed,
        }
    }
}

/// Anything that stops a command.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Problems in the user's input, each with a location and hints.
    #[error(transparent)]
    Invalid(#[from] Diagnostics),
    /// One problem of the input without a file location (a bad flag combination, a bad value).
    #[error("{}", .0.message)]
    Usage(Box<Diagnostic>),
    /// The gate refused (exit 3).
    #[error("{denial}")]
    Denied {
        /// The rule, the reason and what would allow it.
        denial: Denial,
        /// The run the refusal is recorded as, when it is.
        recorded: Option<RunId>,
    },
    /// Another operator rejected the pending run (exit 4).
    #[error("run {run}: approval rejected by `{approver}`{}", reason_suffix(.reason.as_deref()))]
    ApprovalRejected {
        /// The run.
        run: RunId,
        /// Who rejected it.
        approver: String,
        /// Why, if they said.
        reason: Option<String>,
    },
    /// Nobody approved the pending run in time (exit 4).
    #[error("run {run}: no approval within {}; nothing ran", crate::report::human_duration(*.timeout))]
    ApprovalTimedOut {
        /// The run.
        run: RunId,
        /// `--approval-timeout`.
        timeout: Duration,
    },
    /// A saved plan could not be saved, read, approved or run; the exit code is the variant's.
    #[error(transparent)]
    SavedPlan(#[from] SavedPlanError),
    /// A signed approval handed in does not verify (exit 3).
    #[error("signed approval by `{approver}` refused")]
    SignatureRefused {
        /// Who it names.
        approver: String,
        /// Why it does not verify.
        #[source]
        source: SignatureError,
    },
    /// An approval could not be signed, or a document is not a signed approval.
    #[error(transparent)]
    Signature(#[from] SignatureError),
    /// The audit store failed.
    #[error(transparent)]
    Audit(#[from] AuditError),
    /// `audit verify` could not even open the store: that is a failed verification (exit 4).
    #[error("the audit history cannot be verified")]
    Unverifiable(#[source] AuditError),
    /// Recording a run's events failed; the run stopped starting steps.
    #[error("run {run}: recording failed, steps stopped")]
    Recording {
        /// The run.
        run: RunId,
        /// What the store said.
        #[source]
        source: AuditError,
    },
    /// The operator's identity could not be read from the OS.
    #[error(transparent)]
    Identity(#[from] IdentityError),
    /// `opsgate lab` failed.
    #[error(transparent)]
    Lab(#[from] LabError),
    /// `opsgate inventory` failed.
    #[error(transparent)]
    Inventory(#[from] crate::cli::InventoryCliError),
    /// A file or directory could not be read or written.
    #[error("cannot {action} `{}`", path.display())]
    Io {
        /// What was being done: "read", "create the control directory in", …
        action: &'static str,
        /// The path.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The terminal or a pipe failed (reading a prompt or stdin, writing output).
    #[error("cannot {action}")]
    Terminal {
        /// What was being done.
        action: &'static str,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Team mode: talking to the service, or starting it, failed; or the service refused.
    #[error(transparent)]
    Service(#[from] crate::service::ServiceError),
    /// The async runtime could not be started.
    #[error("cannot start the async runtime")]
    Runtime(#[source] std::io::Error),
    /// The task consuming a run's events died (a bug); the run is recorded as failed.
    #[error("run {run}: the event consumer stopped unexpectedly")]
    ConsumerStopped {
        /// The run.
        run: RunId,
    },
}

impl From<Diagnostic> for Error {
    fn from(diagnostic: Diagnostic) -> Self {
        Error::Usage(Box::new(diagnostic))
    }
}

impl From<Denial> for Error {
    fn from(denial: Denial) -> Self {
        Error::Denied {
            denial,
            recorded: None,
        }
    }
}

impl Error {
    /// The exit code this error ends the process with.
    #[must_use]
    pub fn exit(&self) -> Exit {
        match self {
            Error::Invalid(_)
            | Error::Usage(_)
            | Error::Signature(SignatureError::NotADocument) => Exit::Invalid,
            Error::Denied { .. } | Error::SignatureRefused { .. } => Exit::Denied,
            Error::ApprovalRejected { .. }
            | Error::ApprovalTimedOut { .. }
            | Error::Unverifiable(_) => Exit::Rejected,
            Error::SavedPlan(error) => match error {
                SavedPlanError::NotAnId { .. }
                | SavedPlanError::Missing { .. }
                | SavedPlanError::SecretMismatch { .. } => Exit::Invalid,
                SavedPlanError::Denied(_) => Exit::Denied,
                SavedPlanError::Altered { .. } => Exit::Rejected,
                SavedPlanError::Unreadable { .. }
                | SavedPlanError::OldFormat { .. }
                | SavedPlanError::Encode(_)
                | SavedPlanError::Write { .. }
                | SavedPlanError::Random { .. }
                | SavedPlanError::KeyIo { .. }
                | SavedPlanError::KeyUnsafe { .. }
                | SavedPlanError::Audit { .. } => Exit::Failed,
            },
            Error::Inventory(error) if error.is_invalid_input() => Exit::Invalid,
            Error::Service(error) => match error {
                crate::service::ServiceError::Remote(response) => Exit::from_code(response.exit),
                crate::service::ServiceError::Protocol(_)
                | crate::service::ServiceError::ServiceOwned { .. }
                | crate::service::ServiceError::NotInTeamMode { .. }
                | crate::service::ServiceError::ServeOption { .. }
                | crate::service::ServiceError::NoServiceSection { .. }
                | crate::service::ServiceError::NoPolicy { .. } => Exit::Invalid,
                _ => Exit::Failed,
            },
            Error::Signature(_)
            | Error::Audit(_)
            | Error::Recording { .. }
            | Error::Identity(_)
            | Error::Lab(_)
            | Error::Inventory(_)
            | Error::Io { .. }
            | Error::Terminal { .. }
            | Error::Runtime(_)
            | Error::ConsumerStopped { .. } => Exit::Failed,
        }
    }

    /// Ways forward, rendered after the message and its causes as `hint:` lines.
    #[must_use]
    pub fn hints(&self) -> Vec<String> {
        match self {
            Error::Denied { denial, recorded } => {
                let mut hints = denial.hints();
                if let Some(run) = recorded {
                    hints.push(format!(
                        "the refusal is recorded as run {run}: `opsgate history show {run}`"
                    ));
                }
                hints
            }
            Error::ApprovalRejected { run, .. } | Error::ApprovalTimedOut { run, .. } => {
                vec![format!("the run is recorded: `opsgate history show {run}`")]
            }
            Error::SavedPlan(error) => error.hints(),
            Error::SignatureRefused { source, .. } | Error::Signature(source) => source.hints(),
            Error::Audit(error) | Error::Unverifiable(error) => error.hints(),
            Error::Recording { run, source } => {
                let mut hints = source.hints();
                hints.push(format!(
                    "what was recorded before the failure: `opsgate history show {run}`"
                ));
                hints
            }
            Error::Identity(error) => error.hints(),
            Error::Lab(error) => error.hints(),
            Error::Inventory(error) => error.hints(),
            Error::Service(error) => error.hints(),
            Error::Invalid(_)
            | Error::Usage(_)
            | Error::Io { .. }
            | Error::Terminal { .. }
            | Error::Runtime(_)
            | Error::ConsumerStopped { .. } => Vec::new(),
        }
    }

    /// Renders the error for stderr: the message (or every diagnostic with its snippet), each
    /// cause in the chain as `caused by:`, then the hints.
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
            // The service rendered it exactly as the command line would have.
            Error::Service(crate::service::ServiceError::Remote(response)) => {
                response.rendered.clone()
            }
            // Transparent wrappers of errors that render themselves as diagnostics.
            Error::Inventory(crate::cli::InventoryCliError::Inventory(diagnostics)) => {
                Error::Invalid(diagnostics.clone()).render(style)
            }
            _ => {
                let mut out = format!("{}: {self}\n", style.paint("error", Paint::Red));
                // `#[error(transparent)]` forwards `source()` too, so the chain starts below the
                // message shown.
                let mut cause = std::error::Error::source(self);
                while let Some(error) = cause {
                    let _ = writeln!(out, "{}: {error}", style.paint("caused by", Paint::Bold));
                    cause = error.source();
                }
                let hints = self.hints();
                if !hints.is_empty() {
                    out.push('\n');
                    for hint in hints {
                        let _ = writeln!(out, "{}: {hint}", style.paint("hint", Paint::Cyan));
                    }
                }
                out
            }
        }
    }

    /// Whether a command only failed because its reader went away (`opsgate history | head`):
    /// that is the reader's choice, not an error.
    #[must_use]
    pub fn is_broken_pipe(&self) -> bool {
        let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(self);
        while let Some(error) = cause {
            if let Some(io) = error.downcast_ref::<std::io::Error>()
                && io.kind() == std::io::ErrorKind::BrokenPipe
            {
                return true;
            }
            cause = error.source();
        }
        false
    }
}

/// `: REASON`, or nothing.
fn reason_suffix(reason: Option<&str>) -> String {
    reason
        .map(|reason| format!(": {reason}"))
        .unwrap_or_default()
}
