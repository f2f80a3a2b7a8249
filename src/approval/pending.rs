//! Runs waiting for an approval (SPEC §4.3): of the run as a whole before it starts, or of a
//! `gate` step its hosts reached. `approve run` answers the oldest open request; `pending`
//! lists those the caller may answer.

use crate::audit::{ApprovalTarget, Record, RunDetail, RunSummary};
use crate::gate::{Level, Policy, approver_level};

/// A run waiting for an approval, with who asked and the level the approval needs.
#[derive(Debug, Clone)]
pub struct PendingRun {
    /// The run's index row.
    pub summary: RunSummary,
    /// What waits: the run, or one of its gate steps.
    pub target: ApprovalTarget,
    /// The lowest level that may approve: the recorded request's, raised to what the current
    /// policy asks for the requester (a policy may have been tightened since).
    pub level: Level,
    /// Why the approval is needed, as recorded.
    pub reason: String,
}

/// The oldest unanswered approval request of a live run, if any. With `gate_step`, only that
/// gate step's request counts.
#[must_use]
pub fn pending_run(
    detail: RunDetail,
    policy: &Policy,
    gate_step: Option<u32>,
) -> Option<PendingRun> {
    if !detail.summary.status.is_live() {
        return None;
    }
    let mut open: Vec<(ApprovalTarget, u8, String)> = Vec::new();
    for event in &detail.events {
        match &event.record {
            Some(Record::ApprovalRequested {
                target,
                approver_level,
                message,
            }) if !open.iter().any(|(waiting, ..)| waiting == target) => {
                open.push((target.clone(), *approver_level, message.clone()));
            }
            Some(
                Record::ApprovalGranted { target, .. } | Record::ApprovalRejected { target, .. },
            ) => open.retain(|(waiting, ..)| waiting != target),
            _ => {}
        }
    }
    let (target, recorded, reason) = open.into_iter().find(|(target, ..)| match gate_step {
        None => true,
        Some(wanted) => matches!(target, ApprovalTarget::Gate { step, .. } if *step == wanted),
    })?;
    // A recorded level outside 1..=5 cannot come from opsgate; the strictest reading is safe.
    let recorded = Level::new(recorded).unwrap_or(Level::L5);
    let for_requester = policy
        .operator(&detail.summary.operator)
        .and_then(|operator| operator.level)
        .map_or(recorded, |level| approver_level(level, None));
    Some(PendingRun {
        summary: detail.summary,
        target,
        level: recorded.max(for_requester),
        reason,
    })
}
