//! `reboot`: restart the host, then wait until SSH answers again with a new boot id.
//!
//! A reboot takes the host's connection down with it, so this lives in the executor, which owns
//! the connection, rather than among the actions. The sequence:
//!
//! 1. read the boot id (`/proc/sys/kernel/random/boot_id`) over the current connection;
//! 2. start the reboot *detached* from the SSH session (`setsid`, one second late), so the
//!    command that asks for it returns before sshd goes away; the reboot command's output goes
//!    to a log under `/tmp` on the host;
//! 3. connect anew every [`POLL_INTERVAL`] until a connection reads a *different* boot id. A
//!    connection that still reads the old id reached the host before it went down: it is closed
//!    and polling goes on — unless the log says the reboot command failed, which fails the step
//!    at once. The old connection is closed once a new one is in place. At the timeout, a host
//!    last seen with its old boot id is `failed` ("it did not reboot"), one that stopped
//!    answering is `unreachable`.
//!
//! Lab hosts cannot reboot the machine they share, so `opsgate lab up` gives each host's sshd
//! the environment variable [`REBOOT_VARIABLE`] naming a lab-only script that restarts
//! that host's sshd with a new boot id (docs/lab.md). When the login environment carries it,
//! the reboot runs that script instead of `shutdown`; no real host's sshd sets it.

use std::time::{Duration, Instant};

use thiserror::Error;
use tokio::sync::watch;

use super::Cancel;
use crate::actions::{Outcome, RunMode};
use crate::executor::event::Status;
use crate::lab::REBOOT_VARIABLE;
use crate::transport::{Connection, RemoteCommand, SshTarget, TransportError};

/// How long a host may take to come back when the step sets no `timeout`.
pub(super) const DEFAULT_TIMEOUT: Duration = Duration::from_secs(600);

/// Pause between two connection attempts while the host is down.
const POLL_INTERVAL: Duration = Duration::from_secs(1);

/// Limit for each remote command of the sequence itself.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(30);

/// Where the reboot step's parameters come from.
pub(super) struct Reboot<'a> {
    /// How to reach the host again.
    pub target: &'a SshTarget,
    /// The run's control socket directory.
    pub control_dir: &'a std::path::Path,
    /// Limit per connection attempt.
    pub connect_timeout: Duration,
    /// How long the host may take to come back.
    pub timeout: Duration,
    /// `sudo -n -u USER` for the reboot command.
    pub become_user: Option<String>,
    /// Apply or check.
    pub mode: RunMode,
}

/// How the reboot ended, and the connection to use from now on (`None`: keep the old one).
pub(super) struct Rebooted {
    pub outcome: Outcome,
    pub connection: Option<Connection>,
    /// The new boot id, for `facts.boot_id`.
    pub boot_id: Option<String>,
}

impl Reboot<'_> {
    /// Reboots the host behind `connection` and waits for it.
    pub(super) async fn run(
        &self,
        connection: &Connection,
        mut cancel: watch::Receiver<Cancel>,
    ) -> Result<Rebooted, TransportError> {
        let unchanged = |outcome| Rebooted {
            outcome,
            connection: None,
            boot_id: None,
        };
        let before = boot_id(connection).await?;
        let before = match before {
            Ok(id) => id,
            Err(none) => return Ok(unchanged(Outcome::failed(none.to_string()))),
        };
        if self.mode == RunMode::Check {
            return Ok(unchanged(Outcome::changed(
                "check mode: would reboot and wait for a new boot id".to_owned(),
            )));
        }
        // The detached reboot's output goes to a log on the host: if every reboot command
        // fails (no root, no shutdown), the log says so while the host still answers, instead
        // of a silent wait for the whole timeout.
        let log = format!(
            "/tmp/.opsgate-reboot-{}-{}",
            std::process::id(),
            started_nanos()
        );
        let (command, how) = self.reboot_command(connection, &log).await?;
        let asked = connection.run(&command).await?;
        if !asked.success() {
            let mut outcome = Outcome::failed(format!(
                "the reboot could not be started: {}",
                asked.failure()
            ));
            outcome.stderr = asked.stderr;
            return Ok(unchanged(outcome));
        }

        let started = Instant::now();
        let deadline = started + self.timeout;
        let mut last = Seen::Nothing;
        loop {
            tokio::select! {
                () = tokio::time::sleep(POLL_INTERVAL) => {}
                _ = cancel.changed() => {
                    return Ok(unchanged(Outcome::failed(
                        "interrupted while waiting for the host to come back from its reboot",
                    )));
                }
            }
            if Instant::now() >= deadline {
                let waited = humantime(self.timeout);
                let outcome = match last {
                    Seen::OldBootId => Outcome::failed(format!(
                        "the host still answers with boot id {before} after {waited}: it did not \
                         reboot (does the step run as root? `become: true`)"
                    )),
                    Seen::Nothing | Seen::NoAnswer(_) => Outcome {
                        status: Status::Unreachable,
                        ..Outcome::failed(format!(
                            "the host did not answer over SSH within {waited} of its reboot{}",
                            match &last {
                                Seen::NoAnswer(error) => format!(": {error}"),
                                _ => String::new(),
                            }
                        ))
                    },
                };
                return Ok(unchanged(outcome));
            }
            let fresh = match Connection::connect(
                self.target,
                self.control_dir,
                self.connect_timeout,
            )
            .await
            {
                Ok(fresh) => fresh,
                Err(error) => {
                    last = Seen::NoAnswer(error.to_string());
                    continue;
                }
            };
            match boot_id(&fresh).await {
                Ok(Ok(after)) if after != before => {
                    // Said in the step's message and its output (which the audit history
                    // keeps): a lab reboot is not a real one.
                    let by = match &how {
                        How::Shutdown => String::new(),
                        How::LabScript(script) => {
                            format!(" by the lab's reboot script {script} (lab only)")
                        }
                    };
                    let said = format!(
                        "rebooted{by} in {:.1}s: boot id {before} → {after}",
                        started.elapsed().as_secs_f64()
                    );
                    let outcome = Outcome {
                        stdout: format!("{said}\n").into_bytes(),
                        ..Outcome::changed(said)
                    };
                    return Ok(Rebooted {
                        outcome,
                        connection: Some(fresh),
                        boot_id: Some(after),
                    });
                }
                // Reached before it went down, or while it is still shutting down — unless the
                // reboot command itself failed, which its log then says.
                Ok(Ok(_)) => {
                    last = Seen::OldBootId;
                    if let Some(failure) = reboot_failure(&fresh, &log).await {
                        let _ = fresh.close().await;
                        return Ok(unchanged(Outcome::failed(format!(
                            "the reboot command failed, the host did not reboot: {failure}"
                        ))));
                    }
                    let _ = fresh.close().await;
                }
                _ => {
                    let _ = fresh.close().await;
                }
            }
        }
    }

    /// The detached command that starts the reboot: the lab's script when the login environment
    /// names one, `shutdown -r now` otherwise.
    async fn reboot_command(
        &self,
        connection: &Connection,
        log: &str,
    ) -> Result<(RemoteCommand, How), TransportError> {
        // Asked without sudo: sudo resets the environment sshd set.
        let lab = connection
            .run(&RemoteCommand {
                timeout: Some(COMMAND_TIMEOUT),
                ..RemoteCommand::script(format!("printf '%s' \"${{{REBOOT_VARIABLE}:-}}\""))
            })
            .await?;
        let lab_script = String::from_utf8_lossy(&lab.stdout).trim().to_owned();
        let (text, become_user, how) = if lab_script.is_empty() {
            (
                detached("shutdown -r now || systemctl reboot || reboot", log),
                self.become_user.clone(),
                How::Shutdown,
            )
        } else {
            // The lab host runs as the invoking account already; sudo would drop nothing useful.
            let script = format!("exec {}", crate::quote::shell_quote(&lab_script));
            (detached(&script, log), None, How::LabScript(lab_script))
        };
        let command = RemoteCommand {
            become_user,
            timeout: Some(COMMAND_TIMEOUT),
            ..RemoteCommand::script(text)
        };
        Ok((command, how))
    }
}

/// Shell text that runs `inner` one second from now in a new session, so the SSH command
/// returns at once and the reboot does not cut it short. Its output goes to `log`, with a
/// [`FAILED_MARKER`] line when it fails.
fn detached(inner: &str, log: &str) -> String {
    format!(
        "nohup setsid sh -c {} >{} 2>&1 </dev/null &",
        crate::quote::shell_quote(&format!(
            "sleep 1; {{ {inner}; }} || echo \"{FAILED_MARKER} (exit $?)\""
        )),
        crate::quote::shell_quote(log)
    )
}

/// The line a failed reboot command leaves in its log.
const FAILED_MARKER: &str = "opsgate: the reboot command failed";

/// What the log of a failed reboot command says; `None` while it has not failed.
async fn reboot_failure(connection: &Connection, log: &str) -> Option<String> {
    let output = connection
        .run(&RemoteCommand {
            timeout: Some(COMMAND_TIMEOUT),
            ..RemoteCommand::script(format!(
                "cat -- {} 2>/dev/null",
                crate::quote::shell_quote(log)
            ))
        })
        .await
        .ok()?;
    let text = String::from_utf8_lossy(&output.stdout);
    text.contains(FAILED_MARKER)
        .then(|| text.trim().replace('\n', "; "))
}

/// How the host is asked to reboot.
enum How {
    /// `shutdown -r now`, through the step's `become`.
    Shutdown,
    /// The lab-only script the login environment names.
    LabScript(String),
}

/// What the last connection attempt found.
enum Seen {
    /// No attempt yet.
    Nothing,
    /// SSH did not answer; the error.
    NoAnswer(String),
    /// The host answered with the boot id it had before the reboot.
    OldBootId,
}

/// A number that makes the reboot log's name unique to this attempt.
fn started_nanos() -> u32 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| since.subsec_nanos())
}

/// The host answered but gave no boot id.
#[derive(Debug, Error)]
#[error("cannot read the host's boot id, so a reboot could not be confirmed: {failure}")]
struct NoBootId {
    /// How the command failed, as [`crate::transport::CommandOutput::failure`] says it.
    failure: String,
}

/// Reads the host's boot id; `Ok(Err(..))` when the host answered but gave none.
async fn boot_id(connection: &Connection) -> Result<Result<String, NoBootId>, TransportError> {
    let output = connection
        .run(&RemoteCommand {
            timeout: Some(COMMAND_TIMEOUT),
            ..RemoteCommand::script("cat /proc/sys/kernel/random/boot_id")
        })
        .await?;
    let id = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    if output.success() && !id.is_empty() {
        Ok(Ok(id))
    } else {
        Ok(Err(NoBootId {
            failure: output.failure(),
        }))
    }
}

fn humantime(duration: Duration) -> String {
    let seconds = duration.as_secs();
    if seconds >= 60 && seconds % 60 == 0 {
        format!("{}m", seconds / 60)
    } else {
        format!("{seconds}s")
    }
}

#[cfg(test)]
mod tests {
    use super::{FAILED_MARKER, detached};

    /// A failing reboot command leaves the marker (with its output) in the log, which is how a
    /// failed reboot is noticed before the timeout.
    #[tokio::test]
    async fn a_failing_detached_reboot_leaves_its_failure_in_the_log() {
        let directory = tempfile::tempdir().expect("temp dir");
        let log = directory.path().join("reboot log");
        let log = log.to_str().expect("utf-8 path");
        let status = std::process::Command::new("sh")
            .arg("-c")
            .arg(detached("echo no permission >&2; false", log))
            .status()
            .expect("sh");
        assert!(status.success());
        let mut text = String::new();
        for _ in 0..50 {
            text = std::fs::read_to_string(log).unwrap_or_default();
            if text.contains(FAILED_MARKER) {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        assert!(text.contains("no permission"), "{text:?}");
        assert!(
            text.contains(&format!("{FAILED_MARKER} (exit 1)")),
            "{text:?}"
        );
    }
}
