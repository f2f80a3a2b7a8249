//! What an action did: the vocabulary both the actions and the executor speak.
//!
//! It lives with the actions, not the executor, so that actions never reach up into the layer
//! that runs them; the executor's events re-export [`Status`].

use serde::Serialize;

use crate::transport::CommandOutput;

/// Outcome of one step on one host (SPEC §2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Nothing needed changing.
    Ok,
    /// Something changed (or would, under `--check`).
    Changed,
    /// Not run: `when` was false, a guard said "already done", or the host stopped earlier.
    Skipped,
    /// The step failed.
    Failed,
    /// The host could not be reached.
    Unreachable,
}

impl Status {
    /// The lower-case name used in output and the audit history.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Changed => "changed",
            Status::Skipped => "skipped",
            Status::Failed => "failed",
            Status::Unreachable => "unreachable",
        }
    }
}

/// What an action did.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// `ok`, `changed`, `skipped` or `failed`.
    pub status: Status,
    /// Exit code of the main remote command; `None` when nothing ran or it timed out.
    pub rc: Option<i32>,
    /// Standard output of the main command.
    pub stdout: Vec<u8>,
    /// Standard error of the main command.
    pub stderr: Vec<u8>,
    /// One line for the operator.
    pub message: Option<String>,
    /// Unified diff of a changed file.
    pub diff: Option<String>,
    /// Action-specific values merged into the registered result (a backup's `id`, `path` …).
    pub extra: serde_json::Map<String, serde_json::Value>,
    /// The backup this step wrote, even if the step then failed (pruning old ones): the audit
    /// history records it so `opsgate backups` can list it.
    pub backup: Option<BackupMade>,
}

/// A backup written to a host's store.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct BackupMade {
    /// The file name without extension: what `restore: { from: … }` takes.
    pub id: String,
    /// The store directory.
    pub store: String,
    /// The backup file.
    pub path: String,
    /// Its size in bytes.
    pub size: u64,
    /// Its SHA-256, as in its manifest.
    pub sha256: String,
    /// Ids of older backups that `keep` removed in the same step.
    pub removed: Vec<String>,
}

impl Outcome {
    pub(super) fn new(status: Status, message: impl Into<Option<String>>) -> Self {
        Self {
            status,
            rc: None,
            stdout: vec![],
            stderr: vec![],
            message: message.into(),
            diff: None,
            extra: serde_json::Map::new(),
            backup: None,
        }
    }

    /// Nothing to change.
    pub(super) fn ok(message: impl Into<Option<String>>) -> Self {
        Self::new(Status::Ok, message)
    }

    /// Changed, or would change under `--check`.
    pub(crate) fn changed(message: impl Into<Option<String>>) -> Self {
        Self::new(Status::Changed, message)
    }

    /// Not run, and why.
    pub(crate) fn skipped(message: impl Into<String>) -> Self {
        Self::new(Status::Skipped, Some(message.into()))
    }

    /// Failed, and why.
    pub(crate) fn failed(message: impl Into<String>) -> Self {
        Self::new(Status::Failed, Some(message.into()))
    }

    /// A failure built from a helper command's output.
    pub(super) fn failed_with(message: impl Into<String>, output: &CommandOutput) -> Self {
        Self {
            rc: output.rc(),
            stdout: output.stdout.clone(),
            stderr: output.stderr.clone(),
            ..Self::failed(message)
        }
    }
}
