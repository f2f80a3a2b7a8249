//! The SSH transport: connections to hosts and the commands run over them.
//!
//! This module owns everything that crosses the network. It uses the system OpenSSH client
//! (through the `openssh` crate), so the user's `~/.ssh/config`, agent and keys work as they
//! do for `ssh` itself, with three things opsgate insists on: host keys are checked strictly
//! (the user's `known_hosts`, the inventory's `known_hosts` file and pinned `host_key`s), ssh
//! never prompts, and nothing it starts outlives its limits. One multiplexed master per host
//! ([`Connection`]) carries every command of that host.
//!
//! Layout:
//! - `command`: [`RemoteCommand`] and how it becomes one quoted command line ([`crate::quote::shell_quote`]);
//! - `target`: [`SshTarget`] and the ssh config files written for it;
//! - `ssh`: [`Connection`], the master, channels, timeouts and kills;
//! - `error`: [`TransportError`], which tells an unknown host key from a refused login from a
//!   lost connection, with [`hints`](TransportError::hints) that name the fix.
//!
//! This module must not interpret results (that is the executor's job), render templates, or
//! print anything. [`Transport`] is the seam the executor is written against, so its unit tests
//! can script a host without SSH.

mod command;
mod error;
mod ssh;
mod target;

#[cfg(test)]
mod test_sshd;
#[cfg(test)]
mod tests;

use std::time::Duration;

pub use command::{CommandProblem, Program, RemoteCommand};
pub use error::{HostKeyProblem, SshMessage, TargetProblem, TransportError};
pub use ssh::{Connection, MAX_CHANNELS};
pub use target::SshTarget;

/// How a remote command ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RemoteStatus {
    /// It exited with this code.
    Exited(i32),
    /// It ran past its timeout; its process group was killed.
    TimedOut,
    /// [`Transport::kill_running`] killed it.
    Killed,
    /// It ended without an exit status, i.e. by a signal opsgate did not send (the SSH
    /// multiplexing protocol does not say which).
    Signaled,
}

/// Everything a finished remote command produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandOutput {
    /// How it ended.
    pub status: RemoteStatus,
    /// Its standard output, complete.
    pub stdout: Vec<u8>,
    /// Its standard error, complete.
    pub stderr: Vec<u8>,
    /// Wall-clock time from opening the channel to the end.
    pub duration: Duration,
}

impl CommandOutput {
    /// The exit code, when the command exited by itself.
    #[must_use]
    pub fn rc(&self) -> Option<i32> {
        match self.status {
            RemoteStatus::Exited(code) => Some(code),
            RemoteStatus::TimedOut | RemoteStatus::Killed | RemoteStatus::Signaled => None,
        }
    }

    /// Whether it exited with 0.
    #[must_use]
    pub fn success(&self) -> bool {
        self.rc() == Some(0)
    }

    /// Standard output as text, one trailing newline removed.
    #[must_use]
    pub fn stdout_text(&self) -> String {
        let text = String::from_utf8_lossy(&self.stdout);
        text.strip_suffix('\n').unwrap_or(&text).to_owned()
    }

    /// Why a helper command failed, for messages.
    #[must_use]
    pub fn failure(&self) -> String {
        let stderr = String::from_utf8_lossy(&self.stderr);
        let stderr = stderr.trim();
        match self.status {
            RemoteStatus::TimedOut => "timed out".to_owned(),
            RemoteStatus::Killed => "killed".to_owned(),
            RemoteStatus::Signaled => "ended by a signal".to_owned(),
            RemoteStatus::Exited(code) if stderr.is_empty() => format!("exit code {code}"),
            RemoteStatus::Exited(code) => format!(
                "exit code {code}: {}",
                stderr.lines().last().unwrap_or(stderr)
            ),
        }
    }
}

/// Runs commands on one host. [`Connection`] is the real implementation; executor tests may
/// script one.
pub trait Transport: Send + Sync {
    /// The inventory host this transport reaches.
    fn host(&self) -> &str;

    /// Runs `command` and collects its output; see [`Connection::run`].
    fn run(
        &self,
        command: &RemoteCommand,
    ) -> impl Future<Output = Result<CommandOutput, TransportError>> + Send;

    /// Kills every command still running through this transport (the second Ctrl-C); see
    /// [`Connection::kill_running`].
    fn kill_running(&self) -> impl Future<Output = ()> + Send;
}
