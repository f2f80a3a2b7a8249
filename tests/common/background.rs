//! An `opsgate run` in the background, for tests that interrupt or kill it mid-run.

use std::path::Path;
use std::process::{Child, Command, Stdio};

use tempfile::TempDir;

use super::TestLab;

/// A run started as its own process, with a private `TMPDIR`: its SSH control sockets live
/// there, so the ssh masters belonging to this run (and no other test's) can be found.
pub struct BackgroundRun {
    /// The opsgate process.
    pub child: Child,
    /// Its `TMPDIR`.
    pub tmp: TempDir,
}

impl BackgroundRun {
    /// Starts `opsgate run RUNBOOK` against `lab`, in its workspace, with its state directory.
    #[must_use]
    pub fn start(lab: &TestLab, runbook: &Path) -> Self {
        let tmp = tempfile::Builder::new()
            .prefix("og")
            .tempdir_in("/tmp")
            .expect("tmp dir");
        let child = Command::new(env!("CARGO_BIN_EXE_opsgate"))
            .current_dir(lab.workspace())
            .env("OPSGATE_STATE_DIR", lab.state_dir())
            .env("NO_COLOR", "1")
            .env("TMPDIR", tmp.path())
            .arg("-i")
            .arg(lab.inventory())
            .arg("run")
            .arg(runbook)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn opsgate");
        Self { child, tmp }
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
