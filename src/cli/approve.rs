//! `opsgate approve …` and `opsgate pending`: arguments in, [`ops::approve`] results out as
//! text or JSON. What may be approved by whom is the operation's; see there.

use std::fmt::Write as _;
use std::io::Write;
use std::path::{Path, PathBuf};

use super::args::{ApproveArgs, ApproveCommand};
use super::emit;
use crate::approval::signed::Verdict;
use crate::audit::ApprovalTarget;
use crate::diagnostic::Diagnostic;
use crate::error::{Error, Exit};
use crate::gate::CatalogState;
use crate::ops::approve::{Approved, RunApproval, Signing};
use crate::ops::{self, Context};

/// Runs `approve`.
pub(super) fn run(
    args: &ApproveArgs,
    context: Context<'_>,
    json: bool,
    out: &mut dyn Write,
) -> Result<Exit, Error> {
    let signing = |key: &Option<PathBuf>, prepare: bool| match key {
        Some(key) => Signing::Sign(key.clone()),
        None if prepare => Signing::Prepare,
        None => Signing::Unsigned,
    };
    let approved = match &args.command {
        None => match (&args.signed, &args.sign, &args.statement) {
            (Some(file), _, _) => ops::approve::apply_signed(context, &read_document(file)?)?,
            (None, Some(key), Some(statement)) => {
                ops::approve::sign_statement(&read_document(statement)?, key)?
            }
            _ => {
                return Err(Diagnostic::error("nothing to approve")
                    .hint(
                        "`opsgate approve run ID`, `approve runbook FILE`, `approve plan PLAN`, \
                         or `approve --signed FILE`",
                    )
                    .into());
            }
        },
        Some(ApproveCommand::Runbook {
            file,
            sign,
            prepare,
        }) => ops::approve::approve_runbook(context, file, &signing(sign, *prepare))?,
        Some(ApproveCommand::Plan {
            plan,
            sign,
            prepare,
        }) => ops::approve::approve_plan(context, plan, &signing(sign, *prepare))?,
        Some(ApproveCommand::Run {
            run,
            reject,
            reason,
            gate_step,
            sign,
            prepare,
        }) => ops::approve::approve_run(
            context,
            &RunApproval {
                run: *run,
                verdict: if *reject {
                    Verdict::Reject
                } else {
                    Verdict::Grant
                },
                reason: reason.clone(),
                gate_step: *gate_step,
            },
            &signing(sign, *prepare),
        )?,
    };
    emit(out, &approved_text(&approved, json))?;
    Ok(Exit::Ok)
}

/// A signed approval document or a statement, from a file of the operator's or stdin (`-`).
fn read_document(file: &Path) -> Result<String, Error> {
    if file == Path::new("-") {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut text).map_err(|source| {
            Error::Terminal {
                action: "read the signed approval from stdin",
                source,
            }
        })?;
        return Ok(text);
    }
    std::fs::read_to_string(file).map_err(|source| Error::Io {
        action: "read",
        path: file.to_path_buf(),
        source,
    })
}

/// What the approval did, for the approver.
fn approved_text(approved: &Approved, json: bool) -> String {
    match approved {
        Approved::Signed(document) | Approved::Statement(document) => document.clone(),
        Approved::Run {
            pending,
            verdict,
            approver,
            level,
        } => {
            let verb = match verdict {
                Verdict::Grant => "approved",
                Verdict::Reject => "rejected",
            };
            let summary = &pending.summary;
            if json {
                format!(
                    "{}\n",
                    serde_json::json!({
                        "run": summary.id, "decision": verb, "runbook": summary.runbook,
                        "target": target_text(&pending.target),
                        "requester": summary.operator, "approver": approver.account,
                        "approver_level": level.get(),
                    })
                )
            } else {
                format!(
                    "{verb} {} of run {} (runbook `{}` on {}, requested by `{}`) as {}\n",
                    target_text(&pending.target),
                    summary.id,
                    summary.runbook,
                    hosts(summary.host_count as usize),
                    summary.operator,
                    approver.label()
                )
            }
        }
        Approved::Plan {
            id,
            runbook,
            hosts: count,
            author,
            approver,
        } => {
            if json {
                format!(
                    "{}\n",
                    serde_json::json!({ "plan": id, "author": author, "approver": approver.account })
                )
            } else {
                format!(
                    "approved plan {id} (runbook `{runbook}` on {}, saved by `{author}`) as {}\n",
                    hosts(*count),
                    approver.label()
                )
            }
        }
        Approved::Runbook {
            id,
            digest,
            approver,
            was,
            seq,
        } => {
            if json {
                format!(
                    "{}\n",
                    serde_json::json!({
                        "runbook": id, "digest": digest, "state": "approved",
                        "approver": approver.account, "new": true, "seq": seq,
                    })
                )
            } else {
                let was = match was {
                    CatalogState::Changed => " (it had changed since its last approval)",
                    _ => "",
                };
                format!(
                    "approved runbook `{id}` (digest {}) into the catalog as {}{was}\n",
                    short(digest),
                    approver.label()
                )
            }
        }
        Approved::AlreadyApproved { id, digest, by } => {
            if json {
                format!(
                    "{}\n",
                    serde_json::json!({
                        "runbook": id, "digest": digest, "state": "approved",
                        "approver": by.approver, "new": false,
                    })
                )
            } else {
                format!(
                    "runbook `{id}` (digest {}) is already approved, by {}\n",
                    short(digest),
                    by.describe()
                )
            }
        }
    }
}

fn short(digest: &str) -> &str {
    &digest[..12.min(digest.len())]
}

/// `1 host`, `3 hosts`.
fn hosts(count: usize) -> String {
    crate::plural::counted(count, "host").to_string()
}

/// "the run" or "gate step 3 \`confirm\`", for messages.
fn target_text(target: &ApprovalTarget) -> String {
    match target {
        ApprovalTarget::Run => "the run".to_owned(),
        ApprovalTarget::Gate { step, name } => format!("gate step {step} `{name}`"),
        ApprovalTarget::Plan { plan } => format!("plan {plan}"),
    }
}

/// `opsgate pending`: the runs waiting for an approval that the caller may give.
pub(crate) fn pending(
    context: Context<'_>,
    json: bool,
    out: &mut dyn Write,
) -> Result<Exit, Error> {
    let runs = ops::approve::pending(context)?;
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
