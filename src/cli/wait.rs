//! Waiting for a run approval (SPEC §4.3): the run is `pending` in the audit store, and another
//! operator's process appends `approval_granted` or `approval_rejected` to it with
//! `opsgate approve run ID`. This side polls the store for those events, shows a countdown on
//! stderr, and gives up after `--approval-timeout`, or at Ctrl-C.
//!
//! The approving process already checked the approver's level and the two-person rule; the
//! waiting side checks them again against its own policy before it lets an approval release
//! the run, so an event written into the store by other means (a forged row, a stale policy)
//! is not enough on its own. A rejection needs no such check: refusing is always safe.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use crate::audit::{ApprovalTarget, AuditError, AuditStore, Record, RunId};
use crate::gate::{Level, Policy, may_approve};

/// How often the store is polled.
const POLL: Duration = Duration::from_millis(250);
/// How often the countdown is printed when stderr is not a terminal.
const QUIET_COUNTDOWN: Duration = Duration::from_secs(5);

/// How the wait ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Verdict {
    /// An allowed approver released the run.
    Granted {
        /// The approver's account.
        approver: String,
        /// What they said.
        reason: Option<String>,
    },
    /// An approver refused the run.
    Rejected {
        /// The approver's account.
        approver: String,
        /// Why.
        reason: Option<String>,
    },
    /// Nobody decided within the timeout.
    TimedOut,
    /// Ctrl-C.
    Cancelled,
}

/// What the wait is for.
pub(super) struct Wait<'a> {
    /// The pending run.
    pub(super) run: RunId,
    /// Events up to this seq were already seen (the `approval_requested` event).
    pub(super) after_seq: u64,
    /// The requester's account (nobody approves their own run).
    pub(super) requester: &'a str,
    /// The lowest level that may approve.
    pub(super) level: Level,
    /// The policy the approval is checked against.
    pub(super) policy: &'a Policy,
    /// `--approval-timeout`.
    pub(super) timeout: Duration,
}

/// Polls the store until the run is approved or rejected, the timeout passes, or Ctrl-C.
pub(super) async fn wait(store: &AuditStore, wait: &Wait<'_>) -> Result<Verdict, AuditError> {
    let started = Instant::now();
    let deadline = started + wait.timeout;
    let terminal = std::io::stderr().is_terminal();
    let mut after_seq = wait.after_seq;
    let mut last_shown: Option<Instant> = None;
    let interrupt = tokio::signal::ctrl_c();
    tokio::pin!(interrupt);
    loop {
        for event in store.events(wait.run, after_seq)? {
            after_seq = event.seq;
            match event.record {
                Some(Record::ApprovalGranted {
                    target: ApprovalTarget::Run,
                    approver,
                    reason,
                    signature,
                    ..
                }) => match admissible(wait, &approver, signature.is_some()) {
                    Ok(()) => {
                        end_countdown(terminal);
                        return Ok(Verdict::Granted { approver, reason });
                    }
                    Err(problem) => {
                        end_countdown(terminal);
                        let _ = writeln!(
                            std::io::stderr().lock(),
                            "warning: ignoring an approval of run {} by `{approver}`: {problem}",
                            wait.run
                        );
                    }
                },
                Some(Record::ApprovalRejected {
                    target: ApprovalTarget::Run,
                    approver,
                    reason,
                    ..
                }) => {
                    end_countdown(terminal);
                    return Ok(Verdict::Rejected { approver, reason });
                }
                _ => {}
            }
        }
        let now = Instant::now();
        if now >= deadline {
            end_countdown(terminal);
            return Ok(Verdict::TimedOut);
        }
        let every = if terminal {
            Duration::from_secs(1)
        } else {
            QUIET_COUNTDOWN
        };
        if last_shown.is_none_or(|shown| now.duration_since(shown) >= every) {
            last_shown = Some(now);
            show_countdown(wait.run, deadline - now, terminal);
        }
        tokio::select! {
            _ = &mut interrupt => {
                end_countdown(terminal);
                return Ok(Verdict::Cancelled);
            }
            () = tokio::time::sleep(POLL.min(deadline - now)) => {}
        }
    }
}

/// Whether an approval by `approver` may release the run under the waiting side's policy.
fn admissible(wait: &Wait<'_>, approver: &str, signed: bool) -> Result<(), String> {
    if wait.policy.signed_approvals() && !signed {
        return Err("the policy requires signed approvals and it is not signed".to_owned());
    }
    let Some(operator) = wait.policy.operator(approver) else {
        return Err("not an operator in the policy".to_owned());
    };
    may_approve(operator, wait.requester, wait.level).map_err(|denial| denial.to_string())
}

fn show_countdown(run: RunId, left: Duration, terminal: bool) {
    // Rounded up, so the last line before the timeout does not read 0:00:00.
    let seconds = left.as_millis().div_ceil(1000);
    let text = format!(
        "waiting for approval of run {run}: {}:{:02}:{:02} left (Ctrl-C to give up)",
        seconds / 3600,
        seconds / 60 % 60,
        seconds % 60
    );
    let mut stderr = std::io::stderr().lock();
    if terminal {
        let _ = write!(stderr, "\r\x1b[2K{text}");
    } else {
        let _ = writeln!(stderr, "{text}");
    }
    let _ = stderr.flush();
}

fn end_countdown(terminal: bool) {
    if terminal {
        let _ = write!(std::io::stderr().lock(), "\r\x1b[2K");
    }
}
