//! Everything that can go wrong in the audit store, with hints for the operator.

use std::io;
use std::path::PathBuf;

use crate::audit::run::{RunId, RunStatus};

/// An audit-store failure. Display text follows the style guide (subject first, no trailing
/// period, the cause is rendered separately as `caused by:`); [`AuditError::hints`] says what to
/// do about it.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// The state directory is missing and could not be created.
    #[error("cannot create the state directory `{path}`")]
    CreateStateDir {
        /// The directory.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// The database file is not an `SQLite` database at all (random bytes, another format).
    #[error("audit database `{path}` is not an SQLite database")]
    NotADatabase {
        /// The file, left untouched.
        path: PathBuf,
    },
    /// `SQLite` reports the database as damaged.
    #[error("audit database `{path}` is corrupt")]
    Corrupt {
        /// The file, left untouched.
        path: PathBuf,
        /// What `SQLite` said.
        #[source]
        source: rusqlite::Error,
    },
    /// An `SQLite` database that opsgate did not create.
    #[error(
        "`{path}` is an SQLite database of another application (application_id {application_id:#010x})"
    )]
    ForeignDatabase {
        /// The file, left untouched.
        path: PathBuf,
        /// Its `PRAGMA application_id`.
        application_id: i32,
    },
    /// An audit database written by a newer opsgate.
    #[error(
        "audit database `{path}` has schema version {found}; this opsgate knows versions up to {supported}"
    )]
    NewerSchema {
        /// The file, left untouched.
        path: PathBuf,
        /// Its `PRAGMA user_version`.
        found: i64,
        /// The newest migration this build embeds.
        supported: i64,
    },
    /// The database cannot be written by this process.
    #[error("audit database `{path}` is read-only for this account")]
    ReadOnly {
        /// The file.
        path: PathBuf,
    },
    /// Any other `SQLite` failure.
    #[error("audit database `{path}` failed")]
    Database {
        /// The file.
        path: PathBuf,
        /// What `SQLite` said.
        #[source]
        source: rusqlite::Error,
    },
    /// A run's lock file could not be created or locked.
    #[error("cannot lock `{path}`")]
    Lock {
        /// The lock file.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// A fresh run id's lock is already held: another store shares this state directory's
    /// `runs/` directory (the database was replaced under a live run).
    #[error("lock `{path}` of new run {run} is held by another process")]
    LockHeld {
        /// The lock file.
        path: PathBuf,
        /// The run being started.
        run: RunId,
    },
    /// The OS random source failed while creating the store id.
    #[error("cannot draw a random store id for `{path}`")]
    Random {
        /// The database.
        path: PathBuf,
        /// What the OS said.
        #[source]
        source: getrandom::Error,
    },
    /// The store has no id, or one that does not parse (its table was tampered with).
    #[error("audit database `{path}` has no valid store id")]
    NoStoreId {
        /// The database.
        path: PathBuf,
    },
    /// No run has this id.
    #[error("run {run} does not exist")]
    UnknownRun {
        /// The id asked for.
        run: RunId,
    },
    /// An event was appended to a run that already ended.
    #[error("run {run} already finished as `{status}`")]
    RunClosed {
        /// The run.
        run: RunId,
        /// Its final status.
        status: RunStatus,
    },
    /// A record was handed to the wrong method (a `run_requested` to `append`, a run event
    /// without a run…).
    #[error("`{kind}` event {problem}")]
    Misplaced {
        /// The record's kind.
        kind: &'static str,
        /// What is wrong with where it was appended.
        problem: &'static str,
    },
    /// `run_finished` with a live status.
    #[error("`run_finished` needs a final status, not `{status}`")]
    NotFinal {
        /// The status given.
        status: RunStatus,
    },
    /// A stored body that does not parse although its hash matches (a bug, not tampering).
    #[error("event {seq} of kind `{kind}` cannot be read: {reason}")]
    Undecodable {
        /// The event.
        seq: u64,
        /// Its kind.
        kind: String,
        /// What the decoder said.
        reason: String,
    },
    /// A checkpoint file that does not parse.
    #[error("checkpoint `{path}` line {line}: {reason}")]
    CheckpointFormat {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// What is wrong.
        reason: String,
    },
    /// `ssh-keygen` could not sign or verify a checkpoint.
    #[error("`ssh-keygen -Y {operation}` failed: {message}")]
    SshKeygen {
        /// `sign`, `verify` or `find-principals`.
        operation: &'static str,
        /// Its standard error (or why it could not start).
        message: String,
    },
    /// A file could not be read.
    #[error("cannot read `{path}`")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// A file could not be written.
    #[error("cannot write `{path}`")]
    Write {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// Writing the command's output failed (a closed pipe, a full disk).
    #[error("cannot write the output")]
    Output(#[source] io::Error),
}

impl AuditError {
    /// What the operator can do about it; rendered after the error as `hint: …` lines.
    #[must_use]
    pub fn hints(&self) -> Vec<String> {
        match self {
            AuditError::CreateStateDir { .. } => vec![
                "choose a writable state directory with `--state-dir` or `OPSGATE_STATE_DIR`"
                    .into(),
            ],
            AuditError::NotADatabase { path } | AuditError::Corrupt { path, .. } => vec![
                format!(
                    "opsgate never overwrites `{}`: keep it as evidence, restore the audit database from a backup, or move it aside to start a new history",
                    path.display()
                ),
                "`opsgate audit verify --checkpoint FILE` on the restored copy shows how much of the history it holds".into(),
            ],
            AuditError::ForeignDatabase { .. } => vec![
                "give opsgate a state directory of its own with `--state-dir`; it never writes into a database it did not create".into(),
            ],
            AuditError::NewerSchema { .. } => {
                vec!["upgrade opsgate; an older build must not write a newer history".into()]
            }
            AuditError::ReadOnly { .. } => vec![
                "the state directory and its database must be writable by the account that runs opsgate (in production: the service account, through `sudo -u`)".into(),
                "nothing was run: opsgate refuses to touch a host it cannot record".into(),
            ],
            AuditError::Database { source, .. } => {
                if matches!(
                    source.sqlite_error_code(),
                    Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
                ) {
                    vec!["another opsgate process held the audit database for too long; retry".into()]
                } else {
                    Vec::new()
                }
            }
            AuditError::Lock { .. } | AuditError::LockHeld { .. } => vec![
                "the state directory's `runs/` directory must be writable and on a local filesystem (flock)".into(),
            ],
            AuditError::UnknownRun { .. } => vec!["`opsgate history` lists run ids".into()],
            AuditError::NoStoreId { .. } => vec![
                "the store's identity table was altered: keep the database as evidence and run `opsgate audit verify`".into(),
            ],
            AuditError::Random { .. } => Vec::new(),
            AuditError::RunClosed { .. }
            | AuditError::Misplaced { .. }
            | AuditError::NotFinal { .. }
            | AuditError::Undecodable { .. } => {
                vec!["this is a bug in opsgate; please report it with `opsgate audit export --jsonl`".into()]
            }
            AuditError::CheckpointFormat { .. } => vec![
                "a checkpoint is what `opsgate audit checkpoint` printed, unchanged; several may follow each other in one file".into(),
            ],
            AuditError::SshKeygen { operation: "sign", .. } => vec![
                "`--key` takes a private key file, or a public key whose private half is in the ssh-agent".into(),
            ],
            AuditError::SshKeygen { .. } => vec![
                "`--allowed-signers` takes an ssh allowed-signers file: `principal ssh-ed25519 AAAA…` per line".into(),
            ],
            AuditError::Read { .. } | AuditError::Write { .. } | AuditError::Output(_) => {
                Vec::new()
            }
        }
    }

    /// Maps an `SQLite` error on the database at `path` to the variant that explains it best.
    pub(crate) fn from_sqlite(path: &std::path::Path, source: rusqlite::Error) -> AuditError {
        let path = path.to_path_buf();
        match source.sqlite_error_code() {
            Some(rusqlite::ErrorCode::NotADatabase) => AuditError::NotADatabase { path },
            Some(rusqlite::ErrorCode::DatabaseCorrupt) => AuditError::Corrupt { path, source },
            Some(rusqlite::ErrorCode::ReadOnly) => AuditError::ReadOnly { path },
            _ => AuditError::Database { path, source },
        }
    }
}
