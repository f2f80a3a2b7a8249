//! The gate end to end: `whoami`, catalog approval and `catalog`, the gate in `run` (denials,
//! approvals from a second process, timeouts, break-glass) — as root with a policy naming root,
//! and as real OS accounts through real `sudo` in `accounts`.

pub(crate) mod accounts;
mod binding;
mod catalog;
mod hardening;
mod run;

use std::path::{Path, PathBuf};

use tempfile::TempDir;

use crate::common::Opsgate;

/// A project directory: `policy/operators.yaml`, `runbooks/`, a state directory.
pub(crate) struct Project {
    dir: TempDir,
}

impl Project {
    pub(crate) fn new() -> Self {
        let dir = tempfile::tempdir().expect("temp project");
        std::fs::create_dir(dir.path().join("runbooks")).expect("runbooks dir");
        std::fs::create_dir(dir.path().join("policy")).expect("policy dir");
        Self { dir }
    }

    pub(crate) fn path(&self) -> &Path {
        self.dir.path()
    }

    pub(crate) fn policy(&self, yaml: &str) {
        std::fs::write(self.path().join("policy/operators.yaml"), yaml).expect("policy");
    }

    pub(crate) fn runbook(&self, name: &str, yaml: &str) -> PathBuf {
        let path = self.path().join("runbooks").join(format!("{name}.yaml"));
        std::fs::write(&path, yaml).expect("runbook");
        path
    }

    /// opsgate in the project directory, with its own state directory.
    pub(crate) fn opsgate(&self, args: &[&str]) -> Opsgate {
        Opsgate::new()
            .current_dir(self.path())
            .state_dir(self.path().join("state"))
            .args(args)
            .redact(self.path())
    }
}
