//! The errors of the SSH transport, and how ssh's own messages are read to produce them.
//!
//! SSH failures are ambiguous by nature: a refused login, an unknown host key and a dead
//! network all end in "ssh exited with 255". The variants here keep those cases apart, because
//! each has a different fix, and [`TransportError::hints`] names that fix. What ssh printed is
//! kept as the error's source ([`SshMessage`]), so the renderer shows it as `caused by:`.

use std::io;
use std::path::PathBuf;
use std::time::Duration;

use super::command::CommandProblem;

/// Text printed by `ssh` (or by the remote side), kept as the cause of an error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SshMessage(pub String);

/// What is wrong with a host key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostKeyProblem {
    /// No `known_hosts` file and no pinned `host_key` vouches for the key the host presented.
    Unknown,
    /// A recorded key for this host differs from the one it presented.
    Changed,
}

/// Why the connection settings of a host cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TargetProblem {
    /// An address that is empty, holds whitespace, or would be read as an ssh option.
    #[error("`{0}` is not a usable address")]
    InvalidAddress(String),
    /// An `ssh_options` entry that is not `Name=value` (or `Name value`) on one line.
    #[error("ssh option `{0}` is not of the form `Name=value`")]
    InvalidSshOption(String),
    /// An `ssh_options` entry outside the allowlist of connection tuning
    /// ([`crate::inventory::ssh_option::ALLOWED`]), or an algorithm list that widens the defaults.
    #[error("ssh option `{option}` sets `{keyword}`, which is not allowed")]
    RefusedSshOption {
        /// The option as written.
        option: String,
        /// Its keyword.
        keyword: String,
    },
    /// A pinned `host_key` that is not `TYPE BASE64 [COMMENT]` on one line.
    #[error("`host_key` `{0}` is not a public key of the form `ssh-ed25519 AAAA…`")]
    InvalidHostKey(String),
    /// A path that cannot be written into an ssh config file.
    #[error("path `{}` contains a character ssh config cannot hold (`\"`, `%` or a line break)", .0.display())]
    UnsupportedPath(PathBuf),
    /// A chain of jump hosts longer than opsgate follows.
    #[error("the chain of jump hosts is longer than {0}")]
    JumpChainTooLong(usize),
}

/// An error of the SSH transport. Every variant names the inventory host it concerns.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    /// The host's connection settings are unusable; nothing was attempted.
    #[error("host `{host}` has unusable connection settings: {problem}")]
    InvalidTarget {
        /// The inventory host.
        host: String,
        /// What is wrong.
        problem: TargetProblem,
    },
    /// The command cannot be sent; nothing ran.
    #[error("host `{host}` cannot be sent the command: {problem}")]
    InvalidCommand {
        /// The inventory host.
        host: String,
        /// What is wrong.
        problem: CommandProblem,
    },
    /// The local `ssh` client could not be started.
    #[error("the local `ssh` client could not be run for host `{host}`")]
    SshClient {
        /// The inventory host.
        host: String,
        /// Why it could not run.
        #[source]
        source: io::Error,
    },
    /// A local file or pipe operation failed.
    #[error("host `{host}`: {action}")]
    Io {
        /// The inventory host.
        host: String,
        /// What was being done, e.g. "could not write `/tmp/x`".
        action: String,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// The host could not be reached (refused, unreachable, unresolvable).
    #[error("host `{host}` could not be reached at `{destination}`")]
    Connect {
        /// The inventory host.
        host: String,
        /// `address:port` as dialled.
        destination: String,
        /// What ssh said.
        #[source]
        detail: SshMessage,
    },
    /// Connecting took longer than the connect timeout.
    #[error("host `{host}` did not answer at `{destination}` within {}s", timeout.as_secs())]
    ConnectTimeout {
        /// The inventory host.
        host: String,
        /// `address:port` as dialled.
        destination: String,
        /// The limit that passed.
        timeout: Duration,
    },
    /// The host refused every key offered for the login.
    #[error("host `{host}` rejected the SSH login at `{destination}`")]
    Authentication {
        /// The inventory host.
        host: String,
        /// `address:port` as dialled.
        destination: String,
        /// What ssh said.
        #[source]
        detail: SshMessage,
    },
    /// The host key is unknown or changed; the connection was refused before logging in.
    #[error(
        "host `{host}` at `{destination}` presented {}",
        match problem {
            HostKeyProblem::Unknown => "a host key that no known_hosts file or pinned `host_key` vouches for",
            HostKeyProblem::Changed => "a host key that differs from the recorded one",
        }
    )]
    HostKey {
        /// The inventory host.
        host: String,
        /// `address:port` as dialled.
        destination: String,
        /// The address, for the hint's commands.
        address: String,
        /// The port, for the hint's commands.
        port: Option<u16>,
        /// Unknown or changed.
        problem: HostKeyProblem,
        /// What ssh said.
        #[source]
        detail: SshMessage,
    },
    /// The jump host on the way to the host failed; the source says how.
    #[error("host `{host}` is reached through jump host `{jump}`, which failed")]
    Jump {
        /// The inventory host that was to be reached.
        host: String,
        /// The jump host that failed.
        jump: String,
        /// The jump host's own error.
        #[source]
        source: Box<TransportError>,
    },
    /// The SSH connection ended while in use.
    #[error("the SSH connection to host `{host}` was lost")]
    Disconnected {
        /// The inventory host.
        host: String,
        /// What the ssh master logged, when anything.
        #[source]
        detail: SshMessage,
    },
    /// The multiplexed connection refused a new channel for another reason.
    #[error("host `{host}` could not open an SSH channel")]
    Channel {
        /// The inventory host.
        host: String,
        /// The multiplexer's error.
        #[source]
        source: openssh::Error,
    },
    /// `sudo -n` refused to run the command as another account.
    #[error("host `{host}` refused to run the command as `{user}` through `sudo -n`")]
    Become {
        /// The inventory host.
        host: String,
        /// The account asked for.
        user: String,
        /// What sudo said.
        #[source]
        detail: SshMessage,
    },
    /// A command the transport needs on every host is missing there.
    #[error("host `{host}` has no `{command}` command")]
    MissingCommand {
        /// The inventory host.
        host: String,
        /// The missing command.
        command: String,
    },
}

impl TransportError {
    /// The inventory host this error concerns (for a failed jump host: the host to be reached).
    #[must_use]
    pub fn host(&self) -> &str {
        match self {
            Self::InvalidTarget { host, .. }
            | Self::InvalidCommand { host, .. }
            | Self::SshClient { host, .. }
            | Self::Io { host, .. }
            | Self::Connect { host, .. }
            | Self::ConnectTimeout { host, .. }
            | Self::Authentication { host, .. }
            | Self::HostKey { host, .. }
            | Self::Jump { host, .. }
            | Self::Disconnected { host, .. }
            | Self::Channel { host, .. }
            | Self::Become { host, .. }
            | Self::MissingCommand { host, .. } => host,
        }
    }

    /// Whether the host could not be used at all (as opposed to one command failing); the
    /// executor reports such a host as `unreachable`.
    #[must_use]
    pub fn is_unreachable(&self) -> bool {
        matches!(
            self,
            Self::Connect { .. }
                | Self::ConnectTimeout { .. }
                | Self::Authentication { .. }
                | Self::HostKey { .. }
                | Self::Jump { .. }
                | Self::Disconnected { .. }
        )
    }

    /// What the user can do about this error, one sentence each, most useful first.
    #[must_use]
    pub fn hints(&self) -> Vec<String> {
        match self {
            Self::InvalidTarget { host, problem } => match problem {
                TargetProblem::RefusedSshOption { .. } => vec![format!(
                    "remove it from `ssh_options` of host `{host}`: they only tune the \
                     connection ({}); use `jump:`, `known_hosts:`, `host_key:` or \
                     `identity_file:` for the rest",
                    crate::inventory::ssh_option::allowed_list()
                )],
                TargetProblem::InvalidHostKey(_) => vec![
                    "copy the key from the host's `/etc/ssh/ssh_host_ed25519_key.pub`, or from \
                     `ssh-keyscan -t ed25519 ADDRESS` after checking its fingerprint"
                        .to_owned(),
                ],
                _ => vec![format!(
                    "fix the connection settings of host `{host}` in the inventory"
                )],
            },
            Self::InvalidCommand { .. } | Self::Io { .. } => Vec::new(),
            Self::SshClient { .. } => vec![
                "install the OpenSSH client (`apt-get install openssh-client`) so that `ssh` \
                 is on PATH"
                    .to_owned(),
            ],
            Self::Connect { host, .. } => vec![
                format!(
                    "check `address` and `port` of host `{host}` in the inventory, and that \
                     sshd runs there"
                ),
                "`ssh -v` with the same settings shows each step of the connection".to_owned(),
            ],
            Self::ConnectTimeout { host, .. } => vec![
                format!(
                    "check that host `{host}` is up and that no firewall drops SSH traffic to it"
                ),
                format!(
                    "a slow network may need a longer connect timeout: `ssh_options: \
                     [ConnectTimeout=SECONDS]` for host `{host}` in the inventory"
                ),
            ],
            Self::Authentication { host, .. } => vec![
                format!(
                    "check `user` and `identity_file` of host `{host}` in the inventory, or the \
                     keys loaded in ssh-agent"
                ),
                "the public key must be in `~/.ssh/authorized_keys` of that account on the host"
                    .to_owned(),
            ],
            Self::HostKey {
                address,
                port,
                problem,
                ..
            } => host_key_hints(address, *port, *problem),
            Self::Jump { source, .. } => source.hints(),
            Self::Disconnected { host, .. } => vec![format!(
                "host `{host}` may have rebooted or dropped off the network; the step's result \
                 is unknown, check the host before running it again"
            )],
            Self::Channel { .. } => vec![
                "sshd may limit sessions per connection (`MaxSessions`, default 10); opsgate \
                 uses at most 9"
                    .to_owned(),
            ],
            Self::Become { host, user, .. } => vec![format!(
                "let the login account of host `{host}` run commands as `{user}` through sudo \
                 without a password (a `NOPASSWD` rule in sudoers)"
            )],
            Self::MissingCommand { host, command } => vec![format!(
                "install GNU coreutils on host `{host}`: opsgate uses `{command}` to bound every \
                 remote command"
            )],
        }
    }
}

/// The hints for an unknown or changed host key, with commands ready to paste.
fn host_key_hints(address: &str, port: Option<u16>, problem: HostKeyProblem) -> Vec<String> {
    let scan = match port {
        Some(port) if port != 22 => format!("ssh-keyscan -p {port} -t ed25519 {address}"),
        _ => format!("ssh-keyscan -t ed25519 {address}"),
    };
    let name = known_hosts_name(address, port);
    match problem {
        HostKeyProblem::Unknown => vec![
            format!(
                "add the key to `~/.ssh/known_hosts` or the inventory's `known_hosts:` file once \
                 you have checked its fingerprint: `{scan} >> ~/.ssh/known_hosts`"
            ),
            "or pin it in the inventory: `host_key: \"ssh-ed25519 AAAA…\"`".to_owned(),
        ],
        HostKeyProblem::Changed => vec![
            "a changed key means the host was reinstalled, or someone is intercepting the \
             connection: confirm the new key through another channel before trusting it"
                .to_owned(),
            format!(
                "then remove the old entry with `ssh-keygen -R '{name}'` (or edit the \
                 inventory's `known_hosts:` file or `host_key:`) and add the new key: \
                 `{scan} >> ~/.ssh/known_hosts`"
            ),
        ],
    }
}

/// How `known_hosts` names a host: `address`, or `[address]:port` for a port other than 22.
pub(crate) fn known_hosts_name(address: &str, port: Option<u16>) -> String {
    match port {
        Some(port) if port != 22 => format!("[{address}]:{port}"),
        _ => address.to_owned(),
    }
}

/// How ssh's output says a connection failed, when it says so in a way opsgate recognises.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ConnectFailure {
    /// Unknown or changed host key.
    HostKey(HostKeyProblem),
    /// Every key was refused.
    Authentication,
    /// The connection or the banner exchange timed out.
    Timeout,
    /// Refused, unreachable, unresolvable or closed before the handshake.
    Unreachable,
}

/// Reads ssh's error output. The messages are OpenSSH's own and stable across versions; the
/// host key checks come first because ssh may print other lines after them.
pub(crate) fn classify_connect_failure(text: &str) -> Option<ConnectFailure> {
    let changed = [
        "REMOTE HOST IDENTIFICATION HAS CHANGED",
        "has changed and you have requested strict checking",
    ];
    if changed.iter().any(|needle| text.contains(needle)) {
        return Some(ConnectFailure::HostKey(HostKeyProblem::Changed));
    }
    let unknown = [
        "Host key verification failed",
        "host key is known for",
        "No matching host key",
    ];
    if unknown.iter().any(|needle| text.contains(needle)) {
        return Some(ConnectFailure::HostKey(HostKeyProblem::Unknown));
    }
    if text.contains("Permission denied (") || text.contains("Too many authentication failures") {
        return Some(ConnectFailure::Authentication);
    }
    let timeout = [
        "Connection timed out",
        "Operation timed out",
        "timed out during banner exchange",
    ];
    if timeout.iter().any(|needle| text.contains(needle)) {
        return Some(ConnectFailure::Timeout);
    }
    let unreachable = [
        "Connection refused",
        "Could not resolve",
        "No route to host",
        "Network is unreachable",
        "Name or service not known",
        "Connection closed by",
        "Connection reset by",
        "kex_exchange_identification",
    ];
    if unreachable.iter().any(|needle| text.contains(needle)) {
        return Some(ConnectFailure::Unreachable);
    }
    None
}

/// The lines of ssh's output worth showing: without blank lines and the `@@@` banner frame.
pub(crate) fn ssh_message(text: &str) -> SshMessage {
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim_end)
        .filter(|line| !line.trim().is_empty() && !line.starts_with("@@@"))
        .collect();
    SshMessage(lines.join("\n"))
}

#[cfg(test)]
mod tests {
    use super::{
        ConnectFailure, HostKeyProblem, SshMessage, TransportError, classify_connect_failure,
        ssh_message,
    };

    #[test]
    fn classify_reads_openssh_messages() {
        let cases = [
            (
                "No ED25519 host key is known for [127.0.0.1]:2222 and you have requested \
                 strict checking.\r\nHost key verification failed.",
                Some(ConnectFailure::HostKey(HostKeyProblem::Unknown)),
            ),
            (
                "@@@@@@@\n@    WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED!     @\n\
                 Host key verification failed.",
                Some(ConnectFailure::HostKey(HostKeyProblem::Changed)),
            ),
            (
                "root@127.0.0.1: Permission denied (publickey).",
                Some(ConnectFailure::Authentication),
            ),
            (
                "ssh: connect to host 10.1.1.1 port 22: Connection timed out",
                Some(ConnectFailure::Timeout),
            ),
            (
                "ssh: connect to host 127.0.0.1 port 1: Connection refused",
                Some(ConnectFailure::Unreachable),
            ),
            (
                "ssh: Could not resolve hostname nowhere.invalid: Name or service not known",
                Some(ConnectFailure::Unreachable),
            ),
            ("Killed by signal 1.", None),
        ];
        for (text, expected) in cases {
            assert_eq!(classify_connect_failure(text), expected, "{text}");
        }
    }

    #[test]
    fn ssh_message_drops_banner_frames() {
        let text = "@@@@@@@@\n@ WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED! @\n@@@@@@@@\n\
                    IT IS POSSIBLE THAT SOMEONE IS DOING SOMETHING NASTY!\n\n";
        assert_eq!(
            ssh_message(text),
            SshMessage(
                "@ WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED! @\n\
                 IT IS POSSIBLE THAT SOMEONE IS DOING SOMETHING NASTY!"
                    .to_owned()
            )
        );
    }

    #[test]
    fn host_key_errors_name_host_and_fix() {
        let error = TransportError::HostKey {
            host: "web2".to_owned(),
            destination: "10.0.0.12:2222".to_owned(),
            address: "10.0.0.12".to_owned(),
            port: Some(2222),
            problem: HostKeyProblem::Changed,
            detail: SshMessage("Host key verification failed.".to_owned()),
        };
        assert_eq!(
            error.to_string(),
            "host `web2` at `10.0.0.12:2222` presented a host key that differs from the recorded \
             one"
        );
        let hints = error.hints().join("\n");
        assert!(
            hints.contains("ssh-keygen -R '[10.0.0.12]:2222'"),
            "{hints}"
        );
        assert!(
            hints.contains("ssh-keyscan -p 2222 -t ed25519 10.0.0.12"),
            "{hints}"
        );

        let unknown = TransportError::HostKey {
            host: "web2".to_owned(),
            destination: "10.0.0.12".to_owned(),
            address: "10.0.0.12".to_owned(),
            port: None,
            problem: HostKeyProblem::Unknown,
            detail: SshMessage("Host key verification failed.".to_owned()),
        };
        let hints = unknown.hints().join("\n");
        assert!(
            hints.contains("ssh-keyscan -t ed25519 10.0.0.12 >>"),
            "{hints}"
        );
        assert!(hints.contains("host_key:"), "{hints}");
    }
}
