//! `opsgate catalog`: the answer of [`crate::ops::catalog`] as a table or JSON.

use std::fmt::Write as _;
use std::io::Write;
use std::path::Path;

use super::emit;
use crate::approval::CatalogApproval;
use crate::error::{Error, Exit};
use crate::ops::catalog::{CatalogEntry, Standing};

/// One line of the listing.
struct Entry {
    id: String,
    kind: String,
    min_level: Option<u8>,
    state: &'static str,
    approval: Option<CatalogApproval>,
    file: String,
}

/// Lists the catalog's `entries`; `catalog` is its directory, named when it is empty.
pub(crate) fn list(
    entries: &[CatalogEntry],
    catalog: &Path,
    json: bool,
    out: &mut dyn Write,
) -> Result<Exit, Error> {
    let entries: Vec<Entry> = entries
        .iter()
        .map(|entry| Entry {
            id: entry.id.clone(),
            kind: entry.kind.unwrap_or("-").to_owned(),
            min_level: entry.min_level,
            state: entry.standing.as_str(),
            approval: entry.approval.clone(),
            file: entry.file.display().to_string(),
        })
        .collect();
    let invalid = Standing::Invalid.as_str();
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
            &format!("the catalog `{}` has no runbooks\n", catalog.display()),
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
    if entries.iter().any(|entry| entry.state == invalid) {
        text.push_str("\ninvalid runbooks cannot be approved; `opsgate validate` says why\n");
    }
    emit(out, &text)?;
    Ok(Exit::Ok)
}
