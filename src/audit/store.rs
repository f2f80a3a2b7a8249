//! The `SQLite` audit store: opening (and refusing) databases, migrations, appending, and the
//! sweep that turns abandoned runs into `interrupted` ones.
//!
//! # Durability and concurrency
//!
//! - One database file, `<state dir>/audit.db`, in WAL mode with `synchronous=FULL`: an append
//!   that returned is on disk, and readers (`history`) never block writers or each other.
//! - Every append is its own short `BEGIN IMMEDIATE` transaction that reads the chain head
//!   *inside* the transaction, so concurrent writers in separate processes serialize on `SQLite`'s
//!   write lock (retrying every millisecond for up to [`BUSY_TIMEOUT`]) and the chain stays
//!   linear. A store is one
//!   connection; a process should have one writer (`&mut self` on every append enforces it for
//!   a store value).
//! - The event announcing an action is committed before the caller starts the action: the
//!   caller appends `run_started` / `step_started`, and only then contacts the host.
//!
//! # Refusing bad state
//!
//! A missing state directory is created (mode 0700). An existing file that is not an `SQLite`
//! database, an `SQLite` database of another application (`PRAGMA application_id`), or one from
//! a newer opsgate (`PRAGMA user_version`) is refused with a clear error before anything is
//! written to it. A store that cannot be written fails at [`AuditStore::open`] — before any host
//! is touched — rather than at the end of a run.
//!
//! # Migrations
//!
//! Numbered SQL files in `audit/migrations/`, embedded at build time, applied in order inside
//! one transaction each; `user_version` records the last one applied. A landed migration is
//! never edited (a test pins their digests); schema changes are new files.

use std::fmt::Write as _;
use std::fs::DirBuilder;
use std::io::Read;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{
    Connection, OpenFlags, OptionalExtension, Transaction, TransactionBehavior, params,
};

use crate::audit::actor::Actor;
use crate::audit::chain::{ChainHash, Envelope, FORMAT_VERSION};
use crate::audit::error::AuditError;
use crate::audit::index::RunRow;
use crate::audit::lock::{LOCK_DIRECTORY, RunLock};
use crate::audit::query::StoredEntry;
use crate::audit::record::{Record, StepStatus};
use crate::audit::run::{RunId, RunStatus};
use crate::audit::store_id::StoreId;

/// The database file inside the state directory.
pub const DATABASE_FILE: &str = "audit.db";

/// `PRAGMA application_id` of an opsgate audit database ("OPSG").
pub const APPLICATION_ID: i32 = 0x4f50_5347;

/// How long an append waits for another process's write transaction before giving up.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

/// How often a waiting writer retries. `SQLite`'s default busy handler backs off to 100 ms
/// sleeps, which lets a process that appends back-to-back starve another writer (measured: two
/// processes appending in a loop barely interleaved); retrying every millisecond gets the waiting
/// writer in at the next gap between the other's transactions.
const BUSY_POLL: Duration = Duration::from_millis(1);

/// `BUSY_TIMEOUT` in retries of `BUSY_POLL`.
const BUSY_ATTEMPTS: u128 = BUSY_TIMEOUT.as_millis() / BUSY_POLL.as_millis();

/// The first 16 bytes of every `SQLite` database file.
const SQLITE_MAGIC: &[u8; 16] = b"SQLite format 3\0";

/// One embedded migration.
struct Migration {
    version: i64,
    name: &'static str,
    sql: &'static str,
}

/// Every migration, in order. Append only; never edit a landed entry or its file.
const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "0001_initial.sql",
        sql: include_str!("migrations/0001_initial.sql"),
    },
    Migration {
        version: 2,
        name: "0002_backup_index.sql",
        sql: include_str!("migrations/0002_backup_index.sql"),
    },
    Migration {
        version: 3,
        name: "0003_store_id.sql",
        sql: include_str!("migrations/0003_store_id.sql"),
    },
];

/// The append-only, hash-chained audit history of one state directory.
#[derive(Debug)]
pub struct AuditStore {
    pub(crate) connection: Connection,
    pub(crate) state_dir: PathBuf,
    pub(crate) path: PathBuf,
    interrupted: Vec<RunId>,
}

/// Converts `SQLite` errors into [`AuditError`]s that name the database.
pub(crate) trait InStore<T> {
    /// Attaches the database path to an `SQLite` error.
    fn in_store(self, path: &Path) -> Result<T, AuditError>;
}

impl<T> InStore<T> for rusqlite::Result<T> {
    fn in_store(self, path: &Path) -> Result<T, AuditError> {
        self.map_err(|error| AuditError::from_sqlite(path, error))
    }
}

impl AuditStore {
    /// Opens the store of `state_dir`: creates the directory and the database when missing,
    /// refuses foreign or corrupt files, applies migrations, and records as `interrupted` every
    /// live run whose lock is free (its process died).
    pub fn open(state_dir: &Path) -> Result<AuditStore, AuditError> {
        create_directory(state_dir)?;
        create_directory(&state_dir.join(LOCK_DIRECTORY))?;
        let path = state_dir.join(DATABASE_FILE);
        check_header(&path)?;
        let connection = Connection::open_with_flags(
            &path,
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_CREATE
                | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .in_store(&path)?;
        // SQLite silently opens a file it may not write read-only; WAL also needs to create
        // files beside the database. Refuse both here, before any host is touched.
        if connection.is_readonly(rusqlite::MAIN_DB).in_store(&path)?
            || !is_writable_directory(state_dir)
        {
            return Err(AuditError::ReadOnly { path });
        }
        connection
            .busy_handler(Some(wait_for_writer))
            .in_store(&path)?;
        check_identity(&connection, &path)?;
        // Both settings are set on every open: journal_mode persists in the file, synchronous
        // is per connection. FULL makes each commit durable even in WAL mode.
        let mode = switch_to_wal(&connection, &path)?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(AuditError::ReadOnly { path });
        }
        connection
            .pragma_update(None, "synchronous", "FULL")
            .in_store(&path)?;
        let mut store = AuditStore {
            connection,
            state_dir: state_dir.to_path_buf(),
            path,
            interrupted: Vec::new(),
        };
        store.migrate()?;
        store.create_store_id()?;
        store.interrupted = store.sweep_interrupted()?;
        Ok(store)
    }

    /// A second connection to the same database, for another task of this process (a watcher
    /// polling for approvals while the run records its steps).
    ///
    /// Never call [`AuditStore::open`] twice in one process while a store is open: it reads the
    /// file's header through its own file descriptor, and closing any descriptor of a file drops
    /// every POSIX lock the process holds on it, including `SQLite`'s. Other processes then take
    /// this process for gone, may checkpoint and delete the WAL under it, and commits are lost
    /// (observed: an approval appended by another process overwritten by a later event). This
    /// opens the connection through `SQLite` alone, which shares its locks per file.
    pub fn connect_again(&self) -> Result<AuditStore, AuditError> {
        let path = self.path.clone();
        let connection = Connection::open_with_flags(
            &path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .in_store(&path)?;
        connection
            .busy_handler(Some(wait_for_writer))
            .in_store(&path)?;
        connection
            .pragma_update(None, "synchronous", "FULL")
            .in_store(&path)?;
        Ok(AuditStore {
            connection,
            state_dir: self.state_dir.clone(),
            path,
            interrupted: Vec::new(),
        })
    }

    /// The runs this open recorded as `interrupted` (their process had died), so the command
    /// can tell the operator.
    #[must_use]
    pub fn interrupted_at_open(&self) -> &[RunId] {
        &self.interrupted
    }

    /// The database file.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Starts a run: appends its `run_requested` event (committed when this returns) and takes
    /// the run's lock. Hold the [`RunLock`] until the run's `run_finished` event is appended.
    pub fn begin_run(
        &mut self,
        actor: &Actor,
        requested: Record,
    ) -> Result<(RunId, RunLock), AuditError> {
        if !matches!(requested, Record::RunRequested { .. }) {
            return Err(AuditError::Misplaced {
                kind: requested.kind(),
                problem: "cannot start a run; `begin_run` takes a `run_requested` record",
            });
        }
        let path = self.path.clone();
        let transaction = write_transaction(&mut self.connection, &path)?;
        let (last_seq, prev_hash) = head(&transaction).in_store(&path)?;
        let seq = last_seq + 1;
        let run = next_run_id(&transaction).in_store(&path)?;
        // The lock is taken before the event commits: no other process can ever see this run
        // as live with a free lock.
        let lock_path = crate::audit::lock::lock_path(&self.state_dir, run);
        let mut lock = RunLock::try_acquire(&self.state_dir, run)
            .map_err(|source| AuditError::Lock {
                path: lock_path.clone(),
                source,
            })?
            .ok_or(AuditError::LockHeld {
                path: lock_path.clone(),
                run,
            })?;
        lock.write_holder().map_err(|source| AuditError::Lock {
            path: lock_path,
            source,
        })?;
        let at = now_microsecond();
        insert_entry(
            &transaction,
            seq,
            &prev_hash,
            at,
            Some(run),
            actor,
            &requested,
        )
        .in_store(&path)?;
        let row = RunRow::from_request(run, at, requested).ok_or(AuditError::Misplaced {
            kind: "run_requested",
            problem: "is malformed",
        })?;
        insert_run_row(&transaction, &row).in_store(&path)?;
        transaction.commit().in_store(&path)?;
        Ok((run, lock))
    }

    /// Appends an event of a live run; it is committed (durable) when this returns. Returns
    /// the event's `seq`.
    pub fn append(
        &mut self,
        run: RunId,
        actor: &Actor,
        record: &Record,
    ) -> Result<u64, AuditError> {
        if matches!(record, Record::RunRequested { .. }) {
            return Err(AuditError::Misplaced {
                kind: record.kind(),
                problem: "starts a run; use `begin_run`",
            });
        }
        if !record.needs_run() {
            return Err(AuditError::Misplaced {
                kind: record.kind(),
                problem: "belongs to no run; use `append_detached`",
            });
        }
        if let Record::RunFinished { status, .. } = record {
            if status.is_live() {
                return Err(AuditError::NotFinal { status: *status });
            }
        }
        let path = self.path.clone();
        let transaction = self.write_transaction()?;
        let seq = append_to_run(&transaction, run, actor, record).map_err(|error| match error {
            AppendError::Sqlite(source) => AuditError::from_sqlite(&path, source),
            AppendError::Audit(error) => error,
        })?;
        transaction.commit().in_store(&path)?;
        Ok(seq)
    }

    /// Ends a run: appends its `run_finished` event, then releases its lock — in that order,
    /// so the run is never seen live with a free lock. When the append fails the lock is
    /// released all the same, and the next open records the run as `interrupted`, which is then
    /// the truth: its end could not be recorded.
    pub fn finish_run(
        &mut self,
        lock: RunLock,
        actor: &Actor,
        status: RunStatus,
        message: Option<String>,
    ) -> Result<u64, AuditError> {
        let seq = self.append(lock.run(), actor, &Record::RunFinished { status, message });
        drop(lock);
        seq
    }

    /// Appends an event that belongs to no run (`runbook_approved`, approvals of saved plans).
    pub fn append_detached(&mut self, actor: &Actor, record: &Record) -> Result<u64, AuditError> {
        if record.needs_run() {
            return Err(AuditError::Misplaced {
                kind: record.kind(),
                problem: "belongs to a run; use `append` with its run id",
            });
        }
        let path = self.path.clone();
        let transaction = self.write_transaction()?;
        let (last_seq, prev_hash) = head(&transaction).in_store(&path)?;
        let seq = last_seq + 1;
        insert_entry(
            &transaction,
            seq,
            &prev_hash,
            now_microsecond(),
            None,
            actor,
            record,
        )
        .in_store(&path)?;
        transaction.commit().in_store(&path)?;
        Ok(seq)
    }

    /// A `BEGIN IMMEDIATE` transaction: takes the write lock up front (waiting for other
    /// writers), so reading the chain head inside it is race-free.
    pub(crate) fn write_transaction(&mut self) -> Result<Transaction<'_>, AuditError> {
        write_transaction(&mut self.connection, &self.path)
    }

    fn migrate(&mut self) -> Result<(), AuditError> {
        let path = self.path.clone();
        for migration in MIGRATIONS {
            let transaction = self.write_transaction()?;
            // Re-read inside the write lock: another process may have migrated meanwhile.
            let version: i64 = transaction
                .pragma_query_value(None, "user_version", |row| row.get(0))
                .in_store(&path)?;
            if version >= migration.version {
                continue;
            }
            if version == 0 {
                transaction
                    .pragma_update(None, "application_id", APPLICATION_ID)
                    .in_store(&path)?;
            }
            transaction
                .execute_batch(migration.sql)
                .map_err(|source| AuditError::Database {
                    path: path.join(migration.name),
                    source,
                })?;
            transaction
                .pragma_update(None, "user_version", migration.version)
                .in_store(&path)?;
            transaction.commit().in_store(&path)?;
        }
        Ok(())
    }

    /// Gives the store its id if it has none: a new store, or one created before migration 3.
    /// Inside the write lock, so of two processes opening a store at once exactly one draws it.
    fn create_store_id(&mut self) -> Result<(), AuditError> {
        let path = self.path.clone();
        let exists = |connection: &Connection| {
            connection
                .query_row("SELECT count(*) FROM store_identity", [], |row| {
                    row.get::<_, i64>(0)
                })
                .in_store(&path)
        };
        if exists(&self.connection)? > 0 {
            return Ok(());
        }
        let id = StoreId::random().map_err(|source| AuditError::Random {
            path: path.clone(),
            source,
        })?;
        let transaction = self.write_transaction()?;
        if exists(&transaction)? == 0 {
            transaction
                .execute(
                    "INSERT INTO store_identity (singleton, id) VALUES (1, ?1)",
                    [id.to_string()],
                )
                .in_store(&path)?;
        }
        transaction.commit().in_store(&path)
    }

    /// This store's id (SPEC §4.6): random, created with the store, never changed.
    pub fn store_id(&self) -> Result<StoreId, AuditError> {
        let text: Option<String> = self
            .connection
            .query_row(
                "SELECT id FROM store_identity WHERE singleton = 1",
                [],
                |row| row.get(0),
            )
            .optional()
            .in_store(&self.path)?;
        text.and_then(|text| text.parse().ok())
            .ok_or_else(|| AuditError::NoStoreId {
                path: self.path.clone(),
            })
    }

    /// The hash of run `run`'s `run_requested` event, recomputed from the stored row (its
    /// `prev_hash` and content), not read from its `hash` column: what a signed run approval
    /// names, so a request whose runbook, params, hosts or requester were altered in place no
    /// longer matches any approval signed for it. `None` when the run has no such event.
    pub fn request_hash(&self, run: RunId) -> Result<Option<ChainHash>, AuditError> {
        let mut statement = self
            .connection
            .prepare_cached(&StoredEntry::select(
                "WHERE run_id = ?1 AND kind = 'run_requested' ORDER BY seq LIMIT 1",
            ))
            .in_store(&self.path)?;
        let entry = statement
            .query_row([run.get()], StoredEntry::from_row)
            .optional()
            .in_store(&self.path)?;
        Ok(entry.and_then(|entry| {
            let prev_hash = ChainHash::from_slice(&entry.prev_hash)?;
            Some(entry.envelope().hash(&prev_hash))
        }))
    }

    /// Records every live run whose lock is free as `interrupted`, with what is known of each
    /// host. Runs locked by a live process (in this process or another) are left alone.
    fn sweep_interrupted(&mut self) -> Result<Vec<RunId>, AuditError> {
        let path = self.path.clone();
        let live: Vec<i64> = {
            let mut statement = self
                .connection
                .prepare("SELECT run_id FROM run WHERE status IN ('running', 'pending')")
                .in_store(&path)?;
            statement
                .query_map([], |row| row.get(0))
                .and_then(Iterator::collect)
                .in_store(&path)?
        };
        // Take the free locks first and keep them until the commit, so the dead runs cannot be
        // claimed twice; most opens find nothing and never start a write transaction.
        let mut abandoned = Vec::new();
        for run in live.into_iter().map(RunId::new) {
            let lock_path = crate::audit::lock::lock_path(&self.state_dir, run);
            if let Some(lock) =
                RunLock::try_acquire(&self.state_dir, run).map_err(|source| AuditError::Lock {
                    path: lock_path,
                    source,
                })?
            {
                abandoned.push(lock);
            }
        }
        if abandoned.is_empty() {
            return Ok(Vec::new());
        }
        let mut interrupted = Vec::new();
        let actor = Actor::current();
        let transaction = write_transaction(&mut self.connection, &path)?;
        for lock in &mut abandoned {
            let run = lock.run();
            let Some(row) = load_run_row(&transaction, run).in_store(&path)? else {
                continue;
            };
            // Finished between the first look and the lock (a normal end): nothing to do.
            if !row.status.is_live() {
                continue;
            }
            let message =
                describe_abandoned(&transaction, &row, lock.previous_holder()).in_store(&path)?;
            let record = Record::RunFinished {
                status: RunStatus::Interrupted,
                message: Some(message),
            };
            append_to_run(&transaction, run, &actor, &record).map_err(|error| match error {
                AppendError::Sqlite(source) => AuditError::from_sqlite(&path, source),
                AppendError::Audit(error) => error,
            })?;
            interrupted.push(run);
        }
        transaction.commit().in_store(&path)?;
        // Dropping the locks removes their files.
        drop(abandoned);
        Ok(interrupted)
    }
}

/// `SQLite` busy handler: sleep [`BUSY_POLL`] and retry, up to [`BUSY_TIMEOUT`] in all.
fn wait_for_writer(attempts: i32) -> bool {
    if u128::try_from(attempts).unwrap_or(u128::MAX) >= BUSY_ATTEMPTS {
        return false;
    }
    // SQLite calls this synchronously from inside its locking code; there is no runtime to yield
    // to here, and the store is used from a blocking context (its own thread or spawn_blocking).
    #[expect(clippy::disallowed_methods, reason = "a synchronous SQLite callback")]
    std::thread::sleep(BUSY_POLL);
    true
}

/// Switches the database to WAL and returns the journal mode now in force.
///
/// The switch needs the database to itself, and `SQLite` answers "database is locked" at once,
/// without calling the busy handler, while another process holds it (measured: two processes
/// creating one state directory together failed one open in ~40). It is retried here with the
/// writers' patience instead; once the file is in WAL mode the pragma takes no lock at all.
fn switch_to_wal(connection: &Connection, path: &Path) -> Result<String, AuditError> {
    let mut attempts = 0;
    loop {
        match connection.pragma_update_and_check(None, "journal_mode", "wal", |row| row.get(0)) {
            Err(error)
                if error.sqlite_error_code() == Some(rusqlite::ErrorCode::DatabaseBusy)
                    && wait_for_writer(attempts) =>
            {
                attempts = attempts.saturating_add(1);
            }
            result => return result.in_store(path),
        }
    }
}

/// The id of the next run: one more than the highest run id in the log, so runs are numbered
/// 1, 2, 3 … (read inside the append's write transaction, so two processes never take the same).
///
/// Stores written before this rule numbered a run by its `run_requested` event's `seq` (1, 47,
/// 66 …); those ids stay as they were recorded — they are hashed into the chain — and the next
/// run follows the highest of them. `entry_by_run` makes the lookup one index probe.
fn next_run_id(transaction: &Transaction<'_>) -> rusqlite::Result<RunId> {
    let highest: Option<i64> =
        transaction.query_row("SELECT MAX(run_id) FROM entry", [], |row| row.get(0))?;
    Ok(RunId::new(highest.unwrap_or(0) + 1))
}

fn write_transaction<'a>(
    connection: &'a mut Connection,
    path: &Path,
) -> Result<Transaction<'a>, AuditError> {
    connection
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .in_store(path)
}

fn create_directory(path: &Path) -> Result<(), AuditError> {
    DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)
        .map_err(|source| AuditError::CreateStateDir {
            path: path.to_path_buf(),
            source,
        })
}

/// Whether this process may create files in `directory` (EROFS and EACCES both say no; root
/// passes unless the filesystem is read-only).
fn is_writable_directory(directory: &Path) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let Ok(path) = std::ffi::CString::new(directory.as_os_str().as_bytes()) else {
        return false;
    };
    // SAFETY: `path` is a valid NUL-terminated string for the duration of the call.
    unsafe { libc::access(path.as_ptr(), libc::W_OK | libc::X_OK) == 0 }
}

/// Refuses a non-empty file that does not start with the `SQLite` magic, before `SQLite` sees it.
fn check_header(path: &Path) -> Result<(), AuditError> {
    let mut file = match std::fs::File::open(path) {
        Ok(file) => file,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(source) => {
            return Err(AuditError::Read {
                path: path.to_path_buf(),
                source,
            });
        }
    };
    let mut header = Vec::with_capacity(SQLITE_MAGIC.len());
    file.by_ref()
        .take(SQLITE_MAGIC.len() as u64)
        .read_to_end(&mut header)
        .map_err(|source| AuditError::Read {
            path: path.to_path_buf(),
            source,
        })?;
    if header.is_empty() || header == SQLITE_MAGIC {
        Ok(())
    } else {
        Err(AuditError::NotADatabase {
            path: path.to_path_buf(),
        })
    }
}

/// Accepts an opsgate database of a known schema version, or an empty one; refuses the rest.
fn check_identity(connection: &Connection, path: &Path) -> Result<(), AuditError> {
    let application_id: i32 = connection
        .pragma_query_value(None, "application_id", |row| row.get(0))
        .in_store(path)?;
    let version: i64 = connection
        .pragma_query_value(None, "user_version", |row| row.get(0))
        .in_store(path)?;
    let objects: i64 = connection
        .query_row("SELECT count(*) FROM sqlite_schema", [], |row| row.get(0))
        .in_store(path)?;
    let supported = MIGRATIONS.last().map_or(0, |migration| migration.version);
    let is_empty = application_id == 0 && version == 0 && objects == 0;
    if application_id != APPLICATION_ID && !is_empty {
        return Err(AuditError::ForeignDatabase {
            path: path.to_path_buf(),
            application_id,
        });
    }
    if version > supported {
        return Err(AuditError::NewerSchema {
            path: path.to_path_buf(),
            found: version,
            supported,
        });
    }
    Ok(())
}

/// A count or seq as an `SQLite` integer. Seqs come from `SQLite` rows and lengths from memory, so
/// neither comes near `i64::MAX`; saturating keeps the conversion total anyway.
pub(crate) fn sql_integer(value: impl TryInto<i64>) -> i64 {
    value.try_into().unwrap_or(i64::MAX)
}

pub(crate) fn now_microsecond() -> i64 {
    jiff::Timestamp::now().as_microsecond()
}

/// The last event's seq and hash (0 and the genesis hash for an empty history).
fn head(connection: &Connection) -> rusqlite::Result<(u64, ChainHash)> {
    let head = connection
        .query_row(
            "SELECT seq, hash FROM entry ORDER BY seq DESC LIMIT 1",
            [],
            |row| Ok((row.get::<_, i64>(0)?, row.get::<_, Vec<u8>>(1)?)),
        )
        .optional()?;
    Ok(match head {
        None => (0, ChainHash::GENESIS),
        // A damaged head hash cannot be chained onto; hashing onto zeros keeps appending
        // possible and `audit verify` reports the damaged row.
        Some((seq, hash)) => (
            seq as u64,
            ChainHash::from_slice(&hash).unwrap_or(ChainHash::GENESIS),
        ),
    })
}

fn insert_entry(
    connection: &Connection,
    seq: u64,
    prev_hash: &ChainHash,
    at: i64,
    run: Option<RunId>,
    actor: &Actor,
    record: &Record,
) -> rusqlite::Result<()> {
    let body = record.encode();
    let kind = record.kind();
    let envelope = Envelope {
        seq,
        at_microsecond: at,
        run: run.map(RunId::get),
        kind,
        actor,
        body: &body,
    };
    let hash = envelope.hash(prev_hash);
    connection
        .prepare_cached(
            "INSERT INTO entry (seq, version, at, run_id, kind, uid, user_name, sudo_user, \
             login_uid, body, prev_hash, hash) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
        )?
        .execute(params![
            sql_integer(seq),
            FORMAT_VERSION,
            at,
            run.map(RunId::get),
            kind,
            actor.uid,
            actor.user,
            actor.sudo_user,
            actor.login_uid,
            body,
            prev_hash.0.as_slice(),
            hash.0.as_slice(),
        ])?;
    Ok(())
}

fn insert_run_row(connection: &Connection, row: &RunRow) -> rusqlite::Result<()> {
    connection
        .prepare_cached(
            "INSERT INTO run (run_id, requested_at, operator, runbook, runbook_sha256, pattern, \
             host_count, check_mode, status, started_at, finished_at, message) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
        )?
        .execute(params![
            row.run.get(),
            row.requested_at,
            row.operator,
            row.runbook,
            row.runbook_sha256,
            row.pattern,
            sql_integer(row.hosts.len()),
            row.check,
            row.status.as_str(),
            row.started_at,
            row.finished_at,
            row.message,
        ])?;
    let mut statement = connection
        .prepare_cached("INSERT INTO run_host (run_id, position, host) VALUES (?1, ?2, ?3)")?;
    for (position, host) in row.hosts.iter().enumerate() {
        statement.execute(params![row.run.get(), sql_integer(position), host])?;
    }
    Ok(())
}

/// The run's row without its hosts (appends do not need them).
pub(crate) fn load_run_row(
    connection: &Connection,
    run: RunId,
) -> rusqlite::Result<Option<RunRow>> {
    connection
        .prepare_cached(
            "SELECT requested_at, operator, runbook, runbook_sha256, pattern, check_mode, status, \
             started_at, finished_at, message FROM run WHERE run_id = ?1",
        )?
        .query_row([run.get()], |row| {
            let status: String = row.get(6)?;
            Ok(RunRow {
                run,
                requested_at: row.get(0)?,
                operator: row.get(1)?,
                runbook: row.get(2)?,
                runbook_sha256: row.get(3)?,
                pattern: row.get(4)?,
                hosts: Vec::new(),
                check: row.get(5)?,
                status: parse_status(6, &status)?,
                started_at: row.get(7)?,
                finished_at: row.get(8)?,
                message: row.get(9)?,
            })
        })
        .optional()
}

/// Reads a status column; an unknown name is reported as a conversion error of `column`.
pub(crate) fn parse_status(column: usize, text: &str) -> rusqlite::Result<RunStatus> {
    text.parse::<RunStatus>().map_err(|error| {
        rusqlite::Error::FromSqlConversionFailure(
            column,
            rusqlite::types::Type::Text,
            Box::new(error),
        )
    })
}

fn update_run_row(connection: &Connection, row: &RunRow) -> rusqlite::Result<()> {
    connection
        .prepare_cached(
            "UPDATE run SET status = ?2, started_at = ?3, finished_at = ?4, message = ?5 \
             WHERE run_id = ?1",
        )?
        .execute(params![
            row.run.get(),
            row.status.as_str(),
            row.started_at,
            row.finished_at,
            row.message
        ])?;
    Ok(())
}

enum AppendError {
    Sqlite(rusqlite::Error),
    Audit(AuditError),
}

impl From<rusqlite::Error> for AppendError {
    fn from(error: rusqlite::Error) -> Self {
        AppendError::Sqlite(error)
    }
}

/// Appends `record` to live run `run` inside `transaction` and keeps the index in step.
fn append_to_run(
    transaction: &Transaction<'_>,
    run: RunId,
    actor: &Actor,
    record: &Record,
) -> Result<u64, AppendError> {
    let mut row = load_run_row(transaction, run)?
        .ok_or(AppendError::Audit(AuditError::UnknownRun { run }))?;
    if !row.status.is_live() {
        return Err(AppendError::Audit(AuditError::RunClosed {
            run,
            status: row.status,
        }));
    }
    let (last_seq, prev_hash) = head(transaction)?;
    let seq = last_seq + 1;
    let at = now_microsecond();
    insert_entry(transaction, seq, &prev_hash, at, Some(run), actor, record)?;
    if row.apply(at, record) {
        update_run_row(transaction, &row)?;
    }
    Ok(seq)
}

/// Where each host of an abandoned run stood, for its `run_finished` message.
fn describe_abandoned(
    connection: &Connection,
    row: &RunRow,
    holder: Option<u32>,
) -> rusqlite::Result<String> {
    #[derive(Default)]
    struct HostState {
        running: Option<(u32, String)>,
        finished: Option<(u32, String, StepStatus)>,
        unreachable: bool,
    }
    let hosts: Vec<String> = connection
        .prepare_cached("SELECT host FROM run_host WHERE run_id = ?1 ORDER BY position")?
        .query_map([row.run.get()], |row| row.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    let mut states: Vec<(String, HostState)> = hosts
        .into_iter()
        .map(|host| (host, HostState::default()))
        .collect();
    let mut started = false;
    let mut statement =
        connection.prepare_cached("SELECT kind, body FROM entry WHERE run_id = ?1 ORDER BY seq")?;
    let mut rows = statement.query([row.run.get()])?;
    while let Some(entry) = rows.next()? {
        let kind: String = entry.get(0)?;
        let body: Vec<u8> = entry.get(1)?;
        // A body that does not decode says nothing about the hosts; `audit verify` reports it.
        let Ok(Some(record)) = Record::decode(&kind, &body) else {
            continue;
        };
        let host = match &record {
            Record::RunStarted => {
                started = true;
                continue;
            }
            Record::StepStarted { host, .. }
            | Record::StepFinished { host, .. }
            | Record::HostUnreachable { host, .. } => host.clone(),
            _ => continue,
        };
        let Some((_, state)) = states.iter_mut().find(|(name, _)| *name == host) else {
            continue;
        };
        match record {
            Record::StepStarted { step, name, .. } => state.running = Some((step, name)),
            Record::StepFinished {
                step,
                name,
                status: result,
                ..
            } => {
                state.running = None;
                state.finished = Some((step, name, result));
            }
            Record::HostUnreachable { .. } => state.unreachable = true,
            _ => {}
        }
    }
    let process = holder.map_or_else(
        || "the opsgate process".to_owned(),
        |pid| format!("the opsgate process (pid {pid})"),
    );
    if !started {
        return Ok(format!("{process} ended before any host was contacted"));
    }
    let mut message = format!("{process} ended without finishing the run");
    for (host, state) in states {
        let what = match (state.running, state.finished) {
            (Some((step, name)), _) => format!("step {step} `{name}` started, no result"),
            (None, Some((step, name, result))) => {
                format!("last finished step {step} `{name}` ({result})")
            }
            (None, None) => "no step started".to_owned(),
        };
        let unreachable = if state.unreachable {
            ", unreachable"
        } else {
            ""
        };
        let _ = write!(message, "; {host}: {what}{unreachable}");
    }
    Ok(message)
}

#[cfg(test)]
pub(crate) mod tests;
