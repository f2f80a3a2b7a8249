//! `opsgate approve …`: arguments in, [`ops::approve`] results out as text or JSON
//! (`render::approve`, shared with the service, which also renders `pending`). What may be approved by whom is the operation's; see there.

use std::io::Write;
use std::path::{Path, PathBuf};

use super::args::{ApproveArgs, ApproveCommand};
use super::emit;
use crate::approval::signed::Verdict;
use crate::diagnostic::Diagnostic;
use crate::error::{Error, Exit};
use crate::ops::approve::{RunApproval, Signing};
use crate::ops::{self, Context};
use crate::render;

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
    emit(out, &render::approve::approved_text(&approved, json))?;
    Ok(Exit::Ok)
}

/// A signed approval document or a statement, from a file of the operator's or stdin (`-`).
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
