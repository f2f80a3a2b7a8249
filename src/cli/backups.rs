//! `opsgate backups`: the backups recorded in the audit history, newest first.
//!
//! Thin over [`crate::audit::backups`]. A backup that a later run's `keep` retention removed
//! stays listed, marked with that run, so the history answers "what did we have on Tuesday"
//! as well as "what can I restore now".

use std::io::Write;

use super::args::BackupsArgs;
use crate::audit::{AuditError, BackupFilter};
use crate::error::Error;
use crate::ops::{self, Context};
use crate::render;
use crate::render::history::write_json;

/// Runs `backups` (SPEC §4.1: an account that is not an operator sees only its own runs').
pub(crate) fn run(
    args: &BackupsArgs,
    context: Context<'_>,
    json: bool,
    out: &mut dyn Write,
) -> Result<(), Error> {
    let filter = BackupFilter {
        host: args.host.clone(),
        runbook: args.runbook.clone(),
        operator: None,
        limit: (args.limit > 0).then_some(args.limit),
    };
    let backups = ops::history::backups(context, &filter)?;
    if json {
        write_json(out, &backups)?;
    } else {
        render::backups::render(&backups, out).map_err(AuditError::Output)?;
    }
    Ok(())
}
