//! `opsgate run` end to end against real sshd servers started by the lab code.

mod actions;
mod backup;
mod control;
mod failures;
mod hardening;
mod patch;
mod postgres;
mod services;
mod shipped;

use std::path::{Path, PathBuf};

use crate::common::Outcome;

/// The path of a runbook shipped in `runbooks/`.
pub(crate) fn shipped(name: &str) -> String {
    format!("{}/runbooks/{name}.yaml", env!("CARGO_MANIFEST_DIR"))
}

/// Writes a runbook into `dir` and returns its path.
pub(crate) fn write_runbook(dir: &Path, name: &str, yaml: &str) -> PathBuf {
    let path = dir.join(format!("{name}.yaml"));
    std::fs::write(&path, yaml).expect("write runbook");
    path
}

/// Lines of the run output that report a step with this status.
pub(crate) fn count_status(output: &Outcome, status: &str) -> usize {
    output.stdout_lines(&format!("{status} "))
}
