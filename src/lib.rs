//! opsgate validates, plans, gates and runs declarative runbooks over SSH, and records every run
//! in a tamper-evident audit history.
//!
//! # The pipeline is the architecture
//!
//! ```text
//! load ──▶ validate ──▶ plan ──▶ gate ──▶ execute ──▶ record / report
//! runbook    runbook     plan     gate     executor    audit, cli::render
//! inventory  inventory   template          transport
//!                                          actions
//! ```
//!
//! Each arrow is a function from plain data to plain data. Side effects live at the edges:
//! [`transport`] (SSH), [`audit`] (`SQLite`) and [`cli`] (terminal, files, signals). The middle is
//! pure and unit-tested; the edges are tested against real `sshd` processes and `SQLite` files.
//!
//! # Module map
//! - [`diagnostic`]: `file:line:col` diagnostics with carets and hints.
//! - [`error`]: the top-level error, exit codes, the renderer.
//! - [`runbook`]: YAML schema → validated model of a runbook.
//! - [`inventory`]: hosts, groups, variables, connection settings, host patterns.
//! - [`template`]: strict Handlebars with a shell-quoting escape for command text.
//! - [`plan`]: the pure planning stage: every step rendered for every host before any connection.
//! - [`gate`]: SFIA levels, the operators policy, the operator identity and the pure gate decision.
//! - [`transport`]: SSH connections through the system OpenSSH client, remote commands.
//! - [`actions`]: what each step action does on a host (query → change, so `--check` falls out).
//! - [`executor`]: drives a plan over many hosts and emits an event stream.
//! - [`lab`]: throwaway local `sshd` hosts for trying opsgate and for the test suite.
//! - [`audit`]: the append-only, hash-chained history of every run.
//! - [`cli`]: argument parsing, subcommands, human and JSON output, and the gate's edge: the
//!   policy, identity and catalog state fed to [`gate::decide`], the decision recorded before any
//!   host is contacted, approvals from other operators' processes polled from the audit store.
//!
//! Shared by several stages: [`project`] (where a project keeps its files), [`quote`] (the one
//! shell-quoting rule), [`os_account`] (uids, account names, `SUDO_USER`), `suggest`
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
pub mod report;
pub mod runbook;
pub(crate) mod suggest;
pub mod template;
pub mod transport;
