//! `catalog`: every runbook of the catalog directory as approved, changed, draft or invalid,
//! with its last approval (SPEC §4.2). Ungated and read-only: it never writes an event (it does
//! open the store, which may record dead runs as interrupted, like every command).

use std::path::PathBuf;

use super::Context;
use crate::approval::{CatalogApproval, catalog_approvals, catalog_state};
use crate::audit::AuditStore;
use crate::error::Error;
use crate::gate::CatalogState;
use crate::runbook;

/// Where a catalog file stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standing {
    /// A valid runbook, approved, changed or draft.
    Judged(CatalogState),
    /// The file does not validate, so it cannot be judged (`validate` says why).
    Invalid,
}

impl Standing {
    /// `approved`, `changed`, `draft` or `invalid`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Standing::Judged(state) => state.as_str(),
            Standing::Invalid => "invalid",
        }
    }
}

/// One runbook of the catalog.
#[derive(Debug, Clone)]
pub struct CatalogEntry {
    /// Its id (the file stem when it does not validate).
    pub id: String,
    /// Its kind, when valid.
    pub kind: Option<&'static str>,
    /// Its `min_level`, when valid.
    pub min_level: Option<u8>,
    /// Where it stands.
    pub standing: Standing,
    /// Its latest approval (of this digest when approved, of another when changed).
    pub approval: Option<CatalogApproval>,
    /// The file.
    pub file: PathBuf,
}

/// Lists the catalog.
pub fn catalog(context: Context<'_>) -> Result<Vec<CatalogEntry>, Error> {
    let gatekeeper = context.gatekeeper()?;
    let store = AuditStore::open(&context.project.state_dir)?;
    let approvals = catalog_approvals(&store, gatekeeper.policy.as_ref())?;
    Ok(context
        .project
        .catalog()
        .into_iter()
        .map(|file| match runbook::load(&file) {
            Ok((runbook, _warnings)) => {
                let (state, approval) = catalog_state(approvals.get(&runbook.id), &runbook.digest);
                CatalogEntry {
                    id: runbook.id.clone(),
                    kind: Some(runbook.kind.as_str()),
                    min_level: Some(runbook.min_level),
                    standing: Standing::Judged(state),
                    approval: approval.cloned(),
                    file,
                }
            }
            Err(_) => CatalogEntry {
                id: file
                    .file_stem()
                    .map(|stem| stem.to_string_lossy().into_owned())
                    .unwrap_or_default(),
                kind: None,
                min_level: None,
                standing: Standing::Invalid,
                approval: None,
                file,
            },
        })
        .collect())
}
