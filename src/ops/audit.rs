//! `audit verify`, `audit checkpoint` and `audit export`: the hash chain recomputed against
//! checkpoints the caller holds, a checkpoint of the head now, every event as JSON lines.
//!
//! Checkpoints arrive as parsed data: the file they come from is the operator's, read by the
//! front end (SPEC §4.6), and so is the file a new checkpoint is appended to.

use std::io::Write;
use std::path::Path;

use jiff::Timestamp;

use super::Context;
use crate::approval::signed;
use crate::audit::{AuditError, AuditStore, Checkpoint, StoreId, VerifyReport};
use crate::error::Error;
use crate::gate::Policy;

/// What a checkpoint's signature turned out to be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignatureCheck {
    /// No `--allowed-signers` to check it against.
    NotChecked,
    /// It verifies, made by this principal.
    Signed(String),
    /// It does not verify, for this reason.
    Invalid(String),
}

/// A recorded approval whose signature is missing or does not verify, under
/// `signed_approvals: true`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnprovenApproval {
    /// The event.
    pub seq: u64,
    /// Who it names.
    pub approver: String,
    /// What is wrong with it.
    pub problem: String,
}

/// What `audit verify` found.
#[derive(Debug)]
pub struct Verification {
    /// The store's id (SPEC §4.6), which signed approvals name; `None` when its identity table
    /// was tampered with, which fails the verification.
    pub store_id: Option<StoreId>,
    /// The chain, checkpoint and index findings.
    pub report: VerifyReport,
    /// One per checkpoint, in order.
    pub signatures: Vec<SignatureCheck>,
    /// Approvals that are not proven by their signature.
    pub unproven: Vec<UnprovenApproval>,
}

impl Verification {
    /// Whether everything holds: the chain, every checkpoint, every checked signature, every
    /// approval's proof.
    #[must_use]
    pub fn is_intact(&self) -> bool {
        self.report.is_intact()
            && self.store_id.is_some()
            && self
                .signatures
                .iter()
                .all(|check| !matches!(check, SignatureCheck::Invalid(_)))
            && self.unproven.is_empty()
    }
}

/// Recomputes the chain against `checkpoints`, checks their signatures against
/// `allowed_signers` when given, and (under `signed_approvals: true`) every approval's
/// signature.
pub fn verify(
    context: Context<'_>,
    checkpoints: &[Checkpoint],
    allowed_signers: Option<&Path>,
) -> Result<Verification, Error> {
    let policy = Policy::load_optional(&context.project.policy)?.map(|(policy, _)| policy);
    // Signatures first: checking them needs no database, and a forged checkpoint must not be
    // trusted as evidence either way.
    let signatures = checkpoints
        .iter()
        .map(|checkpoint| match allowed_signers {
            None => SignatureCheck::NotChecked,
            Some(allowed) => match checkpoint.verify_signature(allowed) {
                Ok(principal) => SignatureCheck::Signed(principal),
                Err(error) => SignatureCheck::Invalid(error.to_string()),
            },
        })
        .collect();
    // A store that cannot even be read cannot be verified: that is a failed verification
    // (exit 4), not a crash.
    let store = AuditStore::open(&context.project.state_dir).map_err(Error::Unverifiable)?;
    let report = store.verify(checkpoints).map_err(Error::Unverifiable)?;
    let unproven = unproven_approvals(&store, policy.as_ref()).map_err(Error::Unverifiable)?;
    Ok(Verification {
        store_id: store.store_id().ok(),
        report,
        signatures,
        unproven,
    })
}

/// Under `signed_approvals: true`, every recorded approval that does not carry a valid signature
/// by the approver's registered key: a row written into the store without the key, even with a
/// correctly recomputed chain, is named here (the gate ignores such rows too).
fn unproven_approvals(
    store: &AuditStore,
    policy: Option<&Policy>,
) -> Result<Vec<UnprovenApproval>, AuditError> {
    let Some(policy) = policy.filter(|policy| policy.signed_approvals()) else {
        return Ok(Vec::new());
    };
    let mut unproven = Vec::new();
    for event in store.approvals()? {
        let Some((approval, signature)) = signed::recorded(store, &event)? else {
            continue;
        };
        let problem = match signature {
            None => Some("is not signed".to_owned()),
            Some(signature) => signed::verify(policy, &approval, signature)
                .err()
                .map(|error| error.to_string()),
        };
        if let Some(problem) = problem {
            unproven.push(UnprovenApproval {
                seq: event.seq,
                approver: approval.approver,
                problem,
            });
        }
    }
    Ok(unproven)
}

/// A checkpoint of the history's head now, signed with `key` when given.
pub fn checkpoint(context: Context<'_>, key: Option<&Path>) -> Result<Checkpoint, Error> {
    let store = AuditStore::open(&context.project.state_dir)?;
    let mut checkpoint = store.checkpoint()?;
    if let Some(key) = key {
        checkpoint.sign(key)?;
    }
    Ok(checkpoint)
}

/// Writes every event (appended at or after `since`) to `out`, one JSON object per line.
///
/// Needs an operator (SPEC §4.1), or single-operator mode: the history names every account's
/// runs, hosts and approvals, and an account the policy does not list sees only its own runs
/// (`history`), never the whole chain.
pub fn export(
    context: Context<'_>,
    since: Option<Timestamp>,
    out: &mut dyn Write,
) -> Result<(), Error> {
    let gatekeeper = context.gatekeeper()?;
    if !gatekeeper.single_operator() {
        gatekeeper.require_operator("export the audit history")?;
    }
    let store = AuditStore::open(&context.project.state_dir)?;
    store.export_jsonl(since, out)?;
    out.flush().map_err(AuditError::Output)?;
    Ok(())
}
