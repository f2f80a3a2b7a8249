//! One lab host: a private sshd listening on its own loopback address and port.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// A lab host as recorded in `DIR/lab.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LabHost {
    /// Inventory name: `lab1`, `lab2`, …
    pub name: String,
    /// Loopback address sshd listens on (one of 127.0.0.2 – 127.0.0.254).
    pub address: Ipv4Addr,
    /// TCP port sshd listens on.
    pub port: u16,
    /// Process id of the listening sshd, the only process `lab down` stops for this host.
    pub pid: u32,
    /// The host's own working directory, exposed as the inventory variable `lab_root`.
    pub lab_root: PathBuf,
}

/// Whether a recorded lab host's sshd is still running.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostState {
    /// The recorded pid is alive and is this host's sshd.
    Running,
    /// The process is gone (or the pid now belongs to another program).
    Stopped,
}

/// A lab host together with its current state, as `lab status` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostStatus {
    /// The recorded host.
    pub host: LabHost,
    /// Whether its sshd runs.
    pub state: HostState,
}

/// Files of one host inside the lab directory: `DIR/hosts/<name>/…`.
#[derive(Debug, Clone)]
pub(crate) struct HostFiles {
    pub(crate) dir: PathBuf,
}

impl HostFiles {
    pub(crate) fn new(lab_dir: &Path, name: &str) -> Self {
        Self {
            dir: lab_dir.join("hosts").join(name),
        }
    }

    /// The sshd configuration; its path on sshd's command line identifies the process as ours.
    pub(crate) fn sshd_config(&self) -> PathBuf {
        self.dir.join("sshd_config")
    }

    pub(crate) fn host_key(&self) -> PathBuf {
        self.dir.join("ssh_host_ed25519_key")
    }

    pub(crate) fn pid_file(&self) -> PathBuf {
        self.dir.join("sshd.pid")
    }

    /// sshd's stderr (`-e`), kept for the person debugging a failed start or test.
    pub(crate) fn log(&self) -> PathBuf {
        self.dir.join("sshd.log")
    }

    pub(crate) fn lab_root(&self) -> PathBuf {
        self.dir.join("root")
    }
}
