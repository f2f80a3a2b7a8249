//! opsgate validates, plans, gates and runs declarative runbooks over SSH, and records every run
//! in a tamper-evident audit history.
//!
//! # The pipeline is the architecture
//!
//! ```text
//! front ends   cli (terminal)                  service (team mode: Unix socket, peer uid)
//!                      └───────────────┬───────────────┘
//! operations                          ops  (run, plan, approve, pending, catalog, history, …)
//!                                      │
//! stages       load ──▶ validate ──▶ plan ──▶ gate ──▶ execute ──▶ record / report
//!              runbook    runbook     plan     gate     executor    audit
//!              inventory  inventory   template approval transport
//!                                                       actions
//! ```
//!
//! Each arrow is a function from plain data to plain data. The front ends turn their input into
//! a plain options struct and call one [`ops`] function with the caller, a reporter and a
//! cancellation channel; neither holds domain logic. Side effects live at the edges:
//! [`transport`] (SSH), [`audit`] (`SQLite`), [`cli`] (terminal, files, signals) and [`service`]
//! (the socket). The middle is pure and unit-tested; the edges are tested against real `sshd`
//! processes, real OS accounts and `SQLite` files. `docs/architecture.md` says where a new
//! command, action or front end plugs in.
//!
//! # Module map
//! - [`cli`]: argument parsing (every clap struct in `cli::args`), terminal rendering, prompts,
//!   progress, signals and exit codes; one thin file per subcommand over one [`ops`] call.
//! - [`service`]: team mode: `opsgate serve` on a Unix socket, identity from the peer uid, the
//!   versioned protocol (`docs/protocol.md`), and the command line's client.
//! - `render`: the text and JSON each command prints, shared by the two front ends so that
//!   team mode prints what the local command prints (neither front end imports the other).
//! - [`ops`]: one function per operation, joining the stages below for it; takes who asks, a
//!   reporter, a prompter and a cancellation channel; never prints, prompts or exits.
//! - [`approval`]: catalog, run, gate-step and plan approvals, their signatures, waiting for them.
//! - [`diagnostic`]: `file:line:col` diagnostics with carets and hints.
//! - [`error`]: the top-level error, exit codes, the renderer.
//! - [`runbook`]: YAML schema → validated model of a runbook.
//! - [`inventory`]: hosts, groups, variables, connection settings, host patterns.
//! - [`template`]: strict Handlebars with a shell-quoting escape for command text.
//! - [`plan`]: the pure planning stage: every step rendered for every host before any
//!   connection; saved plans and their drift fingerprint in [`plan::saved`].
//! - [`gate`]: SFIA levels, the operators policy, the operator identity and the pure gate decision.
//! - [`transport`]: SSH connections through the system OpenSSH client, remote commands.
//! - [`actions`]: what each step action does on a host (query → change, so `--check` falls out).
//! - [`executor`]: drives a plan over many hosts and emits an event stream.
//! - [`lab`]: throwaway local `sshd` hosts for trying opsgate and for the test suite.
//! - [`audit`]: the append-only, hash-chained history of every run.
//!
//! Shared by several layers: [`project`] (where a project keeps its files), [`report`] (notices
//! an operation sends its front end), [`secret`] (values never shown: `Secret<T>` and the one
//! mask), [`quote`] (the one shell-quoting rule), [`os_account`] (uids, account names) `suggest`
//! ("did you mean" hints) and `plural` (`1 host`, `2 hosts` in messages).

pub mod actions;
pub mod approval;
pub mod audit;
pub mod cli;
pub mod diagnostic;
pub mod error;
pub mod executor;
pub mod gate;
pub mod inventory;
pub mod lab;
pub mod ops;
pub mod os_account;
pub mod plan;
pub(crate) mod plural;
pub mod project;
pub mod quote;
pub(crate) mod render;
pub mod report;
pub mod runbook;
pub mod secret;
pub mod service;
pub(crate) mod suggest;
pub mod template;
pub mod transport;
