//! `whoami`, `approve runbook` and `catalog` as root, with a policy that names root.

use super::Project;
use crate::snapshot;

const RUNBOOK: &str = "runbook: hello\nkind: maintenance\nmin_level: 2\ntargets: lab\nsteps:\n  - name: hi\n    command: echo hi\n";

#[test]
fn whoami_reports_level_source_and_summary() {
    let project = Project::new();
    let single = project.opsgate(&["whoami"]).run();
    snapshot!(single.streams(), @r"
        ----- stdout -----
        operator: root
        level:    none
        identity: the OS account running opsgate (uid 0)
        mode:     personal (no policy file, no service)
        policy:   none (`policy/operators.yaml` does not exist)
        may:      may run anything: no gate applies
        note:     single-operator mode: there is no policy file at `policy/operators.yaml`, so no gates apply; every run is still recorded
        ----- stderr -----
    ");

    project.policy("operators:\n  root: { level: 4, name: Root Admin }\n");
    let listed = project.opsgate(&["whoami"]).run();
    snapshot!(listed.streams(), @r"
        ----- stdout -----
        operator: root (Root Admin)
        level:    L4
        identity: the OS account running opsgate (uid 0)
        mode:     policy without a service: it gates only this account, which owns the files, so it gates nobody against their will
        policy:   `policy/operators.yaml`
        may:      may run approved runbooks with min_level up to 4, and draft or changed runbooks outside production; may approve runs and gate steps of L1-L3 operators and approve runbooks with min_level up to 3 into the catalog
        note:     under the default gate matrix (SPEC §4.3); the policy has no tightening rules
        ----- stderr -----
    ");

    project.policy("operators:\n  alice: { level: 5 }\n");
    let unlisted = project.opsgate(&["--json", "whoami"]).status(3).run();
    let json: serde_json::Value = serde_json::from_str(&unlisted.stdout).expect("json");
    assert_eq!(json["operator"], "root");
    assert_eq!(json["level"], serde_json::Value::Null);
}

#[test]
fn whoami_under_sudo_without_a_policy_is_denied() {
    let project = Project::new();
    let denied = crate::common::Opsgate::new()
        .current_dir(project.path())
        .env("SUDO_USER", "og-nobody")
        .arg("whoami")
        .status(3)
        .run();
    snapshot!(denied.streams(), @r"
        ----- stdout -----
        operator: og-nobody
        level:    none
        identity: SUDO_USER, set by sudo for OS account `root` (uid 0)
        mode:     sudo without a policy file (every gated command is denied)
        policy:   none (`policy/operators.yaml` does not exist)
        may:      may use only the ungated commands
        note:     you run opsgate through sudo and there is no policy file at `policy/operators.yaml`: every gated command is denied
        ----- stderr -----
    ");
}

#[test]
fn catalog_lists_draft_approved_and_changed_runbooks() {
    let project = Project::new();
    project.policy("operators:\n  root: { level: 4 }\n");
    let runbook = project.runbook("hello", RUNBOOK);
    project.runbook("broken", "runbook: broken\nkind: nope\n");

    let draft = project.opsgate(&["catalog"]).run();
    let listing = draft.text();
    let line = listing
        .lines()
        .find(|line| line.starts_with("hello"))
        .expect("hello listed");
    assert!(line.contains("draft"), "{listing}");
    assert!(
        listing
            .lines()
            .any(|line| line.starts_with("broken") && line.contains("invalid"))
    );

    project
        .opsgate(&["approve", "runbook", "runbooks/hello.yaml"])
        .output_contains("approved runbook `hello`")
        .run();

    let approved = project.opsgate(&["--json", "catalog"]).run();
    let json: serde_json::Value = serde_json::from_str(&approved.stdout).expect("json");
    let hello = json
        .as_array()
        .expect("a list")
        .iter()
        .find(|entry| entry["runbook"] == "hello")
        .expect("hello");
    assert_eq!(hello["state"], "approved", "{json}");
    assert_eq!(hello["approval"]["approver"], "root", "{json}");
    assert_eq!(hello["approval"]["approver_level"], 4, "{json}");

    std::fs::write(&runbook, format!("{RUNBOOK}# edited\n")).expect("edit");
    let changed = project.opsgate(&["catalog"]).run();
    let listing = changed.text();
    let line = listing
        .lines()
        .find(|line| line.starts_with("hello"))
        .expect("hello listed");
    assert!(
        line.contains("changed") && line.contains("root (L4)"),
        "{listing}"
    );

    // The approval is an audit event of no run, in the verified chain.
    project
        .opsgate(&["audit", "export", "--jsonl"])
        .output_contains("\"runbook_approved\"")
        .run();
    project.opsgate(&["audit", "verify"]).run();
}

#[test]
fn approving_into_the_catalog_needs_l4_for_min_level_3_and_l5_above() {
    let project = Project::new();
    project.runbook("hello", RUNBOOK);
    project.runbook(
        "deep",
        "runbook: deep\nkind: restore\nmin_level: 4\ntargets: lab\nsteps:\n  - name: hi\n    command: echo hi\n",
    );
    project.policy("operators:\n  root: { level: 3 }\n");
    let l3 = project
        .opsgate(&["approve", "runbook", "runbooks/hello.yaml"])
        .status(3)
        .run();
    snapshot!(l3.streams(), @r"
        ----- stdout -----
        ----- stderr -----
        error: operator `root` (L3) may not approve runbook `hello` into the catalog: its min_level is 2 and approving it needs level 4+ (rule `catalog-approver`)

        hint: ask an operator of level 4+ to run `opsgate approve runbook runbooks/hello.yaml`
    ");

    project.policy("operators:\n  root: { level: 4 }\n");
    project
        .opsgate(&["approve", "runbook", "runbooks/deep.yaml"])
        .status(3)
        .run();
    // A policy rule raising min_level counts too.
    project
        .policy("operators:\n  root: { level: 4 }\nrules:\n  - { runbook: hello, min_level: 4 }\n");
    project
        .opsgate(&["approve", "runbook", "runbooks/hello.yaml"])
        .status(3)
        .run();

    project.policy("operators:\n  root: { level: 5 }\n");
    project
        .opsgate(&["approve", "runbook", "runbooks/deep.yaml"])
        .run();

    // Without a policy there are no operators to approve anything.
    std::fs::remove_file(project.path().join("policy/operators.yaml")).expect("remove policy");
    project
        .opsgate(&["approve", "runbook", "runbooks/hello.yaml"])
        .status(3)
        .run();
}

#[test]
fn a_gate_step_is_validated_and_planned() {
    let project = Project::new();
    project.runbook(
        "bad-gate",
        "runbook: bad-gate\nkind: maintenance\ntargets: lab\nsteps:\n  - name: confirm\n    gate: { approver_level: 7 }\n",
    );
    let invalid = project
        .opsgate(&["validate", "runbooks/bad-gate.yaml"])
        .status(2)
        .run();
    snapshot!(invalid.streams(), @r"
        ----- stdout -----
        ----- stderr -----
        error: `approver_level` is 7, which is not an SFIA level
         --> runbooks/bad-gate.yaml:6:29
          |
        6 |     gate: { approver_level: 7 }
          |                             ^^^

        hint: opsgate uses SFIA levels 1 (follow) to 5 (ensure, advise)
    ");
}

#[test]
fn ctrl_c_while_waiting_for_an_approval_cancels_the_run() {
    let lab = crate::common::TestLab::start(1);
    let policy = lab.workspace().join("policy");
    std::fs::create_dir_all(&policy).expect("policy dir");
    std::fs::write(
        policy.join("operators.yaml"),
        "operators:\n  og-dave: { level: 1 }\n  og-alice: { level: 5 }\n",
    )
    .expect("policy");
    let runbook = lab.workspace().join("wait.yaml");
    std::fs::write(&runbook, RUNBOOK.replace("min_level: 2", "min_level: 1")).expect("runbook");
    let runbook = runbook.to_str().expect("utf-8");
    // Root trusts SUDO_USER (SPEC §4.1): these personas need no OS accounts.
    lab.opsgate()
        .env("SUDO_USER", "og-alice")
        .args(["approve", "runbook", runbook])
        .run();
    let waiting = lab
        .cli(&["run", runbook])
        .env("SUDO_USER", "og-dave")
        .status(130)
        .spawn();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let pending = lab
            .opsgate()
            .env("SUDO_USER", "og-alice")
            .args(["--json", "pending"])
            .run();
        if pending.stdout.contains("\"run\"") {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the run never became pending"
        );
        crate::common::pause(std::time::Duration::from_millis(100));
    }
    let interrupt = std::process::Command::new("kill")
        .args(["-INT", &waiting.child.id().to_string()])
        .status()
        .expect("kill");
    assert!(interrupt.success());
    waiting.finish();
    let runs = lab
        .opsgate()
        .env("SUDO_USER", "og-alice")
        .args(["--json", "history"])
        .run()
        .json();
    assert_eq!(runs[0]["status"], "cancelled", "{runs}");
}

#[test]
fn an_unsigned_approval_row_is_ignored_by_the_gate_and_named_by_audit_verify() {
    let project = Project::new();
    let key = project.path().join("root_key");
    let made = std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&key)
        .status()
        .expect("ssh-keygen");
    assert!(made.success());
    let public = std::fs::read_to_string(key.with_extension("pub")).expect("public key");
    let operators = format!(
        "operators:\n  root: {{ level: 5, key: \"{}\" }}\n",
        public.trim()
    );
    project.runbook("hello", RUNBOOK);
    // While the policy does not ask for signatures, an approval is recorded without one: to a
    // policy that does, it is exactly a row written into the store without the approver's key.
    project.policy(&format!("signed_approvals: false\n{operators}"));
    project
        .opsgate(&["approve", "runbook", "runbooks/hello.yaml"])
        .run();
    project.opsgate(&["audit", "verify"]).run();

    project.policy(&format!("signed_approvals: true\n{operators}"));
    let catalog = project.opsgate(&["catalog"]).run();
    let listing = catalog.text();
    let line = listing
        .lines()
        .find(|line| line.starts_with("hello"))
        .expect("hello listed");
    assert!(
        line.contains("draft"),
        "the gate ignores the unsigned approval: {listing}"
    );
    project
        .opsgate(&["audit", "verify"])
        .status(4)
        .output_contains("by `root` is not signed")
        .run();
}
