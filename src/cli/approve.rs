//! `opsgate approve runbook FILE`: put a runbook's current digest into the catalog (SPEC §4.2);
//! `opsgate approve run RUN [--reject --reason TEXT]`: release or refuse another operator's
//! pending run, and `opsgate pending`: the runs the caller may release (SPEC §4.3).
//!
//! A run waits for one approval at a time: of the run as a whole before it starts, or of a
//! `gate` step its hosts reached; `approve run` answers the oldest open request.
//!
//! Run approvals: the approver must be a listed operator of at least the level the run waits
//! for (the recorded request's level, raised to what the *current* policy asks for the
//! requester), and never the requester (two-person rule); the run must be pending with its
//! request unanswered. The event is appended to the run; the waiting process polls for it.
//!
//! Only an operator allowed to may approve (L5 any runbook, L4 those whose `min_level`, as
//! raised by the policy's `runbook:`/`kind:` rules, is 3 or less). The approval is an audit event
//! of no run (`runbook_approved`) carrying the catalog digest, which covers the runbook's bytes
//! and every local `src` file, so any edit makes the runbook `changed` until approved again.

use std::fmt::Write as _;
use std::io::Write;
use std::path::{Path, PathBuf};

use super::gate::{Gatekeeper, catalog_approvals, catalog_state};
use super::signed;
use super::{audit_error, emit, warn};
use crate::audit::{
    Actor, ApprovalTarget, AuditStore, Record, RunDetail, RunFilter, RunId, RunStatus, RunSummary,
};
use crate::diagnostic::{Diagnostic, Style};
use crate::error::{Error, Exit};
use crate::gate::{CatalogState, Level, Policy, approver_level, may_approve, may_approve_runbook};
use crate::project::Project;
use crate::runbook;

/// `opsgate approve`.
#[derive(Debug, clap::Args)]
#[command(args_conflicts_with_subcommands = true)]
pub(crate) struct ApproveArgs {
    #[command(subcommand)]
    pub(crate) command: Option<ApproveCommand>,
    /// Apply a signed approval (made with `approve … --sign KEY`) read from FILE, or `-` for
    /// stdin: `opsgate approve run 42 --sign ~/.ssh/id_ed25519 | sudo -u opsgate opsgate
    /// approve --signed -`.
    #[arg(long, value_name = "FILE")]
    pub(crate) signed: Option<PathBuf>,
}

/// What to approve.
#[derive(Debug, clap::Subcommand)]
pub(crate) enum ApproveCommand {
    /// Approve (or reject) another operator's pending run, which then starts (or ends).
    Run {
        /// The run id, as the waiting run and `opsgate pending` print it.
        run: RunId,
        /// Reject the run instead: it ends as denied, exit 4 on the requester's side.
        #[arg(long, requires = "reason")]
        reject: bool,
        /// Why: recorded with the approval; required with --reject.
        #[arg(long, value_name = "TEXT")]
        reason: Option<String>,
        /// Answer this gate step's request (default: the run's oldest open request; a signed
        /// approval names exactly one: the run itself unless this is given).
        #[arg(long, value_name = "N")]
        gate_step: Option<u32>,
        /// Do not apply: sign the approval with this SSH key (or the agent's key for this
        /// public key) as yourself and print it for `approve --signed -`.
        #[arg(long, value_name = "KEY")]
        sign: Option<PathBuf>,
    },
    /// Approve a saved plan (`plan --save`), which its author may then run once with
    /// `run --plan`; never your own.
    Plan {
        /// The plan id.
        plan: String,
        /// Do not apply: sign the approval with this SSH key and print it (see `approve run`).
        #[arg(long, value_name = "KEY")]
        sign: Option<PathBuf>,
    },
    /// Approve a runbook file's current content into the catalog (L5; L4 up to `min_level` 3).
    Runbook {
        /// The runbook file.
        file: PathBuf,
        /// Do not apply: sign the approval with this SSH key and print it (see `approve run`).
        #[arg(long, value_name = "KEY")]
        sign: Option<PathBuf>,
    },
}

/// How an approval is authenticated.
enum Signing {
    /// Applied directly; refused under `signed_approvals: true`.
    Unsigned,
    /// Signed with this key and printed, not applied.
    Sign(PathBuf),
    /// Applied from a signed document: the approval it carries, already verified, and its
    /// signature.
    Signed(Box<signed::Approval>, String),
}

/// What an approval command goes on with once the signing question is settled.
enum Authorized {
    /// The signed document was printed; nothing more to do.
    Printed,
    /// Apply it, recording this signature.
    Apply(Option<String>),
}

/// Settles how `approval` is authenticated: prints a signed document (`--sign`), checks a
/// signed one matches what the command would approve, or refuses an unsigned one where the
/// policy wants signatures.
fn authorize(
    gatekeeper: &Gatekeeper,
    approval: &signed::Approval,
    signing: &Signing,
    action: &str,
    out: &mut dyn Write,
) -> Result<Authorized, Error> {
    match signing {
        Signing::Unsigned => {
            gatekeeper.refuse_unsigned(action)?;
            Ok(Authorized::Apply(None))
        }
        Signing::Sign(key) => {
            emit(out, &signed::sign(approval, key)?)?;
            Ok(Authorized::Printed)
        }
        Signing::Signed(carried, signature) => {
            if **carried != *approval {
                return Err(Error::Denied {
                    message: format!(
                        "the signed approval does not match what it would approve now: it says \
                         `{}`, the store says `{}` (rule `signed-approvals`)",
                        carried.payload().replace('\n', "; "),
                        approval.payload().replace('\n', "; ")
                    ),
                    hints: vec!["sign a new approval for the current request".to_owned()],
                });
            }
            Ok(Authorized::Apply(Some(signature.clone())))
        }
    }
}

/// `approve --signed FILE`: reads, verifies and applies a signed approval.
fn apply_signed(
    file: &Path,
    project: &Project,
    json: bool,
    style: Style,
    out: &mut dyn Write,
) -> Result<Exit, Error> {
    let document = if file == Path::new("-") {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut text)
            .map_err(|error| Error::environment(format!("cannot read stdin: {error}"), vec![]))?;
        text
    } else {
        std::fs::read_to_string(file).map_err(|error| {
            Error::environment(format!("cannot read `{}`: {error}", file.display()), vec![])
        })?
    };
    let (approval, signature) = signed::parse_document(&document)?;
    let gatekeeper = Gatekeeper::load(project, style)?;
    let (policy, _, _) = gatekeeper.require_operator("apply signed approvals")?;
    if approval.approver != gatekeeper.account() {
        return Err(Error::Denied {
            message: format!(
                "the signed approval is `{}`'s; `{}` may not hand it in (rule `signed-approvals`)",
                approval.approver,
                gatekeeper.account()
            ),
            hints: vec!["the approver hands in their own signed approval".to_owned()],
        });
    }
    signed::verify(policy, &approval, &signature).map_err(|problem| Error::Denied {
        message: format!(
            "signed approval by `{}` refused: {problem}",
            approval.approver
        ),
        hints: vec![
            "sign with the key registered for you under `operators:` in the policy".to_owned(),
        ],
    })?;
    let reject = approval.verdict == signed::Verdict::Reject;
    let reason = approval.reason.clone();
    let subject = approval.subject.clone();
    let signing = Signing::Signed(Box::new(approval), signature);
    match subject {
        signed::Subject::Runbook { id, .. } => {
            let file = project.runbook_path(&id)?;
            approve_runbook(&file, project, json, style, out, &signing)
        }
        signed::Subject::Run { run, gate_step } => {
            let decision = if reject {
                RunDecision::Reject
            } else {
                RunDecision::Grant
            };
            let request = RunApproval {
                run,
                decision,
                reason: reason.as_deref(),
                gate_step,
            };
            approve_run(&request, project, json, style, out, &signing)
        }
        signed::Subject::Plan { id } => approve_plan(&id, project, json, style, out, &signing),
    }
}

/// Runs `approve`.
pub(super) fn run(
    args: &ApproveArgs,
    project: &Project,
    json: bool,
    style: Style,
    out: &mut dyn Write,
) -> Result<Exit, Error> {
    let signing = |key: &Option<PathBuf>| match key {
        Some(key) => Signing::Sign(key.clone()),
        None => Signing::Unsigned,
    };
    match &args.command {
        None => match &args.signed {
            Some(file) => apply_signed(file, project, json, style, out),
            None => Err(Diagnostic::error("nothing to approve")
                .hint(
                    "`opsgate approve run ID`, `approve runbook FILE`, `approve plan PLAN`, or \
                       `approve --signed FILE`",
                )
                .into()),
        },
        Some(ApproveCommand::Runbook { file, sign }) => {
            approve_runbook(file, project, json, style, out, &signing(sign))
        }
        Some(ApproveCommand::Plan { plan, sign }) => {
            approve_plan(plan, project, json, style, out, &signing(sign))
        }
        Some(ApproveCommand::Run {
            run,
            reject,
            reason,
            gate_step,
            sign,
        }) => {
            let decision = if *reject {
                RunDecision::Reject
            } else {
                RunDecision::Grant
            };
            let request = RunApproval {
                run: *run,
                decision,
                reason: reason.as_deref(),
                gate_step: *gate_step,
            };
            approve_run(&request, project, json, style, out, &signing(sign))
        }
    }
}

/// What `approve run` says about the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RunDecision {
    Grant,
    Reject,
}

/// A run waiting for an approval — of the run as a whole, or of a `gate` step it reached —
/// with who asked and the level the approval needs.
pub(super) struct PendingRun {
    /// The run's index row.
    pub(super) summary: RunSummary,
    /// What waits: the run, or one of its gate steps.
    pub(super) target: ApprovalTarget,
    /// The lowest level that may approve: the recorded request's, raised to what the current
    /// policy asks for the requester (a policy may have been tightened since).
    pub(super) level: Level,
    /// Why the approval is needed, as recorded.
    pub(super) reason: String,
}

/// The oldest unanswered approval request of a live run, if any.
/// With `gate_step`, only that gate step's request counts.
pub(super) fn pending_run(
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

/// "the run" or "gate step 3 \`confirm\`", for messages.
fn target_text(target: &ApprovalTarget) -> String {
    match target {
        ApprovalTarget::Run => "the run".to_owned(),
        ApprovalTarget::Gate { step, name } => format!("gate step {step} `{name}`"),
        ApprovalTarget::Plan { plan } => format!("plan {plan}"),
    }
}

/// What `approve run` was asked.
struct RunApproval<'a> {
    run: RunId,
    decision: RunDecision,
    reason: Option<&'a str>,
    gate_step: Option<u32>,
}

fn approve_run(
    request: &RunApproval<'_>,
    project: &Project,
    json: bool,
    style: Style,
    out: &mut dyn Write,
    signing: &Signing,
) -> Result<Exit, Error> {
    let RunApproval {
        run,
        decision,
        reason,
        gate_step,
    } = *request;
    let gatekeeper = Gatekeeper::load(project, style)?;
    let (policy, operator, level) = gatekeeper.require_operator("approve runs")?;
    let reason = reason
        .map(str::trim)
        .filter(|reason| !reason.is_empty())
        .map(str::to_owned);
    let verdict = match decision {
        RunDecision::Grant => signed::Verdict::Grant,
        RunDecision::Reject => signed::Verdict::Reject,
    };
    // Signing happens as the approver, who cannot read the store: the approval names the run
    // and, for a gate, the step; the service side checks it against the open request.
    if let Signing::Sign(_) = signing {
        let approval = signed::Approval {
            approver: operator.account.clone(),
            verdict,
            subject: signed::Subject::Run { run, gate_step },
            reason: reason.clone(),
        };
        authorize(&gatekeeper, &approval, signing, "approve runs", out)?;
        return Ok(Exit::Ok);
    }
    let mut store = AuditStore::open(&project.state_dir).map_err(|error| audit_error(&error))?;
    let detail = store.run(run).map_err(|error| audit_error(&error))?;
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
    let approval = signed::Approval {
        approver: operator.account.clone(),
        verdict,
        subject: signed::Subject::of_run(run, &pending.target),
        reason: reason.clone(),
    };
    let Authorized::Apply(signature) =
        authorize(&gatekeeper, &approval, signing, "approve runs", out)?
    else {
        return Ok(Exit::Ok);
    };
    let record = match decision {
        RunDecision::Grant => Record::ApprovalGranted {
            target: pending.target.clone(),
            approver: operator.account.clone(),
            approver_level: level.get(),
            reason,
            signature,
        },
        RunDecision::Reject => Record::ApprovalRejected {
            target: pending.target.clone(),
            approver: operator.account.clone(),
            approver_level: level.get(),
            reason,
        },
    };
    // The waiting process may have given up since we looked; the store then refuses the
    // append (the run is closed), which is reported as is.
    store
        .append(run, &Actor::current(), &record)
        .map_err(|error| audit_error(&error))?;
    let verb = match decision {
        RunDecision::Grant => "approved",
        RunDecision::Reject => "rejected",
    };
    let text = if json {
        format!(
            "{}\n",
            serde_json::json!({
                "run": run, "decision": verb, "runbook": pending.summary.runbook,
                "target": target_text(&pending.target),
                "requester": requester, "approver": operator.account, "approver_level": level.get(),
            })
        )
    } else {
        format!(
            "{verb} {} of run {run} (runbook `{}` on {} host(s), requested by `{requester}`) as \
             {}\n",
            target_text(&pending.target),
            pending.summary.runbook,
            pending.summary.host_count,
            operator.label()
        )
    };
    emit(out, &text)?;
    Ok(Exit::Ok)
}

fn approve_plan(
    id: &str,
    project: &Project,
    json: bool,
    style: Style,
    out: &mut dyn Write,
    signing: &Signing,
) -> Result<Exit, Error> {
    let gatekeeper = Gatekeeper::load(project, style)?;
    let (policy, operator, level) = gatekeeper.require_operator("approve plans")?;
    let approval = signed::Approval {
        approver: operator.account.clone(),
        verdict: signed::Verdict::Grant,
        subject: signed::Subject::Plan { id: id.to_owned() },
        reason: None,
    };
    // Signed as the approver, before (and without) reading the service account's state.
    if let Signing::Sign(_) = signing {
        authorize(&gatekeeper, &approval, signing, "approve plans", out)?;
        return Ok(Exit::Ok);
    }
    let saved = super::saved::load(&project.state_dir, id)?;
    let author_level = policy
        .operator(&saved.author)
        .and_then(|author| author.level)
        .unwrap_or(Level::L1);
    may_approve(operator, &saved.author, approver_level(author_level, None))?;
    let ttl = super::saved::plan_ttl(Some(policy));
    if super::saved::expired(&saved, ttl) {
        return Err(Error::Denied {
            message: format!(
                "plan {id} was saved at {} and may no longer run (plans run within {} of being \
                 saved; rule `plan-expired`)",
                saved.created_at,
                super::saved::ttl_text(ttl)
            ),
            hints: vec!["its author saves it again with `opsgate plan … --save`".to_owned()],
        });
    }
    let Authorized::Apply(signature) =
        authorize(&gatekeeper, &approval, signing, "approve plans", out)?
    else {
        return Ok(Exit::Ok);
    };
    let mut store = AuditStore::open(&project.state_dir).map_err(|error| audit_error(&error))?;
    let record = Record::ApprovalGranted {
        target: ApprovalTarget::Plan {
            plan: id.to_owned(),
        },
        approver: operator.account.clone(),
        approver_level: level.get(),
        reason: None,
        signature,
    };
    store
        .append_detached(&Actor::current(), &record)
        .map_err(|error| audit_error(&error))?;
    let text = if json {
        format!(
            "{}\n",
            serde_json::json!({ "plan": id, "author": saved.author, "approver": operator.account })
        )
    } else {
        format!(
            "approved plan {id} (runbook `{}` on {} host(s), saved by `{}`) as {}\n",
            saved.fingerprint.runbook_id,
            saved.fingerprint.hosts.len(),
            saved.author,
            operator.label()
        )
    };
    emit(out, &text)?;
    Ok(Exit::Ok)
}

/// `opsgate pending`: the runs waiting for a run approval that the caller may approve.
pub(super) fn pending(
    project: &Project,
    json: bool,
    style: Style,
    out: &mut dyn Write,
) -> Result<Exit, Error> {
    let gatekeeper = Gatekeeper::load(project, style)?;
    let (policy, operator, _) = gatekeeper.require_operator("list runs to approve")?;
    let store = AuditStore::open(&project.state_dir).map_err(|error| audit_error(&error))?;
    let filter = RunFilter {
        status: Some(RunStatus::Pending),
        ..RunFilter::default()
    };
    let mut runs = Vec::new();
    for summary in store.runs(&filter).map_err(|error| audit_error(&error))? {
        let detail = store.run(summary.id).map_err(|error| audit_error(&error))?;
        if let Some(pending) = pending_run(detail, policy, None)
            && may_approve(operator, &pending.summary.operator, pending.level).is_ok()
        {
            runs.push(pending);
        }
    }
    if json {
        let value: Vec<serde_json::Value> = runs
            .iter()
            .map(|pending| {
                serde_json::json!({
                    "run": pending.summary.id,
                    "requested_at": crate::audit::query::format_timestamp(pending.summary.requested_at),
                    "operator": pending.summary.operator,
                    "runbook": pending.summary.runbook,
                    "hosts": pending.summary.host_count,
                    "check": pending.summary.check,
                    "approver_level": pending.level.get(),
                    "waiting": target_text(&pending.target),
                    "reason": pending.reason,
                })
            })
            .collect();
        emit(out, &format!("{}\n", serde_json::Value::from(value)))?;
        return Ok(Exit::Ok);
    }
    if runs.is_empty() {
        emit(out, "no pending runs that you may approve\n")?;
        return Ok(Exit::Ok);
    }
    let mut text =
        "RUN  REQUESTED             OPERATOR      RUNBOOK             HOSTS  NEEDS  WHY\n"
            .to_owned();
    for pending in &runs {
        let summary = &pending.summary;
        let _ = writeln!(
            text,
            "{:<4} {:20}  {:12}  {:18}  {:>5}  {:5}  {}  {}",
            summary.id,
            summary.requested_at.strftime("%Y-%m-%d %H:%M:%SZ"),
            summary.operator,
            summary.runbook,
            summary.host_count,
            pending.level.to_string(),
            match &pending.target {
                ApprovalTarget::Gate { step, .. } => format!("step {step}"),
                _ => "run    ".to_owned(),
            },
            pending.reason
        );
    }
    text.push_str("\napprove one with `opsgate approve run ID` (or `--reject --reason TEXT`)\n");
    emit(out, &text)?;
    Ok(Exit::Ok)
}

fn approve_runbook(
    file: &Path,
    project: &Project,
    json: bool,
    style: Style,
    out: &mut dyn Write,
    signing: &Signing,
) -> Result<Exit, Error> {
    let gatekeeper = Gatekeeper::load(project, style)?;
    let (runbook, warnings) = runbook::load(file)?;
    warn(&warnings, style);
    let (policy, operator, level) =
        gatekeeper.require_operator("approve runbooks into the catalog")?;
    // Validation keeps min_level in 1..=5; L5 is the safe reading should that ever change.
    let own = Level::new(runbook.min_level).unwrap_or(Level::L5);
    let min_level = policy.catalog_min_level(&runbook.id, runbook.kind, own);
    if !may_approve_runbook(level, min_level) {
        let needed = if min_level <= Level::L3 { "4+" } else { "5" };
        return Err(Error::Denied {
            message: format!(
                "operator {} may not approve runbook `{}` into the catalog: its min_level is {} \
                 and approving it needs level {needed} (rule `catalog-approver`)",
                operator.label(),
                runbook.id,
                min_level.get()
            ),
            hints: vec![format!(
                "ask an operator of level {needed} to run `opsgate approve runbook {}`",
                file.display()
            )],
        });
    }
    let approval = signed::Approval {
        approver: operator.account.clone(),
        verdict: signed::Verdict::Grant,
        subject: signed::Subject::Runbook {
            id: runbook.id.clone(),
            digest: runbook.digest.clone(),
        },
        reason: None,
    };
    let Authorized::Apply(signature) = authorize(
        &gatekeeper,
        &approval,
        signing,
        "approve runbooks into the catalog",
        out,
    )?
    else {
        return Ok(Exit::Ok);
    };
    let mut store = AuditStore::open(&project.state_dir).map_err(|error| audit_error(&error))?;
    let approvals = catalog_approvals(&store, Some(policy)).map_err(|error| audit_error(&error))?;
    let (state, previous) = catalog_state(approvals.get(&runbook.id), &runbook.digest);
    let short = &runbook.digest[..12.min(runbook.digest.len())];
    if let (CatalogState::Approved, Some(previous)) = (state, previous) {
        let text = if json {
            format!(
                "{}\n",
                serde_json::json!({
                    "runbook": runbook.id, "digest": runbook.digest, "state": "approved",
                    "approver": previous.approver, "new": false,
                })
            )
        } else {
            format!(
                "runbook `{}` (digest {short}) is already approved, by {}\n",
                runbook.id,
                previous.describe()
            )
        };
        emit(out, &text)?;
        return Ok(Exit::Ok);
    }
    let record = Record::RunbookApproved {
        runbook: runbook.id.clone(),
        path: catalog_path(file, &project.runbooks),
        digest: runbook.digest.clone(),
        min_level: runbook.min_level,
        approver: operator.account.clone(),
        approver_level: level.get(),
        signature,
    };
    let seq = store
        .append_detached(&Actor::current(), &record)
        .map_err(|error| audit_error(&error))?;
    let text = if json {
        format!(
            "{}\n",
            serde_json::json!({
                "runbook": runbook.id, "digest": runbook.digest, "state": "approved",
                "approver": operator.account, "new": true, "seq": seq,
            })
        )
    } else {
        let was = match state {
            CatalogState::Changed => " (it had changed since its last approval)",
            _ => "",
        };
        format!(
            "approved runbook `{}` (digest {short}) into the catalog as {}{was}\n",
            runbook.id,
            operator.label()
        )
    };
    emit(out, &text)?;
    Ok(Exit::Ok)
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
