//! The derived run index: one row per run, kept next to the events for fast listings.
//!
//! Listing 100 000 runs by scanning and decoding a million events would take seconds, so the
//! store keeps a `run` table (plus `run_host` for `--host`) and updates it **in the same
//! transaction** as the event that changes it. The index is derived data, not evidence:
//!
//! - A run's row is inserted with its `run_requested` event and may then be updated only while
//!   the run is live (`running` / `pending`), only in its mutable columns (status, times,
//!   message); triggers enforce this, and reject every DELETE. Once a run is final its row is
//!   frozen, like the events.
//! - [`RunRow::apply`] is the single definition of how events change a row; the store calls it
//!   when appending and `audit verify` replays it over the whole chain and reports any row that
//!   disagrees with the events, so a forged index cannot hide behind an intact chain.
//!
//! Status transitions: `run_requested` → running; `approval_requested` → pending;
//! `approval_granted` (of the run or of a gate) → running; `run_started` sets the start time;
//! `run_finished` sets the final status, the finish time and the message.

use crate::audit::record::Record;
use crate::audit::run::{RunId, RunStatus};

/// One row of the `run` table, plus the run's hosts (`run_host`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RunRow {
    pub(crate) run: RunId,
    pub(crate) requested_at: i64,
    pub(crate) operator: String,
    pub(crate) runbook: String,
    pub(crate) runbook_sha256: String,
    pub(crate) pattern: String,
    pub(crate) hosts: Vec<String>,
    pub(crate) check: bool,
    pub(crate) status: RunStatus,
    pub(crate) started_at: Option<i64>,
    pub(crate) finished_at: Option<i64>,
    pub(crate) message: Option<String>,
}

impl RunRow {
    /// The row a `run_requested` event creates; `None` for any other record.
    pub(crate) fn requested(run: RunId, at: i64, record: &Record) -> Option<RunRow> {
        match record {
            Record::RunRequested { .. } => RunRow::from_request(run, at, record.clone()),
            _ => None,
        }
    }

    /// [`RunRow::requested`], taking the record by value.
    pub(crate) fn from_request(run: RunId, at: i64, record: Record) -> Option<RunRow> {
        let Record::RunRequested {
            operator,
            runbook,
            runbook_sha256,
            pattern,
            hosts,
            check,
            ..
        } = record
        else {
            return None;
        };
        Some(RunRow {
            run,
            requested_at: at,
            operator,
            runbook,
            runbook_sha256,
            pattern,
            hosts,
            check,
            status: RunStatus::Running,
            started_at: None,
            finished_at: None,
            message: None,
        })
    }

    /// Applies a later event of the run. Returns whether the row changed (so the store can skip
    /// the UPDATE for step events, which are most of them).
    pub(crate) fn apply(&mut self, at: i64, record: &Record) -> bool {
        let before = self.clone();
        match record {
            Record::RunStarted => {
                self.started_at.get_or_insert(at);
                self.status = RunStatus::Running;
            }
            Record::ApprovalRequested { .. } => self.status = RunStatus::Pending,
            Record::ApprovalGranted { .. } => {
                if self.status == RunStatus::Pending {
                    self.status = RunStatus::Running;
                }
            }
            Record::RunFinished { status, message } => {
                self.status = *status;
                self.finished_at = Some(at);
                self.message.clone_from(message);
            }
            Record::RunRequested { .. }
            | Record::StepStarted { .. }
            | Record::StepFinished { .. }
            | Record::HostUnreachable { .. }
            | Record::GateDecision { .. }
            | Record::ApprovalRejected { .. }
            | Record::RunbookApproved { .. }
            | Record::BackupCreated { .. } => {}
        }
        *self != before
    }
}

#[cfg(test)]
mod tests {
    use super::RunRow;
    use crate::audit::record::{ApprovalTarget, Record};
    use crate::audit::run::{RunId, RunStatus};

    #[test]
    fn events_move_a_run_through_its_statuses() {
        let requested = &crate::audit::record::tests::every_kind()[0];
        let mut row = RunRow::requested(RunId::new(1), 10, requested).expect("a request");
        assert_eq!(row.status, RunStatus::Running);
        assert_eq!(row.hosts, ["web1", "web2"]);
        let ask = Record::ApprovalRequested {
            target: ApprovalTarget::Run,
            approver_level: 3,
            message: String::new(),
        };
        assert!(row.apply(11, &ask));
        assert_eq!(row.status, RunStatus::Pending);
        let grant = Record::ApprovalGranted {
            target: ApprovalTarget::Run,
            approver: "carol".into(),
            approver_level: 4,
            reason: None,
            signature: None,
        };
        assert!(row.apply(12, &grant));
        assert!(row.apply(13, &Record::RunStarted));
        assert_eq!((row.status, row.started_at), (RunStatus::Running, Some(13)));
        let step = Record::StepStarted {
            host: "web1".into(),
            step: 1,
            name: "x".into(),
        };
        assert!(!row.apply(14, &step), "step events leave the index alone");
        let finished = Record::RunFinished {
            status: RunStatus::Ok,
            message: None,
        };
        assert!(row.apply(15, &finished));
        assert_eq!((row.status, row.finished_at), (RunStatus::Ok, Some(15)));
        assert!(RunRow::requested(RunId::new(2), 0, &Record::RunStarted).is_none());
    }
}
