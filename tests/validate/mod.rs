//! `opsgate validate`: every error at once, each at `file:line:col` with a caret and a hint.

use crate::common::Opsgate;

#[test]
fn validate_reports_every_error_with_its_location() {
    let output = Opsgate::new()
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["validate", "tests/fixtures/runbooks/broken.yaml"])
        .output();
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    insta_like::assert_golden("validate_broken", &stderr);
}

#[test]
fn validate_accepts_the_shipped_runbooks_and_inventory() {
    let output = Opsgate::new()
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args([
            "validate",
            "runbooks/health-check.yaml",
            "runbooks/provision-app.yaml",
            "runbooks/backup-files.yaml",
            "runbooks/restore-files.yaml",
            "runbooks/patch-debian.yaml",
            "runbooks/backup-postgres.yaml",
            "runbooks/restore-postgres.yaml",
            "inventory/hosts.yaml",
        ])
        .output();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        stdout
            .lines()
            .filter(|line| line.starts_with("ok  "))
            .count(),
        8,
        "{stdout}"
    );
}

#[test]
fn unknown_keys_get_a_did_you_mean_hint() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("typo.yaml");
    std::fs::write(
        &path,
        "runbook: typo\nkind: check\ntargets: all\nsteps:\n  - name: x\n    comand: uptime\n",
    )
    .expect("write");
    let output = Opsgate::new()
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["validate", path.to_str().expect("utf-8 path")])
        .output();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("error: unknown key `comand`"), "{stderr}");
    assert!(stderr.contains("typo.yaml:6:5"), "{stderr}");
    assert!(stderr.contains("hint: did you mean `command`?"), "{stderr}");
}

#[test]
fn raw_triple_stash_in_a_command_is_a_warning() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("raw.yaml");
    std::fs::write(&path, "runbook: raw\nkind: maintenance\ntargets: all\nparams:\n  x: { type: string, default: a }\nsteps:\n  - command: echo {{{params.x}}}\n").expect("write");
    let output = Opsgate::new()
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["validate", path.to_str().expect("utf-8 path")])
        .output();
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("warning:") && stderr.contains("raw"),
        "{stderr}"
    );
}

#[test]
fn a_check_runbook_may_not_change_hosts() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("check.yaml");
    std::fs::write(&path, "runbook: c\nkind: check\ntargets: all\nsteps:\n  - file: { path: /tmp/x, state: absent }\n").expect("write");
    let output = Opsgate::new()
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["validate", path.to_str().expect("utf-8 path")])
        .output();
    assert_eq!(output.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("which a `check` runbook may not use")
    );
}

/// Golden files under `tests/fixtures/golden/`: compared exactly; `OPSGATE_BLESS=1` rewrites them.
mod insta_like {
    pub(crate) fn assert_golden(name: &str, actual: &str) {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/golden")
            .join(format!("{name}.txt"));
        if std::env::var_os("OPSGATE_BLESS").is_some() {
            std::fs::create_dir_all(path.parent().expect("golden dir")).expect("create golden dir");
            std::fs::write(&path, actual).expect("write golden file");
            return;
        }
        let expected = std::fs::read_to_string(&path).unwrap_or_else(|_| {
            panic!(
                "missing golden file {}; run with OPSGATE_BLESS=1",
                path.display()
            )
        });
        assert_eq!(actual, expected, "output differs from {}", path.display());
    }
}

pub(crate) use insta_like::assert_golden;

#[test]
fn the_example_policy_loads() {
    let output = Opsgate::new()
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args([
            "--policy",
            "policy/operators.example.yaml",
            "--json",
            "whoami",
        ])
        .output();
    // Whoever runs the suite is not one of the example's operators (exit 3), but the file must
    // load: an invalid policy would exit 2.
    assert_eq!(
        output.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}
