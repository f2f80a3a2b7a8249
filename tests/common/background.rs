//! An `opsgate run` in the background, for tests that interrupt or kill it mid-run.

use std::path::Path;
use std::process::Command;

use tempfile::TempDir;

use super::opsgate::{Opsgate, Running};

/// A run started as its own process, with a private `TMPDIR`: its SSH control sockets live
/// there, so the ssh masters belonging to this run (and no other test's) can be found.
pub struct BackgroundRun {
    /// The opsgate process, with the expectations it was started with.
    pub process: Running,
    /// Its `TMPDIR`.
    pub tmp: TempDir,
}

impl BackgroundRun {
    /// Starts `opsgate` (e.g. `lab.cli(&["run", …]).status(130)`) with a `TMPDIR` of its own;
    /// `process.finish()` checks the expectations.
    #[must_use]
    pub fn start(opsgate: Opsgate) -> Self {
        let tmp = tempfile::Builder::new()
            .prefix("og")
            .tempdir_in("/tmp")
            .expect("tmp dir");
        let process = opsgate.env("TMPDIR", tmp.path()).spawn();
        Self { process, tmp }
    }

    /// `pgrep -a` lines of the ssh processes (masters) of this run.
    #[must_use]
    pub fn ssh_processes(&self) -> Vec<String> {
        ssh_processes_under(self.tmp.path())
    }

    /// Stops this run's ssh processes, by PID: an opsgate killed by `SIGKILL` cannot close its masters.
    pub fn stop_ssh_processes(&self) {
        for line in self.ssh_processes() {
            if let Some(pid) = line.split_whitespace().next() {
                let _ = Command::new("kill").arg(pid).status();
            }
        }
    }
}

/// `pgrep -a` lines of the ssh processes whose command line names `dir` (a run's `TMPDIR`, which
/// holds its control sockets); usable after the run's `child` was moved out to wait for it.
#[must_use]
pub fn ssh_processes_under(dir: &Path) -> Vec<String> {
    let output = Command::new("pgrep")
        .args(["-a", "-f", &format!("ssh .*{}", dir.display())])
        .output()
        .expect("pgrep");
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter(|line| !line.contains("pgrep"))
        .map(ToOwned::to_owned)
        .collect()
}
