//! In unsigned mode (no `signed_approvals`) the gate never honours an approval row that
//! `audit verify` would flag: each case tampers with the row through raw SQL (the `sqlite3`
//! CLI, after dropping the append-only triggers as an attacker with write access would).

use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;

use super::Project;
use super::accounts::Deployment;

const RUNBOOK: &str = "runbook: hello\nkind: maintenance\nmin_level: 2\ntargets: lab\nsteps:\n  - name: hi\n    command: echo hi\n";

/// Runs `sql` on the audit database of `state_dir`, dropping the append-only triggers first.
fn tamper(state_dir: &Path, sql: &str) {
    let database = state_dir.join("audit.db");
    let triggers = Command::new("sqlite3")
        .arg(&database)
        .arg("SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'entry'")
        .output()
        .expect("sqlite3");
    let mut script = String::new();
    for trigger in String::from_utf8_lossy(&triggers.stdout).lines() {
        let _ = write!(script, "DROP TRIGGER \"{trigger}\"; ");
    }
    script.push_str(sql);
    let done = Command::new("sqlite3")
        .arg(&database)
        .arg(&script)
        .output()
        .expect("sqlite3");
    assert!(
        done.status.success(),
        "{}",
        String::from_utf8_lossy(&done.stderr)
    );
}

fn catalog_state(project: &Project) -> String {
    let json = project.opsgate(&["--json", "catalog"]).run().json();
    json.as_array()
        .expect("a list")
        .iter()
        .find(|entry| entry["runbook"] == "hello")
        .expect("hello listed")["state"]
        .as_str()
        .expect("a state")
        .to_owned()
}

#[test]
fn an_altered_catalog_approval_row_is_not_honoured() {
    let project = Project::new();
    project.policy("operators:\n  root: { level: 4 }\n");
    project.runbook("hello", RUNBOOK);
    project
        .opsgate(&["approve", "runbook", "runbooks/hello.yaml"])
        .run();
    assert_eq!(catalog_state(&project), "approved");

    tamper(
        &project.path().join("state"),
        "UPDATE entry SET user_name = 'mallory' WHERE kind = 'runbook_approved'",
    );
    assert_eq!(
        catalog_state(&project),
        "draft",
        "the gate ignores the altered approval"
    );
    project
        .opsgate(&["audit", "verify"])
        .status(4)
        .output_contains("altered")
        .run();
}

#[test]
fn an_altered_plan_approval_row_is_not_honoured_and_the_run_is_denied() {
    let deployment = Deployment::start(1, None);
    let yaml = "runbook: deploy\nkind: maintenance\nmin_level: 1\ntargets: lab\nsteps:\n  - name: mark\n    command: echo ran > {{vars.lab_root}}/deploy.ran\n";
    let runbook = deployment.runbook("deploy", yaml);
    deployment.approve_runbook(&runbook);
    let saved = deployment
        .opsgate("og-dave", &["--json", "plan", "deploy", "--save"])
        .run()
        .json();
    let id = saved["plan"].as_str().expect("a plan id").to_owned();
    deployment
        .opsgate("og-carol", &["approve", "plan", &id])
        .run();

    tamper(
        &deployment.path().join("state"),
        "UPDATE entry SET at = at + 1 WHERE kind = 'approval_granted' AND run_id IS NULL",
    );
    deployment
        .opsgate("og-dave", &["run", "--plan", &id])
        .status(3)
        .output_contains("plan-unapproved")
        .output_contains("does not hold in the audit hash chain")
        .run();
    assert!(
        !deployment.lab_file("lab1", "deploy.ran").exists(),
        "nothing ran"
    );
    deployment
        .opsgate("og-alice", &["audit", "verify"])
        .status(4)
        .run();
}
