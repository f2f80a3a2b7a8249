//! The supervision gate (SPEC §4): who is asking, at which SFIA level, and whether they may run
//! this runbook on these hosts now, after someone else's approval, or not at all.
//!
//! This module is the pure part of the gate. It owns:
//! - [`Level`]: SFIA responsibility levels 1..=5;
//! - [`Policy`]: `policy/operators.yaml`, loaded with `file:line:col` diagnostics;
//! - [`ProcessIdentity`] and [`identify`]: the operator identity from the OS account and
//!   `SUDO_USER` (the only OS reads here are in [`ProcessIdentity::current`]);
//! - [`decide`]: the §4.3 matrix as a pure function of policy, identity and a [`RunRequest`],
//!   with the approval rules beside it ([`approver_level`], [`may_approve`],
//!   [`may_approve_runbook`]).
//!
//! It must not touch hosts, the audit store or the terminal: the caller records the decision
//! (before any step runs), waits for approvals through the audit store, and renders denials
//! (exit 3) with [`Denial::hints`].
//!
//! # The model in one paragraph
//! An operator's level bounds what they may run (`min_level`, raised by policy rules, is a hard
//! floor that no approval lifts). Inside that bound, the lower levels run some things only after
//! another operator approves the run: an approver of level 3 for L1-L2 requesters, 4 for L3, 5
//! for L4, or higher when a gate step or a policy rule asks for more, and never the requester
//! themself. Unapproved (draft or changed) runbooks are for L4 outside production and L5 anywhere
//! with a written reason. A policy may tighten all of this, never loosen it: [`decide`] always
//! takes the strictest of the default matrix and every matching rule.

mod decision;
mod level;
mod operator;
mod policy;

pub use decision::{
    CatalogState, Decision, Denial, PRODUCTION, Rule, RunRequest, approver_level, ask_for_approval,
    decide, may_approve, may_approve_runbook,
};
pub use level::Level;
pub use operator::{Identity, IdentityError, IdentitySource, Operator, ProcessIdentity, identify};
pub use policy::{Policy, PolicyRule, Selector};
