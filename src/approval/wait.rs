//! Waiting for approvals (SPEC §4.3): of a pending run in [`wait`], of `gate` steps in
//! [`watch_gates`] while the run executes. The run is `pending` in the audit store, and another
//! operator's command appends `approval_granted` or `approval_rejected` to it
//! (`opsgate approve run ID`). This side polls the store for those events, reports a countdown,
//! and gives up after `--approval-timeout`, or when the caller cancels.
//!
//! The approving command already checked the approver's level and the two-person rule; the
//! waiting side checks them again against its own policy ([`super::admissible`]) before it lets
//! an approval release the run, so an event written into the store by other means (a forged row,
//! a stale policy) is not enough on its own. A rejection needs no such check: refusing is always
//! safe.

use std::collections::BTreeMap;
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

use super::{Inadmissible, admissible, chained, signed};
use crate::audit::{ApprovalTarget, AuditError, AuditStore, Record, RunId};
use crate::executor::{Cancel, GateAnswer, GateAnswers};
use crate::gate::{Level, Policy};
use crate::report::{Notice, Reporter};

/// How often the store is polled.
const POLL: Duration = Duration::from_millis(250);
/// How often the countdown is reported.
const COUNTDOWN: Duration = Duration::from_secs(1);

/// How the wait ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
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
    /// The caller cancelled (Ctrl-C, or the service's cancel request).
    Cancelled,
}

/// What the wait is for.
pub struct Wait<'a> {
    /// The pending run.
    pub run: RunId,
    /// Events up to this seq were already seen (the `approval_requested` event).
    pub after_seq: u64,
    /// The requester's account (nobody approves their own run).
    pub requester: &'a str,
    /// The lowest level that may approve.
    pub level: Level,
    /// The policy the approval is checked against.
    pub policy: &'a Policy,
    /// `--approval-timeout`.
    pub timeout: Duration,
}

/// Polls the store until the run is approved or rejected, the timeout passes, or `cancel`
/// leaves [`Cancel::Running`].
pub async fn wait(
    store: &AuditStore,
    wait: &Wait<'_>,
    cancel: &mut watch::Receiver<Cancel>,
    reporter: &dyn Reporter,
) -> Result<Verdict, AuditError> {
    let deadline = Instant::now() + wait.timeout;
    let mut after_seq = wait.after_seq;
    let mut last_shown: Option<Instant> = None;
    let verdict = loop {
        if *cancel.borrow_and_update() != Cancel::Running {
            break Verdict::Cancelled;
        }
        if let Some(verdict) = answer(store, wait, &mut after_seq, reporter)? {
            break verdict;
        }
        let now = Instant::now();
        if now >= deadline {
            break Verdict::TimedOut;
        }
        if last_shown.is_none_or(|shown| now.duration_since(shown) >= COUNTDOWN) {
            last_shown = Some(now);
            reporter.notice(Notice::Countdown {
                run: wait.run,
                left: deadline - now,
            });
        }
        tokio::select! {
            // A closed channel means nobody can cancel any more: keep waiting for the rest.
            changed = cancel.changed() => if changed.is_err() {
                tokio::time::sleep(POLL.min(deadline - now)).await;
            },
            () = tokio::time::sleep(POLL.min(deadline - now)) => {}
        }
    };
    reporter.notice(Notice::WaitEnded);
    Ok(verdict)
}

/// The first decisive answer to the run among the events after `after_seq`.
fn answer(
    store: &AuditStore,
    wait: &Wait<'_>,
    after_seq: &mut u64,
    reporter: &dyn Reporter,
) -> Result<Option<Verdict>, AuditError> {
    for event in store.events(wait.run, *after_seq)? {
        *after_seq = event.seq;
        let intact = chained(store, &event)?;
        match event.record {
            Some(Record::ApprovalGranted {
                target: ApprovalTarget::Run,
                approver,
                reason,
                signature,
                ..
            }) => {
                // Bound to this store and this run's request: a signature made for another
                // store or another request does not verify against it.
                let approval = signed::Approval::grant_in_run(
                    store,
                    wait.run,
                    &ApprovalTarget::Run,
                    &approver,
                    reason.clone(),
                )?;
                let verdict = if intact {
                    admissible(
                        wait.policy,
                        wait.requester,
                        wait.level,
                        &approval,
                        signature.as_deref(),
                    )
                } else {
                    Err(Inadmissible::Unchained)
                };
                match verdict {
                    Ok(()) => return Ok(Some(Verdict::Granted { approver, reason })),
                    Err(problem) => reporter.notice(Notice::ApprovalIgnored {
                        run: wait.run,
                        target: &ApprovalTarget::Run,
                        approver: &approver,
                        problem: &problem,
                    }),
                }
            }
            Some(Record::ApprovalRejected {
                target: ApprovalTarget::Run,
                approver,
                reason,
                ..
            }) => return Ok(Some(Verdict::Rejected { approver, reason })),
            _ => {}
        }
    }
    Ok(None)
}

/// What the gate-step watcher needs: the run, who asked, and the level each gate step's
/// approver needs (by step number).
pub struct GateWatch {
    /// Its own connection to the store ([`AuditStore::connect_again`]).
    pub store: AuditStore,
    /// The running run.
    pub run: RunId,
    /// The policy approvals are checked against.
    pub policy: Policy,
    /// The requester's account.
    pub requester: String,
    /// Step number → the level its approver needs.
    pub levels: BTreeMap<u32, Level>,
}

/// Polls the store for approvals and rejections of the run's `gate` steps and hands them to the
/// executor through `answers`, until the executor drops its end. An approval that is not
/// [`admissible`] is ignored and reported.
pub async fn watch_gates(
    watch: GateWatch,
    answers: watch::Sender<GateAnswers>,
    reporter: &dyn Reporter,
) {
    let mut after_seq = 0;
    while !answers.is_closed() {
        let events = match watch.store.events(watch.run, after_seq) {
            Ok(events) => events,
            Err(error) => {
                reporter.notice(Notice::GateWatchStopped(&error));
                return;
            }
        };
        for event in events {
            after_seq = event.seq;
            let intact = match chained(&watch.store, &event) {
                Ok(intact) => intact,
                Err(error) => {
                    reporter.notice(Notice::GateWatchStopped(&error));
                    return;
                }
            };
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
                    // A step the plan does not know as a gate needs the highest level.
                    let level = watch.levels.get(&step).copied().unwrap_or(Level::L5);
                    let approval = match signed::Approval::grant_in_run(
                        &watch.store,
                        watch.run,
                        &target,
                        &approver,
                        reason,
                    ) {
                        Ok(approval) => approval,
                        Err(error) => {
                            reporter.notice(Notice::GateWatchStopped(&error));
                            return;
                        }
                    };
                    let verdict = if intact {
                        admissible(
                            &watch.policy,
                            &watch.requester,
                            level,
                            &approval,
                            signature.as_deref(),
                        )
                    } else {
                        Err(Inadmissible::Unchained)
                    };
                    match verdict {
                        Ok(()) => Some((step, GateAnswer::Granted { approver })),
                        Err(problem) => {
                            reporter.notice(Notice::ApprovalIgnored {
                                run: watch.run,
                                target: &target,
                                approver: &approver,
                                problem: &problem,
                            });
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
