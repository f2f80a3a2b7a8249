//! Store tests against real `SQLite` files in temporary directories, including tampering through
//! raw SQL, killed processes and concurrent writers in separate processes.
//!
//! Tests that need another process re-enter this test binary (`std::env::current_exe()`) and
//! run one of the `child_*` helpers by exact name; the environment variable [`CHILD_DIR`] tells
//! a helper that it was started by a parent test. Run on their own (as `cargo test` does), the
//! helpers return at once: they are halves of the tests that start them, not tests.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
#[cfg(feature = "bench-history")]
use std::time::Instant;

use rusqlite::Connection;

use super::{AuditStore, DATABASE_FILE, MIGRATIONS};
use super::{insert_entry, insert_run_row};
use crate::audit::actor::Actor;
use crate::audit::chain::ChainHash;
use crate::audit::checkpoint::Checkpoint;
use crate::audit::error::AuditError;
use crate::audit::index::RunRow;
use crate::audit::output::Output;
use crate::audit::query::{RunFilter, StoredEntry};
use crate::audit::record::{Record, StepStatus};
use crate::audit::run::{RunId, RunStatus};
use crate::audit::verify::{ChainBreak, CheckpointFinding, IndexProblem};

/// Set by a parent test for a re-entered child helper: the state directory to use.
const CHILD_DIR: &str = "OPSGATE_AUDIT_TEST_CHILD_DIR";
/// How many runs a concurrent-writer child records.
const CHILD_RUNS: &str = "OPSGATE_AUDIT_TEST_CHILD_RUNS";

fn request(operator: &str, runbook: &str, hosts: &[&str]) -> Record {
    Record::RunRequested {
        operator: operator.into(),
        runbook: runbook.into(),
        runbook_sha256: "ab".repeat(32),
        params: vec![
            ("keep".into(), "7".into()),
            ("db_pass".into(), "***".into()),
        ],
        pattern: "web".into(),
        hosts: hosts.iter().map(|&host| host.to_owned()).collect(),
        check: false,
    }
}

fn step_started(host: &str, step: u32) -> Record {
    Record::StepStarted {
        host: host.into(),
        step,
        name: format!("step {step}"),
    }
}

fn step_finished(host: &str, step: u32, status: StepStatus) -> Record {
    Record::StepFinished {
        host: host.into(),
        step,
        name: format!("step {step}"),
        status,
        rc: Some(0),
        changed: status == StepStatus::Changed,
        duration_ms: 250,
        stdout: Output::capture(format!("{host} says hello\nline 2\n").as_bytes()),
        stderr: Output::empty(),
    }
}

/// Appends `records` to `run`, in order.
fn append_all(store: &mut AuditStore, run: RunId, actor: &Actor, records: &[Record]) {
    for record in records {
        store.append(run, actor, record).expect("append");
    }
}

/// A complete run: request, start, two steps on every host, finish ok. 3 + 4·hosts events.
fn record_run(store: &mut AuditStore, operator: &str, runbook: &str, hosts: &[&str]) -> RunId {
    let actor = Actor::alice();
    let (run, lock) = store
        .begin_run(&actor, request(operator, runbook, hosts))
        .expect("begin");
    let mut records = vec![Record::RunStarted];
    for host in hosts {
        for step in 1..=2 {
            records.push(step_started(host, step));
            records.push(step_finished(host, step, StepStatus::Ok));
        }
    }
    records.push(Record::RunFinished {
        status: RunStatus::Ok,
        message: None,
    });
    append_all(store, run, &actor, &records);
    drop(lock);
    run
}

fn raw(state_dir: &Path) -> Connection {
    Connection::open(state_dir.join(DATABASE_FILE)).expect("raw connection")
}

fn drop_entry_triggers(connection: &Connection) {
    connection
        .execute_batch(
            "DROP TRIGGER entry_is_append_only_update; DROP TRIGGER entry_is_append_only_delete;",
        )
        .expect("drop triggers");
}

/// A store with two complete runs: events 1..=11 (two hosts) and 12..=18 (one host).
fn two_runs() -> (tempfile::TempDir, AuditStore) {
    let directory = tempfile::tempdir().expect("temp dir");
    let mut store = AuditStore::open(directory.path()).expect("open");
    record_run(&mut store, "alice", "patch-debian", &["web1", "web2"]);
    record_run(&mut store, "bob", "restart-nginx", &["web1"]);
    (directory, store)
}

/// [`two_runs`] with a raw connection to its database whose triggers no longer stop an UPDATE
/// or a DELETE: what an attacker with write access to the file has.
fn two_runs_open_to_tampering() -> (tempfile::TempDir, AuditStore, Connection) {
    let (directory, store) = two_runs();
    let connection = raw(directory.path());
    drop_entry_triggers(&connection);
    (directory, store, connection)
}

fn chain_break(store: &AuditStore) -> Option<ChainBreak> {
    store.verify(&[]).expect("verify runs").chain_break
}

fn stored_entry(connection: &Connection, seq: u64) -> StoredEntry {
    connection
        .query_row(
            &StoredEntry::select("WHERE seq = ?1"),
            [super::sql_integer(seq)],
            StoredEntry::from_row,
        )
        .expect("entry")
}

fn rehash(entry: &StoredEntry) -> ChainHash {
    entry
        .envelope()
        .hash(&ChainHash::from_slice(&entry.prev_hash).expect("32 bytes"))
}

#[test]
fn appended_events_verify_and_survive_reopening() {
    let (directory, store) = two_runs();
    let report = store.verify(&[]).expect("verify");
    assert!(report.is_intact(), "{report:?}");
    assert_eq!(report.events, 18);
    let checkpoint = store.checkpoint().expect("checkpoint");
    assert_eq!((checkpoint.events, checkpoint.head), (18, report.head));
    drop(store);
    let reopened = AuditStore::open(directory.path()).expect("reopen");
    let report = reopened.verify(&[checkpoint]).expect("verify");
    assert!(report.is_intact(), "{report:?}");
    assert_eq!(report.checkpoints[0].finding, CheckpointFinding::Matches);
    let mode: String = raw(directory.path())
        .pragma_query_value(None, "journal_mode", |row| row.get(0))
        .expect("journal mode");
    assert_eq!(mode, "wal");
}

#[test]
fn run_ids_are_consecutive_whatever_the_events_between_them() {
    let directory = tempfile::tempdir().expect("temp dir");
    let mut store = AuditStore::open(directory.path()).expect("open");
    let runs: Vec<i64> = [&["web1", "web2"][..], &["web1"], &["db1", "db2", "db3"]]
        .iter()
        .map(|hosts| record_run(&mut store, "alice", "patch", hosts).get())
        .collect();
    assert_eq!(runs, [1, 2, 3]);
    assert!(store.verify(&[]).expect("verify").is_intact());
}

#[test]
fn a_store_numbered_by_event_seq_keeps_its_ids_and_goes_on_from_the_highest() {
    let directory = tempfile::tempdir().expect("temp dir");
    let mut store = AuditStore::open(directory.path()).expect("open");
    let actor = Actor::alice();
    // Written as earlier versions did: a run's id is its `run_requested` event's `seq`.
    let transaction = store.write_transaction().expect("transaction");
    let mut previous = ChainHash::GENESIS;
    let mut seq = 0u64;
    for _ in 0..2 {
        let run = RunId::new(super::sql_integer(seq) + 1);
        let requested = request("alice", "patch", &["web1"]);
        let at = super::now_microsecond();
        let mut row = RunRow::requested(run, at, &requested).expect("a request");
        let finished = Record::RunFinished {
            status: RunStatus::Ok,
            message: None,
        };
        for record in [requested.clone(), Record::RunStarted, finished] {
            seq += 1;
            insert_entry(&transaction, seq, &previous, at, Some(run), &actor, &record)
                .expect("insert");
            previous = stored_hash(&transaction, seq);
            if seq != run.get() as u64 {
                row.apply(at, &record);
            }
        }
        insert_run_row(&transaction, &row).expect("index");
    }
    transaction.commit().expect("commit");
    let before = store.verify(&[]).expect("verify");
    assert!(before.is_intact(), "{before:?}");
    // Runs 1 and 4; the next ones follow the highest.
    let next: Vec<i64> = (0..2)
        .map(|_| record_run(&mut store, "bob", "restart", &["web2"]).get())
        .collect();
    assert_eq!(next, [5, 6]);
    let after = store.verify(&[]).expect("verify");
    assert!(after.is_intact(), "{after:?}");
    let listed: Vec<i64> = store
        .runs(&RunFilter::default())
        .expect("listing")
        .iter()
        .map(|run| run.id.get())
        .collect();
    assert_eq!(listed, [6, 5, 4, 1]);
}

#[test]
fn an_updated_body_is_named_as_altered() {
    let (_directory, store, connection) = two_runs_open_to_tampering();
    let forged = step_finished("web1", 1, StepStatus::Failed).encode();
    connection
        .execute("UPDATE entry SET body = ?1 WHERE seq = 4", [forged])
        .expect("update");
    assert_eq!(chain_break(&store), Some(ChainBreak::Altered { seq: 4 }));
}

#[test]
fn a_changed_actor_or_time_is_named_as_altered() {
    let (_directory, store, connection) = two_runs_open_to_tampering();
    connection
        .execute("UPDATE entry SET user_name = 'mallory' WHERE seq = 9", [])
        .expect("update");
    assert_eq!(chain_break(&store), Some(ChainBreak::Altered { seq: 9 }));
}

#[test]
fn a_deleted_middle_event_is_named_as_removed() {
    let (_directory, store, connection) = two_runs_open_to_tampering();
    connection
        .execute("DELETE FROM entry WHERE seq = 6", [])
        .expect("delete");
    assert_eq!(
        chain_break(&store),
        Some(ChainBreak::Removed { first: 6, last: 6 })
    );
    assert_eq!(
        ChainBreak::Removed { first: 6, last: 6 }.to_string(),
        "event 6 was removed"
    );
}

#[test]
fn a_forged_row_is_named() {
    let (directory, store) = two_runs();
    let connection = raw(directory.path());
    // A forger who links to the real head but cannot produce the right hash.
    let head = stored_entry(&connection, 18);
    let body = Record::RunFinished {
        status: RunStatus::Ok,
        message: None,
    }
    .encode();
    connection
        .execute(
            "INSERT INTO entry (seq, version, at, run_id, kind, uid, user_name, body, prev_hash, hash)
             VALUES (19, 1, ?1, ?2, 'run_finished', 0, 'root', ?3, ?4, ?5)",
            rusqlite::params![head.at, head.run, body, head.hash, vec![0u8; 32]],
        )
        .expect("insert");
    assert_eq!(chain_break(&store), Some(ChainBreak::Altered { seq: 19 }));
}

#[test]
fn a_rewritten_event_with_a_recomputed_hash_breaks_the_next_link() {
    let (_directory, store, connection) = two_runs_open_to_tampering();
    let mut entry = stored_entry(&connection, 5);
    entry.body = step_finished("web1", 2, StepStatus::Changed).encode();
    let hash = rehash(&entry);
    connection
        .execute(
            "UPDATE entry SET body = ?1, hash = ?2 WHERE seq = 5",
            rusqlite::params![entry.body, hash.0.as_slice()],
        )
        .expect("update");
    let found = chain_break(&store);
    assert_eq!(found, Some(ChainBreak::Unlinked { seq: 6 }));
    let text = found.expect("a break").to_string();
    assert!(text.contains("event 5 was rewritten"), "{text}");
}

#[test]
fn a_truncated_tail_is_caught_by_a_checkpoint() {
    let (_directory, store, connection) = two_runs_open_to_tampering();
    let checkpoint = store.checkpoint().expect("checkpoint");
    connection
        .execute("DELETE FROM entry WHERE seq > 12", [])
        .expect("truncate");
    let report = store
        .verify(std::slice::from_ref(&checkpoint))
        .expect("verify");
    assert_eq!(report.chain_break, None, "a cut tail leaves a valid chain");
    assert_eq!(report.events, 12);
    assert_eq!(report.checkpoints[0].finding, CheckpointFinding::Truncated);
    assert!(!report.is_intact());
}

#[test]
fn a_history_rewritten_from_some_event_on_is_caught_by_a_checkpoint() {
    let (_directory, store, connection) = two_runs_open_to_tampering();
    let checkpoint = store.checkpoint().expect("checkpoint");
    // Rewrite event 4 and recompute every hash after it: the chain alone cannot tell.
    let mut previous = stored_entry(&connection, 3).hash;
    for seq in 4..=18 {
        let mut entry = stored_entry(&connection, seq);
        if seq == 4 {
            entry.body = step_finished("web1", 1, StepStatus::Changed).encode();
        }
        entry.prev_hash.clone_from(&previous);
        let hash = rehash(&entry);
        connection
            .execute(
                "UPDATE entry SET body = ?1, prev_hash = ?2, hash = ?3 WHERE seq = ?4",
                rusqlite::params![
                    entry.body,
                    previous,
                    hash.0.as_slice(),
                    super::sql_integer(seq)
                ],
            )
            .expect("rewrite");
        previous = hash.0.to_vec();
    }
    let report = store.verify(&[checkpoint]).expect("verify");
    assert_eq!(report.chain_break, None);
    assert_eq!(report.checkpoints[0].finding, CheckpointFinding::Rewritten);
    assert!(!report.is_intact());
}

#[test]
fn triggers_reject_update_and_delete() {
    let (directory, _store) = two_runs();
    let connection = raw(directory.path());
    for sql in [
        "UPDATE entry SET kind = 'x' WHERE seq = 1",
        "DELETE FROM entry WHERE seq = 18",
        "UPDATE run SET status = 'failed' WHERE run_id = 1",
        "UPDATE run SET operator = 'mallory' WHERE run_id = 1",
        "DELETE FROM run WHERE run_id = 1",
        "UPDATE run_host SET host = 'db1'",
        "DELETE FROM run_host",
    ] {
        let error = connection.execute(sql, []).expect_err(sql);
        assert!(
            error.to_string().contains("append-only") || error.to_string().contains("live"),
            "{sql}: {error}"
        );
    }
}

#[test]
fn a_forged_index_row_is_reported_by_verify() {
    let (directory, store) = two_runs();
    let connection = raw(directory.path());
    connection
        .execute_batch("DROP TRIGGER run_changes_only_while_live;")
        .expect("drop trigger");
    connection
        .execute("UPDATE run SET status = 'failed' WHERE run_id = 1", [])
        .expect("update");
    let report = store.verify(&[]).expect("verify");
    assert_eq!(report.chain_break, None);
    assert_eq!(
        report.index_problems,
        [IndexProblem::Differs {
            run: RunId::new(1),
            column: "status"
        }]
    );
    assert!(!report.is_intact());
}

#[test]
fn appends_out_of_place_are_refused() {
    let (_directory, mut store) = two_runs();
    let actor = Actor::alice();
    let finished_run = RunId::new(1);
    assert!(matches!(
        store.append(finished_run, &actor, &Record::RunStarted),
        Err(AuditError::RunClosed {
            status: RunStatus::Ok,
            ..
        })
    ));
    assert!(matches!(
        store.append(RunId::new(99), &actor, &Record::RunStarted),
        Err(AuditError::UnknownRun { .. })
    ));
    assert!(matches!(
        store.append(finished_run, &actor, &request("a", "b", &[])),
        Err(AuditError::Misplaced { .. })
    ));
    assert!(matches!(
        store.begin_run(&actor, Record::RunStarted),
        Err(AuditError::Misplaced { .. })
    ));
    let (run, _lock) = store
        .begin_run(&actor, request("a", "b", &["web1"]))
        .expect("begin");
    assert!(matches!(
        store.append(
            run,
            &actor,
            &Record::RunFinished {
                status: RunStatus::Running,
                message: None
            }
        ),
        Err(AuditError::NotFinal { .. })
    ));
    let approved = crate::audit::record::tests::every_kind()
        .into_iter()
        .find(|record| record.kind() == "runbook_approved")
        .expect("a runbook approval");
    assert!(matches!(
        store.append(run, &actor, &approved),
        Err(AuditError::Misplaced { .. })
    ));
    assert!(store.append_detached(&actor, &approved).is_ok());
    assert!(matches!(
        store.append_detached(&actor, &Record::RunStarted),
        Err(AuditError::Misplaced { .. })
    ));
    assert!(store.verify(&[]).expect("verify").is_intact());
}

#[test]
fn every_kind_can_be_stored_and_read_back() {
    let directory = tempfile::tempdir().expect("temp dir");
    let mut store = AuditStore::open(directory.path()).expect("open");
    let actor = Actor::alice();
    let mut kinds = crate::audit::record::tests::every_kind().into_iter();
    let first = kinds.next().expect("a request first");
    let (run, lock) = store.begin_run(&actor, first.clone()).expect("begin");
    let mut stored = vec![first];
    for record in kinds {
        if record.needs_run() {
            store.append(run, &actor, &record).expect("append");
            stored.push(record);
        } else {
            store
                .append_detached(&actor, &record)
                .expect("append detached");
        }
    }
    drop(lock);
    let detail = store.run(run).expect("detail");
    let read: Vec<Record> = detail
        .events
        .into_iter()
        .filter_map(|event| event.record)
        .collect();
    assert_eq!(read, stored);
    assert!(store.verify(&[]).expect("verify").is_intact());
}

#[test]
fn a_dropped_lock_without_run_finished_becomes_interrupted_at_the_next_open() {
    let directory = tempfile::tempdir().expect("temp dir");
    let mut store = AuditStore::open(directory.path()).expect("open");
    let actor = Actor::alice();
    let (run, lock) = store
        .begin_run(&actor, request("alice", "patch", &["web1", "web2", "db1"]))
        .expect("begin");
    append_all(
        &mut store,
        run,
        &actor,
        &[
            Record::RunStarted,
            step_started("web1", 1),
            step_finished("web1", 1, StepStatus::Changed),
            step_started("web1", 2),
            step_started("web2", 1),
        ],
    );

    // While the lock is held, another open (even in this process) leaves the run alone.
    let other = AuditStore::open(directory.path()).expect("open while live");
    assert_eq!(
        other.run(run).expect("detail").summary.status,
        RunStatus::Running
    );
    drop(other);
    assert!(lock.path().exists());

    drop(lock);
    let reopened = AuditStore::open(directory.path()).expect("reopen");
    assert_eq!(reopened.interrupted_at_open(), [run]);
    let detail = reopened.run(run).expect("detail");
    assert_eq!(detail.summary.status, RunStatus::Interrupted);
    let message = detail.summary.message.expect("a message");
    assert!(
        message.ends_with(
            "ended without finishing the run; web1: step 2 `step 2` started, no result; \
             web2: step 1 `step 1` started, no result; db1: no step started"
        ),
        "{message}"
    );
    assert!(message.starts_with("the opsgate process"), "{message}");
    assert_eq!(detail.hosts[0].recap.changed, 1);
    assert_eq!(detail.hosts[0].recap.unfinished, 1);
    assert!(reopened.verify(&[]).expect("verify").is_intact());
    // The sweep happens once: a further open appends nothing.
    let events = reopened.verify(&[]).expect("verify").events;
    drop(reopened);
    let again = AuditStore::open(directory.path()).expect("reopen");
    assert!(again.interrupted_at_open().is_empty());
    assert_eq!(again.verify(&[]).expect("verify").events, events);
    assert!(!crate::audit::lock::lock_path(directory.path(), run).exists());
}

#[test]
fn finish_run_records_the_end_before_releasing_the_lock_and_events_can_be_polled() {
    let directory = tempfile::tempdir().expect("temp dir");
    let mut store = AuditStore::open(directory.path()).expect("open");
    let actor = Actor::alice();
    let (run, lock) = store
        .begin_run(&actor, request("alice", "patch", &["web1"]))
        .expect("begin");
    let lock_file = lock.path().to_path_buf();
    let started = store
        .append(run, &actor, &Record::RunStarted)
        .expect("start");
    let polled = store.events(run, started).expect("poll");
    assert!(polled.is_empty());
    store
        .append(run, &actor, &step_started("web1", 1))
        .expect("step");
    let polled = store.events(run, started).expect("poll");
    assert_eq!(polled.len(), 1);
    assert_eq!(polled[0].record, Some(step_started("web1", 1)));
    assert_eq!(store.events(run, 0).expect("all").len(), 3);
    store
        .finish_run(
            lock,
            &actor,
            RunStatus::Cancelled,
            Some("stopped by Ctrl-C".into()),
        )
        .expect("finish");
    assert!(!lock_file.exists());
    drop(store);
    let store = AuditStore::open(directory.path()).expect("reopen");
    let summary = store.run(run).expect("detail").summary;
    assert_eq!(summary.status, RunStatus::Cancelled);
    assert_eq!(summary.message.as_deref(), Some("stopped by Ctrl-C"));
}

#[test]
fn a_run_abandoned_before_its_start_says_no_host_was_contacted() {
    let directory = tempfile::tempdir().expect("temp dir");
    let mut store = AuditStore::open(directory.path()).expect("open");
    let (run, lock) = store
        .begin_run(&Actor::alice(), request("alice", "patch", &["web1"]))
        .expect("begin");
    drop(lock);
    drop(store);
    let store = AuditStore::open(directory.path()).expect("reopen");
    let summary = store.run(run).expect("detail").summary;
    assert_eq!(summary.status, RunStatus::Interrupted);
    assert!(
        summary
            .message
            .expect("message")
            .ends_with("ended before any host was contacted")
    );
}

/// Starts this test binary again, running only the ignored helper `name`.
fn spawn_child(name: &str, state_dir: &Path, runs: Option<usize>) -> Command {
    let mut command = Command::new(std::env::current_exe().expect("test binary"));
    command
        .args(["--exact", "--nocapture", "--test-threads=1"])
        .arg(format!("audit::store::tests::{name}"))
        .env(CHILD_DIR, state_dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(runs) = runs {
        command.env(CHILD_RUNS, runs.to_string());
    }
    command
}

/// Reads the child's stdout until a line starting with `prefix`; returns the rest of it.
fn wait_for_line(child: &mut Child, prefix: &str) -> String {
    let stdout = child.stdout.as_mut().expect("piped stdout");
    let mut reader = BufReader::new(stdout);
    let mut line = String::new();
    loop {
        line.clear();
        let read = reader.read_line(&mut line).expect("read child output");
        if read == 0 {
            let mut stderr = String::new();
            if let Some(pipe) = child.stderr.as_mut() {
                std::io::Read::read_to_string(pipe, &mut stderr).expect("child stderr");
            }
            panic!("child ended before printing `{prefix}`: {stderr}");
        }
        // libtest prints the test's name on the same line before the helper's own output.
        if let Some(start) = line.find(prefix) {
            return line[start + prefix.len()..].trim().to_owned();
        }
    }
}

fn child_dir() -> Option<PathBuf> {
    std::env::var_os(CHILD_DIR).map(PathBuf::from)
}

#[test]
fn child_holds_a_run_until_killed() {
    let Some(state_dir) = child_dir() else { return };
    let mut store = AuditStore::open(&state_dir).expect("open");
    let actor = Actor::current();
    let (run, _lock) = store
        .begin_run(&actor, request("carol", "patch", &["web1", "web2"]))
        .expect("begin");
    append_all(
        &mut store,
        run,
        &actor,
        &[
            Record::RunStarted,
            step_started("web1", 1),
            step_finished("web1", 1, StepStatus::Ok),
            step_started("web1", 2),
        ],
    );
    let mut stdout = std::io::stdout();
    writeln!(stdout, "ready {run}").expect("stdout");
    stdout.flush().expect("flush");
    // Block until the parent kills this process (stdin stays open until then).
    let mut line = String::new();
    let _ = std::io::stdin().read_line(&mut line);
}

#[test]
fn a_killed_run_becomes_interrupted() {
    let directory = tempfile::tempdir().expect("temp dir");
    drop(AuditStore::open(directory.path()).expect("create"));
    let mut child = spawn_child("child_holds_a_run_until_killed", directory.path(), None)
        .spawn()
        .expect("spawn child");
    let run: RunId = wait_for_line(&mut child, "ready ")
        .parse()
        .expect("a run id");

    let store = AuditStore::open(directory.path()).expect("open while the child lives");
    assert_eq!(
        store.run(run).expect("detail").summary.status,
        RunStatus::Running
    );
    drop(store);

    child.kill().expect("SIGKILL");
    let status = child.wait().expect("reap");
    assert!(!status.success());

    let store = AuditStore::open(directory.path()).expect("open after the kill");
    let detail = store.run(run).expect("detail");
    assert_eq!(detail.summary.status, RunStatus::Interrupted);
    let message = detail.summary.message.expect("a message");
    assert!(
        message.contains("web1: step 2 `step 2` started, no result; web2: no step started"),
        "{message}"
    );
    assert!(
        message.contains(&format!("pid {}", child.id())),
        "{message}"
    );
    assert!(store.verify(&[]).expect("verify").is_intact());
}

#[test]
fn child_records_runs() {
    let Some(state_dir) = child_dir() else { return };
    let runs: usize = std::env::var(CHILD_RUNS)
        .expect("run count")
        .parse()
        .expect("a number");
    let mut store = AuditStore::open(&state_dir).expect("open");
    let operator = format!("writer-{}", std::process::id());
    // Start together with the other writer: wait for the parent's go.
    writeln!(std::io::stdout(), "opened {operator}").expect("stdout");
    let mut go = String::new();
    std::io::stdin().read_line(&mut go).expect("stdin");
    for _ in 0..runs {
        record_run(&mut store, &operator, "concurrent", &["web1"]);
    }
    writeln!(std::io::stdout(), "done {operator}").expect("stdout");
}

#[test]
fn concurrent_writers_in_two_processes_keep_one_chain() {
    const RUNS: usize = 40;
    let directory = tempfile::tempdir().expect("temp dir");
    // Three processes race to create the store (migrations, WAL switch), then two write.
    let mut children: Vec<Child> = (0..2)
        .map(|_| {
            spawn_child("child_records_runs", directory.path(), Some(RUNS))
                .spawn()
                .expect("spawn writer")
        })
        .collect();
    let reader = AuditStore::open(directory.path()).expect("create");
    for child in &mut children {
        wait_for_line(child, "opened ");
    }
    for child in &mut children {
        writeln!(child.stdin.as_mut().expect("piped stdin"), "go").expect("go");
    }
    // Query while both write: readers must never fail or block the writers.
    let mut queries = 0;
    while children
        .iter_mut()
        .any(|child| child.try_wait().expect("poll").is_none())
    {
        reader
            .runs(&RunFilter {
                limit: Some(20),
                ..RunFilter::default()
            })
            .expect("history");
        queries += 1;
    }
    for child in &mut children {
        let output = child.wait().expect("reap");
        let mut stderr = String::new();
        std::io::Read::read_to_string(child.stderr.as_mut().expect("stderr"), &mut stderr)
            .expect("stderr");
        assert!(output.success(), "writer failed: {stderr}");
    }
    assert!(queries > 0);
    let report = reader.verify(&[]).expect("verify");
    assert!(report.is_intact(), "{report:?}");
    // 7 events per run (request, start, 2 × step started/finished, finish).
    assert_eq!(report.events, (2 * RUNS * 7) as u64);
    let runs = reader.runs(&RunFilter::default()).expect("history");
    assert_eq!(runs.len(), 2 * RUNS);
    // The writers really overlapped: their events alternate somewhere in the chain.
    let owners: Vec<String> = reader
        .connection
        .prepare("SELECT run.operator FROM entry JOIN run USING (run_id) ORDER BY entry.seq")
        .expect("prepare")
        .query_map([], |row| row.get(0))
        .expect("query")
        .collect::<rusqlite::Result<_>>()
        .expect("owners");
    let switches = owners.windows(2).filter(|pair| pair[0] != pair[1]).count();
    assert!(
        switches > 1,
        "the two writers never overlapped; the test proved nothing"
    );
    writeln!(std::io::stdout(), "writers took turns {switches} times").expect("stdout");
    assert!(runs.iter().all(|run| run.status == RunStatus::Ok));
    for summary in &runs {
        assert_eq!(reader.run(summary.id).expect("detail").events.len(), 7);
    }
}

#[test]
fn a_missing_state_dir_is_created() {
    let directory = tempfile::tempdir().expect("temp dir");
    let state_dir = directory.path().join("deep/state");
    let store = AuditStore::open(&state_dir).expect("open");
    assert!(state_dir.join(DATABASE_FILE).exists());
    assert!(state_dir.join("runs").is_dir());
    drop(store);
    let mode = std::fs::metadata(&state_dir)
        .expect("metadata")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o700);
}

#[test]
fn a_corrupt_file_is_refused_and_left_unchanged() {
    let directory = tempfile::tempdir().expect("temp dir");
    let path = directory.path().join(DATABASE_FILE);
    let bytes: Vec<u8> = (0..8192u32)
        .map(|index| (index.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    std::fs::write(&path, &bytes).expect("write garbage");
    let error = AuditStore::open(directory.path()).expect_err("refused");
    assert!(
        matches!(error, AuditError::NotADatabase { .. }),
        "{error:?}"
    );
    assert!(error.to_string().contains("is not an SQLite database"));
    assert!(!error.hints().is_empty());
    assert_eq!(std::fs::read(&path).expect("read back"), bytes);
    assert!(!directory.path().join("audit.db-wal").exists());
}

#[test]
fn a_damaged_sqlite_file_is_refused_and_left_unchanged() {
    let directory = tempfile::tempdir().expect("temp dir");
    let path = directory.path().join(DATABASE_FILE);
    let mut bytes = b"SQLite format 3\0".to_vec();
    bytes.extend((0..8192u32).map(|index| (index.wrapping_mul(40_503) >> 7) as u8));
    std::fs::write(&path, &bytes).expect("write garbage");
    let error = AuditStore::open(directory.path()).expect_err("refused");
    assert!(
        matches!(
            error,
            AuditError::NotADatabase { .. } | AuditError::Corrupt { .. }
        ),
        "{error:?}"
    );
    assert_eq!(std::fs::read(&path).expect("read back"), bytes);
}

#[test]
fn a_foreign_sqlite_database_is_refused_and_left_unchanged() {
    for (application_id, setup) in [
        (0, "CREATE TABLE notes (text TEXT);"),
        (0x1234, "PRAGMA application_id = 4660;"),
    ] {
        let directory = tempfile::tempdir().expect("temp dir");
        let path = directory.path().join(DATABASE_FILE);
        Connection::open(&path)
            .expect("create")
            .execute_batch(setup)
            .expect("setup");
        let before = std::fs::read(&path).expect("read");
        let error = AuditStore::open(directory.path()).expect_err("refused");
        assert!(
            matches!(error, AuditError::ForeignDatabase { application_id: found, .. } if found == application_id),
            "{error:?}"
        );
        assert_eq!(std::fs::read(&path).expect("read back"), before);
    }
}

#[test]
fn a_database_from_a_newer_opsgate_is_refused() {
    let directory = tempfile::tempdir().expect("temp dir");
    drop(AuditStore::open(directory.path()).expect("create"));
    raw(directory.path())
        .pragma_update(None, "user_version", 99)
        .expect("bump");
    let error = AuditStore::open(directory.path()).expect_err("refused");
    assert!(
        matches!(
            error,
            AuditError::NewerSchema {
                found: 99,
                supported: 3,
                ..
            }
        ),
        "{error:?}"
    );
}

#[test]
fn child_opens_a_store() {
    let Some(state_dir) = child_dir() else { return };
    let outcome = match AuditStore::open(&state_dir) {
        Ok(_) => "opened".to_owned(),
        Err(error) => format!("{error:?}"),
    };
    writeln!(std::io::stdout(), "outcome {outcome}").expect("stdout");
}

#[test]
fn a_read_only_store_fails_at_open() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        // Without root the test cannot switch to another account; make the store read-only
        // for ourselves instead.
        let directory = tempfile::tempdir().expect("temp dir");
        drop(AuditStore::open(directory.path()).expect("create"));
        std::fs::set_permissions(directory.path(), std::fs::Permissions::from_mode(0o500))
            .expect("chmod");
        let error = AuditStore::open(directory.path()).expect_err("refused");
        std::fs::set_permissions(directory.path(), std::fs::Permissions::from_mode(0o700))
            .expect("chmod back");
        assert!(matches!(error, AuditError::ReadOnly { .. }), "{error:?}");
        return;
    }
    // Root may write anywhere, so open the store as `nobody`, for whom it is read-only.
    let directory = tempfile::tempdir().expect("temp dir");
    let state_dir = directory.path().join("state");
    let mut store = AuditStore::open(&state_dir).expect("create");
    record_run(&mut store, "alice", "patch", &["web1"]);
    drop(store);
    for path in [directory.path(), state_dir.as_path()] {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    }
    let database = state_dir.join(DATABASE_FILE);
    std::fs::set_permissions(&database, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let before = std::fs::read(&database).expect("read");
    let mut child = spawn_child("child_opens_a_store", &state_dir, None)
        .uid(65534)
        .gid(65534)
        .spawn()
        .expect("spawn as nobody");
    let outcome = wait_for_line(&mut child, "outcome ");
    child.wait().expect("reap");
    assert!(outcome.starts_with("ReadOnly"), "{outcome}");
    assert_eq!(std::fs::read(&database).expect("read back"), before);
}

/// Pins every landed migration: editing one would give old and new databases different schemas
/// under the same version number. Add a new migration instead of changing this list.
#[test]
fn landed_migrations_are_never_edited() {
    use sha2::{Digest, Sha256};
    let pinned = [
        (
            1,
            "0001_initial.sql",
            "0c7512734c55cb9c5514d9297378df0740982c67381cb5d77f6f64beabcf07b0",
        ),
        (
            2,
            "0002_backup_index.sql",
            "a00d936639fe7678e9bcfb3f74e3066e574b6e55cdadb6e21d420adb0c4cdbbd",
        ),
        (
            3,
            "0003_store_id.sql",
            "93ce735fb5234c388ed1327c2b89123252142550be0d6843fc0ae915c783f8ed",
        ),
    ];
    assert_eq!(MIGRATIONS.len(), pinned.len(), "pin the new migration here");
    for (migration, (version, name, digest)) in MIGRATIONS.iter().zip(pinned) {
        assert_eq!((migration.version, migration.name), (version, name));
        assert_eq!(
            hex::encode(Sha256::digest(migration.sql)),
            digest,
            "{name} was edited"
        );
    }
}

/// Builds 100 000 finished runs (300 000 events) in one transaction through the same insert
/// functions `append` uses, then times the listings. A benchmark, not a test: compiled only
/// with the `bench-history` feature, run by `scripts/bench.sh` (see docs/benchmarks.md).
#[cfg(feature = "bench-history")]
#[test]
fn bench_listing_100_000_runs() {
    const RUNS: i64 = 100_000;
    let directory = tempfile::tempdir().expect("temp dir");
    let mut store = AuditStore::open(directory.path()).expect("open");
    let actor = Actor::alice();
    let started = Instant::now();
    let transaction = store.write_transaction().expect("transaction");
    let mut previous = ChainHash::GENESIS;
    let mut seq = 0u64;
    let base = super::now_microsecond();
    for index in 0..RUNS {
        let run = RunId::new(super::sql_integer(seq) + 1);
        let host = format!("web{}", index % 500);
        let operator = ["alice", "bob", "carol"][(index % 3) as usize];
        let requested = request(operator, &format!("runbook-{}", index % 40), &[&host]);
        let at = base + index * 1000;
        let mut row = RunRow::requested(run, at, &requested).expect("a request");
        let records = [
            requested.clone(),
            Record::RunStarted,
            Record::RunFinished {
                status: RunStatus::Ok,
                message: None,
            },
        ];
        for record in &records {
            seq += 1;
            insert_entry(&transaction, seq, &previous, at, Some(run), &actor, record)
                .expect("insert");
            previous = stored_hash(&transaction, seq);
            if seq != run.get() as u64 {
                row.apply(at, record);
            }
        }
        insert_run_row(&transaction, &row).expect("index");
    }
    transaction.commit().expect("commit");
    let mut out = std::io::stdout();
    writeln!(
        out,
        "bench: built {RUNS} runs ({seq} events) in {:?}",
        started.elapsed()
    )
    .expect("out");
    let cases = [
        (
            "newest 50",
            RunFilter {
                limit: Some(50),
                ..RunFilter::default()
            },
        ),
        ("all 100000", RunFilter::default()),
        (
            "--host web7, 50",
            RunFilter {
                host: Some("web7".into()),
                limit: Some(50),
                ..RunFilter::default()
            },
        ),
        (
            "--operator bob --runbook runbook-7, all",
            RunFilter {
                operator: Some("bob".into()),
                runbook: Some("runbook-7".into()),
                ..RunFilter::default()
            },
        ),
        (
            "--status failed (none), 50",
            RunFilter {
                status: Some(RunStatus::Failed),
                limit: Some(50),
                ..RunFilter::default()
            },
        ),
    ];
    for (name, filter) in cases {
        let started = Instant::now();
        let runs = store.runs(&filter).expect("list");
        writeln!(
            out,
            "bench: history {name}: {} runs in {:?}",
            runs.len(),
            started.elapsed()
        )
        .expect("out");
    }
    let started = Instant::now();
    let detail = store.run(RunId::new(150_001)).expect("detail");
    writeln!(
        out,
        "bench: history show: {} events in {:?}",
        detail.events.len(),
        started.elapsed()
    )
    .expect("out");
    let started = Instant::now();
    let report = store.verify(&[]).expect("verify");
    writeln!(
        out,
        "bench: audit verify: {} events in {:?}, intact {}",
        report.events,
        started.elapsed(),
        report.is_intact()
    )
    .expect("out");
    assert!(report.is_intact());
}

fn stored_hash(connection: &Connection, seq: u64) -> ChainHash {
    let hash: Vec<u8> = connection
        .query_row(
            "SELECT hash FROM entry WHERE seq = ?1",
            [super::sql_integer(seq)],
            |row| row.get(0),
        )
        .expect("hash");
    ChainHash::from_slice(&hash).expect("32 bytes")
}

#[test]
fn checkpoints_round_trip_through_their_text() {
    let (_directory, store) = two_runs();
    let checkpoint = store.checkpoint().expect("checkpoint");
    let parsed = Checkpoint::parse_all(Path::new("cp"), &checkpoint.render()).expect("parse");
    assert_eq!(parsed, [checkpoint]);
    assert!(store.verify(&parsed).expect("verify").is_intact());
}

#[test]
fn chained_event_refuses_a_row_audit_verify_would_flag() {
    let (directory, store) = two_runs();
    for seq in [1, 5, 18] {
        assert_eq!(
            store
                .chained_event(seq)
                .expect("read")
                .map(|event| event.seq),
            Some(seq),
            "an intact event at {seq}"
        );
    }
    assert!(store.chained_event(0).expect("read").is_none());
    assert!(
        store.chained_event(19).expect("read").is_none(),
        "no such event"
    );
    let connection = raw(directory.path());
    drop_entry_triggers(&connection);
    // Altered in place: its hash no longer recomputes.
    connection
        .execute("UPDATE entry SET user_name = 'mallory' WHERE seq = 9", [])
        .expect("update");
    assert!(store.chained_event(9).expect("read").is_none());
    // Rewritten with a recomputed hash: the next event no longer chains to it.
    let mut entry = stored_entry(&connection, 5);
    entry.body = step_finished("web1", 2, StepStatus::Changed).encode();
    let hash = rehash(&entry);
    connection
        .execute(
            "UPDATE entry SET body = ?1, hash = ?2 WHERE seq = 5",
            rusqlite::params![entry.body, hash.0.as_slice()],
        )
        .expect("update");
    assert!(store.chained_event(5).expect("read").is_none());
    // The head alone, rewritten with a recomputed hash, has no successor to betray it, but
    // a predecessor that no longer matches does.
    connection
        .execute("DELETE FROM entry WHERE seq = 17", [])
        .expect("delete");
    assert!(store.chained_event(18).expect("read").is_none());
    assert!(store.chained_event(4).expect("read").is_some(), "untouched");
}

#[test]
fn a_store_gets_an_id_at_creation_that_never_changes() {
    let (directory, store) = two_runs();
    let id = store.store_id().expect("store id");
    drop(store);
    let reopened = AuditStore::open(directory.path()).expect("reopen");
    assert_eq!(
        reopened.store_id().expect("store id"),
        id,
        "kept across opens"
    );
    let other = tempfile::tempdir().expect("temp dir");
    let other = AuditStore::open(other.path()).expect("open");
    assert_ne!(other.store_id().expect("store id"), id, "random per store");
    let connection = raw(directory.path());
    for tamper in [
        "UPDATE store_identity SET id = '00000000000000000000000000000000'",
        "DELETE FROM store_identity",
    ] {
        let refused = connection.execute_batch(tamper).expect_err(tamper);
        assert!(refused.to_string().contains("never changes"), "{refused}");
    }
}

#[test]
fn a_store_from_before_store_ids_gets_one_on_its_first_open() {
    let (directory, store) = two_runs();
    drop(store);
    // What an upgrade finds: a database at migration 2, without the identity table.
    let connection = raw(directory.path());
    connection
        .execute_batch("DROP TABLE store_identity; PRAGMA user_version = 2;")
        .expect("downgrade");
    drop(connection);
    let upgraded = AuditStore::open(directory.path()).expect("open after upgrade");
    let id = upgraded.store_id().expect("an id after the upgrade");
    drop(upgraded);
    let again = AuditStore::open(directory.path()).expect("open again");
    assert_eq!(again.store_id().expect("store id"), id);
    assert!(again.verify(&[]).expect("verify").is_intact());
}

#[test]
fn the_request_hash_is_the_run_requested_event_hash_recomputed_from_its_row() {
    let (directory, store, connection) = two_runs_open_to_tampering();
    let stored: Vec<u8> = connection
        .query_row(
            "SELECT hash FROM entry WHERE seq = 12 AND kind = 'run_requested'",
            [],
            |row| row.get(0),
        )
        .expect("stored hash");
    let run = RunId::new(2);
    assert_eq!(
        store.request_hash(run).expect("request hash"),
        ChainHash::from_slice(&stored)
    );
    assert_eq!(store.request_hash(RunId::new(99)).expect("no run"), None);
    // Altering the request in place (another requester) changes the hash an approval must name.
    connection
        .execute("UPDATE entry SET user_name = 'mallory' WHERE seq = 12", [])
        .expect("tamper");
    assert_ne!(
        store.request_hash(run).expect("request hash"),
        ChainHash::from_slice(&stored)
    );
    drop(directory);
}
