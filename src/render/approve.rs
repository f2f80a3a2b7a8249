//! `approve …` and `pending` as the command line prints them, as text or JSON.

use std::fmt::Write as _;
use std::io::Write;

use super::emit;
use crate::approval::PendingRun;
use crate::approval::signed::Verdict;
use crate::audit::ApprovalTarget;
use crate::error::{Error, Exit};
use crate::gate::CatalogState;
use crate::ops::approve::Approved;

/// What the approval did, for the approver.
pub(crate) fn approved_text(approved: &Approved, json: bool) -> String {
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

/// `opsgate pending`: `runs`, the runs waiting for an approval that the caller may give (what
/// [`crate::ops::approve::pending`] found).
pub(crate) fn pending(runs: &[PendingRun], json: bool, out: &mut dyn Write) -> Result<Exit, Error> {
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
    for pending in runs {
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
