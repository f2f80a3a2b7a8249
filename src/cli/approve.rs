//! `opsgate approve …`: arguments in, [`ops::approve`] results out as text or JSON
//! (`render::approve`, shared with the service, which also renders `pending`). What may be approved by whom is the operation's; see there.

use std::io::Write;
use std::path::{Path, PathBuf};

use super::emit;
use crate::approval::signed::Verdict;
use crate::audit::RunId;
use crate::diagnostic::Diagnostic;
use crate::error::{Error, Exit};
use crate::ops::approve::{RunApproval, Signing};
use crate::ops::{self, Context};
use crate::render;

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
    emit(out, &render::approve::approved_text(&approved, json))?;
    Ok(Exit::Ok)
}

/// The signed approval document, from a file of the operator's or stdin (`-`).
pub(super) fn read_document(file: &Path) -> Result<String, Error> {
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
