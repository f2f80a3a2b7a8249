//! Whether lab hosts get a filesystem of their own, decided once per `lab up`.
//!
//! Root can give each host a private mount namespace with an overlay of `/` (see `boot`). Before
//! starting any host, `up` proves that this works here: a throwaway overlay is mounted in a
//! throwaway namespace with its upper directory in the lab directory, exactly as the hosts will
//! mount theirs. When that is refused (not root, no overlayfs, a lab directory on a filesystem
//! overlayfs will not write to, a container without the right to mount), the lab falls back to
//! the shared filesystem and says why; this module only returns the reason, the CLI prints it.

use std::fmt;
use std::fs;
use std::io::{self, ErrorKind};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};

use serde::{Deserialize, Serialize};

use super::account;
use super::error::{LabError, io_error};

/// Scratch directory of the probe inside the lab directory, removed right after.
pub(crate) const PROBE_DIR: &str = "overlay-probe";

/// How the hosts of a lab relate to the machine's filesystem.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Isolation {
    /// Each host has a private overlay of `/` in a mount namespace of its own.
    Overlay,
    /// Every host sees the machine's filesystem; only `lab_root` is per host.
    Shared {
        /// Why the hosts could not have a filesystem of their own.
        reason: SharedReason,
    },
}

impl Default for Isolation {
    /// Labs recorded before overlays existed shared the machine's filesystem.
    fn default() -> Self {
        Self::Shared {
            reason: SharedReason::NotRecorded,
        }
    }
}

/// Why lab hosts share the machine's filesystem.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum SharedReason {
    /// Mount namespaces and overlays need root.
    NotRoot,
    /// The lab directory's path holds a character overlayfs mount options cannot carry.
    UnsupportedPath {
        /// The lab directory.
        dir: PathBuf,
    },
    /// Mounting an overlay with its upper directory in the lab directory failed.
    OverlayRefused {
        /// The lab directory.
        dir: PathBuf,
        /// What `mount` (or the kernel) said.
        detail: String,
    },
    /// The lab was recorded by an opsgate that did not record why (they all shared).
    NotRecorded,
}

impl fmt::Display for SharedReason {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotRoot => write!(formatter, "opsgate is not running as root"),
            Self::UnsupportedPath { dir } => write!(
                formatter,
                "the lab directory `{}` contains `,`, `:` or `\\`, which overlay mount options \
                 cannot carry",
                dir.display()
            ),
            Self::OverlayRefused { dir, detail } => write!(
                formatter,
                "an overlay of `/` with its upper directory in `{}` was refused: {detail}",
                dir.display()
            ),
            Self::NotRecorded => write!(formatter, "the lab was started by an older opsgate"),
        }
    }
}

impl SharedReason {
    /// Ways to get isolated hosts, rendered after the warning as `hint: …`.
    #[must_use]
    pub fn hints(&self) -> Vec<String> {
        let docs = "docs/lab.md explains what lab hosts share".to_owned();
        match self {
            Self::NotRoot => vec![
                "run `opsgate lab up` as root (as CI does) for hosts with a filesystem of their own"
                    .to_owned(),
                docs,
            ],
            Self::UnsupportedPath { .. } => {
                vec![
                    "pass `--dir` with a plainer directory name".to_owned(),
                    docs,
                ]
            }
            Self::OverlayRefused { .. } => vec![
                "pass `--dir` on a disk filesystem such as ext4 or xfs (not on an overlay, NFS or \
                 FUSE mount)"
                    .to_owned(),
                docs,
            ],
            Self::NotRecorded => vec![docs],
        }
    }
}

/// Decides how the hosts of the lab in `dir` (absolute) are isolated.
pub(crate) fn choose(dir: &Path) -> Result<Isolation, LabError> {
    if account::effective_uid() != 0 {
        return Ok(Isolation::Shared {
            reason: SharedReason::NotRoot,
        });
    }
    if dir.to_string_lossy().contains([',', ':', '\\']) {
        return Ok(Isolation::Shared {
            reason: SharedReason::UnsupportedPath {
                dir: dir.to_owned(),
            },
        });
    }
    let probe = dir.join(PROBE_DIR);
    let result = probe_overlay(&probe);
    // The probe's namespace died with its `mount`; its directories are plain ones again.
    match fs::remove_dir_all(&probe) {
        Err(error) if error.kind() != ErrorKind::NotFound => {
            return Err(io_error("remove", &probe)(error));
        }
        _ => {}
    }
    Ok(match result? {
        Ok(()) => Isolation::Overlay,
        Err(refusal) => Isolation::Shared {
            reason: SharedReason::OverlayRefused {
                dir: dir.to_owned(),
                detail: refusal.to_string(),
            },
        },
    })
}

/// Why the probe's overlay mount was refused: one line, since it ends a one-line warning. The
/// `io::Error` is part of the line, not a source, because the warning has no cause chain.
#[derive(Debug, thiserror::Error)]
enum OverlayRefusal {
    #[error("cannot run `mount`: {0}")]
    CannotRun(io::Error),
    #[error("`mount` exited with {0}")]
    Exited(ExitStatus),
    /// What `mount` printed, on one line.
    #[error("{0}")]
    Said(String),
}

/// Mounts an overlay of `/` on `probe/merged` in a namespace that dies with the `mount` process.
/// The outer error is about our own files; the inner one is the refusal, for the warning.
fn probe_overlay(probe: &Path) -> Result<Result<(), OverlayRefusal>, LabError> {
    let layers = OverlayLayers {
        upper: probe.join("upper"),
        work: probe.join("work"),
        merged: probe.join("merged"),
    };
    for directory in [&layers.upper, &layers.work, &layers.merged] {
        fs::create_dir_all(directory).map_err(io_error("create directory", directory))?;
    }
    let mut command = Command::new("mount");
    command
        .args(["-t", "overlay", "opsgate-lab-probe", "-o"])
        .arg(layers.options())
        .arg(&layers.merged)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    // SAFETY: the closure only makes async-signal-safe system calls (see the function).
    unsafe {
        command.pre_exec(|| enter_private_mount_namespace());
    }
    let output = match command.output() {
        Ok(output) => output,
        Err(error) => return Ok(Err(OverlayRefusal::CannotRun(error))),
    };
    if output.status.success() {
        return Ok(Ok(()));
    }
    // One line: it ends a one-line warning.
    let stderr = String::from_utf8_lossy(&output.stderr)
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    Ok(Err(if stderr.is_empty() {
        OverlayRefusal::Exited(output.status)
    } else {
        OverlayRefusal::Said(stderr)
    }))
}

/// The three directories of an overlay whose lower layer is the machine's `/`.
pub(crate) struct OverlayLayers {
    pub(crate) upper: PathBuf,
    pub(crate) work: PathBuf,
    pub(crate) merged: PathBuf,
}

impl OverlayLayers {
    /// The `-o` value for `mount -t overlay`. The paths were checked by [`choose`] to hold none
    /// of the characters overlayfs treats as separators.
    pub(crate) fn options(&self) -> String {
        format!(
            "lowerdir=/,upperdir={},workdir={}",
            self.upper.display(),
            self.work.display()
        )
    }
}

/// Moves the calling process, between fork and exec, into a new mount namespace whose mounts
/// never propagate back to the machine's (`unshare --mount --propagation private`).
///
/// Done here rather than by the `unshare` program so that the namespace exists the moment
/// `spawn` returns, and `up` can record it before anything else can go wrong.
///
/// # Safety
/// Only for `pre_exec`: it makes raw system calls with static arguments and allocates nothing.
pub(crate) unsafe fn enter_private_mount_namespace() -> io::Result<()> {
    // SAFETY: unshare and mount take no pointers to memory we own but static C strings.
    unsafe {
        if libc::unshare(libc::CLONE_NEWNS) == -1 {
            return Err(io::Error::last_os_error());
        }
        if libc::mount(
            c"none".as_ptr(),
            c"/".as_ptr(),
            std::ptr::null(),
            libc::MS_REC | libc::MS_PRIVATE,
            std::ptr::null(),
        ) == -1
        {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}
