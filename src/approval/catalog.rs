//! Catalog approvals (SPEC §4.2): the `runbook_approved` events of the audit store, read into
//! where each runbook stands — approved (its current digest was approved), changed (only other
//! digests were) or draft (never approved).
//!
//! Under `signed_approvals: true` an approval counts only with a signature that verifies against
//! the approver's registered key, so write access to the state directory cannot forge one.

use std::collections::HashMap;

use jiff::Timestamp;

use super::signed;
use crate::audit::{AuditError, AuditStore, Record};
use crate::gate::{CatalogState, Policy};

/// Every catalog approval by runbook id, oldest first.
pub type CatalogApprovals = HashMap<String, Vec<CatalogApproval>>;

/// One `runbook_approved` event, as the catalog needs it.
#[derive(Debug, Clone)]
pub struct CatalogApproval {
    /// The catalog digest that was approved.
    pub digest: String,
    /// Who approved it.
    pub approver: String,
    /// At which level.
    pub approver_level: u8,
    /// When.
    pub at: Timestamp,
}

impl CatalogApproval {
    /// `alice (L5) at 2026-01-02 03:04:05Z`.
    #[must_use]
    pub fn describe(&self) -> String {
        format!(
            "{} (L{}) at {}",
            self.approver,
            self.approver_level,
            self.at.strftime("%Y-%m-%d %H:%M:%SZ")
        )
    }
}

/// Every catalog approval, by runbook id, oldest first. Under a policy with
/// `signed_approvals: true` only approvals whose SSH signature verifies against the approver's
/// registered key count: an unverified one is exactly what write access to the state directory
/// could forge (§4.2).
pub fn catalog_approvals(
    store: &AuditStore,
    policy: Option<&Policy>,
) -> Result<CatalogApprovals, AuditError> {
    let signed_only = policy.is_some_and(Policy::signed_approvals);
    let mut approvals = CatalogApprovals::new();
    for event in store.runbook_approvals()? {
        // A row `audit verify` would flag counts for nothing, signed or not.
        if !super::chained(store, &event)? {
            continue;
        }
        if let Some(Record::RunbookApproved {
            runbook,
            digest,
            approver,
            approver_level,
            signature,
            ..
        }) = event.record
        {
            if let (true, Some(policy)) = (signed_only, policy) {
                let approval = signed::Approval::of_runbook(store, &runbook, &digest, &approver)?;
                let verified = signature
                    .as_deref()
                    .is_some_and(|signature| signed::verify(policy, &approval, signature).is_ok());
                if !verified {
                    continue;
                }
            }
            approvals.entry(runbook).or_default().push(CatalogApproval {
                digest,
                approver,
                approver_level,
                at: event.at,
            });
        }
    }
    Ok(approvals)
}

/// Where a runbook with `digest` stands given its approvals (oldest first): approved by the
/// latest approval of this digest; changed when only other digests were approved (the latest
/// of them is returned); a draft when it was never approved.
#[must_use]
pub fn catalog_state<'a>(
    approvals: Option<&'a Vec<CatalogApproval>>,
    digest: &str,
) -> (CatalogState, Option<&'a CatalogApproval>) {
    let approvals = approvals.map_or(&[][..], Vec::as_slice);
    if let Some(approval) = approvals
        .iter()
        .rev()
        .find(|approval| approval.digest == digest)
    {
        return (CatalogState::Approved, Some(approval));
    }
    match approvals.last() {
        Some(approval) => (CatalogState::Changed, Some(approval)),
        None => (CatalogState::Draft, None),
    }
}

#[cfg(test)]
mod tests {
    use super::{CatalogApproval, catalog_state};
    use crate::gate::CatalogState;

    fn approval(digest: &str, approver: &str) -> CatalogApproval {
        CatalogApproval {
            digest: digest.to_owned(),
            approver: approver.to_owned(),
            approver_level: 5,
            at: jiff::Timestamp::UNIX_EPOCH,
        }
    }

    #[test]
    fn the_latest_approval_of_the_current_digest_wins() {
        let approvals = vec![
            approval("a", "alice"),
            approval("b", "erin"),
            approval("a", "frank"),
        ];
        let (state, by) = catalog_state(Some(&approvals), "a");
        assert_eq!(state, CatalogState::Approved);
        assert_eq!(by.map(|approval| approval.approver.as_str()), Some("frank"));
        let (state, by) = catalog_state(Some(&approvals), "b");
        assert_eq!(state, CatalogState::Approved);
        assert_eq!(by.map(|approval| approval.approver.as_str()), Some("erin"));
    }

    #[test]
    fn an_edit_makes_it_changed_and_no_approval_a_draft() {
        let approvals = vec![approval("a", "alice")];
        let (state, by) = catalog_state(Some(&approvals), "edited");
        assert_eq!(state, CatalogState::Changed);
        assert_eq!(by.map(|approval| approval.approver.as_str()), Some("alice"));
        assert_eq!(catalog_state(None, "a").0, CatalogState::Draft);
    }
}
