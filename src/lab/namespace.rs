//! A lab host's mount namespace: finding every process in it, and stopping them all.
//!
//! A host on an overlay is not one process but everything its sshd ever started, including
//! daemons a runbook launched as services and that re-parented themselves away from sshd. What
//! they have in common is the mount namespace, so that is how `lab down` finds them: every
//! process whose `/proc/PID/ns/mnt` is the host's namespace.
//!
//! A namespace inode is only unique among live namespaces, so a recorded number alone proves
//! nothing after the host died. A namespace counts as the host's only while one of its processes
//! shows, in `/proc/PID/mountinfo`, an overlay whose upper directory is this host's: no other
//! namespace on the machine can hold that mount.

use std::collections::HashSet;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::Instant;

use super::error::LabError;
use super::process::{self, Stopped};

/// How long the host's processes may take to exit after each signal.
const STOP_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// The inode of `pid`'s mount namespace; `None` when the process is gone, is a zombie (whose
/// namespaces are already released) or may not be inspected.
pub(crate) fn namespace_of(pid: u32) -> Option<u64> {
    fs::metadata(format!("/proc/{pid}/ns/mnt"))
        .ok()
        .map(|metadata| metadata.ino())
}

/// One host's mount namespace, as recorded by `lab up`.
pub(crate) struct HostNamespace<'a> {
    /// The namespace inode.
    pub(crate) inode: u64,
    /// The host's overlay upper directory, which proves the namespace is the host's.
    pub(crate) upper: &'a Path,
}

impl HostNamespace<'_> {
    /// Pids of the live processes in the host's namespace; empty when none is left, or when the
    /// namespace with that inode is not (any more) the host's.
    pub(crate) fn members(&self) -> Vec<u32> {
        let candidates = self.in_inode();
        // Any one live member proves the whole namespace: all members share one mount table.
        // A member chrooted below the overlay (sshd's pre-auth child in /run/sshd) cannot show
        // it, which is why one proof stands for all.
        if candidates.iter().any(|pid| self.shows_overlay(*pid)) {
            candidates
        } else {
            Vec::new()
        }
    }

    /// Holds the host's namespace open, so that its inode keeps naming it even after every
    /// member has exited: the kernel recycles a namespace's inode only once nothing refers to
    /// it, and another lab host starting meanwhile (the test suite runs many) could otherwise be
    /// given the same number. `None` when the namespace is not (any more) the host's.
    fn pin(&self) -> Option<fs::File> {
        self.members().into_iter().find_map(|pid| {
            let file = fs::File::open(format!("/proc/{pid}/ns/mnt")).ok()?;
            // The pid may have exited and been reused between the listing and the open.
            (file.metadata().ok()?.ino() == self.inode).then_some(file)
        })
    }

    /// Pids of the live processes whose mount namespace has the host's inode, unproven.
    fn in_inode(&self) -> Vec<u32> {
        let Ok(entries) = fs::read_dir("/proc") else {
            return Vec::new();
        };
        entries
            .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u32>().ok())
            .filter(|pid| namespace_of(*pid) == Some(self.inode))
            .collect()
    }

    /// Whether `pid`'s mount table holds an overlay with the host's upper directory.
    fn shows_overlay(&self, pid: u32) -> bool {
        let Ok(text) = fs::read_to_string(format!("/proc/{pid}/mountinfo")) else {
            return false;
        };
        text.lines()
            .any(|line| mounts_overlay_with_upper(line, self.upper))
    }
}

/// Whether one `/proc/PID/mountinfo` line is an overlay mount whose `upperdir` is `upper`.
/// After the ` - ` separator come the filesystem type, the source and the super options, in
/// which the kernel writes a space as `\040` (and a tab, newline or backslash likewise).
fn mounts_overlay_with_upper(line: &str, upper: &Path) -> bool {
    let Some((_, after)) = line.split_once(" - ") else {
        return false;
    };
    let mut fields = after.split(' ');
    let (Some("overlay"), Some(_source), Some(options)) =
        (fields.next(), fields.next(), fields.next())
    else {
        return false;
    };
    let expected = upper.to_string_lossy();
    unescape_octal(options)
        .split(',')
        .any(|option| option.strip_prefix("upperdir=") == Some(expected.as_ref()))
}

/// Decodes the `\NNN` octal escapes of a mountinfo field.
fn unescape_octal(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        let escaped = bytes
            .get(index + 1..index + 4)
            .filter(|_| bytes[index] == b'\\')
            .filter(|digits| digits.iter().all(|digit| (b'0'..=b'7').contains(digit)))
            .and_then(|digits| std::str::from_utf8(digits).ok())
            .and_then(|digits| u8::from_str_radix(digits, 8).ok());
        if let Some(byte) = escaped {
            decoded.push(byte);
            index += 4;
        } else {
            decoded.push(bytes[index]);
            index += 1;
        }
    }
    String::from_utf8_lossy(&decoded).into_owned()
}

/// Stops every process of host `host`'s namespace: SIGTERM, then SIGKILL to whatever is left
/// after [`STOP_TIMEOUT`]. `supervisor` is reaped when it is our child (the test suite).
pub(crate) fn stop(
    host: &str,
    supervisor: u32,
    namespace: &HostNamespace<'_>,
) -> Result<Stopped, LabError> {
    // The namespace is proven the host's once, before any signal, and held open from then on so
    // that its inode alone names it. Proving it again each round would fail once the members
    // that show the overlay have exited while others (a pre-auth sshd chrooted below it, a
    // process halfway through exiting) have not, leaving those running.
    let Some(_pinned) = namespace.pin() else {
        let _ = process::reap(supervisor);
        return Ok(Stopped::Already);
    };
    let mut stopped = Stopped::Already;
    for signal in [libc::SIGTERM, libc::SIGKILL] {
        // A process is signalled once per round: a daemon that forks while stopping gets the
        // signal too, one that is already exiting is not hit again.
        let mut signalled = HashSet::new();
        let sent = Instant::now();
        loop {
            let _ = process::reap(supervisor);
            let members = namespace.in_inode();
            if members.is_empty() {
                while process::reap(supervisor) == process::ReapState::Running
                    && sent.elapsed() < STOP_TIMEOUT
                {
                    process::pause();
                }
                return Ok(stopped);
            }
            if sent.elapsed() >= STOP_TIMEOUT {
                break;
            }
            for pid in members {
                if signalled.insert(pid) {
                    process::signal(pid, signal);
                    stopped = Stopped::Now;
                }
            }
            process::pause();
        }
    }
    Err(LabError::StopFailed {
        host: host.to_owned(),
        pid: supervisor,
    })
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::{mounts_overlay_with_upper, unescape_octal};

    #[test]
    fn mountinfo_lines_prove_the_host_only_by_its_upper_directory() {
        let upper = Path::new("/tmp/my lab/hosts/lab1/overlay/upper");
        let line = "65 43 0:39 / / rw,relatime - overlay opsgate-lab1 rw,lowerdir=/,\
                    upperdir=/tmp/my\\040lab/hosts/lab1/overlay/upper,\
                    workdir=/tmp/my\\040lab/hosts/lab1/overlay/work,uuid=on";
        assert!(mounts_overlay_with_upper(line, upper));
        let other = line.replace("lab1/overlay/upper", "lab2/overlay/upper");
        assert!(!mounts_overlay_with_upper(&other, upper));
        let prefix = line.replace("overlay/upper,", "overlay/upper2,");
        assert!(!mounts_overlay_with_upper(&prefix, upper));
        let tmpfs =
            "80 65 0:50 / /tmp rw - tmpfs upperdir=/tmp/my\\040lab/hosts/lab1/overlay/upper rw";
        assert!(!mounts_overlay_with_upper(tmpfs, upper));
        assert!(!mounts_overlay_with_upper("garbage", upper));
    }

    #[test]
    fn unescape_octal_decodes_only_complete_escapes() {
        assert_eq!(unescape_octal("a\\040b\\134c"), "a b\\c");
        assert_eq!(unescape_octal("end\\04"), "end\\04");
        assert_eq!(unescape_octal("\\x"), "\\x");
        assert_eq!(unescape_octal("\\+12"), "\\+12");
    }
}
