//! `opsgate approve …` and `opsgate pending`: arguments in, [`ops::approve`] results out as
//! text or JSON. What may be approved by whom is the operation's; see there.

use std::fmt::Write as _;
use std::io::Write;
use std::path::{Path, PathBuf};

use super::emit;
use crate::approval::signed::Verdict;
use crate::audit::{ApprovalTarget, RunId};
use crate::diagnostic::Diagnostic;
use crate::error::{Error, Exit};
use crate::gate::CatalogState;
use crate::ops::approve::{Approved, RunApproval, Signing};
use crate::ops::{self, Context};

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

/// Runs `approve`.
pub(super) fn run(
    args: &ApproveArgs,
    context: Context<'_>,
    json: bool,
    out: &mut dyn Write,
) -> Result<Exit, Error> {
    let signing = |key: &Option<PathBuf>| match key {
        Some(key) => Signing::Sign(key.clone()),
        None => Signing::Unsigned,
    };
    let approved = match &args.command {
        None => match &args.signed {
            Some(file) => ops::approve::apply_signed(context, &read_document(file)?)?,
            None => {
                return Err(Diagnostic::error("nothing to approve")
                    .hint(
                        "`opsgate approve run ID`, `approve runbook FILE`, `approve plan PLAN`, \
                         or `approve --signed FILE`",
                    )
                    .into());
            }
        },
        Some(ApproveCommand::Runbook { file, sign }) => {
            ops::approve::approve_runbook(context, file, &signing(sign))?
        }
        Some(ApproveCommand::Plan { plan, sign }) => {
            ops::approve::approve_plan(context, plan, &signing(sign))?
        }
        Some(ApproveCommand::Run {
            run,
            reject,
            reason,
            gate_step,
            sign,
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
            &signing(sign),
        )?,
    };
    emit(out, &approved_text(&approved, json))?;
    Ok(Exit::Ok)
}

/// The signed approval document, from a file of the operator's or stdin (`-`).
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
        Approved::Signed(document) => document.clone(),
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
    if count == 1 {
        "1 host".to_owned()
    } else {
        format!("{count} hosts")
    }
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
