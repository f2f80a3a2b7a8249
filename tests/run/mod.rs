//! `opsgate run` end to end against real sshd servers started by the lab code.

mod actions;
mod backup;
mod control;
mod failures;
mod patch;
mod postgres;
mod services;
mod shipped;

use std::path::{Path, PathBuf};
use std::process::Output;

use crate::common::TestLab;

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

/// Runs opsgate against the lab's inventory.
pub(crate) fn opsgate(lab: &TestLab, args: &[&str]) -> Output {
    let inventory = lab
        .inventory()
        .to_str()
        .expect("utf-8 inventory path")
        .to_owned();
    let mut all = vec!["-i".to_owned(), inventory];
    all.extend(args.iter().map(ToString::to_string));
    lab.opsgate().args(all).output()
}

/// stdout + stderr, for assertion messages.
pub(crate) fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Lines of the run output that report a step with this status.
pub(crate) fn count_status(output: &Output, status: &str) -> usize {
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter(|line| line.starts_with(&format!("{status} ")))
        .count()
}
