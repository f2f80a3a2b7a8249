//! The gate at the edge (SPEC §4): loads the operators policy, identifies the operator from the
//! OS, and reads the catalog's approvals from the audit store, for the commands that judge
//! (`run`, `approve`, `pending`) or report (`whoami`, `catalog`). The judgement itself is the
//! pure [`crate::gate::decide`]; this file only gathers its inputs.

use std::collections::{BTreeSet, HashMap};

use jiff::Timestamp;

use super::warn;
use crate::audit::{AuditError, AuditStore, Record};
use crate::diagnostic::Style;
use crate::error::Error;
use crate::gate::{
    CatalogState, Identity, IdentitySource, Level, Operator, Policy, ProcessIdentity, RunRequest,
    identify,
};
use crate::plan::Plan;
use crate::project::Project;

/// The policy (if there is one) and who is asking under it.
pub(super) struct Gatekeeper {
    /// The operators policy; `None` when the file does not exist.
    pub(super) policy: Option<Policy>,
    /// The operator this process acts for.
    pub(super) identity: Identity,
}

impl Gatekeeper {
    /// Loads the policy (printing its warnings; an invalid policy is exit 2, never "no policy")
    /// and identifies the operator.
    pub(super) fn load(project: &Project, style: Style) -> Result<Gatekeeper, Error> {
        let policy = match Policy::load_optional(&project.policy)? {
            Some((policy, warnings)) => {
                warn(&warnings, style);
                Some(policy)
            }
            None => None,
        };
        let process = ProcessIdentity::current()
            .map_err(|error| Error::environment(error.to_string(), error.hints()))?;
        let identity = identify(&process, policy.as_ref());
        Ok(Gatekeeper { policy, identity })
    }

    /// The operator's account name: what runs, approvals and `run.operator` record.
    pub(super) fn account(&self) -> &str {
        &self.identity.operator.account
    }

    /// No policy file and no sudo identity: no gates apply, runs are still recorded (§4.1).
    pub(super) fn single_operator(&self) -> bool {
        self.policy.is_none() && self.identity.source == IdentitySource::Process
    }

    /// The policy and the listed operator with their level, for commands that only an operator
    /// may use (approvals); anyone else is denied (exit 3).
    pub(super) fn require_operator(
        &self,
        action: &str,
    ) -> Result<(&Policy, &Operator, Level), Error> {
        let account = self.account();
        let Some(policy) = &self.policy else {
            return Err(Error::Denied {
                message: format!(
                    "account `{account}` may not {action}: there is no policy file, so there are \
                     no operators (rule `no-policy`)"
                ),
                hints: vec![
                    "an admin writes the operators policy (`--policy PATH`, default \
                     `policy/operators.yaml`) and lists the operators with their levels"
                        .to_owned(),
                ],
            });
        };
        let listed = policy
            .operator(account)
            .and_then(|operator| Some((operator, operator.level?)));
        let Some((operator, level)) = listed else {
            return Err(Error::Denied {
                message: format!(
                    "account `{account}` may not {action}: it is not an operator in `{}` (rule \
                     `not-an-operator`)",
                    policy.path().display()
                ),
                hints: vec![format!(
                    "an admin lists `{account}` with a level under `operators:` in `{}`",
                    policy.path().display()
                )],
            });
        };
        Ok((policy, operator, level))
    }

    /// Refuses unsigned approvals under `signed_approvals: true`.
    pub(super) fn refuse_unsigned(&self, action: &str) -> Result<(), Error> {
        match &self.policy {
            Some(policy) if policy.signed_approvals() => Err(Error::Denied {
                message: format!(
                    "may not {action} unsigned: policy `{}` requires signed approvals (rule \
                     `signed-approvals`)",
                    policy.path().display()
                ),
                hints: vec![
                    "sign it as yourself and hand it in: `opsgate approve … --sign \
                     ~/.ssh/id_ed25519 | sudo -u <service account> opsgate approve --signed -`"
                        .to_owned(),
                ],
            }),
            _ => Ok(()),
        }
    }
}

/// The `run` flags the gate judges.
pub(super) struct RunFlags {
    /// `--check`.
    pub(super) check: bool,
    /// `--break-glass`.
    pub(super) break_glass: bool,
    /// `--reason`.
    pub(super) reason: Option<String>,
}

/// What the gate judges about a run of `plan`: the plan's runbook, hosts and flags, and the
/// runbook's catalog state from the approvals.
pub(super) fn run_request(
    plan: &Plan,
    approvals: &HashMap<String, Vec<CatalogApproval>>,
    flags: RunFlags,
) -> RunRequest {
    let runbook = &plan.runbook;
    let (catalog, _) = catalog_state(approvals.get(&runbook.id), &runbook.digest);
    RunRequest {
        runbook: runbook.id.clone(),
        kind: runbook.kind,
        // Validation keeps min_level in 1..=5; L5 is the safe reading should that ever change.
        min_level: Level::new(runbook.min_level).unwrap_or(Level::L5),
        catalog,
        environments: plan
            .hosts
            .iter()
            .filter_map(|host| host.host.environment.clone())
            .collect::<BTreeSet<String>>(),
        widened: plan.widened,
        check: flags.check,
        break_glass: flags.break_glass,
        reason: flags.reason,
    }
}

/// One `runbook_approved` event, as the catalog needs it.
#[derive(Debug, Clone)]
pub(super) struct CatalogApproval {
    /// The catalog digest that was approved.
    pub(super) digest: String,
    /// Who approved it.
    pub(super) approver: String,
    /// At which level.
    pub(super) approver_level: u8,
    /// When.
    pub(super) at: Timestamp,
}

impl CatalogApproval {
    /// `alice (L5) at 2026-01-02 03:04:05Z`.
    pub(super) fn describe(&self) -> String {
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
pub(super) fn catalog_approvals(
    store: &AuditStore,
    policy: Option<&Policy>,
) -> Result<HashMap<String, Vec<CatalogApproval>>, AuditError> {
    let signed_only = policy.is_some_and(Policy::signed_approvals);
    let mut approvals: HashMap<String, Vec<CatalogApproval>> = HashMap::new();
    for event in store.runbook_approvals()? {
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
                let approval = super::signed::Approval {
                    approver: approver.clone(),
                    verdict: super::signed::Verdict::Grant,
                    subject: super::signed::Subject::Runbook {
                        id: runbook.clone(),
                        digest: digest.clone(),
                    },
                    reason: None,
                };
                let verified = signature.as_deref().is_some_and(|signature| {
                    super::signed::verify(policy, &approval, signature).is_ok()
                });
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
pub(super) fn catalog_state<'a>(
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
