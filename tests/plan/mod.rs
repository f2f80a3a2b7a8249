//! `opsgate plan`: golden plan output from a fixture runbook and inventory; no host contacted.

use crate::common::Opsgate;
use crate::validate::assert_golden;

const INVENTORY: &str = "tests/fixtures/inventories/web.yaml";

#[test]
fn plan_renders_every_step_for_every_host() {
    let output = Opsgate::new()
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args([
            "-i",
            INVENTORY,
            "plan",
            "tests/fixtures/runbooks/deploy.yaml",
            "-p",
            "greeting=hello world",
            "-p",
            "token=s3cr3t-value",
        ])
        .output();
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        !stdout.contains("s3cr3t-value"),
        "secret leaked into the plan: {stdout}"
    );
    assert_golden(
        "plan_deploy",
        &stdout.replace(&digest_of(&stdout), "[DIGEST]"),
    );
    assert!(
        String::from_utf8_lossy(&output.stderr)
            .contains("secret param `token` was given on the command line")
    );
}

#[test]
fn limit_only_narrows_the_targets() {
    let output = Opsgate::new()
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args([
            "-i",
            INVENTORY,
            "plan",
            "tests/fixtures/runbooks/deploy.yaml",
            "-p",
            "greeting=hi",
            "-l",
            "web2",
        ])
        .output();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("hosts: 1 (web2)"), "{stdout}");
    let output = Opsgate::new()
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args([
            "-i",
            INVENTORY,
            "plan",
            "tests/fixtures/runbooks/deploy.yaml",
            "-p",
            "greeting=hi",
            "-l",
            "db1",
        ])
        .output();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("selects no host"));
}

#[test]
fn params_are_type_checked_before_anything_runs() {
    let output = Opsgate::new()
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args([
            "-i",
            INVENTORY,
            "plan",
            "tests/fixtures/runbooks/deploy.yaml",
            "-p",
            "nope=1",
        ])
        .output();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("unknown param `nope`"), "{stderr}");
    assert!(stderr.contains("param `greeting` is required"), "{stderr}");
}

#[test]
fn an_undefined_inventory_variable_is_a_plan_error() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("vars.yaml");
    std::fs::write(&path, "runbook: v\nkind: maintenance\ntargets: all\nsteps:\n  - command: echo {{vars.http_port}}\n").expect("write");
    let output = Opsgate::new()
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["-i", INVENTORY, "plan", path.to_str().expect("utf-8")])
        .output();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("host `db1`"), "{stderr}");
    assert!(stderr.contains("vars.yaml:5:"), "{stderr}");
}

fn digest_of(plan: &str) -> String {
    plan.lines()
        .find_map(|line| line.split("digest ").nth(1))
        .unwrap_or_default()
        .trim()
        .to_owned()
}
