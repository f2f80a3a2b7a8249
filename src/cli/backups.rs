//! `opsgate backups`: the backups recorded in the audit history, newest first.
//!
//! Thin over [`crate::audit::backups`]. A backup that a later run's `keep` retention removed
//! stays listed, marked with that run, so the history answers "what did we have on Tuesday"
//! as well as "what can I restore now".

use std::io::Write;

use crate::audit::{AuditError, BackupFilter};
use crate::error::Error;
use crate::ops::{self, Context};
use crate::render;
use crate::render::history::write_json;

/// `opsgate backups [--host H] [--runbook R]`.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct BackupsArgs {
    /// Only backups of this host.
    #[arg(long, value_name = "HOST")]
    pub(crate) host: Option<String>,
    /// Only backups written by runs of this runbook id.
    #[arg(long, value_name = "ID")]
    pub(crate) runbook: Option<String>,
    /// At most N backups, newest first; 0 lists all.
    #[arg(long, value_name = "N", default_value_t = 50)]
    pub(crate) limit: usize,
}

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
