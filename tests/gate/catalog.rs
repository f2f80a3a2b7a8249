//! `whoami`, `approve runbook` and `catalog` as root, with a policy that names root.

use super::{Project, text};

const RUNBOOK: &str = "runbook: hello\nkind: maintenance\nmin_level: 2\ntargets: lab\nsteps:\n  - name: hi\n    command: echo hi\n";

#[test]
fn whoami_reports_level_source_and_summary() {
    let project = Project::new();
    let single = project.opsgate(&["whoami"]);
    assert_eq!(single.status.code(), Some(0), "{}", text(&single));
    assert!(
        text(&single).contains("single-operator mode"),
        "{}",
        text(&single)
    );

    project.policy("operators:\n  root: { level: 4, name: Root Admin }\n");
    let listed = project.opsgate(&["whoami"]);
    let out = text(&listed);
    assert_eq!(listed.status.code(), Some(0), "{out}");
    assert!(out.contains("operator: root (Root Admin)"), "{out}");
    assert!(out.contains("level:    L4"), "{out}");
    assert!(out.contains("the OS account running opsgate"), "{out}");
    assert!(
        out.contains("draft or changed runbooks outside production"),
        "{out}"
    );

    project.policy("operators:\n  alice: { level: 5 }\n");
    let unlisted = project.opsgate(&["--json", "whoami"]);
    assert_eq!(unlisted.status.code(), Some(3), "{}", text(&unlisted));
    let json: serde_json::Value = serde_json::from_slice(&unlisted.stdout).expect("json");
    assert_eq!(json["operator"], "root");
    assert_eq!(json["level"], serde_json::Value::Null);
}

#[test]
fn whoami_under_sudo_without_a_policy_is_denied() {
    let project = Project::new();
    let output = crate::common::Opsgate::new()
        .current_dir(project.path())
        .env("SUDO_USER", "og-nobody")
        .arg("whoami")
        .output();
    assert_eq!(output.status.code(), Some(3), "{}", text(&output));
    assert!(text(&output).contains("og-nobody"), "{}", text(&output));
}

#[test]
fn catalog_lists_draft_approved_and_changed_runbooks() {
    let project = Project::new();
    project.policy("operators:\n  root: { level: 4 }\n");
    let runbook = project.runbook("hello", RUNBOOK);
    project.runbook("broken", "runbook: broken\nkind: nope\n");

    let draft = project.opsgate(&["catalog"]);
    assert_eq!(draft.status.code(), Some(0), "{}", text(&draft));
    let listing = text(&draft);
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

    let approve = project.opsgate(&["approve", "runbook", "runbooks/hello.yaml"]);
    assert_eq!(approve.status.code(), Some(0), "{}", text(&approve));
    assert!(
        text(&approve).contains("approved runbook `hello`"),
        "{}",
        text(&approve)
    );

    let approved = project.opsgate(&["--json", "catalog"]);
    let json: serde_json::Value = serde_json::from_slice(&approved.stdout).expect("json");
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
    let changed = project.opsgate(&["catalog"]);
    let listing = text(&changed);
    let line = listing
        .lines()
        .find(|line| line.starts_with("hello"))
        .expect("hello listed");
    assert!(
        line.contains("changed") && line.contains("root (L4)"),
        "{listing}"
    );

    // The approval is an audit event of no run, in the verified chain.
    let export = project.opsgate(&["audit", "export", "--jsonl"]);
    assert!(
        text(&export).contains("\"runbook_approved\""),
        "{}",
        text(&export)
    );
    let verify = project.opsgate(&["audit", "verify"]);
    assert_eq!(verify.status.code(), Some(0), "{}", text(&verify));
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
    let l3 = project.opsgate(&["approve", "runbook", "runbooks/hello.yaml"]);
    assert_eq!(l3.status.code(), Some(3), "{}", text(&l3));
    assert!(text(&l3).contains("catalog-approver"), "{}", text(&l3));

    project.policy("operators:\n  root: { level: 4 }\n");
    let l4_deep = project.opsgate(&["approve", "runbook", "runbooks/deep.yaml"]);
    assert_eq!(l4_deep.status.code(), Some(3), "{}", text(&l4_deep));
    // A policy rule raising min_level counts too.
    project
        .policy("operators:\n  root: { level: 4 }\nrules:\n  - { runbook: hello, min_level: 4 }\n");
    let raised = project.opsgate(&["approve", "runbook", "runbooks/hello.yaml"]);
    assert_eq!(raised.status.code(), Some(3), "{}", text(&raised));

    project.policy("operators:\n  root: { level: 5 }\n");
    let l5 = project.opsgate(&["approve", "runbook", "runbooks/deep.yaml"]);
    assert_eq!(l5.status.code(), Some(0), "{}", text(&l5));

    // Without a policy there are no operators to approve anything.
    std::fs::remove_file(project.path().join("policy/operators.yaml")).expect("remove policy");
    let none = project.opsgate(&["approve", "runbook", "runbooks/hello.yaml"]);
    assert_eq!(none.status.code(), Some(3), "{}", text(&none));
}

#[test]
fn a_gate_step_is_validated_and_planned() {
    let project = Project::new();
    project.runbook(
        "bad-gate",
        "runbook: bad-gate\nkind: maintenance\ntargets: lab\nsteps:\n  - name: confirm\n    gate: { approver_level: 7 }\n",
    );
    let output = project.opsgate(&["validate", "runbooks/bad-gate.yaml"]);
    assert_eq!(output.status.code(), Some(2), "{}", text(&output));
    assert!(
        text(&output).contains("`approver_level` is 7"),
        "{}",
        text(&output)
    );
    assert!(
        text(&output).contains("bad-gate.yaml:6:"),
        "{}",
        text(&output)
    );
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
    let inventory = lab.inventory().to_str().expect("utf-8").to_owned();
    // Root trusts SUDO_USER (SPEC §4.1): these personas need no OS accounts.
    let approve = lab
        .opsgate()
        .env("SUDO_USER", "og-alice")
        .args(["approve", "runbook", runbook])
        .output();
    assert_eq!(approve.status.code(), Some(0), "{}", text(&approve));
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_opsgate"))
        .args(["-i", &inventory, "run", runbook])
        .current_dir(lab.workspace())
        .env("OPSGATE_STATE_DIR", lab.state_dir())
        .env("SUDO_USER", "og-dave")
        .env("NO_COLOR", "1")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("opsgate run");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let pending = lab
            .opsgate()
            .env("SUDO_USER", "og-alice")
            .args(["--json", "pending"])
            .output();
        if String::from_utf8_lossy(&pending.stdout).contains("\"run\"") {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the run never became pending"
        );
        crate::common::pause(std::time::Duration::from_millis(100));
    }
    let interrupt = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(interrupt.success());
    let finished = child.wait_with_output().expect("the run");
    assert_eq!(finished.status.code(), Some(130), "{}", text(&finished));
    let history = lab
        .opsgate()
        .env("SUDO_USER", "og-alice")
        .args(["--json", "history"])
        .output();
    let runs: serde_json::Value = serde_json::from_slice(&history.stdout).expect("history");
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
    let approve = project.opsgate(&["approve", "runbook", "runbooks/hello.yaml"]);
    assert_eq!(approve.status.code(), Some(0), "{}", text(&approve));
    assert_eq!(project.opsgate(&["audit", "verify"]).status.code(), Some(0));

    project.policy(&format!("signed_approvals: true\n{operators}"));
    let catalog = project.opsgate(&["catalog"]);
    let listing = text(&catalog);
    let line = listing
        .lines()
        .find(|line| line.starts_with("hello"))
        .expect("hello listed");
    assert!(
        line.contains("draft"),
        "the gate ignores the unsigned approval: {listing}"
    );
    let verify = project.opsgate(&["audit", "verify"]);
    assert_eq!(verify.status.code(), Some(4), "{}", text(&verify));
    assert!(
        text(&verify).contains("by `root` is not signed"),
        "{}",
        text(&verify)
    );
}
