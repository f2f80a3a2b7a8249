//! Reading the history: run listings, one run in detail, and the JSON Lines export.
//!
//! Listings read the derived `run` index (see `index`), newest first, so they cost
//! `O(limit · log runs)` whatever the history's size. Details and exports read the events.
//! Every multi-statement read runs in one read transaction, so it sees one consistent snapshot
//! while other processes keep appending (WAL readers never block writers).
//!
//! # Export format (`opsgate audit export --jsonl`), version 1
//!
//! One JSON object per line, one line per event, in chain order (`seq` ascending):
//!
//! ```json
//! {"seq":2,"version":1,"at":"2025-01-02T03:04:05.123456Z","run":1,"kind":"run_started",
//!  "actor":{"uid":0,"user":"root","sudo_user":"alice","login_uid":1000},
//!  "record":{"kind":"run_started"},"prev_hash":"…64 hex…","hash":"…64 hex…"}
//! ```
//!
//! - `at` is RFC 3339 UTC with microseconds; `run` is null for events of no run.
//! - `record` holds the event's fields as named in [`Record`] (enumerations as their `snake_case`
//!   names, `params` as `[name, value]` pairs, outputs as `{excerpt, length, sha256}`).
//! - An event of a kind this opsgate does not know has `"record":null` and a `"body_hex"` field
//!   with its canonical body.
//! - `prev_hash` and `hash` are the chain fields; with the canonical encoding documented in
//!   `chain` and `record` an external tool can recompute them.
//!
//! Fields are only ever added (never renamed or removed) within version 1.

use std::io::Write;

use jiff::Timestamp;
use rusqlite::{Connection, OptionalExtension, Row, ToSql};
use serde::{Serialize, Serializer};

use crate::audit::actor::Actor;
use crate::audit::chain::Envelope;
use crate::audit::error::AuditError;
use crate::audit::output::Output;
use crate::audit::record::{Record, StepStatus};
use crate::audit::run::{RunId, RunStatus};
use crate::audit::store::{AuditStore, InStore, parse_status};

/// Which runs `history` lists. Empty fields do not filter.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunFilter {
    /// Only runs of this operator (the identity recorded in `run_requested`).
    pub operator: Option<String>,
    /// Only runs of this runbook id.
    pub runbook: Option<String>,
    /// Only runs that targeted this host (exact name).
    pub host: Option<String>,
    /// Only runs in this status.
    pub status: Option<RunStatus>,
    /// Only runs requested at or after this instant.
    pub since: Option<Timestamp>,
    /// Only runs requested before this instant (exclusive).
    pub until: Option<Timestamp>,
    /// At most this many runs (the newest); `None` lists all.
    pub limit: Option<usize>,
}

/// One line of `history`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RunSummary {
    /// The run id.
    pub id: RunId,
    /// When the run was requested.
    #[serde(serialize_with = "serialize_timestamp")]
    pub requested_at: Timestamp,
    /// The operator identity.
    pub operator: String,
    /// Runbook id.
    pub runbook: String,
    /// SHA-256 of the runbook file.
    pub runbook_sha256: String,
    /// The host pattern.
    pub pattern: String,
    /// How many hosts the pattern resolved to.
    pub host_count: u32,
    /// `--check` run.
    pub check: bool,
    /// Current or final status.
    pub status: RunStatus,
    /// When the first host was about to be contacted.
    #[serde(serialize_with = "serialize_optional_timestamp")]
    pub started_at: Option<Timestamp>,
    /// When the run ended.
    #[serde(serialize_with = "serialize_optional_timestamp")]
    pub finished_at: Option<Timestamp>,
    /// The `run_finished` message.
    pub message: Option<String>,
}

impl RunSummary {
    /// From request to end (or `None` while live).
    #[must_use]
    pub fn duration(&self) -> Option<jiff::SignedDuration> {
        self.finished_at
            .map(|finished| finished.duration_since(self.requested_at))
    }
}

/// One stored event, decoded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Event {
    /// Position in the chain.
    pub seq: u64,
    /// When it was appended.
    #[serde(serialize_with = "serialize_timestamp")]
    pub at: Timestamp,
    /// The run it belongs to.
    pub run: Option<RunId>,
    /// Who appended it.
    pub actor: Actor,
    /// The kind name (also known when the record is not).
    pub kind: String,
    /// The content; `None` for a kind written by a newer opsgate.
    pub record: Option<Record>,
}

/// One step of one host in `history show`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StepHistory {
    /// 1-based step index.
    pub step: u32,
    /// The step's name.
    pub name: String,
    /// When it started (`None` for a result without a start, e.g. skipped steps).
    #[serde(serialize_with = "serialize_optional_timestamp")]
    pub started_at: Option<Timestamp>,
    /// The result; `None` when the step started but never finished (an interrupted run).
    pub result: Option<StepResult>,
}

/// A finished step's result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StepResult {
    /// The status.
    pub status: StepStatus,
    /// Exit code.
    pub rc: Option<i32>,
    /// Whether it changed the host.
    pub changed: bool,
    /// Wall-clock duration.
    pub duration_ms: u64,
    /// Standard output.
    pub stdout: Output,
    /// Standard error.
    pub stderr: Output,
}

/// Counts per step status for one host, like the live recap.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Recap {
    /// Steps `ok`.
    pub ok: u32,
    /// Steps `changed`.
    pub changed: u32,
    /// Steps `skipped`.
    pub skipped: u32,
    /// Steps `failed`.
    pub failed: u32,
    /// Steps `unreachable`.
    pub unreachable: u32,
    /// Steps started without a result.
    pub unfinished: u32,
}

/// Everything recorded about one host in a run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HostHistory {
    /// Host name.
    pub host: String,
    /// Steps in the order they started.
    pub steps: Vec<StepHistory>,
    /// Messages of `host_unreachable` events.
    pub unreachable: Vec<String>,
    /// Step counts.
    pub recap: Recap,
}

/// `history show RUN`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RunDetail {
    /// The index row.
    pub summary: RunSummary,
    /// Who requested it, at the OS level (`None` only if the request event cannot be read).
    pub requested_by: Option<Actor>,
    /// Parameters (secrets masked).
    pub params: Vec<(String, String)>,
    /// Gate decisions and approval events, in order.
    pub approvals: Vec<Event>,
    /// Per host, in inventory order.
    pub hosts: Vec<HostHistory>,
    /// Every event of the run, in order.
    pub events: Vec<Event>,
}

/// One line of the JSON Lines export (format documented in the module docs).
#[derive(Serialize)]
struct ExportLine<'a> {
    seq: u64,
    version: u32,
    #[serde(serialize_with = "serialize_timestamp")]
    at: Timestamp,
    run: Option<RunId>,
    kind: &'a str,
    actor: &'a Actor,
    record: Option<&'a Record>,
    #[serde(skip_serializing_if = "Option::is_none")]
    body_hex: Option<String>,
    prev_hash: String,
    hash: String,
}

/// RFC 3339, UTC, microseconds: the one timestamp format of JSON output and exports.
#[must_use]
pub fn format_timestamp(timestamp: Timestamp) -> String {
    format!("{timestamp:.6}")
}

pub(super) fn serialize_timestamp<S: Serializer>(
    timestamp: &Timestamp,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.collect_str(&format_timestamp(*timestamp))
}

// serde's `serialize_with` hands the field by reference.
#[allow(clippy::ref_option)]
fn serialize_optional_timestamp<S: Serializer>(
    timestamp: &Option<Timestamp>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match timestamp {
        Some(timestamp) => serializer.collect_str(&format_timestamp(*timestamp)),
        None => serializer.serialize_none(),
    }
}

/// Converts a stored microsecond count; out-of-range values (only possible by tampering) clamp.
pub(crate) fn timestamp(microsecond: i64) -> Timestamp {
    Timestamp::from_microsecond(microsecond).unwrap_or(if microsecond < 0 {
        Timestamp::MIN
    } else {
        Timestamp::MAX
    })
}

const SUMMARY_COLUMNS: &str = "run_id, requested_at, operator, runbook, runbook_sha256, pattern, \
     host_count, check_mode, status, started_at, finished_at, message";

fn summary(row: &Row<'_>) -> rusqlite::Result<RunSummary> {
    let status: String = row.get(8)?;
    Ok(RunSummary {
        id: RunId::new(row.get(0)?),
        requested_at: timestamp(row.get(1)?),
        operator: row.get(2)?,
        runbook: row.get(3)?,
        runbook_sha256: row.get(4)?,
        pattern: row.get(5)?,
        host_count: row.get(6)?,
        check: row.get(7)?,
        status: parse_status(8, &status)?,
        started_at: row.get::<_, Option<i64>>(9)?.map(timestamp),
        finished_at: row.get::<_, Option<i64>>(10)?.map(timestamp),
        message: row.get(11)?,
    })
}

const EVENT_COLUMNS: &str =
    "seq, version, at, run_id, kind, uid, user_name, sudo_user, login_uid, body, prev_hash, hash";

/// An `entry` row as stored, before decoding.
pub(crate) struct StoredEntry {
    pub(crate) seq: u64,
    pub(crate) version: i64,
    pub(crate) at: i64,
    pub(crate) run: Option<i64>,
    pub(crate) kind: String,
    pub(crate) actor: Actor,
    pub(crate) body: Vec<u8>,
    pub(crate) prev_hash: Vec<u8>,
    pub(crate) hash: Vec<u8>,
}

impl StoredEntry {
    /// Selects [`EVENT_COLUMNS`] from `entry` with `clause` (WHERE … ORDER BY …).
    pub(crate) fn select(clause: &str) -> String {
        format!("SELECT {EVENT_COLUMNS} FROM entry {clause}")
    }

    /// The hashed part of this entry, as [`crate::audit::verify`] recomputes it.
    pub(crate) fn envelope(&self) -> Envelope<'_> {
        Envelope {
            seq: self.seq,
            at_microsecond: self.at,
            run: self.run,
            kind: &self.kind,
            actor: &self.actor,
            body: &self.body,
        }
    }

    pub(crate) fn from_row(row: &Row<'_>) -> rusqlite::Result<StoredEntry> {
        Ok(StoredEntry {
            seq: row.get::<_, i64>(0)? as u64,
            version: row.get(1)?,
            at: row.get(2)?,
            run: row.get(3)?,
            kind: row.get(4)?,
            actor: Actor {
                uid: row.get(5)?,
                user: row.get(6)?,
                sudo_user: row.get(7)?,
                login_uid: row.get(8)?,
            },
            body: row.get(9)?,
            prev_hash: row.get(10)?,
            hash: row.get(11)?,
        })
    }

    fn decode(&self) -> Result<Option<Record>, AuditError> {
        Record::decode(&self.kind, &self.body).map_err(|error| AuditError::Undecodable {
            seq: self.seq,
            kind: self.kind.clone(),
            reason: error.0,
        })
    }

    pub(crate) fn into_event(self) -> Result<Event, AuditError> {
        let record = self.decode()?;
        Ok(Event {
            seq: self.seq,
            at: timestamp(self.at),
            run: self.run.map(RunId::new),
            actor: self.actor,
            kind: self.kind,
            record,
        })
    }
}

impl AuditStore {
    /// Runs matching `filter`, newest first.
    pub fn runs(&self, filter: &RunFilter) -> Result<Vec<RunSummary>, AuditError> {
        let mut clauses: Vec<&str> = Vec::new();
        let mut values: Vec<Box<dyn ToSql>> = Vec::new();
        if let Some(operator) = &filter.operator {
            clauses.push("operator = ?");
            values.push(Box::new(operator.clone()));
        }
        if let Some(runbook) = &filter.runbook {
            clauses.push("runbook = ?");
            values.push(Box::new(runbook.clone()));
        }
        if let Some(status) = filter.status {
            clauses.push("status = ?");
            values.push(Box::new(status.as_str()));
        }
        if let Some(since) = filter.since {
            clauses.push("requested_at >= ?");
            values.push(Box::new(since.as_microsecond()));
        }
        if let Some(until) = filter.until {
            clauses.push("requested_at < ?");
            values.push(Box::new(until.as_microsecond()));
        }
        if let Some(host) = &filter.host {
            clauses.push("run_id IN (SELECT run_id FROM run_host WHERE host = ?)");
            values.push(Box::new(host.clone()));
        }
        let filter_sql = if clauses.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", clauses.join(" AND "))
        };
        // SQLite reads a negative LIMIT as "no limit".
        let limit = filter
            .limit
            .map_or(-1, |limit| i64::try_from(limit).unwrap_or(i64::MAX));
        values.push(Box::new(limit));
        let sql =
            format!("SELECT {SUMMARY_COLUMNS} FROM run {filter_sql} ORDER BY run_id DESC LIMIT ?");
        let mut statement = self.connection.prepare(&sql).in_store(&self.path)?;
        let parameters: Vec<&dyn ToSql> = values.iter().map(AsRef::as_ref).collect();
        statement
            .query_map(parameters.as_slice(), summary)
            .and_then(Iterator::collect)
            .in_store(&self.path)
    }

    /// One run with its approvals, per-host steps and every event.
    pub fn run(&self, id: RunId) -> Result<RunDetail, AuditError> {
        let path = &self.path;
        let snapshot = self.connection.unchecked_transaction().in_store(path)?;
        let summary = snapshot
            .query_row(
                &format!("SELECT {SUMMARY_COLUMNS} FROM run WHERE run_id = ?1"),
                [id.get()],
                summary,
            )
            .optional()
            .in_store(path)?
            .ok_or(AuditError::UnknownRun { run: id })?;
        let hosts: Vec<String> = snapshot
            .prepare("SELECT host FROM run_host WHERE run_id = ?1 ORDER BY position")
            .and_then(|mut statement| statement.query_map([id.get()], |row| row.get(0))?.collect())
            .in_store(path)?;
        let events = run_events(&snapshot, id).in_store(path)?;
        drop(snapshot);
        let events: Vec<Event> = events
            .into_iter()
            .map(StoredEntry::into_event)
            .collect::<Result<_, _>>()?;
        Ok(assemble(summary, &hosts, events))
    }

    /// The events a `WHERE … ORDER BY …` clause selects, decoded.
    pub(super) fn select_events(
        &self,
        clause: &str,
        params: impl rusqlite::Params,
    ) -> Result<Vec<Event>, AuditError> {
        let mut statement = self
            .connection
            .prepare_cached(&StoredEntry::select(clause))
            .in_store(&self.path)?;
        let entries: Vec<StoredEntry> = statement
            .query_map(params, StoredEntry::from_row)
            .and_then(Iterator::collect)
            .in_store(&self.path)?;
        entries.into_iter().map(StoredEntry::into_event).collect()
    }

    /// The events of `run` after `after_seq` (0 for all), in order: what a run waiting for an
    /// approval polls, without re-reading the whole run.
    pub fn events(&self, run: RunId, after_seq: u64) -> Result<Vec<Event>, AuditError> {
        let after_seq = i64::try_from(after_seq).unwrap_or(i64::MAX);
        self.select_events(
            "WHERE run_id = ?1 AND seq > ?2 ORDER BY seq",
            [run.get(), after_seq],
        )
    }

    /// Every `runbook_approved` event, in chain order: the catalog's approvals (SPEC §4.2),
    /// which belong to no run. A catalog is small and approvals are rare, so reading them all
    /// is what `catalog` and every gated `run` do.
    pub fn runbook_approvals(&self) -> Result<Vec<Event>, AuditError> {
        self.select_events(
            "WHERE run_id IS NULL AND kind = 'runbook_approved' ORDER BY seq",
            [],
        )
    }

    /// Every approval event — `approval_granted`, `approval_rejected`, `runbook_approved` —
    /// in chain order: what `audit verify` checks signatures of under `signed_approvals`.
    pub fn approvals(&self) -> Result<Vec<Event>, AuditError> {
        self.select_events(
            "WHERE kind IN ('approval_granted', 'approval_rejected', 'runbook_approved') \
             ORDER BY seq",
            [],
        )
    }

    /// The approvals and rejections of saved plan `plan` (events of no run), in chain order.
    pub fn plan_approvals(&self, plan: &str) -> Result<Vec<Event>, AuditError> {
        let events = self.select_events(
            "WHERE run_id IS NULL AND kind IN ('approval_granted', 'approval_rejected') \
             ORDER BY seq",
            [],
        )?;
        Ok(events
            .into_iter()
            .filter(|event| {
                matches!(
                    &event.record,
                    Some(
                        Record::ApprovalGranted { target: crate::audit::record::ApprovalTarget::Plan { plan: id }, .. }
                            | Record::ApprovalRejected { target: crate::audit::record::ApprovalTarget::Plan { plan: id }, .. }
                    ) if id == plan
                )
            })
            .collect())
    }

    /// Writes every event (or those appended at or after `since`) as JSON Lines, in chain
    /// order; returns how many were written. Format in the module docs.
    pub fn export_jsonl(
        &self,
        since: Option<Timestamp>,
        out: &mut dyn Write,
    ) -> Result<u64, AuditError> {
        let path = &self.path;
        let snapshot = self.connection.unchecked_transaction().in_store(path)?;
        let mut statement = snapshot
            .prepare(&StoredEntry::select("WHERE at >= ?1 ORDER BY seq"))
            .in_store(path)?;
        let mut rows = statement
            .query([since.map_or(i64::MIN, Timestamp::as_microsecond)])
            .in_store(path)?;
        let mut count = 0;
        while let Some(row) = rows.next().in_store(path)? {
            let entry = StoredEntry::from_row(row).in_store(path)?;
            let record = entry.decode()?;
            let line = ExportLine {
                seq: entry.seq,
                version: u32::try_from(entry.version).unwrap_or(u32::MAX),
                at: timestamp(entry.at),
                run: entry.run.map(RunId::new),
                kind: &entry.kind,
                actor: &entry.actor,
                record: record.as_ref(),
                body_hex: record.is_none().then(|| hex::encode(&entry.body)),
                prev_hash: hex::encode(&entry.prev_hash),
                hash: hex::encode(&entry.hash),
            };
            serde_json::to_writer(&mut *out, &line)
                .map_err(|error| AuditError::Output(error.into()))?;
            out.write_all(b"\n").map_err(AuditError::Output)?;
            count += 1;
        }
        Ok(count)
    }
}

fn run_events(connection: &Connection, id: RunId) -> rusqlite::Result<Vec<StoredEntry>> {
    connection
        .prepare(&StoredEntry::select("WHERE run_id = ?1 ORDER BY seq"))?
        .query_map([id.get()], StoredEntry::from_row)?
        .collect()
}

/// Folds a run's events into the per-host view of `history show`.
fn assemble(summary: RunSummary, hosts: &[String], events: Vec<Event>) -> RunDetail {
    let mut requested_by = None;
    let mut params = Vec::new();
    let mut approvals = Vec::new();
    let mut per_host: Vec<HostHistory> = hosts
        .iter()
        .map(|host| HostHistory {
            host: host.clone(),
            steps: Vec::new(),
            unreachable: Vec::new(),
            recap: Recap::default(),
        })
        .collect();
    for event in &events {
        let Some(record) = &event.record else {
            continue;
        };
        match record {
            Record::RunRequested {
                params: requested, ..
            } => {
                requested_by = Some(event.actor.clone());
                params.clone_from(requested);
            }
            Record::GateDecision { .. }
            | Record::ApprovalRequested { .. }
            | Record::ApprovalGranted { .. }
            | Record::ApprovalRejected { .. } => approvals.push(event.clone()),
            Record::StepStarted { host, step, name } => {
                if let Some(history) = host_entry(&mut per_host, host) {
                    history.steps.push(StepHistory {
                        step: *step,
                        name: name.clone(),
                        started_at: Some(event.at),
                        result: None,
                    });
                }
            }
            Record::StepFinished {
                host,
                step,
                name,
                status,
                rc,
                changed,
                duration_ms,
                stdout,
                stderr,
            } => {
                if let Some(history) = host_entry(&mut per_host, host) {
                    let result = StepResult {
                        status: *status,
                        rc: *rc,
                        changed: *changed,
                        duration_ms: *duration_ms,
                        stdout: stdout.clone(),
                        stderr: stderr.clone(),
                    };
                    // Pair with the latest unfinished start of the same step (retries restart
                    // nothing: one start, one result); a result without a start stands alone.
                    match history
                        .steps
                        .iter_mut()
                        .rev()
                        .find(|entry| entry.step == *step && entry.result.is_none())
                    {
                        Some(entry) => entry.result = Some(result),
                        None => history.steps.push(StepHistory {
                            step: *step,
                            name: name.clone(),
                            started_at: None,
                            result: Some(result),
                        }),
                    }
                }
            }
            Record::HostUnreachable { host, message } => {
                if let Some(history) = host_entry(&mut per_host, host) {
                    history.unreachable.push(message.clone());
                }
            }
            Record::RunStarted
            | Record::RunFinished { .. }
            | Record::RunbookApproved { .. }
            | Record::BackupCreated { .. } => {}
        }
    }
    for history in &mut per_host {
        let mut recap = Recap::default();
        for step in &history.steps {
            match step.result.as_ref().map(|result| result.status) {
                Some(StepStatus::Ok) => recap.ok += 1,
                Some(StepStatus::Changed) => recap.changed += 1,
                Some(StepStatus::Skipped) => recap.skipped += 1,
                Some(StepStatus::Failed) => recap.failed += 1,
                Some(StepStatus::Unreachable) => recap.unreachable += 1,
                None => recap.unfinished += 1,
            }
        }
        history.recap = recap;
    }
    RunDetail {
        summary,
        requested_by,
        params,
        approvals,
        hosts: per_host,
        events,
    }
}

/// The host's entry, added at the end when the host was not among the resolved hosts.
fn host_entry<'a>(hosts: &'a mut Vec<HostHistory>, host: &str) -> Option<&'a mut HostHistory> {
    if let Some(index) = hosts.iter().position(|history| history.host == host) {
        return hosts.get_mut(index);
    }
    hosts.push(HostHistory {
        host: host.to_owned(),
        steps: Vec::new(),
        unreachable: Vec::new(),
        recap: Recap::default(),
    });
    hosts.last_mut()
}
