//! The command line itself: generated documents (completions, man page), directory validation,
//! live run output, exit codes and wording.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::common::{Opsgate, Outcome, TestLab};

fn stdout(output: &Outcome) -> String {
    output.stdout.clone()
}

fn stderr(output: &Outcome) -> String {
    output.stderr.clone()
}

#[test]
fn bash_completions_name_the_subcommands() {
    let output = Opsgate::new().args(["completions", "bash"]).status(0).run();
    let script = stdout(&output);
    assert!(script.contains("complete -F"), "{script}");
    for subcommand in ["validate", "plan", "run", "history", "inventory", "man"] {
        assert!(
            script.contains(subcommand),
            "{subcommand} missing:\n{script}"
        );
    }
    for shell in ["zsh", "fish"] {
        let output = Opsgate::new().args(["completions", shell]).status(0).run();
        assert!(stdout(&output).contains("validate"), "{shell}");
    }
    Opsgate::new().args(["completions", "tcsh"]).status(2).run();
}

#[test]
fn man_prints_a_roff_page_that_man_accepts() {
    let output = Opsgate::new().arg("man").status(0).run();
    let page = stdout(&output);
    assert!(page.contains(".TH opsgate 1"), "{page}");
    assert!(page.contains("completions"), "{page}");
    let Ok(mut man) = Command::new("man")
        .args(["-l", "-"])
        .env("MANPAGER", "cat")
        .env("PAGER", "cat")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    else {
        // No `man` on this machine: the `.TH` header above is the check.
        return;
    };
    man.stdin
        .take()
        .expect("stdin was piped")
        .write_all(page.as_bytes())
        .expect("feeding man");
    let formatted = man.wait_with_output().expect("man ran");
    assert!(
        formatted.status.success(),
        "man -l - refused the page: {}",
        String::from_utf8_lossy(&formatted.stderr)
    );
    assert!(
        String::from_utf8_lossy(&formatted.stdout).contains("opsgate"),
        "{}",
        String::from_utf8_lossy(&formatted.stdout)
    );
}

/// A scratch project directory with `files` (relative path, content) written into it.
fn project(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    for (path, text) in files {
        let path = dir.path().join(path);
        std::fs::create_dir_all(path.parent().expect("a parent")).expect("mkdir");
        std::fs::write(path, text).expect("write");
    }
    dir
}

#[test]
fn validate_dir_checks_every_runbook_under_it_and_reports_every_error() {
    let good =
        "runbook: good\nkind: check\ntargets: all\nsteps:\n  - name: look\n    command: uptime\n";
    let dir = project(&[
        ("ops/good.yaml", good),
        (
            "ops/nested/deeper/bad-one.yml",
            "runbook: bad-one\ntargets: all\nsteps:\n  - name: nothing to do\n",
        ),
        (
            "ops/nested/bad-two.yaml",
            "runbook: bad-two\ntargets: all\nsteps:\n  - name: t\n    command: sleep 1\n    timeout: 5 minutes\n",
        ),
        // Not runbooks: left alone under a directory.
        ("ops/hosts.yaml", "hosts:\n  web1: { address: 10.0.0.1 }\n"),
        ("ops/README.md", "not yaml"),
    ]);
    let output = Opsgate::new()
        .current_dir(dir.path())
        .args(["validate", "ops"])
        .status(2)
        .run();
    let errors = stderr(&output);
    assert!(
        errors.contains("ops/nested/deeper/bad-one.yml:"),
        "{errors}"
    );
    assert!(errors.contains("ops/nested/bad-two.yaml:"), "{errors}");
    assert!(!errors.contains("hosts.yaml"), "{errors}");

    std::fs::remove_dir_all(dir.path().join("ops/nested")).expect("rm");
    let output = Opsgate::new()
        .current_dir(dir.path())
        .args(["validate", "ops"])
        .status(0)
        .run();
    assert_eq!(
        stdout(&output).lines().collect::<Vec<_>>(),
        ["ok  ops/good.yaml  runbook `good` (check, 1 step, 0 params)"]
    );

    Opsgate::new()
        .current_dir(dir.path())
        .args(["validate", "ops/nowhere-empty"])
        .status(2)
        .run();
    std::fs::create_dir_all(dir.path().join("empty")).expect("mkdir");
    let output = Opsgate::new()
        .current_dir(dir.path())
        .args(["validate", "empty"])
        .status(2)
        .run();
    assert!(
        stderr(&output).contains("no runbooks under `empty`"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn plan_json_holds_every_rendered_command_per_host() {
    let output = Opsgate::new()
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args([
            "--json",
            "-i",
            "tests/fixtures/inventories/web.yaml",
            "plan",
            "tests/fixtures/runbooks/deploy.yaml",
            "-p",
            "greeting=hello world",
            "-p",
            "token=s3cr3t-value",
        ])
        .status(0)
        .run();
    let plan: serde_json::Value = serde_json::from_str(&output.stdout).expect("one JSON object");
    let hosts = plan["hosts"].as_array().expect("hosts");
    assert_eq!(hosts.len(), 2, "{plan}");
    for host in hosts {
        let name = host["host"].as_str().expect("a host name");
        let steps = host["steps"].as_array().expect("steps");
        assert_eq!(steps.len(), 3, "{host}");
        assert_eq!(steps[0]["name"], "say hello");
        assert_eq!(steps[0]["action"], "command");
        assert_eq!(
            steps[0]["command"],
            format!("echo 'hello world' from {name} on port 8080").as_str(),
            "{host}"
        );
        assert_eq!(steps[0]["rendered_at"], "plan");
        // Not a command: the line the text plan shows.
        assert_eq!(steps[1]["action"], "copy");
        assert!(
            steps[1]["summary"]
                .as_str()
                .is_some_and(|summary| summary.contains("/srv/app/web.conf")),
            "{host}"
        );
        // Facts exist only on the host: the template, to be rendered there.
        assert_eq!(steps[2]["command"], "echo {{facts.os_family}}");
        assert_eq!(steps[2]["rendered_at"], "run");
    }
    assert!(!stdout(&output).contains("s3cr3t-value"));
}

#[test]
fn inventory_list_exits_2_on_a_bad_pattern() {
    for pattern in ["web[", "&", "nosuch"] {
        let output = Opsgate::new()
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .args([
                "-i",
                "tests/fixtures/inventories/web.yaml",
                "inventory",
                "list",
                pattern,
            ])
            .status(2)
            .run();
        assert!(
            stderr(&output).contains("error: host pattern"),
            "{}",
            stderr(&output)
        );
    }
    let output = Opsgate::new()
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args([
            "-i",
            "tests/fixtures/inventories/web.yaml",
            "inventory",
            "list",
            "web",
        ])
        .status(0)
        .run();
    assert_eq!(stdout(&output).lines().count(), 3, "a header and two hosts");
}

/// The lab's inventory with a host `ghost` first, on a loopback port where nothing listens.
fn inventory_with_a_ghost(lab: &TestLab, dir: &Path) -> PathBuf {
    let inventory = std::fs::read_to_string(lab.inventory()).expect("inventory");
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("free port");
    let port = listener.local_addr().expect("addr").port();
    drop(listener);
    let inventory = inventory.replace(
        "hosts:\n",
        &format!(
            "hosts:\n  ghost: {{ address: 127.0.0.1, port: {port}, vars: {{ lab_root: /nonexistent }} }}\n"
        ),
    );
    let path = dir.join("inventory.yaml");
    std::fs::write(&path, inventory).expect("inventory");
    path
}

#[test]
fn a_verbose_rolling_run_shows_batches_outputs_skip_reasons_rendered_names_and_unreachable_hosts() {
    let lab = TestLab::start(3);
    let work = tempfile::tempdir().expect("temp dir");
    let inventory = inventory_with_a_ghost(&lab, work.path());
    let runbook = work.path().join("greet.yaml");
    std::fs::write(
        &runbook,
        "runbook: greet\nkind: maintenance\ntargets: all\nrolling: { batch: 2, max_failures: 1 }\n\
         steps:\n  - name: greet {{host.name}}\n    command: echo hello from {{host.name}}\n\
         \x20 - name: never\n    command: 'false'\n    when: \"{{eq host.name 'nobody'}}\"\n",
    )
    .expect("runbook");
    let output = Opsgate::new()
        .current_dir(lab.dir())
        .args([
            "-i",
            inventory.to_str().expect("utf-8"),
            "run",
            "-v",
            runbook.to_str().expect("utf-8"),
        ])
        .status(1)
        .run();
    let out = stdout(&output);
    assert!(out.starts_with("run 4 hosts, 2 steps each\n"), "{out}");
    // Hosts in inventory order: the ghost first.
    let first = out.find("batch 1/2: ghost, lab1\n").expect(&out);
    let second = out.find("batch 2/2: lab2, lab3\n").expect(&out);
    assert!(first < second, "{out}");
    for host in ["lab1", "lab2", "lab3"] {
        assert!(
            out.contains(&format!("  1. greet {host}  ")),
            "the step name is rendered per host: {out}"
        );
        assert!(
            out.contains(&format!("            | hello from {host}\n")),
            "--verbose shows the output: {out}"
        );
    }
    assert!(!out.contains("{{host.name}}"), "{out}");
    assert!(out.contains("\n            `when` is false\n"), "{out}");
    let ghost = out
        .lines()
        .rev()
        .find(|line| line.starts_with("ghost "))
        .expect("a recap row for the ghost");
    assert_eq!(
        ghost.split_whitespace().collect::<Vec<_>>(),
        ["ghost", "0", "0", "0", "0", "1", "unreachable"],
        "{out}"
    );
}

#[test]
fn an_inventory_connect_timeout_bounds_a_host_that_never_greets() {
    // Accepts connections (the kernel completes the handshake into the backlog) but never
    // sends an SSH banner.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").expect("a loopback port");
    let port = silent.local_addr().expect("addr").port();
    let dir = project(&[
        (
            "inventory/hosts.yaml",
            &format!(
                "hosts:\n  silent: {{ address: 127.0.0.1, port: {port}, ssh_options: [ConnectTimeout=2] }}\n"
            ),
        ),
        (
            "look.yaml",
            "runbook: look\nkind: check\ntargets: all\nsteps:\n  - name: look\n    command: uptime\n",
        ),
    ]);
    let started = std::time::Instant::now();
    let output = Opsgate::new()
        .current_dir(dir.path())
        .args(["run", "look.yaml"])
        .status(1)
        .run();
    let elapsed = started.elapsed();
    let out = stdout(&output);
    assert!(out.contains("unreachable silent"), "{out}");
    // The default is 15 s (plus a handshake allowance); the inventory asked for 2.
    assert!(
        elapsed < std::time::Duration::from_secs(12),
        "took {elapsed:?}: {out}"
    );
    drop(silent);

    // A real sshd with the option set: ssh takes the generated config as it is.
    let lab = TestLab::start(1);
    let inventory = std::fs::read_to_string(lab.inventory()).expect("inventory");
    assert!(
        inventory.contains("ssh_options: [IdentitiesOnly=yes]"),
        "{inventory}"
    );
    let inventory = inventory.replace(
        "ssh_options: [IdentitiesOnly=yes]",
        "ssh_options: [IdentitiesOnly=yes, ConnectTimeout=5]",
    );
    let inventory_path = lab.workspace().join("inventory.yaml");
    std::fs::write(&inventory_path, inventory).expect("inventory");
    lab.opsgate()
        .args([
            "-i",
            inventory_path.to_str().expect("utf-8"),
            "run",
            dir.path().join("look.yaml").to_str().expect("utf-8"),
        ])
        .status(0)
        .run();
}

#[test]
fn run_ids_count_runs_not_events() {
    let lab = TestLab::start(2);
    let runbook = lab.workspace().join("look.yaml");
    std::fs::write(
        &runbook,
        "runbook: look\nkind: check\ntargets: all\nsteps:\n  - command: 'true'\n  - command: 'true'\n",
    )
    .expect("runbook");
    let inventory = lab.inventory().to_str().expect("utf-8").to_owned();
    let runbook = runbook.to_str().expect("utf-8").to_owned();
    for _ in 0..3 {
        lab.opsgate()
            .args(["-i", &inventory, "run", &runbook])
            .status(0)
            .run();
    }
    let output = lab.opsgate().args(["--json", "history"]).status(0).run();
    let runs: serde_json::Value = serde_json::from_str(&output.stdout).expect("JSON");
    let ids: Vec<i64> = runs
        .as_array()
        .expect("a list of runs")
        .iter()
        .map(|run| run["id"].as_i64().expect("a numeric id"))
        .collect();
    assert_eq!(ids, [3, 2, 1], "{runs}");
    lab.opsgate().args(["audit", "verify"]).run();
}
