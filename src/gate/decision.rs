//! The gate decision: may this operator run this runbook on these hosts, now (SPEC §4.3)?
//!
//! [`decide`] is a pure function of the policy, the identity and a [`RunRequest`] (plain data
//! the caller extracts from the plan), so every cell of the §4.3 matrix is a table test. It
//! answers [`Decision::Allow`], [`Decision::NeedsApproval`] (a run approval by another operator
//! of at least some level) or [`Decision::Deny`] with the [`Rule`] that refused, the operator's
//! level and what would allow it.
//!
//! # Order of judgement
//! 1. No policy: single-operator mode (allow, with a note), or a denial when the identity comes
//!    from `SUDO_USER`. An account the policy does not list is denied.
//! 2. Hard refusals, which no approval lifts, in this order: `--break-glass` below L5 or without
//!    `--reason`; the runbook's `min_level` (raised by any matching policy rule) above the
//!    operator's level; a draft or changed runbook (L1-L3 never, L4 outside production, L5 in
//!    production only with `--reason`); `--widen` below L3. The first one found is reported.
//! 3. Run approvals, all collected: an L1 run; a run in `production` by an L1, or by an L2 for
//!    `restore`/`provision`; any matching `require_approval_below` rule. The approver level is
//!    the highest any of them asks for.
//! 4. `--break-glass` (L5, with a reason) adds a loud note. It never changes the run decision,
//!    because an L5 is never asked for a run approval; what it skips are the gate-step approvals,
//!    which the executor handles.
//!
//! # Decisions where the spec is silent
//! - The matrix's "approved `check` runbook: yes" and the `--check` exemption lift the *default*
//!   run approvals (rows 2 and 3 of the matrix); they do not lift `min_level` (a check runbook
//!   with `min_level: 3` is for L3+), a draft refusal, `--widen`, or a policy rule, which is an
//!   admin's explicit tightening.
//! - "Production" is the environment named exactly `production`; other names are tightened with
//!   `environment:` rules.
//! - A `require_approval_below: N` rule asks for an approver of level N or more, and never less
//!   than [`approver_level`] for the requester: an approver should be someone who could run it
//!   without an approval themself.
//! - L5 is never below any `require_approval_below` (levels stop at 5), so an L5 run never waits
//!   for a run approval; gate steps still need another L5 (two-person rule) unless break-glass.
//! - `--break-glass` needs `--reason`, and so does an L5 draft run in production; one `--reason`
//!   serves both. An empty or blank reason is no reason.

use std::collections::BTreeSet;
use std::fmt;

use crate::gate::level::Level;
use crate::gate::operator::{Identity, IdentitySource, Operator};
use crate::gate::policy::{Policy, PolicyRule};
use crate::runbook::model::Kind;

/// The environment the default matrix treats as production.
pub const PRODUCTION: &str = "production";

/// Where a runbook stands in the catalog (SPEC §4.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CatalogState {
    /// Its current digest was approved by an operator allowed to.
    Approved,
    /// It was approved once, but its digest has changed since: a draft again.
    Changed,
    /// It was never approved.
    Draft,
}

impl CatalogState {
    /// `approved`, `changed` or `draft`, as `opsgate catalog` lists it.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            CatalogState::Approved => "approved",
            CatalogState::Changed => "changed",
            CatalogState::Draft => "draft",
        }
    }
}

/// Everything the gate judges about one run, extracted from the plan by the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunRequest {
    /// The runbook id.
    pub runbook: String,
    /// The runbook's kind.
    pub kind: Kind,
    /// The runbook's own `min_level` (policy rules may raise it; [`decide`] applies them).
    pub min_level: Level,
    /// Whether the runbook's current digest is approved.
    pub catalog: CatalogState,
    /// The environments of the hosts the run targets; hosts without one add nothing.
    pub environments: BTreeSet<String>,
    /// `--widen`: the run targets hosts outside the runbook's `targets`.
    pub widened: bool,
    /// `--check`: a dry run that reports what would change.
    pub check: bool,
    /// `--break-glass`: skip waiting approvals (L5 only, with a reason).
    pub break_glass: bool,
    /// `--reason`, required by break-glass and by an L5 draft run in production.
    pub reason: Option<String>,
}

impl RunRequest {
    fn in_production(&self) -> bool {
        self.environments.contains(PRODUCTION)
    }

    fn reason(&self) -> Option<&str> {
        self.reason
            .as_deref()
            .map(str::trim)
            .filter(|reason| !reason.is_empty())
    }
}

/// The gate's answer for one run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// The run may start. Notes say what the operator should know (single-operator mode, a draft
    /// runbook, break-glass); they go to the terminal and the audit record.
    Allow {
        /// Things to show and record.
        notes: Vec<String>,
    },
    /// The run may start once another operator of level `by` or more approves it.
    NeedsApproval {
        /// The lowest level that may approve.
        by: Level,
        /// Why an approval is needed, naming every rule that asks for one.
        reason: String,
        /// Things to show and record, as for [`Decision::Allow`].
        notes: Vec<String>,
    },
    /// The run may not happen; no approval lifts it.
    Deny(Denial),
}

/// Which rule refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Rule {
    /// The identity comes from `SUDO_USER` and there is no policy file (§4.1).
    NoPolicyUnderSudo,
    /// The account is not listed in the policy (§4.1).
    NotAnOperator,
    /// `--break-glass` below L5, or without `--reason`.
    BreakGlass,
    /// The runbook's own `min_level` is above the operator's level.
    MinLevel,
    /// A policy rule's `min_level` is above the operator's level.
    PolicyMinLevel,
    /// A draft or changed runbook, below L4.
    UnapprovedRunbook,
    /// A draft or changed runbook in production: L4, or L5 without `--reason`.
    UnapprovedInProduction,
    /// `--widen` below L3.
    Widen,
    /// An operator approving their own run, plan or gate.
    TwoPerson,
    /// An approver below the level the approval needs.
    ApproverLevel,
    /// There is no policy file, so there are no operators to do what needs one.
    NoPolicy,
    /// A runbook approval by an operator below the level it needs (§4.2).
    CatalogApprover,
    /// An unsigned approval, or a signed one that does not fit, under `signed_approvals: true`.
    SignedApprovals,
    /// `run --plan` by someone other than the plan's author (§4.5).
    PlanAuthor,
    /// A saved plan past its `plan_ttl`.
    PlanExpired,
    /// A saved plan whose runbook, inventory, params, policy, hosts or steps changed.
    PlanDrifted,
    /// A saved plan that has already run.
    PlanUsed,
    /// `run --plan` of a plan nobody approved.
    PlanUnapproved,
    /// `opsgate lab` as the service account, whose SSH keys reach real hosts.
    LabAsServiceAccount,
    /// `opsgate lab` under sudo.
    LabUnderSudo,
    /// Under a sudo identity, a governing file that someone else could write (§4.6).
    UntrustedPath,
}

impl Rule {
    /// The rule's name, as denials and the audit record show it.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Rule::NoPolicyUnderSudo => "no-policy-under-sudo",
            Rule::NotAnOperator => "not-an-operator",
            Rule::BreakGlass => "break-glass",
            Rule::MinLevel => "min-level",
            Rule::PolicyMinLevel => "policy-min-level",
            Rule::UnapprovedRunbook => "unapproved-runbook",
            Rule::UnapprovedInProduction => "unapproved-in-production",
            Rule::Widen => "widen",
            Rule::TwoPerson => "two-person",
            Rule::ApproverLevel => "approver-level",
            Rule::NoPolicy => "no-policy",
            Rule::CatalogApprover => "catalog-approver",
            Rule::SignedApprovals => "signed-approvals",
            Rule::PlanAuthor => "plan-author",
            Rule::PlanExpired => "plan-expired",
            Rule::PlanDrifted => "plan-drifted",
            Rule::PlanUsed => "plan-used",
            Rule::PlanUnapproved => "plan-unapproved",
            Rule::LabAsServiceAccount => "lab-as-service-account",
            Rule::LabUnderSudo => "lab-under-sudo",
            Rule::UntrustedPath => "untrusted-path",
        }
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.as_str())
    }
}

/// A refusal: the rule, why (naming the operator and their level), and what would allow it.
/// Exit code 3 at the edge.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason} (rule `{rule}`)")]
pub struct Denial {
    /// The rule that refused.
    pub rule: Rule,
    /// What was refused and why.
    pub reason: String,
    /// What level, approval or change would allow it.
    pub would_allow: String,
}

impl Denial {
    /// A denial by `rule`.
    #[must_use]
    pub fn new(rule: Rule, reason: String, would_allow: impl Into<String>) -> Denial {
        Denial {
            rule,
            reason,
            would_allow: would_allow.into(),
        }
    }

    /// Ways forward, rendered as `hint:` lines.
    #[must_use]
    pub fn hints(&self) -> Vec<String> {
        vec![self.would_allow.clone()]
    }
}

/// The level an approver needs (SPEC §4.3): the highest of the gate step's `approver_level`, 3
/// for an L1-L2 requester, 4 for an L3 requester and 5 for an L4 or L5 requester.
#[must_use]
pub fn approver_level(requester: Level, gate_level: Option<Level>) -> Level {
    let for_requester = match requester.get() {
        1 | 2 => Level::L3,
        3 => Level::L4,
        _ => Level::L5,
    };
    gate_level.map_or(for_requester, |gate| gate.max(for_requester))
}

/// Whether `approver` may approve a run, plan or gate step of the account `requester` that
/// needs an approval of level `required` (from [`approver_level`] or [`Decision::NeedsApproval`]).
/// Nobody approves their own run, plan or gate (two-person rule).
pub fn may_approve(approver: &Operator, requester: &str, required: Level) -> Result<(), Denial> {
    let Some(level) = approver.level else {
        return Err(Denial::new(
            Rule::NotAnOperator,
            format!(
                "account `{}` is not an operator, so it may not approve",
                approver.account
            ),
            format!("ask an operator of level {}+ to approve it", required.get()),
        ));
    };
    if approver.account == requester {
        return Err(Denial::new(
            Rule::TwoPerson,
            format!(
                "operator {} may not approve their own run, plan or gate",
                approver.label()
            ),
            format!(
                "ask another operator of level {}+ to approve it",
                required.get()
            ),
        ));
    }
    if level < required {
        return Err(Denial::new(
            Rule::ApproverLevel,
            format!(
                "operator {} may not approve this: it needs an approver of level {}+",
                approver.label(),
                required.get()
            ),
            format!("ask an operator of level {}+ to approve it", required.get()),
        ));
    }
    Ok(())
}

/// Whether an operator of `level` may approve a runbook into the catalog (SPEC §4.2): L5 any,
/// L4 when its `min_level` is 3 or less. Pass the `min_level` as raised by the policy
/// ([`Policy::catalog_min_level`]).
#[must_use]
pub fn may_approve_runbook(level: Level, runbook_min_level: Level) -> bool {
    level == Level::L5 || (level == Level::L4 && runbook_min_level <= Level::L3)
}

/// The hint for a run waiting on an approval: who to ask and what they run.
#[must_use]
pub fn ask_for_approval(by: Level, run_id: &str) -> String {
    format!(
        "needs an {by} approval: ask another operator of level {}+ to run `opsgate approve run \
         {run_id}`",
        by.get()
    )
}

/// The gate decision for `request` by `identity` under `policy` (`None`: no policy file). Pure;
/// see the module docs for the order of judgement.
#[must_use]
pub fn decide(policy: Option<&Policy>, identity: &Identity, request: &RunRequest) -> Decision {
    let account = identity.operator.account.as_str();
    let Some(policy) = policy else {
        return match identity.source {
            IdentitySource::SudoUser => Decision::Deny(Denial::new(
                Rule::NoPolicyUnderSudo,
                format!(
                    "account `{account}` runs opsgate through sudo, and there is no policy file"
                ),
                "an admin creates the policy file, owned by the service account (SPEC §4.6), and \
                 lists you under `operators:`; or run opsgate as yourself, without sudo, in \
                 single-operator mode",
            )),
            IdentitySource::Process => Decision::Allow {
                notes: vec![
                    "single-operator mode: there is no policy file, so no gate applies; the run \
                     is still recorded"
                        .to_owned(),
                ],
            },
        };
    };
    // The level comes from the policy being applied, not from whatever the identity was
    // resolved against, so the two can never disagree.
    let listed = policy
        .operator(account)
        .and_then(|operator| Some((operator, operator.level?)));
    let Some((operator, level)) = listed else {
        return Decision::Deny(Denial::new(
            Rule::NotAnOperator,
            format!(
                "account `{account}` is not an operator in `{}`",
                policy.path().display()
            ),
            format!(
                "an admin lists `{account}` with a level under `operators:` in `{}`; until then \
                 only the ungated commands work",
                policy.path().display()
            ),
        ));
    };
    let judge = Judge {
        policy,
        operator,
        level,
        request,
        notes: Vec::new(),
    };
    judge.decide().unwrap_or_else(Decision::Deny)
}

/// One decision in progress.
struct Judge<'a> {
    policy: &'a Policy,
    operator: &'a Operator,
    level: Level,
    request: &'a RunRequest,
    notes: Vec<String>,
}

impl Judge<'_> {
    fn decide(mut self) -> Result<Decision, Denial> {
        self.break_glass()?;
        self.min_level()?;
        self.catalog()?;
        self.widen()?;
        let approvals = self.approvals();
        // Break-glass is L5-only and an L5 is never asked for a run approval (no level is above
        // 5), so it never changes the run decision: what it skips are gate-step approvals.
        self.note_break_glass();
        let Some(by) = approvals.iter().map(|(level, _)| *level).max() else {
            return Ok(Decision::Allow { notes: self.notes });
        };
        let reason = approvals
            .into_iter()
            .map(|(_, reason)| reason)
            .collect::<Vec<_>>()
            .join("; ");
        Ok(Decision::NeedsApproval {
            by,
            reason,
            notes: self.notes,
        })
    }

    fn who(&self) -> String {
        self.operator.label()
    }

    fn break_glass(&self) -> Result<(), Denial> {
        if !self.request.break_glass {
            return Ok(());
        }
        if self.level < Level::L5 {
            return Err(Denial::new(
                Rule::BreakGlass,
                format!(
                    "operator {} may not use `--break-glass`: it is for L5 operators only",
                    self.who()
                ),
                "drop `--break-glass` and wait for the approvals, or ask an L5 operator",
            ));
        }
        if self.request.reason().is_none() {
            return Err(Denial::new(
                Rule::BreakGlass,
                format!(
                    "operator {} used `--break-glass` without `--reason`",
                    self.who()
                ),
                "add `--reason \"…\"`: a break-glass run says why, in the audit history",
            ));
        }
        Ok(())
    }

    fn note_break_glass(&mut self) {
        if self.request.break_glass {
            let reason = self.request.reason().unwrap_or_default();
            self.notes.push(format!(
                "BREAK-GLASS by {}: waiting approvals, gate steps included, are skipped and the \
                 run is recorded as break-glass; reason: {reason}",
                self.who()
            ));
        }
    }

    fn min_level(&self) -> Result<(), Denial> {
        let request = self.request;
        let raised: Option<&PolicyRule> = self
            .policy
            .rules()
            .iter()
            .filter(|rule| rule.selects(&request.runbook, request.kind, &request.environments))
            .filter(|rule| {
                rule.min_level
                    .is_some_and(|level| level > request.min_level)
            })
            .max_by_key(|rule| rule.min_level);
        let (needed, rule, because) = match raised {
            Some(rule) => {
                let needed = rule.min_level.unwrap_or(request.min_level);
                let because = format!("under policy rule `{rule}` ({})", rule.origin);
                (needed, Rule::PolicyMinLevel, because)
            }
            None => (
                request.min_level,
                Rule::MinLevel,
                "(its `min_level`)".to_owned(),
            ),
        };
        if self.level >= needed {
            return Ok(());
        }
        Err(Denial::new(
            rule,
            format!(
                "runbook `{}` needs level {} {because}, and operator {} is below it",
                request.runbook,
                needed.get(),
                self.who()
            ),
            format!(
                "an operator of level {}+ may run it; no approval lifts a minimum level",
                needed.get()
            ),
        ))
    }

    fn catalog(&mut self) -> Result<(), Denial> {
        let request = self.request;
        let state = match request.catalog {
            CatalogState::Approved => return Ok(()),
            CatalogState::Changed => "has changed since it was approved",
            CatalogState::Draft => "is a draft, never approved into the catalog",
        };
        let runbook = &request.runbook;
        let production = request.in_production();
        match self.level.get() {
            1..=3 => Err(Denial::new(
                Rule::UnapprovedRunbook,
                format!(
                    "runbook `{runbook}` {state}, and operator {} may run only approved runbooks",
                    self.who()
                ),
                "have it approved with `opsgate approve runbook FILE` by an L5 operator (or L4 \
                 when its min_level is 3 or less); until then an L4+ operator may run it \
                 outside production",
            )),
            4 if production => Err(Denial::new(
                Rule::UnapprovedInProduction,
                format!(
                    "runbook `{runbook}` {state} and the run targets production; operator {} may \
                     run unapproved runbooks only outside production",
                    self.who()
                ),
                "have it approved into the catalog first (`opsgate approve runbook FILE`), \
                 keep production hosts out with `-l`, or ask an L5 operator to run it with \
                 `--reason`",
            )),
            4 => {
                self.notes.push(format!(
                    "runbook `{runbook}` {state}: run by {} outside production",
                    self.who()
                ));
                Ok(())
            }
            _ if production => match request.reason() {
                None => Err(Denial::new(
                    Rule::UnapprovedInProduction,
                    format!(
                        "runbook `{runbook}` {state} and the run targets production; operator {} \
                         must give `--reason` to run it there",
                        self.who()
                    ),
                    "add `--reason \"…\"` (recorded in the audit history), or have the runbook \
                     approved into the catalog first",
                )),
                Some(reason) => {
                    self.notes.push(format!(
                        "runbook `{runbook}` {state}: run in production by {}; reason: {reason}",
                        self.who()
                    ));
                    Ok(())
                }
            },
            _ => {
                self.notes.push(format!(
                    "runbook `{runbook}` {state}: run by {} outside production",
                    self.who()
                ));
                Ok(())
            }
        }
    }

    fn widen(&mut self) -> Result<(), Denial> {
        if !self.request.widened {
            return Ok(());
        }
        if self.level < Level::L3 {
            return Err(Denial::new(
                Rule::Widen,
                format!(
                    "operator {} may not widen targets beyond runbook `{}`'s `targets`",
                    self.who(),
                    self.request.runbook
                ),
                "drop `--widen` (narrow with `-l` instead), or ask an operator of level 3+",
            ));
        }
        self.notes.push(format!(
            "targets widened beyond runbook `{}`'s `targets` by {}",
            self.request.runbook,
            self.who()
        ));
        Ok(())
    }

    /// Every run approval the request needs, with the level each asks for and why.
    fn approvals(&mut self) -> Vec<(Level, String)> {
        let request = self.request;
        let level = self.level;
        let mut defaults = Vec::new();
        if level == Level::L1 {
            defaults.push(format!(
                "operator {} runs approved runbooks only after an L3+ approval",
                self.who()
            ));
        }
        // An L1 in production needs the same L3+ approval as anywhere else (matrix rows 2 and
        // 3 agree), so only the L2 production cell adds a reason of its own.
        if request.in_production()
            && level == Level::L2
            && matches!(request.kind, Kind::Restore | Kind::Provision)
        {
            defaults.push(format!(
                "`{}` runs in production by L2 operators need an L3+ approval",
                request.kind.as_str()
            ));
        }
        // Hard refusals already ran, so an approved runbook here is within the operator's level.
        let approved = request.catalog == CatalogState::Approved;
        let default_level = approver_level(level, None);
        let mut approvals: Vec<(Level, String)> = Vec::new();
        if !defaults.is_empty() {
            if approved && request.kind == Kind::Check {
                self.notes.push(format!(
                    "approved `check` runbooks never need a run approval (otherwise: {})",
                    defaults.join("; ")
                ));
            } else if approved && request.check {
                self.notes.push(format!(
                    "`--check` run of an approved runbook within your level: no run approval \
                     needed (a real run would need one: {})",
                    defaults.join("; ")
                ));
            } else {
                approvals.extend(defaults.into_iter().map(|reason| (default_level, reason)));
            }
        }
        for rule in self.policy.rules() {
            let Some(below) = rule.require_approval_below else {
                continue;
            };
            if level < below && rule.selects(&request.runbook, request.kind, &request.environments)
            {
                approvals.push((
                    default_level.max(below),
                    format!(
                        "policy rule `{rule}` ({}) requires an approval below level {}",
                        rule.origin,
                        below.get()
                    ),
                ));
            }
        }
        approvals
    }
}

#[cfg(test)]
mod tests;
