//! [`TestLab`]: real local sshd hosts for a test, started with the same code as `opsgate lab up`
//! and stopped on drop.
//!
//! Each lab lives in its own temp dir with random loopback addresses and kernel-chosen ports,
//! so tests run in parallel. A test that fails prints every host's sshd log. A missing sshd
//! fails the test with the install command; it never skips.

use std::error::Error as _;
use std::fmt::Write as _;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use opsgate::lab::{self, Lab, LabError, LabHost, LabOptions};
use tempfile::TempDir;

use super::Opsgate;

/// A running lab in a temp dir: `TestLab::start(3)` gives hosts `lab1`…`lab3`.
pub struct TestLab {
    lab: Lab,
    /// `lab/` (the lab directory), `state/` (state directory) and room for test files.
    scratch: TempDir,
    /// For an isolated lab: no test changes this machine's accounts under its overlays.
    accounts: Option<super::LabHold>,
}

impl TestLab {
    /// Starts `hosts` lab hosts; panics with the error and its hints when that fails.
    #[must_use]
    pub fn start(hosts: usize) -> Self {
        let scratch = tempfile::tempdir().expect("creating a temp dir for the lab");
        let options = LabOptions {
            dir: scratch.path().join("lab"),
            hosts,
        };
        match lab::up(&options) {
            Ok(lab) => Self {
                lab,
                scratch,
                accounts: None,
            },
            Err(error) => panic!("starting a test lab failed:\n{}", describe(&error)),
        }
    }

    /// A lab whose hosts are proven isolated — each has its own mount namespace and root
    /// filesystem, and a file written under `/etc` on `lab1` shows neither on this machine nor
    /// on the other hosts — for tests that install packages, create accounts or start services.
    /// `None`, with a note on stderr, when the test process is not root (CI runs as root);
    /// panics when the hosts are not isolated, rather than change the machine running the tests.
    #[must_use]
    pub fn start_isolated(hosts: usize, test: &str) -> Option<Self> {
        if opsgate::os_account::effective_uid() != 0 {
            report(&format!(
                "skipping {test}: it changes hosts' systems, which happens only inside isolated \
                 lab hosts, and those need root (run the suite as root, as CI does)"
            ));
            return None;
        }
        let accounts = super::HOST_ACCOUNTS.lab();
        let mut lab = Self::start(hosts);
        lab.accounts = Some(accounts);
        if let lab::Isolation::Shared { reason } = &lab.lab().isolation {
            panic!("a root lab must give hosts their own filesystem, but they share it: {reason}");
        }
        let namespace = fs::read_link("/proc/self/ns/mnt").expect("own mount namespace");
        let root_device = fs::metadata("/").expect("stat /").dev();
        for host in lab.hosts() {
            assert!(
                host.is_isolated(),
                "refusing to go on: lab host {} shares this machine's filesystem",
                host.name
            );
            let answer = lab.ssh_ok(&host.name, "readlink /proc/self/ns/mnt; stat -c %d /");
            let mut lines = answer.lines();
            assert_ne!(
                lines.next().map(PathBuf::from),
                Some(namespace.clone()),
                "refusing to go on: {} shares the test's mount namespace",
                host.name
            );
            assert_ne!(
                lines.next().and_then(|device| device.parse::<u64>().ok()),
                Some(root_device),
                "refusing to go on: {} sees the test's root filesystem",
                host.name
            );
        }
        let probe = format!(
            "/etc/opsgate-isolation-probe-{}-{}",
            std::process::id(),
            lab.hosts()[0].port
        );
        lab.ssh_ok("lab1", &format!("touch {probe}"));
        let leaked = Path::new(&probe).exists();
        if leaked {
            // Put the machine back before failing loudly.
            let _ = fs::remove_file(&probe);
        }
        assert!(
            !leaked,
            "refusing to go on: a file written to /etc inside lab1 appeared on this machine"
        );
        for host in &lab.hosts()[1..] {
            let seen = lab.ssh(&host.name, &format!("test -e {probe}"));
            assert!(
                !seen.status.success(),
                "refusing to go on: lab1's /etc is visible in {}",
                host.name
            );
        }
        lab.ssh_ok("lab1", &format!("rm -f {probe}"));
        Some(lab)
    }

    /// Everything host `name` has changed in its own filesystem, as one text: every path of its
    /// overlay upper directory and of its `lab_root` (bind-mounted, so not in the overlay) with
    /// type, mode, owner, size, mtime, link target and content checksum. Equal digests before
    /// and after a command mean the command changed nothing on the host.
    #[must_use]
    pub fn host_digest(&self, name: &str) -> String {
        let host = self.host(name);
        let upper = self.lab.upper_dir(host);
        format!(
            "upper:\n{}lab_root:\n{}",
            tree_digest(&upper),
            tree_digest(&host.lab_root)
        )
    }

    /// A TCP port free on every host's address a moment ago, for a service each host starts.
    #[must_use]
    pub fn free_port(&self) -> u16 {
        let hosts = self.hosts();
        for _ in 0..50 {
            let probe =
                std::net::TcpListener::bind((hosts[0].address, 0)).expect("binding a probe port");
            let port = probe.local_addr().expect("probe address").port();
            drop(probe);
            if hosts
                .iter()
                .all(|host| std::net::TcpListener::bind((host.address, port)).is_ok())
            {
                return port;
            }
        }
        panic!("no TCP port free on every lab address");
    }

    /// Runs `command` on host `name`; it must succeed. Returns its trimmed stdout.
    #[track_caller]
    #[expect(
        clippy::must_use_candidate,
        reason = "tests run commands for their effect as often as for their output"
    )]
    pub fn ssh_ok(&self, name: &str, command: &str) -> String {
        let output = self.ssh(name, command);
        assert!(
            output.status.success(),
            "`{command}` on {name} failed: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).trim().to_owned()
    }

    /// The lab as `opsgate::lab::up` returned it.
    #[must_use]
    pub fn lab(&self) -> &Lab {
        &self.lab
    }

    /// The lab directory (absolute).
    #[must_use]
    pub fn dir(&self) -> &Path {
        &self.lab.dir
    }

    /// The generated inventory (absolute).
    #[must_use]
    pub fn inventory(&self) -> &Path {
        &self.lab.inventory
    }

    /// The hosts, `lab1` first.
    #[must_use]
    pub fn hosts(&self) -> &[LabHost] {
        &self.lab.hosts
    }

    /// The host called `name`.
    #[must_use]
    pub fn host(&self, name: &str) -> &LabHost {
        self.lab
            .hosts
            .iter()
            .find(|host| host.name == name)
            .unwrap_or_else(|| panic!("the test lab has no host `{name}`"))
    }

    /// A directory for the test's own files (runbooks, policies), beside the lab.
    #[must_use]
    pub fn workspace(&self) -> &Path {
        self.scratch.path()
    }

    /// The state directory the [`TestLab::opsgate`] commands share.
    #[must_use]
    pub fn state_dir(&self) -> PathBuf {
        self.scratch.path().join("state")
    }

    /// The real binary, run in [`TestLab::workspace`] with [`TestLab::state_dir`].
    pub fn opsgate(&self) -> Opsgate {
        Opsgate::new()
            .current_dir(self.workspace())
            .state_dir(self.state_dir())
    }

    /// The real binary against the lab's inventory: `lab.cli(&["run", "x.yaml"])`, then the
    /// expectations and `.run()`.
    pub fn cli(&self, args: &[&str]) -> Opsgate {
        self.opsgate().arg("-i").arg(self.inventory()).args(args)
    }

    /// Runs `command` on lab host `name` with the system ssh client and the lab's `ssh_config`.
    #[must_use]
    pub fn ssh(&self, name: &str, command: &str) -> Output {
        Command::new("ssh")
            .arg("-F")
            .arg(self.lab.ssh_config())
            .args([name, command])
            .stdin(Stdio::null())
            .output()
            .expect("running ssh")
    }

    /// Every host's sshd log, for a failing test's output.
    #[must_use]
    pub fn logs(&self) -> String {
        let mut text = String::new();
        for host in &self.lab.hosts {
            let log = self.lab.sshd_log(host);
            let content = fs::read_to_string(&log).unwrap_or_else(|error| error.to_string());
            let _ = writeln!(text, "--- {} ({}) ---\n{content}", host.name, log.display());
        }
        text
    }
}

impl Drop for TestLab {
    fn drop(&mut self) {
        if std::thread::panicking() {
            report(&format!(
                "test lab in {} at the time of the failure:\n{}",
                self.dir().display(),
                self.logs()
            ));
        }
        // A panic here while already panicking would abort the whole test binary. `NoLab`
        // means the test took the lab down itself.
        match lab::down(self.dir()) {
            Ok(()) | Err(LabError::NoLab { .. }) => {}
            Err(error) => report(&format!(
                "stopping the test lab failed:\n{}",
                describe(&error)
            )),
        }
    }
}

/// The error, its causes and hints, as the CLI would show them.
fn describe(error: &LabError) -> String {
    let mut text = format!("error: {error}\n");
    let mut source = error.source();
    while let Some(cause) = source {
        let _ = writeln!(text, "caused by: {cause}");
        source = cause.source();
    }
    for hint in error.hints() {
        let _ = writeln!(text, "hint: {hint}");
    }
    text
}

#[expect(
    clippy::print_stderr,
    reason = "a test fixture reporting from Drop, where it cannot panic"
)]
fn report(text: &str) {
    eprintln!("{text}");
}

/// Every path under `root` with type, mode, owner, size, mtime and link target, then the
/// SHA-256 of every file, sorted: equal texts mean an unchanged tree.
fn tree_digest(root: &Path) -> String {
    let listing = Command::new("sh")
        .arg("-c")
        .arg(
            "cd \"$1\" && find . -printf '%p %y %m %U %G %s %T@ %l\\n' | LC_ALL=C sort \
             && find . -type f -print0 | LC_ALL=C sort -z | xargs -0 -r sha256sum",
        )
        .arg("tree-digest")
        .arg(root)
        .output()
        .expect("listing a host's files");
    assert!(
        listing.status.success(),
        "listing {}: {}",
        root.display(),
        String::from_utf8_lossy(&listing.stderr)
    );
    String::from_utf8_lossy(&listing.stdout).into_owned()
}
