//! The scripts of a lab host: `boot.sh` (the supervisor of a host on an overlay) and `reboot.sh`
//! (the lab-only reboot), and how to recognise a running supervisor.
//!
//! Generated shell scripts (templates in `scripts/`) rather than mount(2) calls from Rust: the
//! steps that build a host's filesystem are then written down in one readable file per host that
//! a person debugging a lab can read, and the supervisor that restarts sshd after a lab reboot
//! has to be a long-running process of its own anyway. Every value spliced into them goes
//! through [`shell_quote`]. They rely only on programs every Debian system has: `mount` and
//! `umount`, `setpriv` (util-linux), `chroot`, `stat`, `cat`, `sleep` (coreutils) and `sed`.
//!
//! The contract with the `reboot` action: sshd hands every session `OPSGATE_LAB_REBOOT`, the
//! absolute path of `reboot.sh`; the action runs it detached instead of `shutdown -r now`, then
//! waits until SSH answers again and `/proc/sys/kernel/random/boot_id` on the host changed. On an
//! overlay `reboot.sh` sends SIGUSR1 to the supervisor, which stops every other process of the
//! host's namespace (SIGTERM, 5 s, SIGKILL), writes a new boot id into `boot_id` in place (the
//! file is bind-mounted over the host's `/proc/sys/kernel/random/boot_id`), renews `/run`, `/tmp`
//! and `/dev/shm` and starts sshd again. The supervisor does the killing rather than the script
//! because it is the one process that must survive, and its own helpers (a `sleep` while
//! waiting) are never alive while it scans the namespace. On a shared filesystem `reboot.sh`
//! exits 1 with [`SHARED_REBOOT_MESSAGE`].

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use crate::quote::shell_quote;

use super::error::{LabError, io_error};
use super::host::{HostFiles, Launch};
use super::isolation::OverlayLayers;
use super::namespace::namespace_of;
use super::sshd::SSHD;

/// The shell that runs `boot.sh`; its command line identifies a supervisor.
pub(crate) const SHELL: &str = "/bin/sh";

/// What `reboot.sh` prints on a shared filesystem, where there is no host of its own to reboot.
pub(crate) const SHARED_REBOOT_MESSAGE: &str =
    "lab reboot needs a root lab: hosts share this machine's boot id";

/// Templates of the scripts, kept as shell files so they read (and lint) as shell. Each `@NAME@`
/// placeholder is replaced by one shell word.
const BOOT_TEMPLATE: &str = include_str!("scripts/boot.sh");
const REBOOT_TEMPLATE: &str = include_str!("scripts/reboot.sh");
const SHARED_REBOOT_TEMPLATE: &str = include_str!("scripts/reboot-shared.sh");

/// The overlay layers of `files`' host.
pub(crate) fn layers(files: &HostFiles) -> OverlayLayers {
    OverlayLayers {
        upper: files.upper(),
        work: files.work(),
        merged: files.merged(),
    }
}

/// Fills a template's placeholders, each with the shell-quoted value.
fn fill(template: &str, values: &[(&str, &str)]) -> String {
    values
        .iter()
        .fold(template.to_owned(), |text, (placeholder, value)| {
            text.replace(placeholder, &shell_quote(value))
        })
}

/// `boot.sh` for host `name` of the lab in `lab_dir`.
pub(crate) fn boot_script(lab_dir: &Path, name: &str, files: &HostFiles) -> String {
    let layers = layers(files);
    fill(
        BOOT_TEMPLATE,
        &[
            ("@NAME@", name),
            ("@LAB_DIR@", &lab_dir.to_string_lossy()),
            ("@HOST_DIR@", &files.dir.to_string_lossy()),
            ("@ROOT@", &layers.merged.to_string_lossy()),
            ("@SOURCE@", &format!("opsgate-{name}")),
            ("@OVERLAY_OPTIONS@", &layers.options()),
            ("@SSHD@", SSHD),
        ],
    )
}

/// `reboot.sh` for host `name`: a reboot request to the supervisor on an overlay, a clear
/// refusal on a shared filesystem (where rebooting "the host" would mean this machine).
pub(crate) fn reboot_script(name: &str, files: &HostFiles, launch: Launch) -> String {
    match launch {
        Launch::Overlay => fill(
            REBOOT_TEMPLATE,
            &[
                ("@NAME@", name),
                ("@HOST_DIR@", &files.dir.to_string_lossy()),
            ],
        ),
        Launch::Shared => fill(
            SHARED_REBOOT_TEMPLATE,
            &[("@NAME@", name), ("@MESSAGE@", SHARED_REBOOT_MESSAGE)],
        ),
    }
}

/// Writes an executable script (owner-only: it runs as root and names the lab's paths).
pub(crate) fn write_script(path: &Path, text: &str) -> Result<(), LabError> {
    fs::write(path, text).map_err(io_error("write", path))?;
    fs::set_permissions(path, fs::Permissions::from_mode(0o700))
        .map_err(io_error("set permissions of", path))
}

/// Writes a fresh boot id (the kernel's random UUID, lowercase 8-4-4-4-12) to `path`.
pub(crate) fn write_boot_id(path: &Path) -> Result<(), LabError> {
    let source = "/proc/sys/kernel/random/uuid";
    let uuid = fs::read_to_string(source).map_err(io_error("read", source))?;
    fs::write(path, format!("{}\n", uuid.trim())).map_err(io_error("write", path))
}

/// Whether `pid` is the live supervisor of the host whose boot script is `boot_script`: its
/// command line is exactly `/bin/sh BOOT_SCRIPT` and it runs in the recorded namespace.
pub(crate) fn is_supervisor(pid: u32, boot_script: &Path, namespace: Option<u64>) -> bool {
    let Some(namespace) = namespace else {
        // Never read: the supervisor exited at once, and nothing can be it any more.
        return false;
    };
    let Ok(cmdline) = fs::read(format!("/proc/{pid}/cmdline")) else {
        return false;
    };
    names_boot_script(&cmdline, boot_script) && namespace_of(pid) == Some(namespace)
}

/// Whether a `/proc/PID/cmdline` is `/bin/sh BOOT_SCRIPT` (a shell never retitles itself).
fn names_boot_script(cmdline: &[u8], boot_script: &Path) -> bool {
    let mut expected = Vec::new();
    for argument in [SHELL.as_bytes(), boot_script.as_os_str().as_encoded_bytes()] {
        expected.extend_from_slice(argument);
        expected.push(0);
    }
    cmdline == expected.as_slice()
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::{boot_script, names_boot_script, reboot_script};
    use crate::lab::host::{HostFiles, Launch};

    #[test]
    fn supervisors_are_recognised_by_their_exact_command_line() {
        let script = Path::new("/lab/hosts/lab1/boot.sh");
        assert!(names_boot_script(
            b"/bin/sh\0/lab/hosts/lab1/boot.sh\0",
            script
        ));
        assert!(!names_boot_script(
            b"/bin/sh\0/lab/hosts/lab10/boot.sh\0",
            script
        ));
        assert!(!names_boot_script(
            b"/bin/sh\0/lab/hosts/lab1/boot.sh\0-x\0",
            script
        ));
        assert!(!names_boot_script(
            b"vim\0/lab/hosts/lab1/boot.sh\0",
            script
        ));
        assert!(!names_boot_script(b"", script));
    }

    #[test]
    fn scripts_quote_every_path_and_pass_sh_syntax_checks() {
        let lab_dir = Path::new("/srv/it's a lab");
        let files = HostFiles::new(lab_dir, "lab1");
        let boot = boot_script(lab_dir, "lab1", &files);
        assert!(boot.contains("lab_dir='/srv/it'\\''s a lab'\n"), "{boot}");
        assert!(
            boot.contains("-o 'lowerdir=/,upperdir=/srv/it'\\''s a lab/hosts/lab1/overlay/upper,"),
            "{boot}"
        );
        for text in [
            boot,
            reboot_script("lab1", &files, Launch::Overlay),
            reboot_script("lab1", &files, Launch::Shared),
        ] {
            assert!(!text.contains('@'), "a placeholder is left:\n{text}");
            let status = std::process::Command::new("sh")
                .args(["-n", "-c", &text])
                .status()
                .expect("running sh -n");
            assert!(status.success(), "not valid sh:\n{text}");
        }
    }

    #[test]
    fn the_shared_reboot_script_refuses_with_the_documented_message() {
        let files = HostFiles::new(Path::new("/lab"), "lab1");
        let output = std::process::Command::new("sh")
            .args(["-c", &reboot_script("lab1", &files, Launch::Shared)])
            .output()
            .expect("running sh");
        assert_eq!(output.status.code(), Some(1));
        assert_eq!(
            String::from_utf8_lossy(&output.stderr),
            "lab reboot needs a root lab: hosts share this machine's boot id\n"
        );
    }
}
