//! The gate in `run`, as real OS accounts through real sudo (see `accounts`): every decision is
//! recorded before any host is contacted, denials exit 3, approvals come from a second process
//! of another account, timeouts and rejections exit 4, break-glass is L5 only.

use std::time::Duration;

use super::accounts::Deployment;
use super::text;

/// A runbook that leaves a marker file on each host, so a test can tell whether it ran.
fn marker_runbook(id: &str, kind: &str, min_level: u8) -> String {
    format!(
        "runbook: {id}\nkind: {kind}\nmin_level: {min_level}\ntargets: lab\nsteps:\n  - name: mark\n    \
         command: echo {{{{run.operator}}}} > {{{{vars.lab_root}}}}/{id}.ran\n"
    )
}

fn stdout(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// `history show RUN` as the service account's operator `og-alice`.
fn show(deployment: &Deployment, run: &str) -> String {
    let output = deployment.run("og-alice", &["history", "show", run]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    stdout(&output)
}

/// The newest run's id.
fn last_run(deployment: &Deployment) -> String {
    let output = deployment.run("og-alice", &["--json", "history", "--limit", "1"]);
    let runs: serde_json::Value = serde_json::from_slice(&output.stdout).expect("history --json");
    runs[0]["id"].to_string()
}

#[test]
fn an_l1_operator_is_denied_a_patch_runbook_and_the_denial_is_audited() {
    let deployment = Deployment::start(1, None);
    let runbook = deployment.runbook("patch", &marker_runbook("patch", "patch", 2));
    deployment.approve_runbook(&runbook);
    // `plan` judges like `run` (SPEC §4.4) and records nothing.
    let plan = deployment.run("og-dave", &["plan", "patch"]);
    assert_eq!(plan.status.code(), Some(0), "{}", text(&plan));
    assert!(
        stdout(&plan).contains("gate: `run` would be denied"),
        "{}",
        text(&plan)
    );
    assert!(stdout(&plan).contains("min-level"), "{}", text(&plan));
    let bob_plan = deployment.run("og-bob", &["--json", "plan", "patch"]);
    let json: serde_json::Value = serde_json::from_slice(&bob_plan.stdout).expect("plan --json");
    assert_eq!(json["gate"]["decision"], "allow", "{json}");
    let denied = deployment.run("og-dave", &["run", "patch"]);
    let all = text(&denied);
    assert_eq!(denied.status.code(), Some(3), "{all}");
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
    let draft = deployment.run("og-bob", &["run", "deploy"]);
    assert_eq!(draft.status.code(), Some(3), "{}", text(&draft));
    assert!(
        text(&draft).contains("unapproved-runbook"),
        "{}",
        text(&draft)
    );

    deployment.approve_runbook(&runbook);
    let approved = deployment.run("og-bob", &["run", "deploy"]);
    assert_eq!(approved.status.code(), Some(0), "{}", text(&approved));
    let marker = std::fs::read_to_string(deployment.lab_file("lab2", "deploy.ran")).expect("ran");
    assert_eq!(marker.trim(), "og-bob", "run.operator is the sudo identity");
    let detail = show(&deployment, &last_run(&deployment));
    assert!(detail.contains("gate: allow"), "{detail}");

    deployment.runbook("deploy", &format!("{yaml}# a harmless-looking edit\n"));
    let catalog = deployment.run("og-bob", &["catalog"]);
    assert!(stdout(&catalog).contains("changed"), "{}", text(&catalog));
    let changed = deployment.run("og-bob", &["run", "deploy"]);
    let all = text(&changed);
    assert_eq!(changed.status.code(), Some(3), "{all}");
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
    let waiting = deployment.spawn("og-bob", &["run", "restore-app"]);
    let run = deployment.pending_run("og-carol");
    let run_text = run.to_string();
    assert!(
        !deployment.lab_file("lab1", "restore-app.ran").exists(),
        "nothing ran yet"
    );

    // Nobody approves their own run; an L2 may not approve; an L1 is not shown the run.
    let own = deployment.run("og-bob", &["approve", "run", &run_text]);
    assert_eq!(own.status.code(), Some(3), "{}", text(&own));
    assert!(text(&own).contains("two-person"), "{}", text(&own));
    let dave = deployment.run("og-dave", &["pending"]);
    assert!(stdout(&dave).contains("no pending runs"), "{}", text(&dave));

    let approve = deployment.run(
        "og-carol",
        &["approve", "run", &run_text, "--reason", "checked"],
    );
    assert_eq!(approve.status.code(), Some(0), "{}", text(&approve));
    let finished = waiting.wait_with_output().expect("the waiting run");
    let all = text(&finished);
    assert_eq!(finished.status.code(), Some(0), "{all}");
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
    let verify = deployment.run("og-alice", &["audit", "verify"]);
    assert_eq!(verify.status.code(), Some(0), "{}", text(&verify));
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
    let timed_out = deployment.run(
        "og-dave",
        &["run", "check-disk", "--approval-timeout", "2s"],
    );
    let all = text(&timed_out);
    assert_eq!(timed_out.status.code(), Some(4), "{all}");
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
    let waiting = deployment.spawn("og-dave", &["run", "rotate"]);
    let run = deployment.pending_run("og-carol").to_string();
    let no_reason = deployment.run("og-carol", &["approve", "run", &run, "--reject"]);
    assert_eq!(no_reason.status.code(), Some(2), "--reject needs --reason");
    let reject = deployment.run(
        "og-carol",
        &[
            "approve",
            "run",
            &run,
            "--reject",
            "--reason",
            "not during the freeze",
        ],
    );
    assert_eq!(reject.status.code(), Some(0), "{}", text(&reject));
    let finished = waiting.wait_with_output().expect("the waiting run");
    let all = text(&finished);
    assert_eq!(finished.status.code(), Some(4), "{all}");
    assert!(
        all.contains("rejected by `og-carol`: not during the freeze"),
        "{all}"
    );
    assert!(!deployment.lab_file("lab1", "rotate.ran").exists());
    let detail = show(&deployment, &run);
    assert!(detail.contains("rejected by og-carol"), "{detail}");
    // A finished run cannot be approved any more.
    let late = deployment.run("og-alice", &["approve", "run", &run]);
    assert_eq!(late.status.code(), Some(2), "{}", text(&late));
}

#[test]
fn break_glass_is_for_l5_with_a_reason_and_is_recorded() {
    let deployment = Deployment::start(1, Some("production"));
    // A draft runbook in production: an L5 needs --reason; break-glass is recorded as such.
    deployment.runbook("hotfix", &marker_runbook("hotfix", "maintenance", 3));
    let bob = deployment.run(
        "og-bob",
        &["run", "hotfix", "--break-glass", "--reason", "x"],
    );
    assert_eq!(bob.status.code(), Some(3), "{}", text(&bob));
    assert!(text(&bob).contains("break-glass"), "{}", text(&bob));
    let no_reason = deployment.run("og-alice", &["run", "hotfix", "--break-glass"]);
    assert_eq!(no_reason.status.code(), Some(3), "{}", text(&no_reason));
    let alice = deployment.run(
        "og-alice",
        &[
            "run",
            "hotfix",
            "--break-glass",
            "--reason",
            "site down, INC-42",
        ],
    );
    let all = text(&alice);
    assert_eq!(alice.status.code(), Some(0), "{all}");
    assert!(all.contains("BREAK-GLASS"), "{all}");
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
    let carol = deployment.run("og-carol", &["whoami"]);
    let all = text(&carol);
    assert_eq!(carol.status.code(), Some(0), "{all}");
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
    let unlisted = deployment.run("og-carol", &["run", "noop"]);
    assert_eq!(unlisted.status.code(), Some(3), "{}", text(&unlisted));
    assert!(
        text(&unlisted).contains("not-an-operator"),
        "{}",
        text(&unlisted)
    );
    // An unlisted account sees its own runs in the history, and nobody else's.
    let alice = deployment.run("og-alice", &["run", "noop"]);
    assert_eq!(alice.status.code(), Some(0), "{}", text(&alice));
    let alice_run = last_run(&deployment);
    let own = deployment.run("og-carol", &["history"]);
    assert_eq!(own.status.code(), Some(0), "{}", text(&own));
    assert!(stdout(&own).contains("og-carol"), "{}", text(&own));
    assert!(!stdout(&own).contains("og-alice"), "{}", text(&own));
    let other = deployment.run("og-carol", &["history", "show", &alice_run]);
    assert_eq!(other.status.code(), Some(3), "{}", text(&other));
    let filtered = deployment.run("og-carol", &["history", "--operator", "og-alice"]);
    assert_eq!(filtered.status.code(), Some(3), "{}", text(&filtered));
    // Without a policy file, a sudo identity is denied rather than running ungated.
    std::fs::remove_file(deployment.path().join("policy/operators.yaml")).expect("remove");
    let no_policy = deployment.run("og-alice", &["run", "noop"]);
    assert_eq!(no_policy.status.code(), Some(3), "{}", text(&no_policy));
    assert!(
        text(&no_policy).contains("no-policy-under-sudo"),
        "{}",
        text(&no_policy)
    );
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
    let waiting = deployment.spawn("og-bob", &["run", "gated"]);
    let run = deployment.pending_run("og-carol").to_string();
    let listing = deployment.run("og-carol", &["pending"]);
    assert!(stdout(&listing).contains("step 2"), "{}", text(&listing));
    assert!(
        !deployment.lab_file("lab1", "gated.ran").exists(),
        "the hosts wait at the gate"
    );
    let own = deployment.run("og-bob", &["approve", "run", &run]);
    assert_eq!(own.status.code(), Some(3), "{}", text(&own));
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
    let approve = deployment.run("og-carol", &["approve", "run", &run]);
    assert_eq!(approve.status.code(), Some(0), "{}", text(&approve));
    assert!(
        text(&approve).contains("gate step 2 `confirm`"),
        "{}",
        text(&approve)
    );
    let finished = waiting.wait_with_output().expect("the run");
    let all = text(&finished);
    assert_eq!(finished.status.code(), Some(0), "{all}");
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
    let verify = deployment.run("og-alice", &["audit", "verify"]);
    assert_eq!(verify.status.code(), Some(0), "{}", text(&verify));
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
    let timed_out = deployment.run("og-bob", &["run", "gated", "--approval-timeout", "1s"]);
    assert_eq!(timed_out.status.code(), Some(1), "{}", text(&timed_out));
    assert!(
        text(&timed_out).contains("no approval within"),
        "{}",
        text(&timed_out)
    );

    let waiting = deployment.spawn("og-bob", &["run", "gated"]);
    let run = deployment.pending_run("og-carol").to_string();
    let reject = deployment.run(
        "og-carol",
        &["approve", "run", &run, "--reject", "--reason", "no"],
    );
    assert_eq!(reject.status.code(), Some(0), "{}", text(&reject));
    let finished = waiting.wait_with_output().expect("the run");
    assert_eq!(finished.status.code(), Some(1), "{}", text(&finished));
    assert!(
        text(&finished).contains("rejected by `og-carol`: no"),
        "{}",
        text(&finished)
    );
    assert!(!deployment.lab_file("lab1", "gated.ran").exists());

    // Break-glass passes gates without waiting, and says so.
    let glass = deployment.run(
        "og-alice",
        &["run", "gated", "--break-glass", "--reason", "outage"],
    );
    assert_eq!(glass.status.code(), Some(0), "{}", text(&glass));
    assert!(deployment.lab_file("lab1", "gated.ran").exists());
}

#[test]
fn under_sudo_files_others_can_write_are_refused_by_name() {
    use std::os::unix::fs::PermissionsExt;
    let deployment = Deployment::start(1, None);
    let ok = deployment.run("og-bob", &["whoami"]);
    assert_eq!(ok.status.code(), Some(0), "{}", text(&ok));

    let policy = deployment.path().join("policy/operators.yaml");
    std::fs::set_permissions(&policy, std::fs::Permissions::from_mode(0o666)).expect("chmod");
    let writable = deployment.run("og-bob", &["whoami"]);
    let all = text(&writable);
    assert_eq!(writable.status.code(), Some(3), "{all}");
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
    let owned = deployment.run("og-bob", &["catalog"]);
    let all = text(&owned);
    assert_eq!(owned.status.code(), Some(3), "{all}");
    assert!(
        all.contains("inventory") && all.contains("is owned by `og-bob`"),
        "{all}"
    );

    // `--state-dir` obeys the same rule: a directory under a group-writable parent is refused.
    let parent = deployment.path().join("shared");
    std::fs::create_dir(&parent).expect("dir");
    std::fs::set_permissions(&parent, std::fs::Permissions::from_mode(0o775)).expect("chmod");
    let elsewhere = parent.join("state");
    let state = std::process::Command::new("runuser")
        .args(["-u", "og-alice", "--", "sudo", "-n", "-u", "og-svc", "--"])
        .arg(env!("CARGO_BIN_EXE_opsgate"))
        .arg("--state-dir")
        .arg(&elsewhere)
        .arg("history")
        .current_dir(deployment.path())
        .env_remove("SUDO_USER")
        .output()
        .expect("runuser");
    let all = text(&state);
    assert_eq!(state.status.code(), Some(3), "{all}");
    assert!(all.contains("a parent of the state directory"), "{all}");

    let lab = std::process::Command::new("runuser")
        .args(["-u", "og-alice", "--", "sudo", "-n", "-u", "og-svc", "--"])
        .arg(env!("CARGO_BIN_EXE_opsgate"))
        .args(["lab", "status"])
        .current_dir(deployment.path())
        .env_remove("SUDO_USER")
        .output()
        .expect("runuser");
    assert_eq!(lab.status.code(), Some(3), "{}", text(&lab));
    // Nor may the service account run a lab directly.
    let service_lab = std::process::Command::new("runuser")
        .args(["-u", "og-svc", "--"])
        .arg(env!("CARGO_BIN_EXE_opsgate"))
        .args(["lab", "status"])
        .current_dir(deployment.path())
        .env_remove("SUDO_USER")
        .output()
        .expect("runuser");
    assert_eq!(service_lab.status.code(), Some(3), "{}", text(&service_lab));
    assert!(
        text(&service_lab).contains("lab-as-service-account"),
        "{}",
        text(&service_lab)
    );
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

    let save = deployment.run(
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
    );
    assert_eq!(save.status.code(), Some(0), "{}", text(&save));
    let saved: serde_json::Value =
        serde_json::from_slice(&save.stdout).expect("plan --save --json");
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

    let shown = deployment.run("og-carol", &["plan", "show", &id]);
    assert!(stdout(&shown).contains("saved by og-dave") && stdout(&shown).contains("not approved"));
    let early = deployment.run("og-dave", &["run", "--plan", &id, "-p", &token]);
    assert_eq!(early.status.code(), Some(3), "{}", text(&early));
    assert!(text(&early).contains("plan-unapproved"), "{}", text(&early));
    let own = deployment.run("og-dave", &["approve", "plan", &id]);
    assert_eq!(own.status.code(), Some(3), "{}", text(&own));
    let approve = deployment.run("og-carol", &["approve", "plan", &id]);
    assert_eq!(approve.status.code(), Some(0), "{}", text(&approve));

    let carol_file = deployment.path().join("carol-token");
    std::fs::write(&carol_file, secret).expect("carol's copy");
    let chowned = std::process::Command::new("chown")
        .arg("og-carol")
        .arg(&carol_file)
        .status()
        .expect("chown");
    assert!(chowned.success());
    let carol_token = format!("token=@{}", carol_file.display());
    let not_author = deployment.run("og-carol", &["run", "--plan", &id, "-p", &carol_token]);
    assert_eq!(not_author.status.code(), Some(3), "{}", text(&not_author));
    assert!(
        text(&not_author).contains("plan-author"),
        "{}",
        text(&not_author)
    );
    let bad_secret = deployment.run("og-dave", &["run", "--plan", &id, "-p", &wrong]);
    assert_eq!(bad_secret.status.code(), Some(2), "{}", text(&bad_secret));

    deployment.runbook("deploy", &format!("{yaml}# edited\n"));
    let drifted = deployment.run("og-dave", &["run", "--plan", &id, "-p", &token]);
    assert_eq!(drifted.status.code(), Some(3), "{}", text(&drifted));
    assert!(
        text(&drifted).contains("drifted: the runbook"),
        "{}",
        text(&drifted)
    );
    assert!(
        !deployment.lab_file("lab1", "deploy.ran").exists(),
        "nothing ran"
    );

    deployment.runbook("deploy", yaml);
    let ran = deployment.run("og-dave", &["run", "--plan", &id, "-p", &token]);
    assert_eq!(ran.status.code(), Some(0), "{}", text(&ran));
    let marker = std::fs::read_to_string(deployment.lab_file("lab1", "deploy.ran")).expect("ran");
    assert_eq!(marker.trim(), "hello", "exactly the saved params");
    let detail = show(&deployment, &last_run(&deployment));
    assert!(
        detail.contains(&format!("approved plan {id} in advance")),
        "{detail}"
    );
    let again = deployment.run("og-dave", &["run", "--plan", &id, "-p", &token]);
    assert_eq!(again.status.code(), Some(3), "{}", text(&again));
    assert!(text(&again).contains("plan-used"), "{}", text(&again));
}

/// An ed25519 key of `account`, in a directory only it can read; returns the private key path.
fn key_of(deployment: &Deployment, account: &str) -> std::path::PathBuf {
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
fn as_self(deployment: &Deployment, account: &str, args: &[&str]) -> std::process::Output {
    std::process::Command::new("runuser")
        .args(["-u", account, "--"])
        .arg(env!("CARGO_BIN_EXE_opsgate"))
        .args(args)
        .current_dir(deployment.path())
        .env_remove("SUDO_USER")
        .output()
        .expect("runuser")
}

/// Hands a signed approval to the service account: `approve --signed -` through sudo.
fn hand_in(deployment: &Deployment, account: &str, document: &[u8]) -> std::process::Output {
    use std::io::Write as _;
    let mut child = deployment
        .command(account, &["approve", "--signed", "-"])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .expect("runuser");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(document)
        .expect("write the document");
    child.wait_with_output().expect("approve --signed")
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

    let unsigned = deployment.run("og-alice", &["approve", "runbook", &runbook]);
    assert_eq!(unsigned.status.code(), Some(3), "{}", text(&unsigned));
    let key = alice_key.to_str().expect("utf-8");
    let document = as_self(
        &deployment,
        "og-alice",
        &["approve", "runbook", &runbook, "--sign", key],
    );
    assert_eq!(document.status.code(), Some(0), "{}", text(&document));
    // Anyone else handing it in, or a tampered document, is refused.
    let stranger = hand_in(&deployment, "og-carol", &document.stdout);
    assert_eq!(stranger.status.code(), Some(3), "{}", text(&stranger));
    let tampered = String::from_utf8_lossy(&document.stdout)
        .replace("approver: og-alice", "approver: og-carol");
    let forged = hand_in(&deployment, "og-carol", tampered.as_bytes());
    assert_eq!(forged.status.code(), Some(3), "{}", text(&forged));
    assert!(
        text(&forged).contains("does not verify"),
        "{}",
        text(&forged)
    );
    let handed = hand_in(&deployment, "og-alice", &document.stdout);
    assert_eq!(handed.status.code(), Some(0), "{}", text(&handed));
    let catalog = deployment.run("og-dave", &["catalog"]);
    assert!(stdout(&catalog).contains("approved"), "{}", text(&catalog));

    // A run approval, signed by the approver as herself and handed in through sudo.
    let waiting = deployment.spawn("og-dave", &["run", "signed"]);
    let run = deployment.pending_run("og-carol").to_string();
    let carol = carol_key.to_str().expect("utf-8");
    let signed_run = as_self(
        &deployment,
        "og-carol",
        &["approve", "run", &run, "--sign", carol],
    );
    assert_eq!(signed_run.status.code(), Some(0), "{}", text(&signed_run));
    let handed = hand_in(&deployment, "og-carol", &signed_run.stdout);
    assert_eq!(handed.status.code(), Some(0), "{}", text(&handed));
    let finished = waiting.wait_with_output().expect("the run");
    assert_eq!(finished.status.code(), Some(0), "{}", text(&finished));
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
    let save = deployment.run("og-dave", &["--json", "plan", "brief", "--save"]);
    assert_eq!(save.status.code(), Some(0), "{}", text(&save));
    let saved: serde_json::Value = serde_json::from_slice(&save.stdout).expect("json");
    let id = saved["plan"].as_str().expect("id").to_owned();
    let approve = deployment.run("og-carol", &["approve", "plan", &id]);
    assert_eq!(approve.status.code(), Some(0), "{}", text(&approve));
    crate::common::pause(Duration::from_millis(2500));
    let late = deployment.run("og-dave", &["run", "--plan", &id]);
    assert_eq!(late.status.code(), Some(3), "{}", text(&late));
    assert!(
        text(&late).contains("plan-expired") && text(&late).contains("within 2s"),
        "{}",
        text(&late)
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
    let plan = deployment.run(
        "og-bob",
        &[
            "plan",
            &runbook,
            "-p",
            &format!("word=@{}", secret.display()),
        ],
    );
    assert_eq!(plan.status.code(), Some(3), "{}", text(&plan));
    assert!(
        text(&plan).contains("must be a file `og-bob` owns"),
        "{}",
        text(&plan)
    );
    assert!(
        !text(&plan).contains("service-account-secret"),
        "{}",
        text(&plan)
    );
}
