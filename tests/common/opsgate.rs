//! A builder that runs the real `opsgate` binary in a clean, predictable environment.
//!
//! Defaults: working directory and state directory inside a fresh temp dir (so a test never
//! reads the repository's own `opsgate.yaml` or an operator's audit database), `NO_COLOR=1`,
//! no `SUDO_USER` (identity comes from the OS account unless a test sets it), stdin empty.

use std::ffi::OsStr;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use tempfile::TempDir;

/// Runs `opsgate` once: `Opsgate::new().args(["validate", "x.yaml"]).output()`.
pub struct Opsgate {
    command: Command,
    stdin: Option<Vec<u8>>,
    /// Holds the default working and state directory until the process has finished.
    _scratch: TempDir,
}

impl Opsgate {
    /// A command for the binary under test, with the clean defaults above.
    #[must_use]
    pub fn new() -> Self {
        let scratch = tempfile::tempdir().expect("creating a temp dir for opsgate");
        let mut command = Command::new(env!("CARGO_BIN_EXE_opsgate"));
        command
            .current_dir(scratch.path())
            .env("NO_COLOR", "1")
            .env("OPSGATE_STATE_DIR", scratch.path().join("state"))
            .env_remove("SUDO_USER");
        Self {
            command,
            stdin: None,
            _scratch: scratch,
        }
    }

    /// Runs in `dir` instead of the scratch directory.
    #[must_use]
    pub fn current_dir(mut self, dir: impl AsRef<Path>) -> Self {
        self.command.current_dir(dir);
        self
    }

    /// Uses `dir` as the state directory (audit database), e.g. shared by several invocations.
    #[must_use]
    pub fn state_dir(mut self, dir: impl AsRef<Path>) -> Self {
        self.command.env("OPSGATE_STATE_DIR", dir.as_ref());
        self
    }

    /// Adds one argument.
    #[must_use]
    pub fn arg(mut self, argument: impl AsRef<OsStr>) -> Self {
        self.command.arg(argument);
        self
    }

    /// Adds arguments.
    #[must_use]
    pub fn args<I, S>(mut self, arguments: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.command.args(arguments);
        self
    }

    /// Sets an environment variable.
    #[must_use]
    pub fn env(mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> Self {
        self.command.env(key, value);
        self
    }

    /// Removes an environment variable.
    #[must_use]
    pub fn env_remove(mut self, key: impl AsRef<OsStr>) -> Self {
        self.command.env_remove(key);
        self
    }

    /// Feeds `input` on stdin (default: an empty stdin).
    #[must_use]
    pub fn stdin(mut self, input: impl Into<Vec<u8>>) -> Self {
        self.stdin = Some(input.into());
        self
    }

    /// Runs the binary to completion and returns its status, stdout and stderr.
    #[must_use]
    pub fn output(mut self) -> Output {
        self.command
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .stdin(if self.stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            });
        let mut child = self.command.spawn().expect("starting the opsgate binary");
        if let Some(input) = self.stdin.take() {
            let mut pipe = child.stdin.take().expect("stdin was piped");
            // A writer thread, so a binary that writes a lot before reading cannot deadlock us.
            std::thread::spawn(move || {
                // The binary may exit without reading all of it; that is its business.
                let _ = pipe.write_all(&input);
            });
        }
        child
            .wait_with_output()
            .expect("waiting for the opsgate binary")
    }
}

impl Default for Opsgate {
    fn default() -> Self {
        Self::new()
    }
}
