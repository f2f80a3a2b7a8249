//! Real OS accounts for gate tests, deployed as SPEC §4.6 describes: a service account
//! (`og-svc`) owns the state directory and the SSH key that reaches the lab; operators
//! (`og-alice` L5, `og-erin` L4, `og-carol` L3, `og-bob` L2, `og-dave` L1, `og-frank` L5) run
//! `sudo -u og-svc opsgate …` through a real sudo, which sets `SUDO_USER`. The test process is
//! root: it creates the accounts (idempotently, once per test binary) and a sudoers drop-in
//! allowing exactly `og-* → og-svc`.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use tempfile::TempDir;

use crate::common::{Opsgate, TestLab, arg, pause};

/// The service account that owns state and keys.
pub(crate) const SERVICE: &str = "og-svc";
/// Operators and their levels in [`Deployment::POLICY`].
pub(crate) const OPERATORS: [&str; 6] = [
    "og-alice", "og-erin", "og-carol", "og-bob", "og-dave", "og-frank",
];

/// Creates the accounts and the sudoers rule once; panics with what failed.
pub(crate) fn ensure_accounts() {
    static READY: OnceLock<()> = OnceLock::new();
    READY.get_or_init(|| {
        crate::common::HOST_ACCOUNTS.change(|| {
            assert_eq!(
                current_uid(),
                0,
                "gate account tests create OS accounts and need root (CI runs as root)"
            );
            for account in std::iter::once(SERVICE).chain(OPERATORS) {
                if Command::new("id")
                    .arg(account)
                    .output()
                    .expect("id")
                    .status
                    .success()
                {
                    continue;
                }
                let output = Command::new("useradd")
                    .args([
                        "--system",
                        "--no-create-home",
                        "--home-dir",
                        "/nonexistent",
                        "--shell",
                        "/usr/sbin/nologin",
                        account,
                    ])
                    .output()
                    .expect("useradd");
                // Another test binary may have created it meanwhile (exit 9: already exists).
                assert!(
                    output.status.success() || output.status.code() == Some(9),
                    "useradd {account}: {}",
                    String::from_utf8_lossy(&output.stderr)
                );
            }
            let rule = format!("{} ALL=({SERVICE}) NOPASSWD: ALL\n", OPERATORS.join(","));
            let staged =
                std::env::temp_dir().join(format!("opsgate-sudoers-{}", std::process::id()));
            fs::write(&staged, &rule).expect("sudoers rule");
            let check = Command::new("visudo")
                .arg("-cf")
                .arg(&staged)
                .output()
                .expect("visudo");
            assert!(
                check.status.success(),
                "{}",
                String::from_utf8_lossy(&check.stderr)
            );
            let install = Command::new("install")
                .args(["-m", "0440"])
                .arg(&staged)
                .arg("/etc/sudoers.d/opsgate-tests")
                .output()
                .expect("install");
            assert!(
                install.status.success(),
                "{}",
                String::from_utf8_lossy(&install.stderr)
            );
            let _ = fs::remove_file(staged);
        });
    });
}

fn current_uid() -> u32 {
    let output = Command::new("id").arg("-u").output().expect("id -u");
    String::from_utf8_lossy(&output.stdout)
        .trim()
        .parse()
        .expect("a uid")
}

pub(crate) fn chown(path: &Path, owner: &str) {
    let output = Command::new("chown")
        .arg("-R")
        .arg(owner)
        .arg(path)
        .output()
        .expect("chown");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

pub(crate) fn chmod(path: &Path, mode: u32) {
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).expect("chmod");
}

/// A project deployed for the service account, with a running lab.
pub(crate) struct Deployment {
    /// The lab the inventory reaches.
    pub(crate) lab: TestLab,
    dir: TempDir,
}

impl Deployment {
    /// The levels every test starts from.
    pub(crate) const POLICY: &'static str = "service_account: og-svc\noperators:\n  \
        og-alice: { level: 5, name: Alice }\n  og-frank: { level: 5, name: Frank }\n  \
        og-erin: { level: 4 }\n  og-carol: { level: 3 }\n  og-bob: { level: 2 }\n  \
        og-dave: { level: 1 }\n";

    /// Starts a lab of `hosts` hosts and deploys a project for it. `environment` puts the lab
    /// group in that environment (e.g. `production`).
    pub(crate) fn start(hosts: usize, environment: Option<&str>) -> Self {
        ensure_accounts();
        let lab = TestLab::start(hosts);
        let dir = tempfile::tempdir().expect("project dir");
        let root = dir.path();
        chmod(root, 0o755);
        for sub in ["policy", "runbooks", "keys", "state"] {
            fs::create_dir(root.join(sub)).expect("project subdir");
            chmod(&root.join(sub), 0o755);
        }
        // The key that reaches the hosts and the state belong to the service account alone.
        let key = root.join("keys/client_key");
        fs::copy(lab.dir().join("client_key"), &key).expect("copy client key");
        chmod(&key, 0o600);
        let known_hosts = root.join("keys/known_hosts");
        fs::copy(lab.dir().join("known_hosts"), &known_hosts).expect("copy known_hosts");
        chmod(&known_hosts, 0o644);
        chown(&root.join("keys"), SERVICE);
        chown(&root.join("state"), SERVICE);
        chmod(&root.join("state"), 0o700);
        let mut inventory = fs::read_to_string(lab.inventory())
            .expect("lab inventory")
            .replace(
                &lab.dir().join("client_key").display().to_string(),
                &key.display().to_string(),
            )
            .replace(
                &lab.dir().join("known_hosts").display().to_string(),
                &known_hosts.display().to_string(),
            );
        if let Some(environment) = environment {
            inventory = inventory.replace(
                " }\nhosts:",
                &format!(", environment: {environment} }}\nhosts:"),
            );
            assert!(inventory.contains("environment:"), "{inventory}");
        }
        fs::write(root.join("inventory.yaml"), inventory).expect("inventory");
        fs::write(root.join("policy/operators.yaml"), Self::POLICY).expect("policy");
        Self { lab, dir }
    }

    /// The project directory.
    pub(crate) fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Replaces the policy.
    pub(crate) fn policy(&self, yaml: &str) {
        fs::write(self.path().join("policy/operators.yaml"), yaml).expect("policy");
    }

    /// Writes `runbooks/<name>.yaml` and returns its path relative to the project.
    pub(crate) fn runbook(&self, name: &str, yaml: &str) -> String {
        fs::write(self.path().join(format!("runbooks/{name}.yaml")), yaml).expect("runbook");
        format!("runbooks/{name}.yaml")
    }

    /// `sudo -u og-svc opsgate --state-dir … -i … ARGS` as `operator`, in the project, as the
    /// builder: expectations, then `.run()` or `.spawn()`.
    pub(crate) fn opsgate(&self, operator: &str, args: &[&str]) -> Opsgate {
        let state = self.path().join("state");
        let inventory = self.path().join("inventory.yaml");
        let global = ["--state-dir", arg(&state), "-i", arg(&inventory)];
        self.runuser(
            &["-u", operator, "--", "sudo", "-n", "-u", SERVICE, "--"],
            &[&global[..], args].concat(),
        )
    }

    /// `runuser RUNUSER… opsgate ARGS` in the project, without `SUDO_USER`: `RUNUSER` names
    /// the account and, for an operator, the `sudo` that takes it to the service account.
    pub(crate) fn runuser(&self, runuser: &[&str], args: &[&str]) -> Opsgate {
        let mut command = Command::new("runuser");
        command
            .args(runuser)
            .arg(env!("CARGO_BIN_EXE_opsgate"))
            .args(args)
            .current_dir(self.path())
            .env_remove("SUDO_USER");
        Opsgate::through(command).redact(self.path())
    }

    /// Approves `runbook` (a project-relative path) into the catalog as `og-alice` (L5).
    pub(crate) fn approve_runbook(&self, runbook: &str) {
        self.opsgate("og-alice", &["approve", "runbook", runbook])
            .run();
    }

    /// Waits until `approver` sees a pending run and returns its id.
    pub(crate) fn pending_run(&self, approver: &str) -> i64 {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let output = self.opsgate(approver, &["--json", "pending"]).run();
            let runs: serde_json::Value =
                serde_json::from_str(&output.stdout).expect("pending --json");
            if let Some(run) = runs.get(0) {
                return run["run"].as_i64().expect("a run id");
            }
            assert!(Instant::now() < deadline, "no pending run appeared");
            pause(Duration::from_millis(100));
        }
    }

    /// A file on lab host `host`, under its `lab_root`.
    pub(crate) fn lab_file(&self, host: &str, name: &str) -> PathBuf {
        self.lab.host(host).lab_root.join(name)
    }
}
