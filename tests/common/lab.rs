//! [`TestLab`]: real local sshd hosts for a test, started with the same code as `opsgate lab up`
//! and stopped on drop.
//!
//! Each lab lives in its own temp dir with random loopback addresses and kernel-chosen ports,
//! so tests run in parallel. A test that fails prints every host's sshd log. A missing sshd
//! fails the test with the install command; it never skips.

use std::error::Error as _;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use opsgate::lab::{self, Lab, LabError, LabHost, LabOptions};
use tempfile::TempDir;

use super::Opsgate;

/// A running lab in a temp dir: `TestLab::start(3)` gives hosts `lab1`…`lab3`.
pub struct TestLab {
    lab: Lab,
    /// `lab/` (the lab directory), `state/` (state directory) and room for test files.
    scratch: TempDir,
}

impl TestLab {
    /// Starts `hosts` lab hosts; panics with the error and its hints when that fails.
    #[must_use]
    pub fn start(hosts: usize) -> Self {
        let scratch = tempfile::tempdir().expect("creating a temp dir for the lab");
        let options = LabOptions {
            dir: scratch.path().join("lab"),
            hosts,
        };
        match lab::up(&options) {
            Ok(lab) => Self { lab, scratch },
            Err(error) => panic!("starting a test lab failed:\n{}", describe(&error)),
        }
    }

    /// The lab as `opsgate::lab::up` returned it.
    #[must_use]
    pub fn lab(&self) -> &Lab {
        &self.lab
    }

    /// The lab directory (absolute).
    #[must_use]
    pub fn dir(&self) -> &Path {
        &self.lab.dir
    }

    /// The generated inventory (absolute).
    #[must_use]
    pub fn inventory(&self) -> &Path {
        &self.lab.inventory
    }

    /// The hosts, `lab1` first.
    #[must_use]
    pub fn hosts(&self) -> &[LabHost] {
        &self.lab.hosts
    }

    /// The host called `name`.
    #[must_use]
    pub fn host(&self, name: &str) -> &LabHost {
        self.lab
            .hosts
            .iter()
            .find(|host| host.name == name)
            .unwrap_or_else(|| panic!("the test lab has no host `{name}`"))
    }

    /// A directory for the test's own files (runbooks, policies), beside the lab.
    #[must_use]
    pub fn workspace(&self) -> &Path {
        self.scratch.path()
    }

    /// The state directory the [`TestLab::opsgate`] commands share.
    #[must_use]
    pub fn state_dir(&self) -> PathBuf {
        self.scratch.path().join("state")
    }

    /// The real binary, run in [`TestLab::workspace`] with [`TestLab::state_dir`].
    #[must_use]
    pub fn opsgate(&self) -> Opsgate {
        Opsgate::new()
            .current_dir(self.workspace())
            .state_dir(self.state_dir())
    }

    /// Runs `command` on lab host `name` with the system ssh client and the lab's `ssh_config`.
    #[must_use]
    pub fn ssh(&self, name: &str, command: &str) -> Output {
        Command::new("ssh")
            .arg("-F")
            .arg(self.lab.ssh_config())
            .args([name, command])
            .stdin(Stdio::null())
            .output()
            .expect("running ssh")
    }

    /// Every host's sshd log, for a failing test's output.
    #[must_use]
    pub fn logs(&self) -> String {
        let mut text = String::new();
        for host in &self.lab.hosts {
            let log = self.lab.sshd_log(host);
            let content = fs::read_to_string(&log).unwrap_or_else(|error| error.to_string());
            let _ = writeln!(text, "--- {} ({}) ---\n{content}", host.name, log.display());
        }
        text
    }
}

impl Drop for TestLab {
    fn drop(&mut self) {
        if std::thread::panicking() {
            report(&format!(
                "test lab in {} at the time of the failure:\n{}",
                self.dir().display(),
                self.logs()
            ));
        }
        // A panic here while already panicking would abort the whole test binary. `NoLab`
        // means the test took the lab down itself.
        match lab::down(self.dir()) {
            Ok(()) | Err(LabError::NoLab { .. }) => {}
            Err(error) => report(&format!(
                "stopping the test lab failed:\n{}",
                describe(&error)
            )),
        }
    }
}

/// The error, its causes and hints, as the CLI would show them.
fn describe(error: &LabError) -> String {
    let mut text = format!("error: {error}\n");
    let mut source = error.source();
    while let Some(cause) = source {
        let _ = writeln!(text, "caused by: {cause}");
        source = cause.source();
    }
    for hint in error.hints() {
        let _ = writeln!(text, "hint: {hint}");
    }
    text
}

#[expect(
    clippy::print_stderr,
    reason = "a test fixture reporting from Drop, where it cannot panic"
)]
fn report(text: &str) {
    eprintln!("{text}");
}
