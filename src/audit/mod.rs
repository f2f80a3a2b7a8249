//! The tamper-evident audit history: every run, gate decision and approval, as an append-only,
//! hash-chained log of events in `SQLite`.
//!
//! This module owns the database in the state directory and nothing else: it never talks to a
//! host, never prints, and never sees a secret (callers mask secrets as `***` before building
//! a [`Record`]; see [`record`]). It is the `record` end of the pipeline and the source of
//! approvals that other operators' processes hand to a waiting run.
//!
//! # How a run is recorded
//!
//! ```text
//! AuditStore::open          create/migrate; mark dead runs `interrupted`
//! begin_run(RunRequested)   → RunId + RunLock (flock on runs/<id>.lock)
//! append(GateDecision / ApprovalRequested / ApprovalGranted …)
//! append(RunStarted)        committed before the first host is contacted
//! append(StepStarted)       committed before the step's command is sent
//! append(StepFinished | HostUnreachable)
//! append(RunFinished)       then drop the RunLock
//! ```
//!
//! If the process dies anywhere in between, its lock is released by the kernel and the next
//! opsgate command that opens the store appends `run_finished` with status `interrupted` and
//! what is known of each host: never a silent gap, never a run that stays `running` forever.
//!
//! # Tamper evidence
//!
//! Each event stores `prev_hash` and `hash = SHA-256(tag ‖ version ‖ prev_hash ‖ canonical
//! event)` ([`chain`], `canonical`, [`record`]). Triggers reject UPDATE and DELETE (defence in
//! depth); [`AuditStore::verify`] is the real guarantee and names the first altered, inserted or
//! removed event. [`Checkpoint`]s kept outside the database add truncation and
//! rewritten-history detection ([`checkpoint`]).
//!
//! # Files
//! - [`store`]: opening, migrations, appends, the interrupted-run sweep.
//! - [`store_id`]: the store's random, permanent id, which signed approvals name.
//! - [`lock`]: the per-run `flock`.
//! - `index`: the derived run index behind fast listings (rebuilt and compared by `verify`).
//! - [`query`]: listings, run details, the JSON Lines export (format documented there).
//! - [`backups`]: the backups recorded by `backup` steps, for `opsgate backups`.
//! - [`verify`] and [`checkpoint`]: `audit verify` and `audit checkpoint`.

pub mod actor;
pub mod backups;
mod canonical;
pub mod chain;
pub mod checkpoint;
pub mod error;
mod index;
pub mod lock;
pub mod output;
pub mod query;
pub mod record;
pub mod run;
pub mod store;
pub mod store_id;
pub mod verify;

pub use actor::Actor;
pub use backups::{BackupEntry, BackupFilter};
pub use chain::ChainHash;
pub use checkpoint::Checkpoint;
pub use error::AuditError;
pub use lock::RunLock;
pub use output::{OUTPUT_EXCERPT_BYTES, Output};
pub use query::{
    Event, HostHistory, Recap, RunDetail, RunFilter, RunSummary, StepHistory, StepResult,
};
pub use record::{ApprovalTarget, GateOutcome, Record, StepStatus};
pub use run::{ParseRunIdError, ParseRunStatusError, RunId, RunStatus};
pub use store::AuditStore;
pub use store_id::{ParseStoreIdError, StoreId};
pub use verify::{ChainBreak, CheckpointCheck, CheckpointFinding, IndexProblem, VerifyReport};
