//! Waiting for approvals (SPEC §4.3): of a pending run here, of `gate` steps in
//! [`watch_gates`] while the run executes. For a run approval: the run is `pending` in the audit store, and another
//! operator's process appends `approval_granted` or `approval_rejected` to it with
//! `opsgate approve run ID`. This side polls the store for those events, shows a countdown on
//! stderr, and gives up after `--approval-timeout`, or at Ctrl-C.
//!
//! The approving process already checked the approver's level and the two-person rule; the
//! waiting side checks them again against its own policy before it lets an approval release
//! the run, so an event written into the store by other means (a forged row, a stale policy)
//! is not enough on its own. A rejection needs no such check: refusing is always safe.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use tokio::sync::watch;

use super::signed;
use crate::audit::{ApprovalTarget, AuditError, AuditStore, Record, RunId};
use crate::executor::{GateAnswer, GateAnswers};
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

/// Polls the store until the run is approved or rejected, the timeout passes, or Ctrl-C
/// (`interrupts`, registered by the caller before the run became pending, so that no Ctrl-C
/// can fall between the two and kill the process unrecorded).
pub(super) async fn wait(
    store: &AuditStore,
    wait: &Wait<'_>,
    mut interrupts: tokio::signal::unix::Signal,
) -> Result<Verdict, AuditError> {
    let started = Instant::now();
    let deadline = started + wait.timeout;
    let terminal = std::io::stderr().is_terminal();
    let mut after_seq = wait.after_seq;
    let mut last_shown: Option<Instant> = None;
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
                }) => match admissible(wait, &approver, reason.as_deref(), signature.as_deref()) {
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
            _ = interrupts.recv() => {
                end_countdown(terminal);
                return Ok(Verdict::Cancelled);
            }
            () = tokio::time::sleep(POLL.min(deadline - now)) => {}
        }
    }
}

/// Whether an approval by `approver` may release the run under the waiting side's policy.
fn admissible(
    wait: &Wait<'_>,
    approver: &str,
    reason: Option<&str>,
    signature: Option<&str>,
) -> Result<(), String> {
    let approval = signed::Approval {
        approver: approver.to_owned(),
        verdict: signed::Verdict::Grant,
        subject: signed::Subject::of_run(wait.run, &ApprovalTarget::Run),
        reason: reason.map(str::to_owned),
    };
    admissible_by(
        wait.policy,
        wait.requester,
        wait.level,
        &approval,
        signature,
    )
}

/// Whether an approval by `approver` of something `requester` asked for, needing `level`, may
/// take effect under `policy`.
fn admissible_by(
    policy: &Policy,
    requester: &str,
    level: Level,
    approval: &signed::Approval,
    signature: Option<&str>,
) -> Result<(), String> {
    if policy.signed_approvals() {
        let Some(signature) = signature else {
            return Err("the policy requires signed approvals and it is not signed".to_owned());
        };
        signed::verify(policy, approval, signature)?;
    }
    let approver = approval.approver.as_str();
    let Some(operator) = policy.operator(approver) else {
        return Err("not an operator in the policy".to_owned());
    };
    may_approve(operator, requester, level).map_err(|denial| denial.to_string())
}

/// What the gate-step watcher needs: the run, who asked, and the level each gate step's
/// approver needs (by step number).
pub(super) struct GateWatch {
    /// Its own connection to the store ([`AuditStore::connect_again`]).
    pub(super) store: AuditStore,
    /// The running run.
    pub(super) run: RunId,
    /// The policy approvals are checked against.
    pub(super) policy: Policy,
    /// The requester's account.
    pub(super) requester: String,
    /// Step number → the level its approver needs.
    pub(super) levels: BTreeMap<u32, Level>,
}

/// Polls the store for approvals and rejections of the run's `gate` steps and hands them to the
/// executor through `answers`, until the executor drops its end. An approval that does not
/// pass [`admissible_by`] is ignored with a warning.
pub(super) async fn watch_gates(watch: GateWatch, answers: watch::Sender<GateAnswers>) {
    let mut after_seq = 0;
    while !answers.is_closed() {
        let events = match watch.store.events(watch.run, after_seq) {
            Ok(events) => events,
            Err(error) => {
                let _ = writeln!(
                    std::io::stderr().lock(),
                    "warning: cannot watch for gate approvals: {error}"
                );
                return;
            }
        };
        for event in events {
            after_seq = event.seq;
            let answer = match event.record {
                Some(Record::ApprovalGranted {
                    target: target @ ApprovalTarget::Gate { .. },
                    approver,
                    reason,
                    signature,
                    ..
                }) => {
                    let ApprovalTarget::Gate { step, .. } = target else {
                        continue;
                    };
                    let level = watch.levels.get(&step).copied().unwrap_or(Level::L5);
                    let approval = signed::Approval {
                        approver: approver.clone(),
                        verdict: signed::Verdict::Grant,
                        subject: signed::Subject::of_run(watch.run, &target),
                        reason,
                    };
                    match admissible_by(
                        &watch.policy,
                        &watch.requester,
                        level,
                        &approval,
                        signature.as_deref(),
                    ) {
                        Ok(()) => Some((step, GateAnswer::Granted { approver })),
                        Err(problem) => {
                            let _ = writeln!(
                                std::io::stderr().lock(),
                                "warning: ignoring an approval of gate step {step} by \
                                 `{approver}`: {problem}"
                            );
                            None
                        }
                    }
                }
                Some(Record::ApprovalRejected {
                    target: ApprovalTarget::Gate { step, .. },
                    approver,
                    reason,
                    ..
                }) => Some((step, GateAnswer::Rejected { approver, reason })),
                _ => None,
            };
            if let Some((step, answer)) = answer {
                answers.send_modify(|answers| {
                    answers.entry(step).or_insert(answer);
                });
            }
        }
        tokio::time::sleep(POLL).await;
    }
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
