//! The audit history end to end: runs over real sshd recorded in a real `SQLite` file, queried
//! and verified through the CLI, tampered with through raw SQL, killed mid-run, run concurrently.

use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::common::{BackgroundRun, TestLab, pause};
use crate::run::{opsgate, text, write_runbook};

fn database(lab: &TestLab) -> std::path::PathBuf {
    lab.state_dir().join("audit.db")
}

fn sqlite(lab: &TestLab, sql: &str) -> Output {
    Command::new("sqlite3")
        .arg(database(lab))
        .arg(sql)
        .output()
        .expect("sqlite3")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn a_run_is_recorded_and_queryable_from_the_cli() {
    let lab = TestLab::start(3);
    let runbook = write_runbook(
        lab.workspace(),
        "recorded",
        "runbook: queryable\nkind: maintenance\ntargets: lab\nparams:\n  greeting: { type: string, default: hi }\nsteps:\n  - name: greet\n    command: echo {{params.greeting}} from {{host.name}}\n  - name: fail on lab3\n    command: test {{host.name}} != lab3\n",
    );
    let run = opsgate(
        &lab,
        &[
            "run",
            runbook.to_str().expect("utf-8"),
            "-p",
            "greeting=hello",
        ],
    );
    assert_eq!(run.status.code(), Some(1), "{}", text(&run));

    let history = opsgate(&lab, &["history"]);
    assert_eq!(history.status.code(), Some(0), "{}", text(&history));
    let listing = stdout(&history);
    assert!(
        listing.contains("queryable") && listing.contains("failed"),
        "{listing}"
    );

    let show = opsgate(&lab, &["history", "show", "1"]);
    let detail = stdout(&show);
    assert_eq!(show.status.code(), Some(0), "{}", text(&show));
    assert!(
        detail.contains("hello from lab2"),
        "step output is in the history: {detail}"
    );
    assert!(detail.contains("greeting"), "{detail}");
    for host in ["lab1", "lab2", "lab3"] {
        assert!(detail.contains(host), "{detail}");
    }

    let filtered = opsgate(&lab, &["history", "--status", "ok"]);
    assert!(
        !stdout(&filtered).contains("queryable"),
        "{}",
        stdout(&filtered)
    );
    let json = opsgate(&lab, &["--json", "history"]);
    let runs: serde_json::Value =
        serde_json::from_slice(&json.stdout).expect("history --json is JSON");
    assert_eq!(runs[0]["runbook"], "queryable", "{runs}");

    let verify = opsgate(&lab, &["audit", "verify"]);
    assert_eq!(verify.status.code(), Some(0), "{}", text(&verify));
    let export = opsgate(&lab, &["audit", "export", "--jsonl"]);
    let events: Vec<serde_json::Value> = stdout(&export)
        .lines()
        .map(|line| serde_json::from_str(line).expect("one JSON event per line"))
        .collect();
    assert!(
        events
            .iter()
            .all(|event| event.get("hash").is_some() && event.get("prev_hash").is_some())
    );
    let started = events
        .iter()
        .filter(|event| event.to_string().contains("step_started"))
        .count();
    assert_eq!(started, 6, "every step announced on every host");
}

#[test]
fn secrets_never_reach_the_database_or_any_output() {
    let lab = TestLab::start(3);
    let secret = "s3cret-Passw0rd-value";
    let token = "tok-4f1d2a9e-registered";
    let runbook = write_runbook(
        lab.workspace(),
        "secrets",
        &format!(
            "runbook: secrets\nkind: maintenance\ntargets: lab\nparams:\n  password: {{ type: string, secret: true, required: true }}\nsteps:\n  - name: use it\n    command: echo using {{{{params.password}}}}; echo {{{{params.password}}}} >&2\n  - name: mint a token\n    command: echo {token}\n    register: minted\n    secret: true\n  - name: use the token\n    command: echo token is {{{{minted.stdout}}}}\n"
        ),
    );
    let secret_file = lab.workspace().join("password");
    std::fs::write(&secret_file, secret).expect("secret file");
    let run = opsgate(
        &lab,
        &[
            "run",
            runbook.to_str().expect("utf-8"),
            "-p",
            &format!("password=@{}", secret_file.display()),
        ],
    );
    let json = opsgate(
        &lab,
        &[
            "--json",
            "run",
            runbook.to_str().expect("utf-8"),
            "-p",
            &format!("password=@{}", secret_file.display()),
        ],
    );
    assert_eq!(run.status.code(), Some(0), "{}", text(&run));
    assert_eq!(json.status.code(), Some(0), "{}", text(&json));
    let show = opsgate(&lab, &["history", "show", "1"]);
    let export = opsgate(&lab, &["audit", "export", "--jsonl"]);
    assert!(
        text(&show).contains("***"),
        "masked values are visible as ***: {}",
        text(&show)
    );
    for output in [&run, &json, &show, &export] {
        let all = text(output);
        assert!(!all.contains(secret), "secret param leaked: {all}");
        assert!(
            !all.contains(token),
            "secret registered value leaked: {all}"
        );
    }
    let mut bytes = std::fs::read(database(&lab)).expect("database");
    for suffix in ["-wal", "-shm"] {
        let mut extra = database(&lab).into_os_string();
        extra.push(suffix);
        bytes.extend(std::fs::read(extra).unwrap_or_default());
    }
    let raw = String::from_utf8_lossy(&bytes);
    assert!(
        !raw.contains(secret) && !raw.contains(token),
        "a secret is in the SQLite file"
    );
}

#[test]
fn tampering_with_a_recorded_event_fails_verification_at_that_event() {
    let lab = TestLab::start(3);
    let runbook = write_runbook(
        lab.workspace(),
        "t",
        "runbook: t\nkind: maintenance\ntargets: lab\nsteps:\n  - command: echo original\n",
    );
    assert_eq!(
        opsgate(&lab, &["run", runbook.to_str().expect("utf-8")])
            .status
            .code(),
        Some(0)
    );
    assert_eq!(opsgate(&lab, &["audit", "verify"]).status.code(), Some(0));
    let triggers = stdout(&sqlite(
        &lab,
        "SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'entry'",
    ));
    assert!(!triggers.trim().is_empty(), "append-only triggers exist");
    let refused = sqlite(&lab, "UPDATE entry SET kind = kind WHERE seq = 3");
    assert!(!refused.status.success(), "the trigger refuses UPDATE");
    for trigger in triggers.lines() {
        assert!(
            sqlite(&lab, &format!("DROP TRIGGER \"{trigger}\""))
                .status
                .success()
        );
    }
    assert!(
        sqlite(&lab, "UPDATE entry SET at = at + 1 WHERE seq = 3")
            .status
            .success()
    );
    let verify = opsgate(&lab, &["audit", "verify"]);
    assert_eq!(verify.status.code(), Some(4), "{}", text(&verify));
    assert!(
        text(&verify).contains('3'),
        "names the altered event: {}",
        text(&verify)
    );
}

#[test]
fn a_killed_run_is_marked_interrupted_by_the_next_command() {
    let lab = TestLab::start(3);
    let runbook = write_runbook(
        lab.workspace(),
        "slow",
        "runbook: slow\nkind: maintenance\ntargets: lab\nsteps:\n  - command: sleep 30\n    timeout: 40s\n",
    );
    let mut run = BackgroundRun::start(&lab, &runbook);
    // Wait until every host's step is announced (durable) in the store.
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(20) {
        let count = stdout(&sqlite(
            &lab,
            "SELECT count(*) FROM entry WHERE kind = 'step_started'",
        ));
        if count.trim() == "3" {
            break;
        }
        pause(Duration::from_millis(100));
    }
    run.child.kill().expect("SIGKILL");
    run.child.wait().expect("reap");
    // The masters outlive a SIGKILLed opsgate (nothing is left to close them): stop exactly
    // those, so they do not hold lab sessions open after the test.
    run.stop_ssh_processes();
    let history = opsgate(&lab, &["history"]);
    assert!(
        stdout(&history).contains("interrupted"),
        "{}",
        text(&history)
    );
    let show = opsgate(&lab, &["history", "show", "1"]);
    assert!(text(&show).contains("interrupted"), "{}", text(&show));
    assert_eq!(opsgate(&lab, &["audit", "verify"]).status.code(), Some(0));
    // Leave no remote `sleep 30` behind for the next test's pgrep checks.
    for host in lab.hosts() {
        let _ = lab.ssh(&host.name, "pkill -f 'sleep 30' || true");
    }
}

#[test]
fn two_runs_and_a_query_at_once_all_succeed_and_lose_nothing() {
    let lab = TestLab::start(3);
    let runbook = write_runbook(
        lab.workspace(),
        "busy",
        "runbook: busy\nkind: maintenance\ntargets: lab\nsteps:\n  - command: 'true'\n  - command: 'true'\n  - command: 'true'\n",
    );
    let spawn = |args: &[&str]| {
        let mut all = vec!["-i", lab.inventory().to_str().expect("utf-8")];
        all.extend_from_slice(args);
        Command::new(env!("CARGO_BIN_EXE_opsgate"))
            .current_dir(lab.workspace())
            .env("OPSGATE_STATE_DIR", lab.state_dir())
            .env("NO_COLOR", "1")
            .args(all)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn")
    };
    let runbook = runbook.to_str().expect("utf-8");
    // Create the store first so that the three processes race on appends, not on creation.
    assert_eq!(opsgate(&lab, &["history"]).status.code(), Some(0));
    let first = spawn(&["run", runbook]);
    let second = spawn(&["run", runbook]);
    let query = spawn(&["history"]);
    for child in [first, second, query] {
        let output = child.wait_with_output().expect("wait");
        assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    }
    let finished = stdout(&sqlite(
        &lab,
        "SELECT count(*) FROM entry WHERE kind = 'step_finished'",
    ));
    assert_eq!(finished.trim(), "18", "2 runs × 3 hosts × 3 steps");
    assert_eq!(opsgate(&lab, &["audit", "verify"]).status.code(), Some(0));
}

#[test]
fn an_unrecordable_run_touches_no_host() {
    let lab = TestLab::start(3);
    let runbook = write_runbook(
        lab.workspace(),
        "touch",
        "runbook: touch\nkind: maintenance\ntargets: lab\nsteps:\n  - command: touch {{vars.lab_root}}/touched\n",
    );
    std::fs::create_dir_all(lab.state_dir()).expect("state dir");
    std::fs::write(
        database(&lab),
        b"this is not a SQLite database, and must stay as it is",
    )
    .expect("corrupt store");
    let run = opsgate(&lab, &["run", runbook.to_str().expect("utf-8")]);
    assert_ne!(run.status.code(), Some(0), "{}", text(&run));
    assert!(text(&run).contains("audit"), "{}", text(&run));
    for host in lab.hosts() {
        assert!(
            !host.lab_root.join("touched").exists(),
            "{} was touched",
            host.name
        );
    }
    assert_eq!(
        std::fs::read(database(&lab)).expect("store"),
        b"this is not a SQLite database, and must stay as it is",
        "a foreign file is never overwritten"
    );
}
