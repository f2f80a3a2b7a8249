//! Closing the holes of issue #10 item 7 end to end: inventory `ssh_options` are an allowlist,
//! `--diff` masks secrets on both sides, `plan show` never prints salts or HMACs, `fetch` never
//! writes through a symlink.

use super::write_runbook;
use crate::common::{Opsgate, TestLab};

const RUNBOOK: &str =
    "runbook: hello\nkind: check\ntargets: all\nsteps:\n  - name: hi\n    command: echo hi\n";

#[test]
fn ssh_options_that_run_commands_or_change_host_key_checking_are_refused() {
    const ALLOWED: &str = "allowed options: `AddressFamily`, `Ciphers`, `Compression`";
    for (option, error, hint) in [
        (
            "ProxyCommand=sh -c 'touch /tmp/pwned'",
            "`ProxyCommand`, which is not allowed",
            "use `jump:`",
        ),
        (
            "KnownHostsCommand=/bin/echo",
            "`KnownHostsCommand`, which is not allowed",
            ALLOWED,
        ),
        (
            "LocalCommand=id",
            "`LocalCommand`, which is not allowed",
            ALLOWED,
        ),
        (
            "UserKnownHostsFile=/dev/null",
            "`UserKnownHostsFile`, which is not allowed",
            ALLOWED,
        ),
        (
            "StrictHostKeyChecking=no",
            "`StrictHostKeyChecking`, which is not allowed",
            ALLOWED,
        ),
        (
            "ProxyJump=bastion",
            "`ProxyJump`, which is not allowed",
            ALLOWED,
        ),
        (
            "Ciphers=+3des-cbc",
            "`Ciphers` with `+3des-cbc`",
            "without `+`, `-` or `^`",
        ),
    ] {
        Opsgate::new()
            .runbook(RUNBOOK)
            .inventory(&format!(
                "hosts:\n  web1: {{ ssh_options: [ConnectTimeout=5, \"{option}\"] }}\n"
            ))
            .args(["plan", "runbook.yaml"])
            .status(2)
            .stderr_contains(format!("error: host `web1` has ssh option {error}"))
            .stderr_contains("inventory.yaml:2:43")
            .stderr_contains(hint)
            .output_lacks("echo hi")
            .run();
    }
}

#[test]
fn ssh_options_that_tune_the_connection_are_accepted() {
    Opsgate::new()
        .runbook(RUNBOOK)
        .inventory(
            "hosts:\n  web1: { ssh_options: [ConnectTimeout=5, ServerAliveCountMax=2, \
             Compression=yes, \"Ciphers=aes256-gcm@openssh.com\"] }\n",
        )
        .args(["plan", "runbook.yaml"])
        .run();
}

/// A rotated secret: the old value on the host is unknown to opsgate, the new one is a param;
/// `--diff` shows neither.
#[test]
fn diff_masks_a_rotated_secret_on_both_sides() {
    const OLD: &str = "old-pw-7c1e9b";
    const NEW: &str = "new-pw-3a8f52";
    let lab = TestLab::start(1);
    let work = lab.workspace().to_path_buf();
    let root = &lab.hosts()[0].lab_root;
    std::fs::write(
        root.join("app.conf"),
        format!("user=app\npassword={OLD}\nport=1\n"),
    )
    .expect("old config");
    std::fs::write(work.join("pw"), NEW).expect("secret file");
    let runbook = write_runbook(
        &work,
        "rotate",
        r#"
runbook: rotate
kind: maintenance
targets: lab
params:
  pw: { type: string, secret: true, required: true }
steps:
  - name: config
    copy: { content: "user=app\npassword={{params.pw}}\nport=2\n", dest: "{{vars.lab_root}}/app.conf" }
"#,
    );
    let param = format!("pw=@{}", work.join("pw").display());
    lab.cli(&[
        "run",
        runbook.to_str().expect("utf-8"),
        "--diff",
        "-p",
        &param,
    ])
    .stdout_contains("-password=***")
    .stdout_contains("+password=***")
    .stdout_contains("+port=2")
    .output_lacks(OLD)
    .output_lacks(NEW)
    .run();
    assert_eq!(
        std::fs::read_to_string(root.join("app.conf")).expect("new config"),
        format!("user=app\npassword={NEW}\nport=2\n")
    );
}

const SECRET_RUNBOOK: &str = "runbook: deploy\nkind: maintenance\ntargets: all\nparams:\n  token: { type: string, secret: true, required: true }\nsteps:\n  - name: use it\n    command: echo {{params.token}}\n";

/// `plan show` (text and `--json`) prints neither the salt nor the HMAC of a secret param, and
/// the HMAC in the file is keyed by the state directory's private plan key.
#[test]
fn plan_show_never_prints_salts_or_hmacs_of_secret_params() {
    const TOKEN: &str = "tok-0a9f-never-shown";
    let state = tempfile::tempdir().expect("state dir");
    let plan = || {
        Opsgate::new()
            .runbook(SECRET_RUNBOOK)
            .inventory("hosts:\n  web1:\n")
            .file(
                "policy/operators.yaml",
                "operators:\n  root: { level: 4 }\n",
            )
            .state_dir(state.path())
    };
    let token_file = state.path().join("token");
    std::fs::write(&token_file, TOKEN).expect("token");
    let saved = plan()
        .args(["--json", "plan", "runbook.yaml", "--save", "-p"])
        .arg(format!("token=@{}", token_file.display()))
        .output_lacks(TOKEN)
        .run();
    let id = saved.json()["plan"].as_str().expect("plan id").to_owned();
    let file =
        std::fs::read_to_string(state.path().join(format!("plans/{id}.json"))).expect("saved plan");
    let hmac =
        serde_json::from_str::<serde_json::Value>(&file).expect("json")["secrets"][0]["hmac"]
            .as_str()
            .expect("the file keeps the keyed hmac")
            .to_owned();
    let key = std::fs::metadata(state.path().join("plan.key")).expect("plan key");
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&key.permissions()) & 0o777,
        0o600
    );
    for json in [true, false] {
        let mut show = plan();
        if json {
            show = show.arg("--json");
        }
        show.args(["plan", "show", &id])
            .stdout_contains("token")
            .output_lacks(hmac.as_str())
            .output_lacks("salt")
            .output_lacks("hmac")
            .output_lacks(TOKEN)
            .run();
    }

    // A plan saved by an older opsgate (HMACs keyed by the salt alone) is refused.
    let old = file.replacen("\"version\": 3", "\"version\": 2", 1);
    let old_id = {
        use sha2::Digest as _;
        hex::encode(sha2::Sha256::digest(old.as_bytes()))[..16].to_owned()
    };
    std::fs::write(state.path().join(format!("plans/{old_id}.json")), &old).expect("old plan");
    plan()
        .args(["plan", "show", &old_id])
        .failure()
        .stderr_contains(format!("saved plan `{old_id}` has format version 2"))
        .stderr_contains("save the plan again")
        .run();
}

/// A symlink planted where fetched files go (here `fetched/lab1`, pointing at a private
/// directory of the account that runs opsgate) is refused, never followed.
#[test]
fn fetch_refuses_a_planted_symlink_instead_of_following_it() {
    let lab = TestLab::start(1);
    let work = lab.workspace().to_path_buf();
    let private = tempfile::tempdir().expect("private dir");
    std::fs::write(private.path().join("hosts"), "keep\n").expect("victim");
    std::fs::create_dir(work.join("fetched")).expect("fetched");
    std::os::unix::fs::symlink(private.path(), work.join("fetched/lab1")).expect("symlink");
    let root = &lab.hosts()[0].lab_root;
    std::fs::write(root.join("hosts"), "planted\n").expect("remote file");
    let runbook = write_runbook(
        &work,
        "grab",
        "runbook: grab\nkind: check\ntargets: lab\nsteps:\n  - name: grab\n    \
         fetch: { src: \"{{vars.lab_root}}/hosts\", dest: fetched }\n",
    );
    lab.cli(&["run", runbook.to_str().expect("utf-8")])
        .status(1)
        .output_contains("`fetched/lab1` is a symlink; fetch never writes through one")
        .run();
    assert_eq!(
        std::fs::read_to_string(private.path().join("hosts")).expect("victim"),
        "keep\n"
    );
    assert_eq!(
        std::fs::read_dir(private.path()).expect("list").count(),
        1,
        "nothing was created through the symlink"
    );
}
