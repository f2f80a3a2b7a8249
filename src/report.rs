//! What a long operation tells the person (or program) who asked for it while it goes on.
//!
//! Library code never prints: `ops` and the approval wait hand a [`Notice`] to a [`Reporter`]
//! that the front end supplies — the terminal for the command line, the socket for the service
//! (SPEC §7). The run's own step events are a separate, richer stream
//! ([`crate::executor::event::Event`]); notices are what happens around it: warnings, the gate's
//! notes, a run waiting for an approval, an approval arriving or being ignored.

use std::time::Duration;

use crate::audit::{ApprovalTarget, RunId};
use crate::diagnostic::Diagnostic;

/// Something an operation reports as it happens.
#[derive(Debug)]
pub enum Notice<'a> {
    /// A problem that does not stop the operation (a deprecated key, a secret in `ps`).
    Warning(&'a Diagnostic),
    /// A note of the gate's (single-operator mode, a draft runbook, break-glass).
    GateNote(&'a str),
    /// The run waits for another operator's approval.
    Pending {
        /// The pending run.
        run: RunId,
        /// Why it needs one.
        reason: &'a str,
        /// Who may give it, as a sentence.
        ask: &'a str,
    },
    /// Time left before the approval wait gives up (sent about once a second).
    Countdown {
        /// The waiting run.
        run: RunId,
        /// What is left of `--approval-timeout`.
        left: Duration,
    },
    /// The approval wait ended (the countdown line may be cleared).
    WaitEnded,
    /// An approval released the run.
    Approved {
        /// The run.
        run: RunId,
        /// Who approved it.
        approver: &'a str,
        /// What they said.
        reason: Option<&'a str>,
    },
    /// A saved plan's approval released the run.
    ApprovedInAdvance {
        /// The run.
        run: RunId,
        /// Who approved the plan.
        approver: &'a str,
        /// The plan id.
        plan: &'a str,
    },
    /// An approval in the store did not pass the waiting side's checks and is ignored.
    ApprovalIgnored {
        /// The run.
        run: RunId,
        /// What it would have approved.
        target: &'a ApprovalTarget,
        /// Who it names.
        approver: &'a str,
        /// Why it does not count.
        problem: &'a dyn std::error::Error,
    },
    /// Gate-step approvals can no longer be watched; waiting gates time out.
    GateWatchStopped(&'a dyn std::error::Error),
}

/// Receives notices. Implementations must be cheap: notices come from the operation's thread.
pub trait Reporter: Send + Sync {
    /// Handles one notice.
    fn notice(&self, notice: Notice<'_>);

    /// Reports each warning.
    fn warnings(&self, warnings: &[Diagnostic]) {
        for warning in warnings {
            self.notice(Notice::Warning(warning));
        }
    }
}

/// `850ms`, `12.3s`, `4m05s`, `1h02m`: a duration as the history and messages show it.
#[must_use]
pub fn human_duration(duration: Duration) -> String {
    let milliseconds = u64::try_from(duration.as_millis()).unwrap_or(u64::MAX);
    let seconds = milliseconds / 1000;
    if milliseconds < 1000 {
        format!("{milliseconds}ms")
    } else if seconds < 60 {
        format!("{}.{}s", seconds, (milliseconds % 1000) / 100)
    } else if seconds < 3600 {
        format!("{}m{:02}s", seconds / 60, seconds % 60)
    } else {
        format!("{}h{:02}m", seconds / 3600, (seconds % 3600) / 60)
    }
}
