//! Approvals (SPEC §4.2–§4.5): catalog approvals of runbooks, approvals of pending runs and of
//! `gate` steps, plan approvals, their SSH signatures, and waiting for them.
//!
//! Approvals are audit events written by the approving operator's command; the side that acts
//! on one (the waiting run, the gate-step watcher, the catalog) checks it again against its own
//! policy before it counts — level, two-person rule and, under `signed_approvals: true`, the
//! signature — so an event put into the store by other means is not enough on its own. Before
//! any of that, in every mode, the event must hold in the hash chain
//! ([`AuditStore::chained_event`](crate::audit::AuditStore::chained_event)): a row that
//! `audit verify` would flag as altered or unlinked is never honoured, signed or not.
//!
//! This module reads and checks; it never prints (progress goes to a
//! [`Reporter`](crate::report::Reporter)) and never decides the gate (that is
//! [`crate::gate::decide`]).

pub mod catalog;
pub mod pending;
pub mod signed;
pub mod wait;

pub use catalog::{CatalogApproval, CatalogApprovals, catalog_approvals, catalog_state};
pub use pending::{PendingRun, pending_run};
pub use signed::SignatureError;
pub use wait::{GateWatch, Verdict, Wait, wait, watch_gates};

use crate::audit::{AuditError, AuditStore, Event};
use crate::gate::{Denial, Level, Policy, may_approve};

/// Whether `event`, as read, is exactly the event stored at its place in an intact stretch of
/// the hash chain (re-read and checked against its neighbours).
pub fn chained(store: &AuditStore, event: &Event) -> Result<bool, AuditError> {
    Ok(store
        .chained_event(event.seq)?
        .is_some_and(|checked| checked.record == event.record && checked.kind == event.kind))
}

/// Why a recorded approval does not count.
#[derive(Debug, thiserror::Error)]
pub enum Inadmissible {
    /// Its audit event is not where the hash chain says it should be: altered, rewritten or
    /// inserted out of chain (`audit verify` names it).
    #[error("its audit event does not hold in the hash chain; `opsgate audit verify` names it")]
    Unchained,
    /// The policy wants signatures and this approval has none.
    #[error("the policy requires signed approvals and it is not signed")]
    Unsigned,
    /// Its signature is not the approver's.
    #[error(transparent)]
    Signature(#[from] SignatureError),
    /// The approver is not in the policy (any more).
    #[error("not an operator in the policy")]
    NotAnOperator,
    /// The approver may not give this approval (level, two-person rule).
    #[error(transparent)]
    Denied(#[from] Denial),
}

/// Whether `approval` (with `signature`, if it carries one) of something `requester` asked for,
/// needing `level`, may take effect under `policy`.
pub fn admissible(
    policy: &Policy,
    requester: &str,
    level: Level,
    approval: &signed::Approval,
    signature: Option<&str>,
) -> Result<(), Inadmissible> {
    if policy.signed_approvals() {
        let signature = signature.ok_or(Inadmissible::Unsigned)?;
        signed::verify(policy, approval, signature)?;
    }
    let operator = policy
        .operator(&approval.approver)
        .ok_or(Inadmissible::NotAnOperator)?;
    may_approve(operator, requester, level)?;
    Ok(())
}
