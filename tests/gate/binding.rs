//! Binding approvals (SPEC §4.6, issue #10 item 6): a signed run approval names the store id and
//! the run's `run_requested` hash, so replaying a real one into another store whose run has the
//! same number, or onto a run of the same number with other params, releases nothing: the
//! hand-in is refused, a row copied in anyway is ignored by the waiting run, and `audit verify`
//! names it.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::accounts::{Deployment, SERVICE, chmod, chown};
use super::run::{hand_in, key_of, sign_as};
use crate::common::{Opsgate, arg, pause};

/// Writes a file named after its `word` param on each host.
const RUNBOOK: &str = "runbook: bound\nkind: maintenance\nmin_level: 1\ntargets: lab\nparams:\n  \
    word: { type: string, required: true }\nsteps:\n  - name: mark\n    \
    command: echo ran > {{vars.lab_root}}/{{params.word}}.ran\n";

/// `sudo -u og-svc opsgate --state-dir STATE …` as `operator`.
fn in_store(deployment: &Deployment, state: &Path, operator: &str, args: &[&str]) -> Opsgate {
    let inventory = deployment.path().join("inventory.yaml");
    let global = ["--state-dir", arg(state), "-i", arg(&inventory)];
    deployment.runuser(
        &["-u", operator, "--", "sudo", "-n", "-u", SERVICE, "--"],
        &[&global[..], args].concat(),
    )
}

/// The signed policy (og-alice L5 and og-carol L3 with keys, og-dave L1) and the runbook,
/// approved into the catalog of the deployment's store; returns carol's key.
fn signed_deployment() -> (Deployment, PathBuf) {
    let deployment = Deployment::start(1, None);
    let alice = key_of(&deployment, "og-alice");
    let carol = key_of(&deployment, "og-carol");
    let public = |key: &Path| {
        std::fs::read_to_string(key.with_extension("pub"))
            .expect("public key")
            .trim()
            .to_owned()
    };
    deployment.policy(&format!(
        "service_account: og-svc\nsigned_approvals: true\noperators:\n  og-alice: {{ level: 5, key: \"{}\" }}\n  og-carol: {{ level: 3, key: \"{}\" }}\n  og-dave: {{ level: 1 }}\n",
        public(&alice),
        public(&carol)
    ));
    let runbook = deployment.runbook("bound", RUNBOOK);
    let document = sign_as(
        &deployment,
        "og-alice",
        &alice,
        &["approve", "runbook", &runbook],
    );
    hand_in(&deployment, "og-alice", &document).run();
    (deployment, carol)
}

/// A second state directory for the service account.
fn second_state(deployment: &Deployment) -> PathBuf {
    let state = deployment.path().join("state-b");
    std::fs::create_dir(&state).expect("second state dir");
    chown(&state, SERVICE);
    chmod(&state, 0o700);
    state
}

/// Waits until store `state` has a pending run; returns its id.
fn pending_in(deployment: &Deployment, state: &Path) -> i64 {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let output = in_store(deployment, state, "og-carol", &["--json", "pending"]).run();
        let runs: serde_json::Value = serde_json::from_str(&output.stdout).expect("pending");
        if let Some(run) = runs.get(0) {
            return run["run"].as_i64().expect("a run id");
        }
        assert!(Instant::now() < deadline, "no pending run appeared");
        pause(Duration::from_millis(100));
    }
}

/// Copies the newest `approval_granted` row of store `from` into store `to` as the next event
/// of run `run`: what write access to the second store's file can do with a real signature.
fn copy_approval_row(from: &Path, to: &Path, run: i64) {
    let target = rusqlite::Connection::open(to.join("audit.db")).expect("second store");
    target
        .execute(
            "ATTACH DATABASE ?1 AS first",
            [from.join("audit.db").display().to_string()],
        )
        .expect("attach the first store");
    let copied = target
        .execute(
            "INSERT INTO main.entry (seq, version, at, run_id, kind, uid, user_name, sudo_user, \
             login_uid, body, prev_hash, hash) \
             SELECT (SELECT max(seq) + 1 FROM main.entry), version, at, ?1, kind, uid, \
             user_name, sudo_user, login_uid, body, prev_hash, hash FROM first.entry \
             WHERE kind = 'approval_granted' ORDER BY seq DESC LIMIT 1",
            [run],
        )
        .expect("insert the replayed row");
    assert_eq!(copied, 1, "the signed approval row");
}

/// Carol signs store A's run; the signature is handed to store B's run of the same number
/// (`refusal` names why), then copied in as a row: B's run is never released and `audit verify`
/// of B names the approval.
fn replay(
    deployment: &Deployment,
    carol: &Path,
    b: &Path,
    word_a: &str,
    word_b: &str,
    refusal: &str,
) {
    let a = deployment.path().join("state");
    let word = |word: &str| format!("word={word}");
    let waiting_a = deployment
        .opsgate("og-dave", &["run", "bound", "-p", &word(word_a)])
        .spawn();
    let run_a = deployment.pending_run("og-carol");
    let waiting_b = in_store(
        deployment,
        b,
        "og-dave",
        &[
            "run",
            "bound",
            "-p",
            &word(word_b),
            "--approval-timeout",
            "10s",
        ],
    )
    .status(4)
    .output_contains("ignoring an approval of run")
    .spawn();
    let run_b = pending_in(deployment, b);
    assert_eq!(run_a, run_b, "the same run number in both stores");
    let run = run_a.to_string();

    let document = sign_as(deployment, "og-carol", carol, &["approve", "run", &run]);
    in_store(deployment, b, "og-carol", &["approve", "--signed", "-"])
        .stdin(document.as_str())
        .status(3)
        .output_contains(refusal)
        .run();
    // The real hand-in releases A's run; its row is then replayed into B.
    hand_in(deployment, "og-carol", &document).run();
    waiting_a.finish();
    assert!(
        deployment
            .lab_file("lab1", &format!("{word_a}.ran"))
            .exists()
    );
    copy_approval_row(&a, b, run_b);
    waiting_b.finish();
    if word_a != word_b {
        assert!(
            !deployment
                .lab_file("lab1", &format!("{word_b}.ran"))
                .exists()
        );
    }
    in_store(deployment, b, "og-carol", &["audit", "verify"])
        .status(4)
        .stdout_contains("by `og-carol` the signature does not verify")
        .run();
}

#[test]
fn a_signed_run_approval_does_not_release_a_run_of_the_same_number_in_another_store() {
    let (deployment, carol) = signed_deployment();
    let b = second_state(&deployment);
    // Store B approves the runbook too, so only the run approval is missing there.
    let alice = deployment.path().join("keys-og-alice/id");
    let runbook = "runbooks/bound.yaml";
    let statement = in_store(
        &deployment,
        &b,
        "og-alice",
        &["approve", "runbook", runbook, "--prepare"],
    )
    .run()
    .stdout;
    let document = super::run::as_self(
        &deployment,
        "og-alice",
        &["approve", "--sign", arg(&alice), "--statement", "-"],
    )
    .stdin(statement.as_str())
    .run()
    .stdout;
    in_store(&deployment, &b, "og-alice", &["approve", "--signed", "-"])
        .stdin(document.as_str())
        .run();
    replay(&deployment, &carol, &b, "same", "same", "signed for store");
}

#[test]
fn a_signed_run_approval_does_not_release_the_run_with_other_params() {
    let (deployment, carol) = signed_deployment();
    // A copy of the store before the run: the same store id, the same history, so only the
    // request (its params) tells the two runs apart.
    let b = deployment.path().join("state-b");
    let copied = std::process::Command::new("cp")
        .arg("-a")
        .arg(deployment.path().join("state"))
        .arg(&b)
        .status()
        .expect("cp");
    assert!(copied.success());
    replay(
        &deployment,
        &carol,
        &b,
        "alpha",
        "beta",
        "another request of run",
    );
}
