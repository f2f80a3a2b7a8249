//! `approve runbook FILE`: put a runbook's current digest into the catalog (SPEC §4.2);
//! `approve run RUN [--reject]`: release or refuse another operator's pending run or gate step;
//! `approve plan PLAN`: approve a saved plan (§4.5); `approve --signed`: apply a signed
//! approval; `pending`: the runs the caller may release (§4.3).
//!
//! Run approvals: the approver must be a listed operator of at least the level the run waits
//! for (the recorded request's level, raised to what the *current* policy asks for the
//! requester), and never the requester (two-person rule); the run must be pending with its
//! request unanswered. The event is appended to the run; the waiting side polls for it and
//! checks it again.
//!
//! Catalog approvals: L5 any runbook, L4 those whose `min_level` (as raised by the policy's
//! `runbook:`/`kind:` rules) is 3 or less. The approval is an audit event of no run
//! (`runbook_approved`) carrying the catalog digest, which covers the runbook's bytes and every
//! local `src` file, so any edit makes the runbook `changed` until approved again.

use std::path::{Path, PathBuf};

use super::{Context, Gatekeeper};
use crate::approval::signed::{self, Approval, Subject, Verdict};
use crate::approval::{CatalogApproval, PendingRun, catalog_approvals, catalog_state, pending_run};
use crate::audit::{ApprovalTarget, AuditStore, Record, RunFilter, RunId, RunStatus};
use crate::diagnostic::Diagnostic;
use crate::error::Error;
use crate::gate::{
    CatalogState, Denial, Level, Operator, Rule, approver_level, may_approve, may_approve_runbook,
};
use crate::plan::saved;
use crate::runbook;

/// How an approval is authenticated.
#[derive(Debug, Clone)]
pub enum Signing {
    /// Applied directly; refused under `signed_approvals: true`.
    Unsigned,
    /// Not applied: the statement to sign is returned (`--prepare`), for an approver who cannot
    /// read the store to sign with `approve --sign KEY --statement FILE`.
    Prepare,
    /// Signed with this key (or the agent's key for this public key) and returned, not applied.
    Sign(PathBuf),
    /// Applied from a signed document: the approval it carries, already verified, and its
    /// signature.
    Signed(Box<Approval>, String),
}

/// What `approve run` was asked.
#[derive(Debug, Clone)]
pub struct RunApproval {
    /// The run.
    pub run: RunId,
    /// Grant or reject.
    pub verdict: Verdict,
    /// Why: recorded with the answer.
    pub reason: Option<String>,
    /// Answer this gate step's request (default: the run's oldest open request).
    pub gate_step: Option<u32>,
}

/// What an approval did.
#[derive(Debug)]
pub enum Approved {
    /// `--sign`: the signed document, for `approve --signed`; nothing was applied.
    Signed(String),
    /// `--prepare`: the statement to sign; nothing was applied.
    Statement(String),
    /// A run or gate step was approved or rejected.
    Run {
        /// The pending run and what of it was answered.
        pending: Box<PendingRun>,
        /// Grant or reject.
        verdict: Verdict,
        /// The approver.
        approver: Operator,
        /// The approver's level.
        level: Level,
    },
    /// A saved plan was approved.
    Plan {
        /// The plan id.
        id: String,
        /// Its runbook.
        runbook: String,
        /// How many hosts it runs on.
        hosts: usize,
        /// Who saved it.
        author: String,
        /// The approver.
        approver: Operator,
    },
    /// A runbook's digest was approved into the catalog.
    Runbook {
        /// The runbook id.
        id: String,
        /// Its catalog digest.
        digest: String,
        /// The approver.
        approver: Operator,
        /// Where it stood before: draft or changed.
        was: CatalogState,
        /// The event's seq.
        seq: u64,
    },
    /// The runbook's digest was already approved; nothing was written.
    AlreadyApproved {
        /// The runbook id.
        id: String,
        /// Its catalog digest.
        digest: String,
        /// The approval that stands.
        by: CatalogApproval,
    },
}

/// Settles how `approval` (as this store binds it) is authenticated: its statement
/// (`Prepare`), the signed document (`Sign`), the signature of a signed one that matches it, or
/// none where the policy allows unsigned approvals.
fn authorize(
    gatekeeper: &Gatekeeper,
    approval: &Approval,
    signing: &Signing,
    action: &str,
) -> Result<Authorized, Error> {
    match signing {
        Signing::Unsigned => {
            gatekeeper.refuse_unsigned(action)?;
            Ok(Authorized::Apply(None))
        }
        Signing::Prepare => Ok(Authorized::Printed(Box::new(Approved::Statement(
            approval.payload(),
        )))),
        Signing::Sign(key) => Ok(Authorized::Printed(Box::new(Approved::Signed(
            signed::sign(approval, key)?,
        )))),
        Signing::Signed(carried, signature) => {
            // The signature was checked against what the document says; this checks that the
            // document says what this store would approve: same store, same request.
            if let Some(mismatch) = carried.mismatch(approval) {
                return Err(Denial::new(
                    Rule::SignedApprovals,
                    format!(
                        "the signed approval does not match what it would approve here: \
                         {mismatch}"
                    ),
                    "the approver signs the statement of this request in this store \
                     (`opsgate approve … --prepare`)",
                )
                .into());
            }
            Ok(Authorized::Apply(Some(signature.clone())))
        }
    }
}

/// What an approval command goes on with once the signing question is settled.
enum Authorized {
    /// A statement or signed document is the result; nothing is applied.
    Printed(Box<Approved>),
    /// Apply it, recording this signature.
    Apply(Option<String>),
}

/// Opens the store an approval is checked against and recorded in. An approver signing as
/// themself usually cannot read it: they are pointed at `--prepare`.
fn open_store(context: &Context<'_>, signing: &Signing) -> Result<AuditStore, Error> {
    AuditStore::open(&context.project.state_dir).map_err(|error| match signing {
        Signing::Sign(_) => Diagnostic::error(format!(
            "cannot read the audit store to sign its statement: {error}"
        ))
        .hint(
            "get the statement through the account that owns the store: `opsgate approve … \
             --prepare > FILE`, then sign it as yourself with `opsgate approve --sign KEY \
             --statement FILE`",
        )
        .into(),
        _ => error.into(),
    })
}

/// `approve --sign KEY --statement FILE`: signs a statement `approve … --prepare` printed.
pub fn sign_statement(statement: &str, key: &Path) -> Result<Approved, Error> {
    Ok(Approved::Signed(signed::sign_statement(statement, key)?))
}

/// `approve --signed`: verifies the signed approval in `document` and applies it.
pub fn apply_signed(context: Context<'_>, document: &str) -> Result<Approved, Error> {
    let (approval, signature) = signed::parse_document(document)?;
    let gatekeeper = context.gatekeeper()?;
    let (policy, _, _) = gatekeeper.require_operator("apply signed approvals")?;
    if approval.approver != gatekeeper.account() {
        return Err(Denial::new(
            Rule::SignedApprovals,
            format!(
                "the signed approval is `{}`'s; `{}` may not hand it in",
                approval.approver,
                gatekeeper.account()
            ),
            "the approver hands in their own signed approval",
        )
        .into());
    }
    signed::verify(policy, &approval, &signature).map_err(|source| Error::SignatureRefused {
        approver: approval.approver.clone(),
        source,
    })?;
    let verdict = approval.verdict;
    let reason = approval.reason.clone();
    let subject = approval.subject.clone();
    let signing = Signing::Signed(Box::new(approval), signature);
    match subject {
        Subject::Runbook { id, .. } => {
            let file = context.project.runbook_path(&id)?;
            approve_runbook(context, &file, &signing)
        }
        Subject::Run { run, gate_step, .. } => approve_run(
            context,
            &RunApproval {
                run,
                verdict,
                reason,
                gate_step,
            },
            &signing,
        ),
        Subject::Plan { id, .. } => approve_plan(context, &id, &signing),
    }
}

/// `approve run`.
pub fn approve_run(
    context: Context<'_>,
    request: &RunApproval,
    signing: &Signing,
) -> Result<Approved, Error> {
    let RunApproval {
        run,
        verdict,
        ref reason,
        gate_step,
    } = *request;
    let gatekeeper = context.gatekeeper()?;
    let (policy, operator, level) = gatekeeper.require_operator("approve runs")?;
    let reason = reason
        .as_deref()
        .map(str::trim)
        .filter(|reason| !reason.is_empty())
        .map(str::to_owned);
    let mut store = open_store(&context, signing)?;
    let detail = store.run(run)?;
    let status = detail.summary.status;
    let Some(pending) = pending_run(detail, policy, gate_step) else {
        return Err(Diagnostic::error(format!(
            "run {run} is not waiting for an approval{} (it is {status})",
            gate_step
                .map(|step| format!(" at gate step {step}"))
                .unwrap_or_default()
        ))
        .hint("`opsgate pending` lists the runs you may approve")
        .into());
    };
    let requester = &pending.summary.operator;
    may_approve(operator, requester, pending.level)?;
    let approval = Approval {
        verdict,
        ..Approval::grant_in_run(
            &store,
            run,
            &pending.target,
            &operator.account,
            reason.clone(),
        )?
    };
    let signature = match authorize(&gatekeeper, &approval, signing, "approve runs")? {
        Authorized::Printed(printed) => return Ok(*printed),
        Authorized::Apply(signature) => signature,
    };
    let record = match verdict {
        Verdict::Grant => Record::ApprovalGranted {
            target: pending.target.clone(),
            approver: operator.account.clone(),
            approver_level: level.get(),
            reason,
            signature,
        },
        Verdict::Reject => Record::ApprovalRejected {
            target: pending.target.clone(),
            approver: operator.account.clone(),
            approver_level: level.get(),
            reason,
        },
    };
    // The waiting process may have given up since we looked; the store then refuses the
    // append (the run is closed), which is reported as is.
    store.append(run, &context.caller.actor, &record)?;
    Ok(Approved::Run {
        pending: Box::new(pending),
        verdict,
        approver: operator.clone(),
        level,
    })
}

/// `approve plan`.
pub fn approve_plan(context: Context<'_>, id: &str, signing: &Signing) -> Result<Approved, Error> {
    let gatekeeper = context.gatekeeper()?;
    let (policy, operator, level) = gatekeeper.require_operator("approve plans")?;
    let mut store = open_store(&context, signing)?;
    let saved = saved::load(&context.project.state_dir, id)?;
    let approval = Approval {
        store: store.store_id()?,
        approver: operator.account.clone(),
        verdict: Verdict::Grant,
        subject: Subject::Plan {
            id: id.to_owned(),
            digest: saved::digest(&context.project.state_dir, id)?,
        },
        reason: None,
    };
    let author_level = policy
        .operator(&saved.author)
        .and_then(|author| author.level)
        .unwrap_or(Level::L1);
    may_approve(operator, &saved.author, approver_level(author_level, None))?;
    saved.check_age(
        id,
        Some(policy),
        "its author saves it again with `opsgate plan … --save`",
    )?;
    let signature = match authorize(&gatekeeper, &approval, signing, "approve plans")? {
        Authorized::Printed(printed) => return Ok(*printed),
        Authorized::Apply(signature) => signature,
    };
    store.append_detached(
        &context.caller.actor,
        &Record::ApprovalGranted {
            target: ApprovalTarget::Plan {
                plan: id.to_owned(),
            },
            approver: operator.account.clone(),
            approver_level: level.get(),
            reason: None,
            signature,
        },
    )?;
    Ok(Approved::Plan {
        id: id.to_owned(),
        runbook: saved.fingerprint.runbook_id.clone(),
        hosts: saved.fingerprint.hosts.len(),
        author: saved.author.clone(),
        approver: operator.clone(),
    })
}

/// `approve runbook FILE`.
pub fn approve_runbook(
    context: Context<'_>,
    file: &Path,
    signing: &Signing,
) -> Result<Approved, Error> {
    let gatekeeper = context.gatekeeper()?;
    let (runbook, warnings) = runbook::load(file)?;
    context.reporter.warnings(&warnings);
    let (policy, operator, level) =
        gatekeeper.require_operator("approve runbooks into the catalog")?;
    // Validation keeps min_level in 1..=5; L5 is the safe reading should that ever change.
    let own = Level::new(runbook.min_level).unwrap_or(Level::L5);
    let min_level = policy.catalog_min_level(&runbook.id, runbook.kind, own);
    if !may_approve_runbook(level, min_level) {
        let needed = if min_level <= Level::L3 { "4+" } else { "5" };
        return Err(Denial::new(
            Rule::CatalogApprover,
            format!(
                "operator {} may not approve runbook `{}` into the catalog: its min_level is {} \
                 and approving it needs level {needed}",
                operator.label(),
                runbook.id,
                min_level.get()
            ),
            format!(
                "ask an operator of level {needed} to run `opsgate approve runbook {}`",
                file.display()
            ),
        )
        .into());
    }
    let mut store = open_store(&context, signing)?;
    let approval = Approval::of_runbook(&store, &runbook.id, &runbook.digest, &operator.account)?;
    let signature = match authorize(
        &gatekeeper,
        &approval,
        signing,
        "approve runbooks into the catalog",
    )? {
        Authorized::Printed(printed) => return Ok(*printed),
        Authorized::Apply(signature) => signature,
    };
    let approvals = catalog_approvals(&store, Some(policy))?;
    let (state, previous) = catalog_state(approvals.get(&runbook.id), &runbook.digest);
    if let (CatalogState::Approved, Some(previous)) = (state, previous) {
        return Ok(Approved::AlreadyApproved {
            id: runbook.id.clone(),
            digest: runbook.digest.clone(),
            by: previous.clone(),
        });
    }
    let seq = store.append_detached(
        &context.caller.actor,
        &Record::RunbookApproved {
            runbook: runbook.id.clone(),
            path: catalog_path(file, &context.project.runbooks),
            digest: runbook.digest.clone(),
            min_level: runbook.min_level,
            approver: operator.account.clone(),
            approver_level: level.get(),
            signature,
        },
    )?;
    Ok(Approved::Runbook {
        id: runbook.id.clone(),
        digest: runbook.digest.clone(),
        approver: operator.clone(),
        was: state,
        seq,
    })
}

/// `pending`: the runs waiting for an approval that the caller may give, oldest request first
/// per run.
pub fn pending(context: Context<'_>) -> Result<Vec<PendingRun>, Error> {
    let gatekeeper = context.gatekeeper()?;
    let (policy, operator, _) = gatekeeper.require_operator("list runs to approve")?;
    let store = AuditStore::open(&context.project.state_dir)?;
    let filter = RunFilter {
        status: Some(RunStatus::Pending),
        ..RunFilter::default()
    };
    let mut runs = Vec::new();
    for summary in store.runs(&filter)? {
        let detail = store.run(summary.id)?;
        if let Some(pending) = pending_run(detail, policy, None)
            && may_approve(operator, &pending.summary.operator, pending.level).is_ok()
        {
            runs.push(pending);
        }
    }
    Ok(runs)
}

/// The runbook's path relative to the catalog directory when it lives there, else as given.
fn catalog_path(file: &Path, catalog: &Path) -> String {
    let relative = file
        .strip_prefix(catalog)
        .ok()
        .map(Path::to_path_buf)
        .or_else(|| {
            let file = std::fs::canonicalize(file).ok()?;
            let catalog = std::fs::canonicalize(catalog).ok()?;
            file.strip_prefix(catalog).ok().map(Path::to_path_buf)
        });
    relative
        .unwrap_or_else(|| file.to_path_buf())
        .display()
        .to_string()
}
