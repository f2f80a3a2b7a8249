//! One lab host: a private sshd listening on its own loopback address and port, and the files it
//! keeps under `DIR/hosts/<name>/`.

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
    /// Process id of the host's main process: the listening sshd itself on a shared filesystem,
    /// the host's supervisor (`boot.sh`, which runs sshd and restarts it after a lab reboot) on
    /// an overlay. `lab status` looks at this process; `lab down` starts from it.
    pub pid: u32,
    /// The host's own working directory, exposed as the inventory variable `lab_root`; the same
    /// path on the host and on the machine running the lab.
    pub lab_root: PathBuf,
    /// Whether the host has a filesystem of its own. Absent from labs recorded before overlays
    /// existed, which all shared the machine's.
    #[serde(default)]
    pub filesystem: HostFilesystem,
}

impl LabHost {
    /// Whether the host sees a filesystem of its own (the inventory variable `lab_isolated`).
    #[must_use]
    pub fn is_isolated(&self) -> bool {
        matches!(self.filesystem, HostFilesystem::Overlay { .. })
    }
}

/// What a lab host's processes see as `/`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum HostFilesystem {
    /// The machine's own filesystem: only `lab_root` belongs to the host.
    #[default]
    Shared,
    /// A private mount namespace with an overlay of the machine's `/`; every change lands in
    /// the host's upper directory and disappears with `lab down`.
    Overlay {
        /// Inode of the namespace (`stat -L /proc/PID/ns/mnt`), so that `lab down` finds the
        /// host's processes even after its supervisor died. `None` when the supervisor exited
        /// before it could be read, in which case the namespace died with it.
        namespace: Option<u64>,
    },
}

/// How a host is started, decided once for the whole lab by `isolation::choose`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Launch {
    /// sshd runs directly, on the machine's filesystem.
    Shared,
    /// `boot.sh` builds an overlay in a private mount namespace and supervises sshd there.
    Overlay,
}

/// Whether a recorded lab host's sshd is still running.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostState {
    /// The recorded pid is alive and is this host's sshd (or supervisor).
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

    /// sshd's stderr (`-e`), kept for the person debugging a failed start or test. On an
    /// overlay the supervisor writes its own lines (reboots) there too.
    pub(crate) fn log(&self) -> PathBuf {
        self.dir.join("sshd.log")
    }

    pub(crate) fn lab_root(&self) -> PathBuf {
        self.dir.join("root")
    }

    /// The script that builds the host's filesystem and supervises its sshd (overlay only).
    pub(crate) fn boot_script(&self) -> PathBuf {
        self.dir.join("boot.sh")
    }

    /// The lab-only stand-in for `shutdown -r now`, named by `OPSGATE_LAB_REBOOT`.
    pub(crate) fn reboot_script(&self) -> PathBuf {
        self.dir.join("reboot.sh")
    }

    /// The host's boot id, bind-mounted over `/proc/sys/kernel/random/boot_id` inside the host.
    pub(crate) fn boot_id(&self) -> PathBuf {
        self.dir.join("boot_id")
    }

    /// The overlay's directories; hidden inside the host, which must not change them directly.
    pub(crate) fn overlay(&self) -> PathBuf {
        self.dir.join("overlay")
    }

    /// Every file the host created, changed or deleted (whiteouts) relative to the machine's `/`.
    pub(crate) fn upper(&self) -> PathBuf {
        self.overlay().join("upper")
    }

    /// The overlay's scratch directory, on the same filesystem as `upper`.
    pub(crate) fn work(&self) -> PathBuf {
        self.overlay().join("work")
    }

    /// Where the overlay is mounted inside the host's namespace (an empty directory for
    /// everyone else); the host's sshd is chrooted there.
    pub(crate) fn merged(&self) -> PathBuf {
        self.overlay().join("merged")
    }
}
