//! `audit verify`: recompute the whole chain, compare checkpoints, and rebuild the run index.
//!
//! Walking the events in `seq` order, for each event:
//! 1. its `seq` must follow the previous one — a gap means events were **removed**;
//! 2. its stored hash must equal the hash recomputed from its columns and its `prev_hash` —
//!    otherwise the event was **altered** (or forged without the right hash);
//! 3. its `prev_hash` must equal the previous event's hash — otherwise the event was
//!    **inserted**, or the event before it was rewritten with a recomputed hash.
//!
//! Only the first break is reported: after it, nothing later can be trusted anyway. The walk
//! goes on to count events, compare checkpoints and rebuild the run index from the events; a
//! row of the `run` index that disagrees with the events is reported too, since `history` reads
//! the index.

use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;

use crate::audit::chain::{ChainHash, FORMAT_VERSION};
use crate::audit::checkpoint::Checkpoint;
use crate::audit::error::AuditError;
use crate::audit::index::RunRow;
use crate::audit::query::{Event, StoredEntry};
use crate::audit::record::Record;
use crate::audit::run::RunId;
use crate::audit::store::{AuditStore, InStore, parse_status, sql_integer};

/// The first place where the chain does not hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "problem", rename_all = "snake_case")]
pub enum ChainBreak {
    /// Event `seq`'s content no longer matches its hash.
    Altered {
        /// The event.
        seq: u64,
    },
    /// Events `first..=last` are missing.
    Removed {
        /// First missing seq.
        first: u64,
        /// Last missing seq.
        last: u64,
    },
    /// Event `seq` does not chain to the event before it.
    Unlinked {
        /// The event.
        seq: u64,
    },
    /// Event `seq` claims an encoding version this opsgate does not know.
    UnknownVersion {
        /// The event.
        seq: u64,
        /// The version it claims.
        version: i64,
    },
}

impl ChainBreak {
    /// The event named by the break (the first missing one for a removal).
    #[must_use]
    pub fn seq(&self) -> u64 {
        match *self {
            ChainBreak::Altered { seq }
            | ChainBreak::Unlinked { seq }
            | ChainBreak::UnknownVersion { seq, .. } => seq,
            ChainBreak::Removed { first, .. } => first,
        }
    }
}

impl fmt::Display for ChainBreak {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            ChainBreak::Altered { seq } => {
                write!(
                    formatter,
                    "event {seq} was altered: its content does not match its hash"
                )
            }
            ChainBreak::Removed { first, last } if first == last => {
                write!(formatter, "event {first} was removed")
            }
            ChainBreak::Removed { first, last } => {
                write!(formatter, "events {first} to {last} were removed")
            }
            ChainBreak::Unlinked { seq } => write!(
                formatter,
                "event {seq} does not follow event {}: it was inserted, or event {} was rewritten",
                seq.saturating_sub(1),
                seq.saturating_sub(1)
            ),
            ChainBreak::UnknownVersion { seq, version } => write!(
                formatter,
                "event {seq} claims encoding version {version}, unknown to this opsgate"
            ),
        }
    }
}

/// How the history compares with one checkpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckpointFinding {
    /// Event `events` still has the checkpoint's hash.
    Matches,
    /// The store holds fewer events than the checkpoint saw: the tail was cut off.
    Truncated,
    /// Event `events` has another hash: the history up to it was rewritten.
    Rewritten,
}

/// One checkpoint's result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CheckpointCheck {
    /// The checkpoint.
    pub checkpoint: Checkpoint,
    /// What the comparison found.
    pub finding: CheckpointFinding,
}

/// A row of the run index that the events do not support.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "problem", rename_all = "snake_case")]
pub enum IndexProblem {
    /// The events start a run the index does not list.
    Missing {
        /// The run.
        run: RunId,
    },
    /// The index lists a run no event started.
    Unexpected {
        /// The run.
        run: RunId,
    },
    /// The index row differs from what the events say.
    Differs {
        /// The run.
        run: RunId,
        /// The first differing column.
        column: &'static str,
    },
    /// An event whose hash matches but whose body does not decode (a bug, not tampering).
    Unreadable {
        /// The event.
        seq: u64,
    },
}

impl fmt::Display for IndexProblem {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IndexProblem::Missing { run } => {
                write!(formatter, "run {run} is missing from the run index")
            }
            IndexProblem::Unexpected { run } => {
                write!(
                    formatter,
                    "the run index lists run {run}, which no event started"
                )
            }
            IndexProblem::Differs { run, column } => {
                write!(
                    formatter,
                    "the run index disagrees with the events of run {run} on `{column}`"
                )
            }
            IndexProblem::Unreadable { seq } => write!(formatter, "event {seq} cannot be decoded"),
        }
    }
}

/// What `audit verify` found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VerifyReport {
    /// Events in the store.
    pub events: u64,
    /// Hash of the last event (all zeros for an empty history).
    #[serde(serialize_with = "ChainHash::serialize_hex")]
    pub head: ChainHash,
    /// The first chain break, if any.
    pub chain_break: Option<ChainBreak>,
    /// One result per checkpoint given.
    pub checkpoints: Vec<CheckpointCheck>,
    /// Index rows the events do not support.
    pub index_problems: Vec<IndexProblem>,
}

impl VerifyReport {
    /// Whether everything checked out (exit 0; otherwise exit 4).
    #[must_use]
    pub fn is_intact(&self) -> bool {
        self.chain_break.is_none()
            && self.index_problems.is_empty()
            && self
                .checkpoints
                .iter()
                .all(|check| check.finding == CheckpointFinding::Matches)
    }
}

impl AuditStore {
    /// Recomputes the chain, compares it with `checkpoints` and rebuilds the run index. Checking
    /// checkpoint signatures is the caller's part ([`Checkpoint::verify_signature`]).
    pub fn verify(&self, checkpoints: &[Checkpoint]) -> Result<VerifyReport, AuditError> {
        let path = &self.path;
        let snapshot = self.connection.unchecked_transaction().in_store(path)?;
        let mut statement = snapshot
            .prepare(&StoredEntry::select("ORDER BY seq"))
            .in_store(path)?;
        let mut rows = statement.query([]).in_store(path)?;

        // seq → hash stored there, for the checkpoints to compare against.
        let mut wanted: BTreeMap<u64, Option<ChainHash>> = checkpoints
            .iter()
            .map(|checkpoint| (checkpoint.events, None))
            .collect();
        let mut chain_break = None;
        let mut index_problems = Vec::new();
        let mut expected_runs: BTreeMap<i64, RunRow> = BTreeMap::new();
        let mut previous_seq = 0;
        let mut previous_hash = ChainHash::GENESIS;
        let mut events = 0;
        while let Some(row) = rows.next().in_store(path)? {
            let entry = StoredEntry::from_row(row).in_store(path)?;
            events += 1;
            let stored_hash = ChainHash::from_slice(&entry.hash);
            if chain_break.is_none() {
                chain_break = check_link(&entry, previous_seq, &previous_hash, stored_hash);
            }
            if let Some(slot) = wanted.get_mut(&entry.seq) {
                *slot = stored_hash;
            }
            replay(&entry, &mut expected_runs, &mut index_problems);
            previous_seq = entry.seq;
            // An unreadable hash chains as zeros; the break above already names the event.
            previous_hash = stored_hash.unwrap_or(ChainHash::GENESIS);
        }
        drop(rows);
        drop(statement);
        index_problems.extend(compare_index(&snapshot, &expected_runs).in_store(path)?);
        let checkpoints = checkpoints
            .iter()
            .map(|checkpoint| {
                let finding = if checkpoint.events == 0 {
                    CheckpointFinding::Matches
                } else {
                    match wanted.get(&checkpoint.events) {
                        Some(Some(hash)) if *hash == checkpoint.head => CheckpointFinding::Matches,
                        _ if checkpoint.events > previous_seq => CheckpointFinding::Truncated,
                        _ => CheckpointFinding::Rewritten,
                    }
                };
                CheckpointCheck {
                    checkpoint: checkpoint.clone(),
                    finding,
                }
            })
            .collect();
        Ok(VerifyReport {
            events,
            head: previous_hash,
            chain_break,
            checkpoints,
            index_problems,
        })
    }
}

impl AuditStore {
    /// Event `seq` read back together with its neighbours, when `audit verify` would not flag
    /// it: its hash recomputes from its columns, its `prev_hash` is the stored hash of event
    /// `seq - 1` (which exists), and event `seq + 1`, if any, chains to it. `None` otherwise.
    ///
    /// This is what the gate calls before it honours an approval, so that a row altered in the
    /// file (even with a recomputed hash) or inserted out of chain counts for nothing; the
    /// returned event is decoded from the very row that was checked. It checks one link, not
    /// the whole history: a forged row appended at the head with a correct hash chains like a
    /// real one, which is what `signed_approvals: true` is for.
    pub fn chained_event(&self, seq: u64) -> Result<Option<Event>, AuditError> {
        if seq == 0 {
            return Ok(None);
        }
        let path = &self.path;
        let first = sql_integer(seq - 1);
        let last = sql_integer(seq.saturating_add(1));
        let mut statement = self
            .connection
            .prepare_cached(&StoredEntry::select(
                "WHERE seq BETWEEN ?1 AND ?2 ORDER BY seq",
            ))
            .in_store(path)?;
        let rows: Vec<StoredEntry> = statement
            .query_map([first, last], StoredEntry::from_row)
            .and_then(Iterator::collect)
            .in_store(path)?;
        let (previous, rest): (Vec<StoredEntry>, Vec<StoredEntry>) =
            rows.into_iter().partition(|entry| entry.seq < seq);
        let previous_hash = match previous.first() {
            Some(entry) => ChainHash::from_slice(&entry.hash),
            None if seq == 1 => Some(ChainHash::GENESIS),
            None => None,
        };
        let mut rest = rest.into_iter();
        let (Some(previous_hash), Some(entry)) = (previous_hash, rest.next()) else {
            return Ok(None);
        };
        if entry.seq != seq {
            return Ok(None);
        }
        let stored_hash = ChainHash::from_slice(&entry.hash);
        if check_link(&entry, seq - 1, &previous_hash, stored_hash).is_some() {
            return Ok(None);
        }
        if let Some(next) = rest.next()
            && ChainHash::from_slice(&next.prev_hash) != stored_hash
        {
            return Ok(None);
        }
        entry.into_event().map(Some)
    }
}

/// Checks one event against the one before it.
fn check_link(
    entry: &StoredEntry,
    previous_seq: u64,
    previous_hash: &ChainHash,
    stored_hash: Option<ChainHash>,
) -> Option<ChainBreak> {
    let seq = entry.seq;
    if seq != previous_seq + 1 {
        return Some(ChainBreak::Removed {
            first: previous_seq + 1,
            last: seq.saturating_sub(1),
        });
    }
    if entry.version != i64::from(FORMAT_VERSION) {
        return Some(ChainBreak::UnknownVersion {
            seq,
            version: entry.version,
        });
    }
    let Some(prev_hash) = ChainHash::from_slice(&entry.prev_hash) else {
        return Some(ChainBreak::Unlinked { seq });
    };
    if stored_hash != Some(entry.envelope().hash(&prev_hash)) {
        return Some(ChainBreak::Altered { seq });
    }
    if prev_hash != *previous_hash {
        return Some(ChainBreak::Unlinked { seq });
    }
    None
}

/// Feeds one event into the rebuilt run index.
fn replay(entry: &StoredEntry, runs: &mut BTreeMap<i64, RunRow>, problems: &mut Vec<IndexProblem>) {
    // Only these kinds change the index; skipping the rest keeps verify cheap.
    const INDEXED: [&str; 5] = [
        "run_requested",
        "run_started",
        "approval_requested",
        "approval_granted",
        "run_finished",
    ];
    let Some(run) = entry.run else { return };
    if !INDEXED.contains(&entry.kind.as_str()) {
        return;
    }
    let record = match Record::decode(&entry.kind, &entry.body) {
        Ok(Some(record)) => record,
        Ok(None) => return,
        Err(_) => {
            problems.push(IndexProblem::Unreadable { seq: entry.seq });
            return;
        }
    };
    if let Some(row) = RunRow::requested(RunId::new(run), entry.at, &record) {
        runs.insert(run, row);
    } else if let Some(row) = runs.get_mut(&run) {
        row.apply(entry.at, &record);
    }
}

/// Compares the stored index with the one rebuilt from the events.
fn compare_index(
    connection: &rusqlite::Connection,
    expected: &BTreeMap<i64, RunRow>,
) -> rusqlite::Result<Vec<IndexProblem>> {
    let mut hosts: BTreeMap<i64, Vec<String>> = BTreeMap::new();
    let mut statement =
        connection.prepare("SELECT run_id, host FROM run_host ORDER BY run_id, position")?;
    let mut rows = statement.query([])?;
    while let Some(row) = rows.next()? {
        hosts.entry(row.get(0)?).or_default().push(row.get(1)?);
    }
    drop(rows);
    let mut statement = connection.prepare(
        "SELECT run_id, requested_at, operator, runbook, runbook_sha256, pattern, host_count, \
         check_mode, status, started_at, finished_at, message FROM run ORDER BY run_id",
    )?;
    let mut rows = statement.query([])?;
    let mut problems = Vec::new();
    let mut seen = Vec::new();
    while let Some(row) = rows.next()? {
        let run: i64 = row.get(0)?;
        seen.push(run);
        let Some(want) = expected.get(&run) else {
            problems.push(IndexProblem::Unexpected {
                run: RunId::new(run),
            });
            continue;
        };
        let status: String = row.get(8)?;
        let stored = RunRow {
            run: RunId::new(run),
            requested_at: row.get(1)?,
            operator: row.get(2)?,
            runbook: row.get(3)?,
            runbook_sha256: row.get(4)?,
            pattern: row.get(5)?,
            hosts: hosts.remove(&run).unwrap_or_default(),
            check: row.get(7)?,
            status: parse_status(8, &status).unwrap_or(crate::audit::run::RunStatus::Running),
            started_at: row.get(9)?,
            finished_at: row.get(10)?,
            message: row.get(11)?,
        };
        let host_count: i64 = row.get(6)?;
        let column = if status != want.status.as_str() {
            Some("status")
        } else if host_count != sql_integer(want.hosts.len()) {
            Some("host_count")
        } else {
            first_difference(&stored, want)
        };
        if let Some(column) = column {
            problems.push(IndexProblem::Differs {
                run: RunId::new(run),
                column,
            });
        }
    }
    for run in expected.keys() {
        if seen.binary_search(run).is_err() {
            problems.push(IndexProblem::Missing {
                run: RunId::new(*run),
            });
        }
    }
    for run in hosts.keys() {
        if !expected.contains_key(run) {
            problems.push(IndexProblem::Unexpected {
                run: RunId::new(*run),
            });
        }
    }
    Ok(problems)
}

fn first_difference(stored: &RunRow, want: &RunRow) -> Option<&'static str> {
    let columns: [(&'static str, bool); 10] = [
        ("requested_at", stored.requested_at == want.requested_at),
        ("operator", stored.operator == want.operator),
        ("runbook", stored.runbook == want.runbook),
        (
            "runbook_sha256",
            stored.runbook_sha256 == want.runbook_sha256,
        ),
        ("pattern", stored.pattern == want.pattern),
        ("hosts", stored.hosts == want.hosts),
        ("check_mode", stored.check == want.check),
        ("started_at", stored.started_at == want.started_at),
        ("finished_at", stored.finished_at == want.finished_at),
        ("message", stored.message == want.message),
    ];
    columns
        .into_iter()
        .find(|(_, same)| !same)
        .map(|(column, _)| column)
}
