//! What each step action does on a host.
//!
//! Every action is written as *query → change*: it first asks the host what is there, decides
//! what would change, and only then changes it — unless the run is a `--check` run, in which
//! case it stops after the decision and reports it. Idempotence and check mode both fall out of
//! that shape. Actions receive fully rendered fields (`Action<String>`); they never render
//! templates, never print, and talk to the host only through [`Transport`].
//!
//! Remote commands are built with [`crate::quote::shell_quote`] around every value, so a path or content with
//! spaces, quotes or `;` stays one word.

mod assert;
mod backup;
mod command;
mod copy;
mod fetch;
mod file;
mod outcome;
mod package;
mod ready;
mod restore;
mod script;
mod service;
mod user;
mod wait_for;

use std::time::Duration;

pub use outcome::{BackupMade, Outcome, Status};
pub use ready::{MistypedField, Ready};

// Every action quotes values with the one shell-quoting rule, as `quote`.
use crate::quote::shell_quote as quote;
use crate::runbook::model::Action;
use crate::secret::Secret;
use crate::transport::{CommandOutput, Program, RemoteCommand, Transport, TransportError};

/// Whether actions change hosts or only report what they would change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunMode {
    /// Change hosts.
    Apply,
    /// Report only (`--check`).
    Check,
}

/// Whether changed files are shown as unified diffs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DiffMode {
    /// `--diff`.
    Show,
    /// Default.
    Hide,
}

/// Everything an action needs besides its own fields.
pub struct Context<'a, T> {
    /// The host's connection.
    pub transport: &'a T,
    /// Inventory host name, for local paths (`fetch`), backup names and messages.
    pub host: &'a str,
    /// The runbook's id, for backup names.
    pub runbook: &'a str,
    /// Apply or check.
    pub mode: RunMode,
    /// Show diffs.
    pub diff: DiffMode,
    /// `sudo -n -u USER` for the step's remote commands.
    pub become_user: Option<String>,
    /// Environment for the step's remote commands.
    pub env: Vec<(String, String)>,
    /// The step's timeout for each remote command.
    pub timeout: Option<Duration>,
    /// Values never shown (secret params, what `secret: true` steps registered): a remote
    /// command that contains one keeps its text and environment off the host's command line.
    pub secrets: &'a [Secret<String>],
    /// The host's `facts.*` (SPEC §2), gathered before any action that needs them (`package`
    /// reads `pkg_manager`); `Value::Null` when nothing needed them yet.
    pub facts: &'a serde_json::Value,
}

impl<T: Transport> Context<'_, T> {
    /// One gathered fact, such as `pkg_manager`.
    fn fact(&self, name: &str) -> Option<&str> {
        self.facts.get(name).and_then(serde_json::Value::as_str)
    }

    /// Runs shell text on the host with the step's become, env and timeout.
    async fn shell(&self, script: String) -> Result<CommandOutput, TransportError> {
        self.shell_with(script, None, None).await
    }

    /// Runs shell text with stdin bytes and an optional `executable`.
    async fn shell_with(
        &self,
        script: String,
        stdin: Option<Vec<u8>>,
        executable: Option<String>,
    ) -> Result<CommandOutput, TransportError> {
        let conceal = self.carries_secret(&script)
            || self.env.iter().any(|(_, value)| self.carries_secret(value));
        self.transport
            .run(&RemoteCommand {
                program: Program::Script {
                    text: script,
                    executable,
                },
                become_user: self.become_user.clone(),
                env: self.env.clone(),
                stdin,
                timeout: self.timeout,
                conceal,
            })
            .await
    }

    /// Whether `text` holds a secret, as is or shell-quoted.
    fn carries_secret(&self, text: &str) -> bool {
        self.secrets
            .iter()
            .map(Secret::expose)
            .filter(|secret| !secret.is_empty())
            .any(|secret| text.contains(secret.as_str()) || text.contains(&quote(secret)))
    }
}

/// Removes one trailing newline (SPEC §2: registered stdout/stderr lose one).
#[must_use]
pub fn trim_newline(text: &str) -> &str {
    text.strip_suffix('\n')
        .map_or(text, |text| text.strip_suffix('\r').unwrap_or(text))
}

/// Runs one action on the host. A transport error means the host is gone, not that the step
/// failed; the executor decides what that makes the host.
pub async fn run<T: Transport>(
    context: &Context<'_, T>,
    action: &Ready<'_>,
) -> Result<Outcome, TransportError> {
    match *action {
        Ready::Copy { spec, mode, backup } => copy::run(context, spec, mode, backup).await,
        Ready::File { spec, mode } => file::run(context, spec, mode).await,
        Ready::WaitFor { spec, timeout, .. } => wait_for::run(context, spec, timeout).await,
        Ready::Assert { spec, ref that } => Ok(assert::run(spec, that)),
        Ready::Backup { spec, keep } => backup::run(context, spec, keep).await,
        Ready::Service { spec, enabled } => service::run(context, spec, enabled).await,
        Ready::User { spec, system } => user::run(context, spec, system).await,
        Ready::Other(action) => match action {
            Action::Command(spec) => command::run(context, spec).await,
            Action::Script(spec) => script::run(context, spec).await,
            Action::Fetch(spec) => fetch::run(context, spec).await,
            Action::Restore(spec) => restore::run(context, spec).await,
            Action::Package(spec) => package::run(context, spec).await,
            // A gate waits for people and a reboot replaces the host's connection: the
            // executor handles both before dispatch. The rest are typed by `Ready::new`.
            Action::Gate(_)
            | Action::Reboot(_)
            | Action::Copy(_)
            | Action::Template(_)
            | Action::File(_)
            | Action::Assert(_)
            | Action::WaitFor(_)
            | Action::Backup(_)
            | Action::User(_)
            | Action::Service(_) => Ok(Outcome::failed(format!(
                "internal error: a `{}` step is not run as an untyped action",
                action.keyword()
            ))),
        },
    }
}
