//! What can go wrong while starting, inspecting or stopping a lab, with hints for the person.

use std::io;
use std::path::PathBuf;

/// An error of `opsgate lab` (and of the test suite's lab fixture).
#[derive(Debug, thiserror::Error)]
pub enum LabError {
    /// `/usr/sbin/sshd` is not installed.
    #[error("OpenSSH server `{}` is not installed", path.display())]
    SshdMissing {
        /// The sshd binary the lab runs.
        path: PathBuf,
    },
    /// `ssh-keygen` could not be run.
    #[error("`ssh-keygen` could not be run")]
    SshKeygenMissing {
        /// Why spawning it failed.
        #[source]
        source: io::Error,
    },
    /// `ssh-keygen` ran but did not produce a key.
    #[error("`ssh-keygen` failed to create `{}`: {stderr}", path.display())]
    KeyGeneration {
        /// The key file it was asked to write.
        path: PathBuf,
        /// What it printed on stderr.
        stderr: String,
    },
    /// `--hosts` is outside what the loopback range can hold.
    #[error("a lab has 1 to {max} hosts, not {hosts}")]
    HostCount {
        /// The requested number of hosts.
        hosts: usize,
        /// The largest lab supported.
        max: usize,
    },
    /// A lab in this directory still has running sshd processes.
    #[error("a lab is already running in `{}`", dir.display())]
    AlreadyRunning {
        /// The lab directory.
        dir: PathBuf,
    },
    /// The directory holds files that are not a lab's; `up` never overwrites those.
    #[error("`{}` is not empty and holds no lab", dir.display())]
    DirectoryNotEmpty {
        /// The directory given to `lab up`.
        dir: PathBuf,
    },
    /// No lab was ever started in this directory (or it was taken down).
    #[error("no lab in `{}`", dir.display())]
    NoLab {
        /// The directory that was looked at.
        dir: PathBuf,
    },
    /// A path cannot be written into an sshd or ssh config file.
    #[error("path `{}` contains a double quote or a line break, which ssh config files cannot hold", path.display())]
    UnsupportedPath {
        /// The offending path.
        path: PathBuf,
    },
    /// A file-system or process operation failed.
    #[error("cannot {action} `{}`", path.display())]
    Io {
        /// What was being done, as a verb phrase ("write", "create directory", …).
        action: &'static str,
        /// The file, directory or program involved.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },
    /// `lab.json` could not be read back.
    #[error("lab state `{}` is not valid", path.display())]
    CorruptState {
        /// The state file.
        path: PathBuf,
        /// The JSON error.
        #[source]
        source: serde_json::Error,
    },
    /// The account running opsgate has no name in the user database.
    #[error("uid {uid} has no entry in the user database")]
    UnknownAccount {
        /// The effective uid.
        uid: u32,
    },
    /// sshd exited before it was ready.
    #[error("sshd of lab host `{host}` exited during startup ({status}); last lines of `{}`:\n{log_tail}", log.display())]
    SshdExited {
        /// The lab host name.
        host: String,
        /// How it exited.
        status: std::process::ExitStatus,
        /// Its log file.
        log: PathBuf,
        /// The end of its log.
        log_tail: String,
    },
    /// sshd was still not accepting connections after the startup deadline.
    #[error("sshd of lab host `{host}` did not accept connections on {address}:{port} within {seconds} s; last lines of `{}`:\n{log_tail}", log.display())]
    StartTimeout {
        /// The lab host name.
        host: String,
        /// Its listen address.
        address: std::net::Ipv4Addr,
        /// Its listen port.
        port: u16,
        /// How long opsgate waited.
        seconds: u64,
        /// Its log file.
        log: PathBuf,
        /// The end of its log.
        log_tail: String,
    },
    /// A recorded sshd (or a process of an isolated host) survived SIGTERM and SIGKILL.
    #[error("lab host `{host}` (pid {pid}) did not stop")]
    StopFailed {
        /// The lab host name.
        host: String,
        /// Its process id.
        pid: u32,
    },
}

impl LabError {
    /// Ways to fix the problem, rendered after the error as `hint: …`.
    #[must_use]
    pub fn hints(&self) -> Vec<String> {
        match self {
            Self::SshdMissing { .. } => {
                vec!["install it: apt-get install -y openssh-server".to_owned()]
            }
            Self::SshKeygenMissing { .. } => {
                vec!["install it: apt-get install -y openssh-client".to_owned()]
            }
            Self::HostCount { .. } => vec!["pass `--hosts N` with N from 1 to 253".to_owned()],
            Self::AlreadyRunning { dir } => vec![format!(
                "stop it first: opsgate lab down --dir {}",
                dir.display()
            )],
            Self::DirectoryNotEmpty { .. } => {
                vec!["pass `--dir` with a new or empty directory".to_owned()]
            }
            Self::NoLab { dir } => {
                vec![format!("start one: opsgate lab up --dir {}", dir.display())]
            }
            Self::UnsupportedPath { .. } => {
                vec!["pass `--dir` with a plainer directory name".to_owned()]
            }
            Self::CorruptState { path, .. } => vec![format!(
                "stop any sshd it started by hand, then delete `{}`",
                path.display()
            )],
            Self::SshdExited { .. } | Self::StartTimeout { .. } => {
                vec![
                    "the sshd log above says why; `sshd -t -f <config>` checks a config".to_owned(),
                ]
            }
            Self::StopFailed { pid, .. } => vec![
                format!("stop it by hand: kill -9 {pid}"),
                "on a host with its own filesystem, also every process whose `/proc/PID/ns/mnt` \
                 is the host's (`lsns -t mnt` lists them); docs/lab.md explains"
                    .to_owned(),
            ],
            Self::KeyGeneration { .. } | Self::Io { .. } | Self::UnknownAccount { .. } => vec![],
        }
    }
}

/// Shorthand for [`LabError::Io`] in `map_err`.
pub(crate) fn io_error(
    action: &'static str,
    path: impl Into<PathBuf>,
) -> impl FnOnce(io::Error) -> LabError {
    let path = path.into();
    move |source| LabError::Io {
        action,
        path,
        source,
    }
}
