//! `opsgate catalog`: every runbook of the catalog directory as approved, changed or draft,
//! with who approved it and when (SPEC §4.2). Ungated and read-only: it never writes an event
//! (it does open the store, which may record dead runs as interrupted, like every command).

use std::fmt::Write as _;
use std::io::Write;

use super::gate::{CatalogApproval, Gatekeeper, catalog_approvals, catalog_state};
use super::{audit_error, emit};
use crate::audit::AuditStore;
use crate::diagnostic::Style;
use crate::error::{Error, Exit};
use crate::project::Project;
use crate::runbook;

/// One line of the listing.
struct Entry {
    id: String,
    kind: String,
    min_level: Option<u8>,
    state: &'static str,
    approval: Option<CatalogApproval>,
    file: String,
}

/// Lists the catalog.
pub(super) fn run(
    project: &Project,
    json: bool,
    style: Style,
    out: &mut dyn Write,
) -> Result<Exit, Error> {
    let gatekeeper = Gatekeeper::load(project, style)?;
    let store = AuditStore::open(&project.state_dir).map_err(|error| audit_error(&error))?;
    let approvals = catalog_approvals(&store, gatekeeper.policy.as_ref())
        .map_err(|error| audit_error(&error))?;
    let entries: Vec<Entry> = project
        .catalog()
        .into_iter()
        .map(|path| {
            let file = path.display().to_string();
            match runbook::load(&path) {
                Ok((runbook, _warnings)) => {
                    let (state, approval) =
                        catalog_state(approvals.get(&runbook.id), &runbook.digest);
                    Entry {
                        id: runbook.id.clone(),
                        kind: runbook.kind.as_str().to_owned(),
                        min_level: Some(runbook.min_level),
                        state: state.as_str(),
                        approval: approval.cloned(),
                        file,
                    }
                }
                // An invalid file cannot be judged; `validate` says why.
                Err(_) => Entry {
                    id: path
                        .file_stem()
                        .map(|stem| stem.to_string_lossy().into_owned())
                        .unwrap_or_default(),
                    kind: "-".to_owned(),
                    min_level: None,
                    state: "invalid",
                    approval: None,
                    file,
                },
            }
        })
        .collect();
    if json {
        let value: Vec<serde_json::Value> = entries
            .iter()
            .map(|entry| {
                serde_json::json!({
                    "runbook": entry.id, "kind": entry.kind, "min_level": entry.min_level,
                    "state": entry.state, "file": entry.file,
                    "approval": entry.approval.as_ref().map(|approval| serde_json::json!({
                        "approver": approval.approver,
                        "approver_level": approval.approver_level,
                        "digest": approval.digest,
                        "at": crate::audit::query::format_timestamp(approval.at),
                    })),
                })
            })
            .collect();
        emit(out, &format!("{}\n", serde_json::Value::from(value)))?;
        return Ok(Exit::Ok);
    }
    if entries.is_empty() {
        emit(
            out,
            &format!(
                "the catalog `{}` has no runbooks\n",
                project.runbooks.display()
            ),
        )?;
        return Ok(Exit::Ok);
    }
    let width = |column: fn(&Entry) -> usize, title: &str| {
        entries
            .iter()
            .map(column)
            .max()
            .unwrap_or(0)
            .max(title.len())
    };
    let id_width = width(|entry| entry.id.chars().count(), "RUNBOOK");
    let kind_width = width(|entry| entry.kind.len(), "KIND");
    let mut text = format!(
        "{:id_width$}  {:kind_width$}  MIN  {:8}  {:40}  FILE\n",
        "RUNBOOK", "KIND", "STATE", "LAST APPROVAL"
    );
    for entry in &entries {
        let min = entry
            .min_level
            .map_or_else(|| "-".to_owned(), |level| level.to_string());
        let approval = entry
            .approval
            .as_ref()
            .map_or_else(|| "-".to_owned(), CatalogApproval::describe);
        let _ = writeln!(
            text,
            "{:id_width$}  {:kind_width$}  {min:3}  {:8}  {approval:40}  {}",
            entry.id, entry.kind, entry.state, entry.file
        );
    }
    if entries.iter().any(|entry| entry.state == "invalid") {
        text.push_str("\ninvalid runbooks cannot be approved; `opsgate validate` says why\n");
    }
    emit(out, &text)?;
    Ok(Exit::Ok)
}
