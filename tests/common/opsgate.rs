//! [`Opsgate`]: the one builder that runs the real `opsgate` binary and states what it must do
//! as data — exit status, text the output must (not) contain — in the style of just's `Test`:
//!
//! ```ignore
//! let done = Opsgate::new()
//!     .runbook("runbook: x\n…")            // written to [TEMP]/runbook.yaml
//!     .args(["validate", "runbook.yaml"])
//!     .status(2)
//!     .stderr_contains("unknown key")
//!     .run();                              // asserts; prints both streams on a mismatch
//! snapshot!(done.stderr(), @"…");          // inline insta snapshot, redacted
//! ```
//!
//! Defaults: working directory and state directory inside a fresh temp dir (so a test never
//! reads the repository's own `opsgate.yaml` or an operator's audit database), `NO_COLOR=1`,
//! no `SUDO_USER` (identity comes from the OS account unless a test sets it), stdin empty, and
//! an expected exit status of 0 ([`Opsgate::status`] to expect another, [`Opsgate::any_status`]
//! where the status is not what the test is about).
//!
//! Snapshots go through [`snapshot!`](crate::snapshot), which applies [`FILTERS`]: temp paths
//! become `[TEMP]`, timestamps and durations `[TIME]`, hex digests and ids `[HASH]`. The
//! builder's own scratch directory is redacted exactly, before the filters run.

use std::ffi::OsStr;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};

use tempfile::TempDir;

/// Redactions for snapshots, as `(regex, replacement)`, applied in order by
/// [`snapshot!`](crate::snapshot).
pub const FILTERS: &[(&str, &str)] = &[
    // Temp dirs made by `tempfile` (`.tmpXXXXXX`, or a prefix of ours) and `mktemp`.
    (
        r"(/private)?/tmp/(\.tmp|og-?[a-z-]*)[A-Za-z0-9]{6}\b",
        "[TEMP]",
    ),
    // RFC 3339 timestamps, with or without fraction and offset, and `YYYY-MM-DD HH:MM:SS`.
    (
        r"\b\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?\b",
        "[TIME]",
    ),
    // Durations as opsgate prints them: `0.4s`, `12ms`, `1m 3s`.
    (r"\b\d+(\.\d+)?(ms|µs|s|m)\b", "[TIME]"),
    // SHA-256 digests, hash-chain links and other hex ids of 12 characters or more.
    (r"\b(sha256:)?[0-9a-f]{12,64}\b", "[HASH]"),
];

/// Runs `opsgate` once with expectations: `Opsgate::new().args(["validate", "x.yaml"]).run()`.
#[must_use = "an Opsgate does nothing until `run` (or `spawn`)"]
pub struct Opsgate {
    command: Command,
    stdin: Option<Vec<u8>>,
    expect: Expect,
    /// Holds the default working and state directory until the process has finished.
    scratch: TempDir,
}

/// What a finished opsgate must have done; see [`Opsgate`].
#[derive(Debug, Clone, Copy)]
enum Status {
    Code(i32),
    /// Any status but 0.
    Failure,
    Any,
}

#[derive(Debug, Clone)]
struct Expect {
    status: Status,
    stdout_contains: Vec<String>,
    stderr_contains: Vec<String>,
    output_contains: Vec<String>,
    output_lacks: Vec<String>,
    /// Exact paths shown as `[TEMP]`, longest first.
    temp_paths: Vec<String>,
}

impl Opsgate {
    /// A command for the binary under test, with the clean defaults above.
    pub fn new() -> Self {
        let mut command = Command::new(env!("CARGO_BIN_EXE_opsgate"));
        let scratch = scratch();
        command
            .current_dir(scratch.path())
            .env("NO_COLOR", "1")
            .env("OPSGATE_STATE_DIR", scratch.path().join("state"))
            .env_remove("SUDO_USER");
        Self::wrap(command, scratch)
    }

    /// Runs `command`, which must start the binary under test (e.g. through `runuser … sudo`),
    /// with nothing of the defaults but the expectations: the caller set its directory and
    /// environment.
    pub fn through(command: Command) -> Self {
        Self::wrap(command, scratch())
    }

    fn wrap(command: Command, scratch: TempDir) -> Self {
        let mut expect = Expect {
            status: Status::Code(0),
            stdout_contains: Vec::new(),
            stderr_contains: Vec::new(),
            output_contains: Vec::new(),
            output_lacks: Vec::new(),
            temp_paths: Vec::new(),
        };
        expect.redact_path(scratch.path());
        Self {
            command,
            stdin: None,
            expect,
            scratch,
        }
    }

    /// The scratch directory (default working directory; files from [`Opsgate::file`]).
    #[must_use]
    pub fn scratch(&self) -> &Path {
        self.scratch.path()
    }

    /// Writes `contents` to `name` in the scratch directory.
    pub fn file(self, name: &str, contents: &str) -> Self {
        let path = self.scratch.path().join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("creating a scratch subdirectory");
        }
        std::fs::write(&path, contents).expect("writing a scratch file");
        self
    }

    /// Writes the runbook `runbook.yaml` in the scratch directory (the test names it in `args`).
    pub fn runbook(self, yaml: &str) -> Self {
        self.file("runbook.yaml", yaml)
    }

    /// Writes `inventory.yaml` in the scratch directory and passes it with `-i`.
    pub fn inventory(self, yaml: &str) -> Self {
        let path = self.scratch.path().join("inventory.yaml");
        self.file("inventory.yaml", yaml).arg("-i").arg(path)
    }

    /// Runs in `dir` instead of the scratch directory.
    pub fn current_dir(mut self, dir: impl AsRef<Path>) -> Self {
        self.command.current_dir(dir);
        self
    }

    /// Uses `dir` as the state directory (audit database), e.g. shared by several invocations.
    pub fn state_dir(mut self, dir: impl AsRef<Path>) -> Self {
        self.command.env("OPSGATE_STATE_DIR", dir.as_ref());
        self
    }

    /// Adds one argument.
    pub fn arg(mut self, argument: impl AsRef<OsStr>) -> Self {
        self.command.arg(argument);
        self
    }

    /// Adds arguments.
    pub fn args<I, S>(mut self, arguments: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.command.args(arguments);
        self
    }

    /// Sets an environment variable.
    pub fn env(mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> Self {
        self.command.env(key, value);
        self
    }

    /// Removes an environment variable.
    pub fn env_remove(mut self, key: impl AsRef<OsStr>) -> Self {
        self.command.env_remove(key);
        self
    }

    /// Feeds `input` on stdin (default: an empty stdin).
    pub fn stdin(mut self, input: impl Into<Vec<u8>>) -> Self {
        self.stdin = Some(input.into());
        self
    }

    /// Expects exit status `code` (default 0).
    pub fn status(mut self, code: i32) -> Self {
        self.expect.status = Status::Code(code);
        self
    }

    /// Expects a failure: any exit status but 0.
    pub fn failure(mut self) -> Self {
        self.expect.status = Status::Failure;
        self
    }

    /// Accepts any exit status, for a run whose status is not what the test checks.
    pub fn any_status(mut self) -> Self {
        self.expect.status = Status::Any;
        self
    }

    /// Expects `text` somewhere in stdout.
    pub fn stdout_contains(mut self, text: impl Into<String>) -> Self {
        self.expect.stdout_contains.push(text.into());
        self
    }

    /// Expects `text` somewhere in stderr.
    pub fn stderr_contains(mut self, text: impl Into<String>) -> Self {
        self.expect.stderr_contains.push(text.into());
        self
    }

    /// Expects `text` in stdout or stderr (the output a person sees).
    pub fn output_contains(mut self, text: impl Into<String>) -> Self {
        self.expect.output_contains.push(text.into());
        self
    }

    /// Expects `text` in neither stdout nor stderr.
    pub fn output_lacks(mut self, text: impl Into<String>) -> Self {
        self.expect.output_lacks.push(text.into());
        self
    }

    /// Shows `path` (and its canonical form) as `[TEMP]` in snapshots.
    pub fn redact(mut self, path: impl AsRef<Path>) -> Self {
        self.expect.redact_path(path.as_ref());
        self
    }

    /// Runs the binary to completion and asserts the expectations; on a mismatch the panic
    /// shows what was expected, the status, stdout and stderr.
    #[track_caller]
    #[expect(
        clippy::must_use_candidate,
        reason = "most tests state everything they check as expectations"
    )]
    pub fn run(self) -> Outcome {
        let expect = self.expect.clone();
        let output = self.output();
        expect.check(output)
    }

    /// Starts the binary in the background; [`Running::finish`] asserts the expectations.
    #[must_use]
    pub fn spawn(mut self) -> Running {
        assert!(self.stdin.is_none(), "a background opsgate reads no stdin");
        let child = self
            .command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("starting the opsgate binary");
        Running {
            child,
            expect: self.expect,
            _scratch: self.scratch,
        }
    }

    /// Runs the binary to completion and returns its status, stdout and stderr, unchecked.
    fn output(mut self) -> Output {
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

fn lossy(bytes: Vec<u8>) -> String {
    String::from_utf8(bytes)
        .unwrap_or_else(|error| String::from_utf8_lossy(error.as_bytes()).into_owned())
}

fn scratch() -> TempDir {
    tempfile::tempdir().expect("creating a temp dir for opsgate")
}

impl Expect {
    fn redact_path(&mut self, path: &Path) {
        let mut paths = vec![path.to_path_buf()];
        if let Ok(canonical) = path.canonicalize() {
            paths.push(canonical);
        }
        for path in paths {
            let text = path.display().to_string();
            if !text.is_empty() && !self.temp_paths.contains(&text) {
                self.temp_paths.push(text);
            }
        }
        self.temp_paths
            .sort_by_key(|path| std::cmp::Reverse(path.len()));
    }

    #[track_caller]
    fn check(self, output: Output) -> Outcome {
        let outcome = Outcome {
            status: output.status,
            stdout: lossy(output.stdout),
            stderr: lossy(output.stderr),
            temp_paths: self.temp_paths.clone(),
        };
        let mut problems = Vec::new();
        match self.status {
            Status::Code(code) if outcome.status.code() != Some(code) => {
                problems.push(format!("exit status {code}, got {}", outcome.status));
            }
            Status::Failure if outcome.status.success() => {
                problems.push("a failure, got exit status 0".to_owned());
            }
            _ => {}
        }
        let both = outcome.text();
        let checks = [
            ("stdout", &outcome.stdout, &self.stdout_contains),
            ("stderr", &outcome.stderr, &self.stderr_contains),
            ("the output", &both, &self.output_contains),
        ];
        for (name, text, wanted) in checks {
            for needle in wanted
                .iter()
                .filter(|needle| !text.contains(needle.as_str()))
            {
                problems.push(format!("{name} to contain {needle:?}"));
            }
        }
        for needle in self
            .output_lacks
            .iter()
            .filter(|needle| both.contains(needle.as_str()))
        {
            problems.push(format!("the output not to contain {needle:?}"));
        }
        assert!(
            problems.is_empty(),
            "opsgate did not do what the test expected:\n  expected {}\n\
             --- status: {}\n--- stdout:\n{}\n--- stderr:\n{}",
            problems.join("\n  expected "),
            outcome.status,
            outcome.stdout,
            outcome.stderr
        );
        outcome
    }
}

/// An opsgate started by [`Opsgate::spawn`].
pub struct Running {
    /// The opsgate process (or the `runuser` that started it).
    pub child: Child,
    expect: Expect,
    _scratch: TempDir,
}

impl Running {
    /// Waits for the process and asserts the expectations.
    #[track_caller]
    #[expect(
        clippy::must_use_candidate,
        reason = "most tests state everything they check as expectations"
    )]
    pub fn finish(self) -> Outcome {
        let output = self
            .child
            .wait_with_output()
            .expect("waiting for the opsgate binary");
        self.expect.check(output)
    }
}

/// What a finished opsgate did, already checked against the builder's expectations.
#[derive(Debug)]
pub struct Outcome {
    /// Its exit status.
    pub status: ExitStatus,
    /// Its stdout, lossily decoded.
    pub stdout: String,
    /// Its stderr, lossily decoded.
    pub stderr: String,
    temp_paths: Vec<String>,
}

impl Outcome {
    /// stdout then stderr, for messages and for checks on what a person sees.
    #[must_use]
    pub fn text(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }

    /// stdout parsed as JSON.
    #[must_use]
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|error| panic!("stdout is not JSON ({error}):\n{}", self.text()))
    }

    /// stdout with the builder's temp paths as `[TEMP]`, for [`snapshot!`](crate::snapshot).
    #[must_use]
    pub fn stdout(&self) -> String {
        self.redacted(&self.stdout)
    }

    /// stderr with the builder's temp paths as `[TEMP]`, for [`snapshot!`](crate::snapshot).
    #[must_use]
    pub fn stderr(&self) -> String {
        self.redacted(&self.stderr)
    }

    /// Both streams, headed as uv's snapshots are, for [`snapshot!`](crate::snapshot) where a
    /// message may go to either.
    #[must_use]
    pub fn streams(&self) -> String {
        format!(
            "----- stdout -----\n{}----- stderr -----\n{}",
            self.stdout(),
            self.stderr()
        )
    }

    fn redacted(&self, text: &str) -> String {
        self.temp_paths.iter().fold(text.to_owned(), |text, path| {
            text.replace(path.as_str(), "[TEMP]")
        })
    }

    /// The lines of stdout that start with `prefix`.
    #[must_use]
    pub fn stdout_lines(&self, prefix: &str) -> usize {
        self.stdout
            .lines()
            .filter(|line| line.starts_with(prefix))
            .count()
    }
}

/// A path as a `&str` argument.
#[must_use]
pub fn arg(path: &Path) -> &str {
    path.to_str().expect("a UTF-8 path")
}

/// The repository root, where the shipped runbooks, inventory and policy live.
#[must_use]
pub fn repository() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}
