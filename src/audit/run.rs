//! Run identity and run status: the two values every history query filters on.

use std::fmt;
use std::str::FromStr;

use serde::Serialize;

/// A run's id: runs are numbered 1, 2, 3 … in the order they were requested (one more than the
/// highest id in the store, recorded in the chain), so ids are unique, increase with time and can
/// never be reused inside one audit store. Stores from before that rule numbered runs by their
/// `run_requested` event's `seq`; those ids stay. Displays as the bare number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct RunId(i64);

impl RunId {
    /// Wraps a raw id (the store hands these out; callers parse user input with `FromStr`).
    #[must_use]
    pub fn new(id: i64) -> Self {
        Self(id)
    }

    /// The number, as stored in `SQLite`.
    #[must_use]
    pub fn get(self) -> i64 {
        self.0
    }
}

impl fmt::Display for RunId {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, formatter)
    }
}

/// A run id on the command line that is not a positive number.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("run id `{text}` is not a positive number")]
pub struct ParseRunIdError {
    /// What the user typed.
    pub text: String,
}

impl FromStr for RunId {
    type Err = ParseRunIdError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        // `#42` is how the human output prints ids; accept it back.
        let digits = text.trim().trim_start_matches('#');
        match digits.parse::<i64>() {
            Ok(id) if id > 0 => Ok(Self(id)),
            _ => Err(ParseRunIdError {
                text: text.to_owned(),
            }),
        }
    }
}

/// Where a run stands. `Running` and `Pending` are live (a process holds the run's lock); every
/// other status is final and is set by the run's single `run_finished` event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    /// Requested or executing.
    Running,
    /// Every host finished without failure.
    Ok,
    /// A host failed or was unreachable.
    Failed,
    /// Refused by the gate, or an approval was rejected.
    Denied,
    /// Stopped by the operator (Ctrl-C).
    Cancelled,
    /// The opsgate process died mid-run; recorded by the next command that opened the store.
    Interrupted,
    /// Waiting for an approval (of the run or of a `gate` step).
    Pending,
}

impl RunStatus {
    /// Every status, in display order.
    pub const ALL: [RunStatus; 7] = [
        RunStatus::Running,
        RunStatus::Pending,
        RunStatus::Ok,
        RunStatus::Failed,
        RunStatus::Denied,
        RunStatus::Cancelled,
        RunStatus::Interrupted,
    ];

    /// The stable name used in the database, the canonical encoding and JSON output.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Running => "running",
            RunStatus::Ok => "ok",
            RunStatus::Failed => "failed",
            RunStatus::Denied => "denied",
            RunStatus::Cancelled => "cancelled",
            RunStatus::Interrupted => "interrupted",
            RunStatus::Pending => "pending",
        }
    }

    /// Whether a process is still working on the run (so the run holds a lock).
    #[must_use]
    pub fn is_live(self) -> bool {
        matches!(self, RunStatus::Running | RunStatus::Pending)
    }
}

impl fmt::Display for RunStatus {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.as_str())
    }
}

/// A status name that opsgate does not know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown run status `{text}`")]
pub struct ParseRunStatusError {
    /// What was read.
    pub text: String,
}

impl ParseRunStatusError {
    /// The accepted names.
    #[must_use]
    pub fn hints(&self) -> Vec<String> {
        let names: Vec<&str> = RunStatus::ALL
            .iter()
            .map(|status| status.as_str())
            .collect();
        vec![format!("statuses are {}", names.join(", "))]
    }
}

impl FromStr for RunStatus {
    type Err = ParseRunStatusError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        RunStatus::ALL
            .into_iter()
            .find(|status| status.as_str() == text)
            .ok_or_else(|| ParseRunStatusError {
                text: text.to_owned(),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::{RunId, RunStatus};

    #[test]
    fn run_ids_parse_from_what_the_output_prints() {
        assert_eq!("42".parse::<RunId>(), Ok(RunId::new(42)));
        assert_eq!("#42".parse::<RunId>(), Ok(RunId::new(42)));
        assert_eq!(RunId::new(42).to_string(), "42");
        assert!("0".parse::<RunId>().is_err());
        assert!("-3".parse::<RunId>().is_err());
        assert!("web1".parse::<RunId>().is_err());
    }

    #[test]
    fn statuses_round_trip_through_their_names() {
        for status in RunStatus::ALL {
            assert_eq!(status.as_str().parse::<RunStatus>(), Ok(status));
        }
        assert!("done".parse::<RunStatus>().is_err());
        assert!(RunStatus::Pending.is_live());
        assert!(!RunStatus::Interrupted.is_live());
    }
}
