//! The gate's inputs (SPEC §4): the operators policy and who is asking under it, for the
//! operations that judge (`run`, `approve`, `pending`) or report (`whoami`, `catalog`). The
//! judgement itself is the pure [`crate::gate::decide`]; this file only gathers its inputs.
//!
//! The caller's OS identity is given ([`super::Caller`]): read from the process by the command
//! line, from the socket's peer credentials by the service. Nothing here reads it itself.

use std::collections::BTreeSet;

use crate::approval::{CatalogApprovals, catalog_state};
use crate::error::Error;
use crate::gate::{
    Denial, Identity, IdentitySource, Level, Operator, Policy, ProcessIdentity, Rule, RunRequest,
    identify,
};
use crate::plan::Plan;
use crate::project::Project;
use crate::report::Reporter;

/// The policy (if there is one) and who is asking under it.
pub struct Gatekeeper {
    /// The operators policy; `None` when the file does not exist.
    pub policy: Option<Policy>,
    /// The operator this process acts for.
    pub identity: Identity,
}

impl Gatekeeper {
    /// Loads the policy (reporting its warnings; an invalid policy is exit 2, never "no
    /// policy") and identifies `process` under it.
    pub fn load(
        project: &Project,
        process: &ProcessIdentity,
        reporter: &dyn Reporter,
    ) -> Result<Gatekeeper, Error> {
        let policy = match Policy::load_optional(&project.policy)? {
            Some((policy, warnings)) => {
                reporter.warnings(&warnings);
                Some(policy)
            }
            None => None,
        };
        let identity = identify(process, policy.as_ref());
        Ok(Gatekeeper { policy, identity })
    }

    /// The caller's level under the policy (`None` in single-operator mode or when unlisted).
    #[must_use]
    pub fn level(&self) -> Option<Level> {
        self.policy
            .as_ref()
            .and_then(|policy| policy.operator(self.account()))
            .and_then(|operator| operator.level)
    }

    /// The operator's account name: what runs, approvals and `run.operator` record.
    #[must_use]
    pub fn account(&self) -> &str {
        &self.identity.operator.account
    }

    /// No policy file and no sudo identity: no gates apply, runs are still recorded (§4.1).
    #[must_use]
    pub fn single_operator(&self) -> bool {
        self.policy.is_none() && self.identity.source == IdentitySource::Process
    }

    /// The policy and the listed operator with their level, for commands that only an operator
    /// may use (approvals); anyone else is denied (exit 3).
    pub fn require_operator(&self, action: &str) -> Result<(&Policy, &Operator, Level), Error> {
        let account = self.account();
        let Some(policy) = &self.policy else {
            return Err(Denial::new(
                Rule::NoPolicy,
                format!(
                    "account `{account}` may not {action}: there is no policy file, so there are \
                     no operators"
                ),
                "an admin writes the operators policy (`--policy PATH`, default \
                 `policy/operators.yaml`) and lists the operators with their levels",
            )
            .into());
        };
        let listed = policy
            .operator(account)
            .and_then(|operator| Some((operator, operator.level?)));
        let Some((operator, level)) = listed else {
            return Err(Denial::new(
                Rule::NotAnOperator,
                format!(
                    "account `{account}` may not {action}: it is not an operator in `{}`",
                    policy.path().display()
                ),
                format!(
                    "an admin lists `{account}` with a level under `operators:` in `{}`",
                    policy.path().display()
                ),
            )
            .into());
        };
        Ok((policy, operator, level))
    }

    /// Refuses unsigned approvals under `signed_approvals: true`.
    pub fn refuse_unsigned(&self, action: &str) -> Result<(), Error> {
        match &self.policy {
            Some(policy) if policy.signed_approvals() => Err(Denial::new(
                Rule::SignedApprovals,
                format!(
                    "may not {action} unsigned: policy `{}` requires signed approvals",
                    policy.path().display()
                ),
                "sign it as yourself and hand it in: `opsgate approve … --sign \
                 ~/.ssh/id_ed25519 | sudo -u <service account> opsgate approve --signed -`",
            )
            .into()),
            _ => Ok(()),
        }
    }
}

/// The `run` flags the gate judges.
#[derive(Debug, Clone, Default)]
pub struct RunFlags {
    /// `--check`.
    pub check: bool,
    /// `--break-glass`.
    pub break_glass: bool,
    /// `--reason`.
    pub reason: Option<String>,
}

/// What the gate judges about a run of `plan`: the plan's runbook, hosts and flags, and the
/// runbook's catalog state from the approvals.
#[must_use]
pub fn run_request(plan: &Plan, approvals: &CatalogApprovals, flags: RunFlags) -> RunRequest {
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
