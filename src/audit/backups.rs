//! `opsgate backups`: every backup the history knows of, from its `backup_created` events.
//!
//! The history is the catalogue of backups across all hosts: a backup step records the id,
//! place, size and checksum of what it wrote, and the ids its `keep` retention removed. A
//! listing therefore says, without contacting any host, which backups exist and which were
//! pruned since (by which run). It cannot see a file deleted behind opsgate's back; `restore`
//! verifies the manifest on the host before it touches anything.

use std::collections::HashMap;

use jiff::Timestamp;
use rusqlite::OptionalExtension;
use serde::Serialize;

use super::query::serialize_timestamp;
use super::store::InStore;
use super::{AuditError, AuditStore, Record, RunId};

/// Which backups to list.
#[derive(Debug, Clone, Default)]
pub struct BackupFilter {
    /// Only backups of this host.
    pub host: Option<String>,
    /// Only backups written by runs of this runbook.
    pub runbook: Option<String>,
    /// Only backups written by runs of this operator.
    pub operator: Option<String>,
    /// Newest N.
    pub limit: Option<usize>,
}

impl BackupFilter {
    fn admits(&self, entry: &BackupEntry) -> bool {
        let wanted =
            |want: &Option<String>, have: &str| want.as_deref().is_none_or(|want| want == have);
        wanted(&self.host, &entry.host)
            && wanted(&self.runbook, &entry.runbook)
            && wanted(&self.operator, &entry.operator)
    }
}

/// One backup, as recorded when it was written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BackupEntry {
    /// When it was recorded.
    #[serde(serialize_with = "serialize_timestamp")]
    pub at: Timestamp,
    /// The run that wrote it.
    pub run: RunId,
    /// That run's runbook.
    pub runbook: String,
    /// That run's operator.
    pub operator: String,
    /// Host name.
    pub host: String,
    /// Backup id: what `restore: { from: … }` takes.
    pub id: String,
    /// Store directory on the host.
    pub store: String,
    /// Backup file on the host.
    pub path: String,
    /// Size in bytes.
    pub size: u64,
    /// SHA-256 of the file.
    pub sha256: String,
    /// The later run whose `keep` retention removed it, if one did.
    pub removed_by: Option<RunId>,
}

impl AuditStore {
    /// Backups matching `filter`, newest first.
    pub fn backups(&self, filter: &BackupFilter) -> Result<Vec<BackupEntry>, AuditError> {
        // Every `backup_created` event, oldest first, so each removal meets its backup. The
        // partial index of migration 0002 keeps this a read of backup events only.
        let events = self.select_events("WHERE kind = 'backup_created' ORDER BY seq", [])?;
        let mut runs: HashMap<RunId, (String, String)> = HashMap::new();
        let mut entries: Vec<BackupEntry> = Vec::new();
        let mut position: HashMap<(String, String), usize> = HashMap::new();
        for event in events {
            let (
                Some(run),
                Some(Record::BackupCreated {
                    host,
                    id,
                    store,
                    path,
                    size,
                    sha256,
                    removed,
                    ..
                }),
            ) = (event.run, event.record)
            else {
                continue;
            };
            for old in removed {
                if let Some(&index) = position.get(&(host.clone(), old)) {
                    entries[index].removed_by.get_or_insert(run);
                }
            }
            let (runbook, operator) = if let Some(known) = runs.get(&run) {
                known.clone()
            } else {
                let known = self.runbook_and_operator(run)?;
                runs.insert(run, known.clone());
                known
            };
            position.insert((host.clone(), id.clone()), entries.len());
            entries.push(BackupEntry {
                at: event.at,
                run,
                runbook,
                operator,
                host,
                id,
                store,
                path,
                size,
                sha256,
                removed_by: None,
            });
        }
        let limit = filter.limit.unwrap_or(usize::MAX);
        Ok(entries
            .into_iter()
            .rev()
            .filter(|entry| filter.admits(entry))
            .take(limit)
            .collect())
    }

    fn runbook_and_operator(&self, run: RunId) -> Result<(String, String), AuditError> {
        Ok(self
            .connection
            .query_row(
                "SELECT runbook, operator FROM run WHERE run_id = ?1",
                [run.get()],
                |row| Ok((row.get(0)?, row.get(1)?)),
            )
            .optional()
            .in_store(&self.path)?
            .unwrap_or_default())
    }
}
