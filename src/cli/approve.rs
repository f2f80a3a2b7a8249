//! `opsgate approve runbook FILE`: put a runbook's current digest into the catalog (SPEC §4.2).
//!
//! Only an operator allowed to may approve (L5 any runbook, L4 those whose `min_level`, as
//! raised by the policy's `runbook:`/`kind:` rules, is 3 or less). The approval is an audit event
//! of no run (`runbook_approved`) carrying the catalog digest, which covers the runbook's bytes
//! and every local `src` file, so any edit makes the runbook `changed` until approved again.

use std::io::Write;
use std::path::{Path, PathBuf};

use super::gate::{Gatekeeper, catalog_approvals, catalog_state};
use super::{audit_error, emit, warn};
use crate::audit::{Actor, AuditStore, Record};
use crate::diagnostic::Style;
use crate::error::{Error, Exit};
use crate::gate::{CatalogState, Level, may_approve_runbook};
use crate::project::Project;
use crate::runbook;

/// `opsgate approve`.
#[derive(Debug, clap::Args)]
pub(crate) struct ApproveArgs {
    #[command(subcommand)]
    pub(crate) command: ApproveCommand,
}

/// What to approve.
#[derive(Debug, clap::Subcommand)]
pub(crate) enum ApproveCommand {
    /// Approve a runbook file's current content into the catalog (L5; L4 up to `min_level` 3).
    Runbook {
        /// The runbook file.
        file: PathBuf,
    },
}

/// Runs `approve`.
pub(super) fn run(
    args: &ApproveArgs,
    project: &Project,
    json: bool,
    style: Style,
    out: &mut dyn Write,
) -> Result<Exit, Error> {
    match &args.command {
        ApproveCommand::Runbook { file } => approve_runbook(file, project, json, style, out),
    }
}

fn approve_runbook(
    file: &Path,
    project: &Project,
    json: bool,
    style: Style,
    out: &mut dyn Write,
) -> Result<Exit, Error> {
    let gatekeeper = Gatekeeper::load(project, style)?;
    let (runbook, warnings) = runbook::load(file)?;
    warn(&warnings, style);
    let (policy, operator, level) =
        gatekeeper.require_operator("approve runbooks into the catalog")?;
    gatekeeper.refuse_unsigned("approve runbooks into the catalog")?;
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
        signature: None,
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
