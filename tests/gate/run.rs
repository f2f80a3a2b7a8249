//! The gate in `run`, as real OS accounts through real sudo (see `accounts`): every decision is
//! recorded before any host is contacted, denials exit 3, approvals come from a second process
//! of another account, timeouts and rejections exit 4, break-glass is L5 only.

use std::time::Duration;

use super::accounts::Deployment;
use crate::common::{Opsgate, arg};

/// A runbook that leaves a marker file on each host, so a test can tell whether it ran.
pub(super) fn marker_runbook(id: &str, kind: &str, min_level: u8) -> String {
    format!(
        "runbook: {id}\nkind: {kind}\nmin_level: {min_level}\ntargets: lab\nsteps:\n  - name: mark\n    \
         command: echo {{{{run.operator}}}} > {{{{vars.lab_root}}}}/{id}.ran\n"
    )
}

/// `history show RUN` as the service account's operator `og-alice`.
fn show(deployment: &Deployment, run: &str) -> String {
    deployment
        .opsgate("og-alice", &["history", "show", run])
        .run()
        .stdout
}

/// The newest run's id.
fn last_run(deployment: &Deployment) -> String {
    let output = deployment
        .opsgate("og-alice", &["--json", "history", "--limit", "1"])
        .run();
    let runs: serde_json::Value = serde_json::from_str(&output.stdout).expect("history --json");
    runs[0]["id"].to_string()
}

#[test]
fn an_l1_operator_is_denied_a_patch_runbook_and_the_denial_is_audited() {
    let deployment = Deployment::start(1, None);
    let runbook = deployment.runbook("patch", &marker_runbook("patch", "patch", 2));
    deployment.approve_runbook(&runbook);
    // `plan` judges like `run` (SPEC §4.4) and records nothing.
    deployment
        .opsgate("og-dave", &["plan", "patch"])
        .stdout_contains("gate: `run` would be denied")
        .stdout_contains("min-level")
        .run();
    let bob_plan = deployment
        .opsgate("og-bob", &["--json", "plan", "patch"])
        .run();
    let json: serde_json::Value = serde_json::from_str(&bob_plan.stdout).expect("plan --json");
    assert_eq!(json["gate"]["decision"], "allow", "{json}");
    let denied = deployment
        .opsgate("og-dave", &["run", "patch"])
        .status(3)
        .run();
    let all = denied.text();
    assert!(
        all.contains("`og-dave` (L1)") && all.contains("min-level"),
        "{all}"
    );
    assert!(
        all.contains("level 2+ may run it"),
        "what would allow it: {all}"
    );
    assert!(
        !deployment.lab_file("lab1", "patch.ran").exists(),
        "no host was touched"
    );
    let run = last_run(&deployment);
    let detail = show(&deployment, &run);
    assert!(detail.contains("denied"), "{detail}");
    assert!(
        detail.contains("gate: deny") && detail.contains("rule min-level"),
        "{detail}"
    );
    assert!(detail.contains("og-dave"), "{detail}");
}

#[test]
fn an_l2_runs_an_approved_runbook_and_is_blocked_once_it_is_edited() {
    let deployment = Deployment::start(2, None);
    let yaml = marker_runbook("deploy", "maintenance", 2);
    let runbook = deployment.runbook("deploy", &yaml);
    // A draft is refused to L1-L3 operators.
    deployment
        .opsgate("og-bob", &["run", "deploy"])
        .status(3)
        .output_contains("unapproved-runbook")
        .run();

    deployment.approve_runbook(&runbook);
    deployment.opsgate("og-bob", &["run", "deploy"]).run();
    let marker = std::fs::read_to_string(deployment.lab_file("lab2", "deploy.ran")).expect("ran");
    assert_eq!(marker.trim(), "og-bob", "run.operator is the sudo identity");
    let detail = show(&deployment, &last_run(&deployment));
    assert!(detail.contains("gate: allow"), "{detail}");

    deployment.runbook("deploy", &format!("{yaml}# a harmless-looking edit\n"));
    deployment
        .opsgate("og-bob", &["catalog"])
        .stdout_contains("changed")
        .run();
    let changed = deployment
        .opsgate("og-bob", &["run", "deploy"])
        .status(3)
        .run();
    let all = changed.text();
    assert!(all.contains("has changed since it was approved"), "{all}");
    let detail = show(&deployment, &last_run(&deployment));
    assert!(
        detail.contains("gate: deny") && detail.contains("unapproved-runbook"),
        "{detail}"
    );
}

#[test]
fn a_production_run_waits_for_an_l3_approval_from_another_account() {
    let deployment = Deployment::start(2, Some("production"));
    let runbook = deployment.runbook("restore-app", &marker_runbook("restore-app", "restore", 2));
    deployment.approve_runbook(&runbook);
    let waiting = deployment
        .opsgate("og-bob", &["run", "restore-app"])
        .spawn();
    let run = deployment.pending_run("og-carol");
    let run_text = run.to_string();
    assert!(
        !deployment.lab_file("lab1", "restore-app.ran").exists(),
        "nothing ran yet"
    );

    // Nobody approves their own run; an L2 may not approve; an L1 is not shown the run.
    deployment
        .opsgate("og-bob", &["approve", "run", &run_text])
        .status(3)
        .output_contains("two-person")
        .run();
    let dave = deployment.opsgate("og-dave", &["pending"]).run();
    assert!(
        dave.stdout.as_str().contains("no pending runs"),
        "{}",
        dave.text()
    );

    deployment
        .opsgate(
            "og-carol",
            &["approve", "run", &run_text, "--reason", "checked"],
        )
        .run();
    let finished = waiting.finish();
    let all = finished.text();
    assert!(
        all.contains(&format!("opsgate approve run {run}")),
        "the command to ask for: {all}"
    );
    assert!(all.contains("approved by `og-carol`"), "{all}");
    assert!(deployment.lab_file("lab1", "restore-app.ran").exists());
    let detail = show(&deployment, &run_text);
    assert!(detail.contains("gate: needs_approval"), "{detail}");
    assert!(
        detail.contains("the run approved by og-carol (level 3): checked"),
        "{detail}"
    );
    assert!(detail.contains("restore-app, ok"), "{detail}");

    // The history's chain stays intact with events from three accounts' processes.
    deployment.opsgate("og-alice", &["audit", "verify"]).run();
}

#[test]
fn a_pending_run_fails_cleanly_after_its_approval_timeout() {
    let deployment = Deployment::start(1, None);
    let runbook = deployment.runbook(
        "check-disk",
        &marker_runbook("check-disk", "maintenance", 1),
    );
    deployment.approve_runbook(&runbook);
    let started = std::time::Instant::now();
    let timed_out = deployment
        .opsgate(
            "og-dave",
            &["run", "check-disk", "--approval-timeout", "2s"],
        )
        .status(4)
        .run();
    let all = timed_out.text();
    assert!(started.elapsed() >= Duration::from_secs(2), "it waited");
    assert!(
        all.contains("waiting for approval of run"),
        "a visible countdown: {all}"
    );
    assert!(all.contains("no approval within"), "{all}");
    assert!(!deployment.lab_file("lab1", "check-disk.ran").exists());
    let detail = show(&deployment, &last_run(&deployment));
    assert!(
        detail.contains("denied") && detail.contains("no approval within"),
        "{detail}"
    );
}

#[test]
fn a_rejected_run_exits_4_and_never_touches_a_host() {
    let deployment = Deployment::start(1, None);
    let runbook = deployment.runbook("rotate", &marker_runbook("rotate", "maintenance", 1));
    deployment.approve_runbook(&runbook);
    let waiting = deployment
        .opsgate("og-dave", &["run", "rotate"])
        .status(4)
        .spawn();
    let run = deployment.pending_run("og-carol").to_string();
    // --reject needs --reason.
    deployment
        .opsgate("og-carol", &["approve", "run", &run, "--reject"])
        .status(2)
        .run();
    deployment
        .opsgate(
            "og-carol",
            &[
                "approve",
                "run",
                &run,
                "--reject",
                "--reason",
                "not during the freeze",
            ],
        )
        .run();
    let finished = waiting.finish();
    let all = finished.text();
    assert!(
        all.contains("rejected by `og-carol`: not during the freeze"),
        "{all}"
    );
    assert!(!deployment.lab_file("lab1", "rotate.ran").exists());
    let detail = show(&deployment, &run);
    assert!(detail.contains("rejected by og-carol"), "{detail}");
    // A finished run cannot be approved any more.
    deployment
        .opsgate("og-alice", &["approve", "run", &run])
        .status(2)
        .run();
}

#[test]
fn break_glass_is_for_l5_with_a_reason_and_is_recorded() {
    let deployment = Deployment::start(1, Some("production"));
    // A draft runbook in production: an L5 needs --reason; break-glass is recorded as such.
    deployment.runbook("hotfix", &marker_runbook("hotfix", "maintenance", 3));
    deployment
        .opsgate(
            "og-bob",
            &["run", "hotfix", "--break-glass", "--reason", "x"],
        )
        .status(3)
        .output_contains("break-glass")
        .run();
    deployment
        .opsgate("og-alice", &["run", "hotfix", "--break-glass"])
        .status(3)
        .run();
    deployment
        .opsgate(
            "og-alice",
            &[
                "run",
                "hotfix",
                "--break-glass",
                "--reason",
                "site down, INC-42",
            ],
        )
        .output_contains("BREAK-GLASS")
        .run();
    assert!(deployment.lab_file("lab1", "hotfix.ran").exists());
    let detail = show(&deployment, &last_run(&deployment));
    assert!(
        detail.contains("gate: break_glass") && detail.contains("INC-42"),
        "{detail}"
    );
}

#[test]
fn whoami_names_the_sudo_identity_and_an_unlisted_account_may_do_nothing_gated() {
    let deployment = Deployment::start(1, None);
    let carol = deployment.opsgate("og-carol", &["whoami"]).run();
    let all = carol.text();
    assert!(
        all.contains("operator: og-carol") && all.contains("level:    L3"),
        "{all}"
    );
    assert!(
        all.contains("SUDO_USER, set by sudo for OS account `og-svc`"),
        "{all}"
    );
    deployment.policy("service_account: og-svc\noperators:\n  og-alice: { level: 5 }\n");
    let runbook = deployment.runbook("noop", &marker_runbook("noop", "check", 1));
    deployment.approve_runbook(&runbook);
    deployment
        .opsgate("og-carol", &["run", "noop"])
        .status(3)
        .output_contains("not-an-operator")
        .run();
    // An unlisted account sees its own runs in the history, and nobody else's.
    deployment.opsgate("og-alice", &["run", "noop"]).run();
    let alice_run = last_run(&deployment);
    let own = deployment
        .opsgate("og-carol", &["history"])
        .stdout_contains("og-carol")
        .run();
    assert!(!own.stdout.as_str().contains("og-alice"), "{}", own.text());
    deployment
        .opsgate("og-carol", &["history", "show", &alice_run])
        .status(3)
        .run();
    deployment
        .opsgate("og-carol", &["history", "--operator", "og-alice"])
        .status(3)
        .run();
    // Without a policy file, a sudo identity is denied rather than running ungated.
    std::fs::remove_file(deployment.path().join("policy/operators.yaml")).expect("remove");
    deployment
        .opsgate("og-alice", &["run", "noop"])
        .status(3)
        .output_contains("no-policy-under-sudo")
        .run();
}

#[test]
fn a_gate_step_pauses_every_host_until_one_approval_releases_them_all() {
    let deployment = Deployment::start(2, None);
    let runbook = deployment.runbook(
        "gated",
        "runbook: gated\nkind: maintenance\nmin_level: 2\ntargets: lab\nsteps:\n  - name: count\n    \
         command: echo 3\n    register: pending\n  - name: confirm\n    gate: { approver_level: 3, \
         message: \"{{pending.stdout}} packages on {{host.name}}\" }\n  - name: after\n    \
         command: echo done > {{vars.lab_root}}/gated.ran\n",
    );
    deployment.approve_runbook(&runbook);
    let waiting = deployment.opsgate("og-bob", &["run", "gated"]).spawn();
    let run = deployment.pending_run("og-carol").to_string();
    deployment
        .opsgate("og-carol", &["pending"])
        .stdout_contains("step 2")
        .run();
    assert!(
        !deployment.lab_file("lab1", "gated.ran").exists(),
        "the hosts wait at the gate"
    );
    deployment
        .opsgate("og-bob", &["approve", "run", &run])
        .status(3)
        .run();
    // Wait until both hosts reached the gate, so one approval has two hosts to release.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !show(&deployment, &run).contains("lab2\n    1  count") {
        assert!(
            std::time::Instant::now() < deadline,
            "lab2 never reached the gate"
        );
        crate::common::pause(Duration::from_millis(100));
    }
    crate::common::pause(Duration::from_millis(300));
    deployment
        .opsgate("og-carol", &["approve", "run", &run])
        .output_contains("gate step 2 `confirm`")
        .run();
    let finished = waiting.finish();
    let all = finished.text();
    assert!(
        all.contains("3 packages on lab1") && all.contains("3 packages on lab2"),
        "{all}"
    );
    assert!(all.contains("opsgate approve run"), "{all}");
    for host in ["lab1", "lab2"] {
        assert!(
            deployment.lab_file(host, "gated.ran").exists(),
            "{host} went on"
        );
    }
    let detail = show(&deployment, &run);
    assert_eq!(
        detail.matches("approval of gate step 2").count(),
        1,
        "one request: {detail}"
    );
    assert!(
        detail.contains("gate step 2 `confirm` approved by og-carol"),
        "{detail}"
    );
    deployment.opsgate("og-alice", &["audit", "verify"]).run();
}

#[test]
fn a_rejected_or_unanswered_gate_fails_its_hosts() {
    let deployment = Deployment::start(1, None);
    let runbook = deployment.runbook(
        "gated",
        "runbook: gated\nkind: maintenance\nmin_level: 2\ntargets: lab\nsteps:\n  - name: confirm\n    \
         gate: { message: go? }\n  - name: after\n    command: echo done > {{vars.lab_root}}/gated.ran\n",
    );
    deployment.approve_runbook(&runbook);
    deployment
        .opsgate("og-bob", &["run", "gated", "--approval-timeout", "1s"])
        .status(1)
        .output_contains("no approval within")
        .run();

    let waiting = deployment
        .opsgate("og-bob", &["run", "gated"])
        .status(1)
        .spawn();
    let run = deployment.pending_run("og-carol").to_string();
    deployment
        .opsgate(
            "og-carol",
            &["approve", "run", &run, "--reject", "--reason", "no"],
        )
        .run();
    let finished = waiting.finish();
    assert!(
        finished.text().contains("rejected by `og-carol`: no"),
        "{}",
        finished.text()
    );
    assert!(!deployment.lab_file("lab1", "gated.ran").exists());

    // Break-glass passes gates without waiting, and says so.
    deployment
        .opsgate(
            "og-alice",
            &["run", "gated", "--break-glass", "--reason", "outage"],
        )
        .run();
    assert!(deployment.lab_file("lab1", "gated.ran").exists());
}

#[test]
fn under_sudo_files_others_can_write_are_refused_by_name() {
    use std::os::unix::fs::PermissionsExt;
    let deployment = Deployment::start(1, None);
    deployment.opsgate("og-bob", &["whoami"]).run();

    let policy = deployment.path().join("policy/operators.yaml");
    std::fs::set_permissions(&policy, std::fs::Permissions::from_mode(0o666)).expect("chmod");
    let writable = deployment.opsgate("og-bob", &["whoami"]).status(3).run();
    let all = writable.text();
    assert!(
        all.contains("policy file") && all.contains("operators.yaml"),
        "{all}"
    );
    assert!(all.contains("writable by group or others"), "{all}");
    std::fs::set_permissions(&policy, std::fs::Permissions::from_mode(0o644)).expect("chmod");

    // An inventory the operator owns could point host names anywhere.
    let inventory = deployment.path().join("inventory.yaml");
    let chown = std::process::Command::new("chown")
        .arg("og-bob")
        .arg(&inventory)
        .status()
        .expect("chown");
    assert!(chown.success());
    let owned = deployment.opsgate("og-bob", &["catalog"]).status(3).run();
    let all = owned.text();
    assert!(
        all.contains("inventory") && all.contains("is owned by `og-bob`"),
        "{all}"
    );

    // `--state-dir` obeys the same rule: a directory under a group-writable parent is refused.
    let parent = deployment.path().join("shared");
    std::fs::create_dir(&parent).expect("dir");
    std::fs::set_permissions(&parent, std::fs::Permissions::from_mode(0o775)).expect("chmod");
    let elsewhere = parent.join("state");
    let through_sudo = ["-u", "og-alice", "--", "sudo", "-n", "-u", "og-svc", "--"];
    deployment
        .runuser(&through_sudo, &["--state-dir", arg(&elsewhere), "history"])
        .status(3)
        .output_contains("a parent of the state directory")
        .run();
    deployment
        .runuser(&through_sudo, &["lab", "status"])
        .status(3)
        .run();
    // Nor may the service account run a lab directly.
    deployment
        .runuser(&["-u", "og-svc", "--"], &["lab", "status"])
        .status(3)
        .output_contains("lab-as-service-account")
        .run();
}

#[test]
fn a_saved_plan_runs_once_by_its_author_after_approval_and_refuses_drift() {
    let deployment = Deployment::start(1, None);
    let yaml = "runbook: deploy\nkind: maintenance\nmin_level: 1\ntargets: lab\nparams:\n  token: { type: string, secret: true, required: true }\n  greeting: { type: string, default: hi }\nsteps:\n  - name: mark\n    command: echo {{params.greeting}} > {{vars.lab_root}}/deploy.ran\n";
    let runbook = deployment.runbook("deploy", yaml);
    deployment.approve_runbook(&runbook);
    let secret = "plan-secret-7f3a9c";
    let secret_file = deployment.path().join("token");
    std::fs::write(&secret_file, secret).expect("secret");
    let wrong_file = deployment.path().join("wrong");
    std::fs::write(&wrong_file, "not-it").expect("wrong secret");
    // Under sudo a param file must be the operator's own (readable by the service account too).
    for file in [&secret_file, &wrong_file] {
        let chowned = std::process::Command::new("chown")
            .arg("og-dave")
            .arg(file)
            .status()
            .expect("chown");
        assert!(chowned.success());
    }
    let token = format!("token=@{}", secret_file.display());
    let wrong = format!("token=@{}", wrong_file.display());

    let save = deployment
        .opsgate(
            "og-dave",
            &[
                "--json",
                "plan",
                "deploy",
                "-p",
                &token,
                "-p",
                "greeting=hello",
                "--save",
            ],
        )
        .run();
    let saved: serde_json::Value = serde_json::from_str(&save.stdout).expect("plan --save --json");
    let id = saved["plan"].as_str().expect("a plan id").to_owned();
    let file = std::fs::read_to_string(
        deployment
            .path()
            .join("state/plans")
            .join(format!("{id}.json")),
    )
    .expect("the saved plan");
    assert!(
        !file.contains(secret),
        "the secret is stored only as a salted HMAC"
    );

    let shown = deployment.opsgate("og-carol", &["plan", "show", &id]).run();
    assert!(
        shown.stdout.as_str().contains("saved by og-dave")
            && shown.stdout.as_str().contains("not approved")
    );
    deployment
        .opsgate("og-dave", &["run", "--plan", &id, "-p", &token])
        .status(3)
        .output_contains("plan-unapproved")
        .run();
    deployment
        .opsgate("og-dave", &["approve", "plan", &id])
        .status(3)
        .run();
    deployment
        .opsgate("og-carol", &["approve", "plan", &id])
        .run();

    let carol_file = deployment.path().join("carol-token");
    std::fs::write(&carol_file, secret).expect("carol's copy");
    let chowned = std::process::Command::new("chown")
        .arg("og-carol")
        .arg(&carol_file)
        .status()
        .expect("chown");
    assert!(chowned.success());
    let carol_token = format!("token=@{}", carol_file.display());
    deployment
        .opsgate("og-carol", &["run", "--plan", &id, "-p", &carol_token])
        .status(3)
        .output_contains("plan-author")
        .run();
    deployment
        .opsgate("og-dave", &["run", "--plan", &id, "-p", &wrong])
        .status(2)
        .run();

    deployment.runbook("deploy", &format!("{yaml}# edited\n"));
    deployment
        .opsgate("og-dave", &["run", "--plan", &id, "-p", &token])
        .status(3)
        .output_contains("drifted: the runbook")
        .run();
    assert!(
        !deployment.lab_file("lab1", "deploy.ran").exists(),
        "nothing ran"
    );

    deployment.runbook("deploy", yaml);
    deployment
        .opsgate("og-dave", &["run", "--plan", &id, "-p", &token])
        .run();
    let marker = std::fs::read_to_string(deployment.lab_file("lab1", "deploy.ran")).expect("ran");
    assert_eq!(marker.trim(), "hello", "exactly the saved params");
    let detail = show(&deployment, &last_run(&deployment));
    assert!(
        detail.contains(&format!("approved plan {id} in advance")),
        "{detail}"
    );
    deployment
        .opsgate("og-dave", &["run", "--plan", &id, "-p", &token])
        .status(3)
        .output_contains("plan-used")
        .run();
}

/// An ed25519 key of `account`, in a directory only it can read; returns the private key path.
pub(super) fn key_of(deployment: &Deployment, account: &str) -> std::path::PathBuf {
    let directory = deployment.path().join(format!("keys-{account}"));
    std::fs::create_dir(&directory).expect("key dir");
    let key = directory.join("id");
    let generated = std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", account, "-f"])
        .arg(&key)
        .status()
        .expect("ssh-keygen");
    assert!(generated.success());
    let owned = std::process::Command::new("chown")
        .args(["-R", account])
        .arg(&directory)
        .status()
        .expect("chown");
    assert!(owned.success());
    key
}

/// `opsgate ARGS` as `account` itself, without sudo (where its SSH key is).
pub(super) fn as_self(deployment: &Deployment, account: &str, args: &[&str]) -> Opsgate {
    deployment.runuser(&["-u", account, "--"], args)
}

/// A signed approval by `account` with `key`: the statement of `approve ARGS --prepare` through
/// sudo (the service account reads the store), signed by the account as itself.
pub(super) fn sign_as(
    deployment: &Deployment,
    account: &str,
    key: &std::path::Path,
    args: &[&str],
) -> String {
    let statement = deployment
        .opsgate(account, &[args, &["--prepare"]].concat())
        .run()
        .stdout;
    as_self(
        deployment,
        account,
        &["approve", "--sign", arg(key), "--statement", "-"],
    )
    .stdin(statement.as_str())
    .run()
    .stdout
}

/// Hands a signed approval to the service account: `approve --signed -` through sudo.
pub(super) fn hand_in(deployment: &Deployment, account: &str, document: &str) -> Opsgate {
    deployment
        .opsgate(account, &["approve", "--signed", "-"])
        .stdin(document)
}

#[test]
fn signed_approvals_are_made_as_the_approver_and_verified_against_registered_keys() {
    let deployment = Deployment::start(1, None);
    let alice_key = key_of(&deployment, "og-alice");
    let carol_key = key_of(&deployment, "og-carol");
    let public = |key: &std::path::Path| {
        std::fs::read_to_string(key.with_extension("pub"))
            .expect("public key")
            .trim()
            .to_owned()
    };
    deployment.policy(&format!(
        "service_account: og-svc\nsigned_approvals: true\noperators:\n  og-alice: {{ level: 5, key: \"{}\" }}\n  og-carol: {{ level: 3, key: \"{}\" }}\n  og-dave: {{ level: 1 }}\n",
        public(&alice_key),
        public(&carol_key)
    ));
    let runbook = deployment.runbook("signed", &marker_runbook("signed", "maintenance", 1));

    deployment
        .opsgate("og-alice", &["approve", "runbook", &runbook])
        .status(3)
        .run();
    // Signing as herself, she cannot read the store the statement names: she is pointed at
    // `--prepare`.
    as_self(
        &deployment,
        "og-alice",
        &["approve", "runbook", &runbook, "--sign", arg(&alice_key)],
    )
    .status(2)
    .output_contains("--prepare")
    .run();
    let document = sign_as(
        &deployment,
        "og-alice",
        &alice_key,
        &["approve", "runbook", &runbook],
    );
    // Anyone else handing it in, or a tampered document, is refused.
    hand_in(&deployment, "og-carol", &document).status(3).run();
    let tampered = document.replace("approver: og-alice", "approver: og-carol");
    hand_in(&deployment, "og-carol", &tampered)
        .status(3)
        .output_contains("does not verify")
        .run();
    hand_in(&deployment, "og-alice", &document).run();
    deployment
        .opsgate("og-dave", &["catalog"])
        .stdout_contains("approved")
        .run();

    // A run approval, signed by the approver as herself and handed in through sudo.
    let waiting = deployment.opsgate("og-dave", &["run", "signed"]).spawn();
    let run = deployment.pending_run("og-carol").to_string();
    let signed_run = sign_as(
        &deployment,
        "og-carol",
        &carol_key,
        &["approve", "run", &run],
    );
    hand_in(&deployment, "og-carol", &signed_run).run();
    waiting.finish();
    assert!(deployment.lab_file("lab1", "signed.ran").exists());
    let detail = show(&deployment, &run);
    assert!(
        detail.contains("approved by og-carol (level 3, signed)"),
        "{detail}"
    );
}

#[test]
fn a_saved_plan_expires_after_the_policy_plan_ttl() {
    let deployment = Deployment::start(1, None);
    deployment.policy(&format!("plan_ttl: 2s\n{}", Deployment::POLICY));
    let runbook = deployment.runbook("brief", &marker_runbook("brief", "maintenance", 1));
    deployment.approve_runbook(&runbook);
    let save = deployment
        .opsgate("og-dave", &["--json", "plan", "brief", "--save"])
        .run();
    let saved: serde_json::Value = serde_json::from_str(&save.stdout).expect("json");
    let id = saved["plan"].as_str().expect("id").to_owned();
    deployment
        .opsgate("og-carol", &["approve", "plan", &id])
        .run();
    crate::common::pause(Duration::from_millis(2500));
    let late = deployment
        .opsgate("og-dave", &["run", "--plan", &id])
        .status(3)
        .run();
    assert!(
        late.text().contains("plan-expired") && late.text().contains("within 2s"),
        "{}",
        late.text()
    );
    assert!(!deployment.lab_file("lab1", "brief.ran").exists());
}

#[test]
fn under_sudo_a_param_file_must_belong_to_the_operator() {
    let deployment = Deployment::start(1, None);
    let runbook = deployment.runbook(
        "echo",
        "runbook: echo\nkind: maintenance\nmin_level: 2\ntargets: lab\nparams:\n  word: { type: string, required: true }\nsteps:\n  - command: echo {{params.word}}\n",
    );
    // A file only the service account may read: the operator must not get it through `-p @`.
    let secret = deployment.path().join("keys/service-only");
    std::fs::write(&secret, "service-account-secret").expect("secret file");
    let chowned = std::process::Command::new("chown")
        .args(["og-svc", secret.to_str().expect("utf-8")])
        .status()
        .expect("chown");
    assert!(chowned.success());
    deployment
        .opsgate(
            "og-bob",
            &[
                "plan",
                &runbook,
                "-p",
                &format!("word=@{}", secret.display()),
            ],
        )
        .status(3)
        .output_contains("must be a file `og-bob` owns")
        .output_lacks("service-account-secret")
        .run();
}
