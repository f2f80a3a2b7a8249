//! Team mode (SPEC §4.6, §7): `opsgate serve`, run by the service account, owns the project —
//! catalog, inventory, policy, state — and operators reach it through the `opsgate` command line
//! over a Unix socket.
//!
//! - [`protocol`]: the wire format (newline-delimited JSON, versioned, bounded lines).
//! - [`server`]: the listener: identity from the socket's peer credentials and nothing else, a
//!   bounded number of connections, a shutdown future; each request is one `ops` call.
//! - `runs`: runs inside the service, streamed to the client that asked, cancelled by it, never
//!   stopped by its going away.
//! - [`client`]: the command line's side of a connection.
//!
//! This module holds no domain logic: the service calls the same `ops` functions as the command
//! line, with a [`crate::ops::Caller`] built from the peer uid, and renders their results with
//! the renderers the command line uses too (`crate::render`), so output is the same in both
//! modes; it never imports `crate::cli`. It never opens a path
//! a request names: requests carry ids, filters and flags, never paths.

pub mod client;
pub mod protocol;
mod runs;
pub mod server;

use std::path::PathBuf;

use protocol::{ErrorResponse, ProtocolError};

/// What can go wrong between the command line and the service, or in starting the service.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// A message broke the protocol.
    #[error(transparent)]
    Protocol(#[from] ProtocolError),
    /// The command line could not reach the service.
    #[error("cannot connect to the opsgate service at `{}`", socket.display())]
    Connect {
        /// The socket.
        socket: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The service closed the connection before ending the request.
    #[error("the opsgate service closed the connection before answering")]
    Closed,
    /// The service refused or failed the request; it rendered the error as the command line
    /// would.
    #[error("{}", .0.message)]
    Remote(ErrorResponse),
    /// An option that belongs to the service was given to a client in team mode.
    #[error("`{option}` cannot be chosen in team mode: the opsgate service at `{}` uses its own", socket.display())]
    ServiceOwned {
        /// The option as typed (`-i/--inventory`, …).
        option: &'static str,
        /// The service's socket.
        socket: PathBuf,
    },
    /// A command the service does not offer yet.
    #[error("`opsgate {command}` is not available in team mode yet (the service at `{}` is configured)", socket.display())]
    NotInTeamMode {
        /// The subcommand.
        command: &'static str,
        /// The service's socket.
        socket: PathBuf,
    },
    /// `opsgate serve` was given `-i`, `--policy` or `--state-dir`.
    #[error("`opsgate serve` takes its files from its configuration, not from `{option}`")]
    ServeOption {
        /// The option.
        option: &'static str,
    },
    /// The configuration has no `service:` section.
    #[error("`{}` has no `service:` section, so there is no socket to serve", config.display())]
    NoServiceSection {
        /// The configuration file.
        config: PathBuf,
    },
    /// There is no policy file: a service without one would gate nobody.
    #[error("the policy file `{}` does not exist: the service gates people and needs one", policy.display())]
    NoPolicy {
        /// Where the configuration says it is.
        policy: PathBuf,
    },
    /// The policy names another account as the service account.
    #[error("the policy `{}` names `{named}` as its service account, but the service runs as `{running}`", policy.display())]
    WrongAccount {
        /// The policy file.
        policy: PathBuf,
        /// Its `service_account`.
        named: String,
        /// Who runs `opsgate serve`.
        running: String,
    },
    /// The socket's directory is not the service's alone to write.
    #[error("the socket directory `{}` {problem}", directory.display())]
    SocketDirectory {
        /// The directory.
        directory: PathBuf,
        /// What is wrong, as a phrase (`is owned by uid 1000`).
        problem: String,
    },
    /// Another service answers on the socket.
    #[error("another opsgate service is already listening on `{}`", socket.display())]
    InUse {
        /// The socket.
        socket: PathBuf,
    },
    /// Something other than a stale socket is where the socket goes.
    #[error("`{}` exists and is not a socket; refusing to replace it", socket.display())]
    NotASocket {
        /// The path.
        socket: PathBuf,
    },
    /// Creating, binding or setting up the socket failed.
    #[error("cannot {action} `{}`", path.display())]
    Socket {
        /// What was being done.
        action: &'static str,
        /// The path.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The signal handlers could not be installed.
    #[error("cannot listen for signals")]
    Signals(#[source] std::io::Error),
}

impl ServiceError {
    /// Ways to fix it.
    #[must_use]
    pub fn hints(&self) -> Vec<String> {
        match self {
            ServiceError::Connect { .. } => vec![
                "is `opsgate serve` running (`systemctl status opsgate`)? Operators need to be \
                 in the socket's group (`opsgate` in deploy/opsgate.tmpfiles)"
                    .to_owned(),
                "the socket comes from `OPSGATE_SOCKET`, else from `service: { socket: … }` in \
                 `opsgate.yaml`"
                    .to_owned(),
            ],
            ServiceError::Remote(response) => response.hints.clone(),
            ServiceError::ServiceOwned { .. } => vec![
                "the service's `opsgate.yaml` decides the inventory, policy and state directory; \
                 unset `OPSGATE_STATE_DIR` and drop the option"
                    .to_owned(),
            ],
            ServiceError::NotInTeamMode { .. } => vec![
                "team mode does not sign with your keys yet: approve without `--sign`, and check \
                 checkpoint signatures locally; `validate`, `plan` (without `--save`), \
                 `inventory` and `lab` work on your own files"
                    .to_owned(),
            ],
            ServiceError::NoPolicy { .. } => vec![
                "write the operators policy (SPEC §4.1), owned by root or the service account"
                    .to_owned(),
            ],
            ServiceError::WrongAccount { named, .. } => {
                vec![format!(
                    "run `opsgate serve` as `{named}`, or fix `service_account:`"
                )]
            }
            ServiceError::SocketDirectory { .. } => vec![
                "the directory must belong to the service account and be writable by nobody \
                 else: whoever can write it could put their own socket in the service's place \
                 (deploy/opsgate.tmpfiles creates `/run/opsgate` that way)"
                    .to_owned(),
            ],
            _ => Vec::new(),
        }
    }
}
