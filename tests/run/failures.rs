//! Failing hosts: rolling batches, `on_failure`, retries, timeouts, unreachable hosts and keys.

use std::time::Duration;

use super::write_runbook;
use crate::common::TestLab;

#[test]
fn a_failed_host_runs_on_failure_and_stops_later_batches() {
    let lab = TestLab::start(3);
    let work = tempfile::tempdir().expect("temp dir");
    let runbook = write_runbook(
        work.path(),
        "rolling",
        r"
runbook: rolling
kind: maintenance
targets: lab
rolling: { batch: 1, max_failures: 0 }
steps:
  - name: fail on lab1
    command: test {{host.name}} != lab1
  - name: after
    command: touch {{vars.lab_root}}/after
    register: after
on_failure:
  - name: record the failure
    command: echo {{after.status}} > {{vars.lab_root}}/on-failure
",
    );
    let output = lab
        .cli(&["run", runbook.to_str().expect("utf-8")])
        .status(1)
        .run();
    let hosts = lab.hosts();
    let marker = std::fs::read_to_string(hosts[0].lab_root.join("on-failure"))
        .expect("on_failure ran on lab1");
    assert_eq!(
        marker.trim(),
        "skipped",
        "steps after the failure register as skipped"
    );
    assert!(!hosts[0].lab_root.join("after").exists());
    for host in &hosts[1..] {
        assert!(
            !host.lab_root.join("after").exists(),
            "{} ran although its batch was skipped",
            host.name
        );
    }
    assert!(
        output.text().contains("exceed max_failures"),
        "{}",
        output.text()
    );
}

#[test]
fn without_rolling_the_other_hosts_carry_on() {
    let lab = TestLab::start(3);
    let work = tempfile::tempdir().expect("temp dir");
    let runbook = write_runbook(
        work.path(),
        "independent",
        "runbook: independent\nkind: maintenance\ntargets: lab\nsteps:\n  - command: test {{host.name}} != lab2\n  - command: touch {{vars.lab_root}}/done\n",
    );
    lab.cli(&["run", runbook.to_str().expect("utf-8")])
        .status(1)
        .run();
    let hosts = lab.hosts();
    assert!(hosts[0].lab_root.join("done").exists() && hosts[2].lab_root.join("done").exists());
    assert!(!hosts[1].lab_root.join("done").exists());
}

#[test]
fn retries_until_the_step_succeeds() {
    let lab = TestLab::start(3);
    let work = tempfile::tempdir().expect("temp dir");
    let runbook = write_runbook(
        work.path(),
        "retries",
        r"
runbook: retries
kind: maintenance
targets: lab
steps:
  - name: flaky
    command: echo x >> {{vars.lab_root}}/attempts; test $(wc -l < {{vars.lab_root}}/attempts) -ge 3
    retries: 3
    retry_delay: 100ms
",
    );
    lab.cli(&["run", runbook.to_str().expect("utf-8")])
        .output_contains("3 attempts")
        .run();
    for host in lab.hosts() {
        let attempts = std::fs::read_to_string(host.lab_root.join("attempts")).expect("attempts");
        assert_eq!(attempts.lines().count(), 3);
    }
}

#[test]
fn a_timeout_fails_the_step_and_kills_the_remote_process() {
    let lab = TestLab::start(3);
    let work = tempfile::tempdir().expect("temp dir");
    let marker = format!("opsgate-timeout-marker-{}", std::process::id());
    let runbook = write_runbook(
        work.path(),
        "timeout",
        &format!(
            "runbook: timeout\nkind: maintenance\ntargets: lab\nsteps:\n  - command: sh -c 'sleep 60; echo {marker}' & sleep 61 # {marker}\n    timeout: 1s\n"
        ),
    );
    lab.cli(&["run", runbook.to_str().expect("utf-8")])
        .status(1)
        .output_contains("timed out")
        .run();
    // The lab's sshd runs on this machine, so its children are visible here.
    crate::common::pause(Duration::from_millis(500));
    let leftovers = std::process::Command::new("pgrep")
        .args(["-f", &marker])
        .output()
        .expect("pgrep");
    assert!(
        leftovers.stdout.is_empty(),
        "remote processes outlived the timeout: {}",
        String::from_utf8_lossy(&leftovers.stdout)
    );
}

#[test]
fn an_unreachable_host_is_reported_and_the_others_carry_on() {
    let lab = TestLab::start(3);
    let work = tempfile::tempdir().expect("temp dir");
    // A fourth host on a loopback port where nothing listens.
    let inventory = std::fs::read_to_string(lab.inventory()).expect("inventory");
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("free port");
    let port = listener.local_addr().expect("addr").port();
    drop(listener);
    let inventory = inventory.replace("hosts:\n", &format!("hosts:\n  ghost: {{ address: 127.0.0.1, port: {port}, vars: {{ lab_root: /nonexistent }} }}\n"));
    let inventory_path = work.path().join("inventory.yaml");
    std::fs::write(&inventory_path, inventory).expect("inventory");
    let runbook = write_runbook(
        work.path(),
        "touch",
        "runbook: touch\nkind: maintenance\ntargets: all\nsteps:\n  - command: touch {{vars.lab_root}}/touched\n    when: \"{{ne host.name 'ghost'}}\"\n  - command: 'true'\n",
    );
    crate::common::Opsgate::new()
        .current_dir(lab.dir())
        .args([
            "-i",
            inventory_path.to_str().expect("utf-8"),
            "run",
            runbook.to_str().expect("utf-8"),
        ])
        .status(1)
        .output_contains("unreachable ghost")
        .run();
    for host in lab.hosts() {
        assert!(
            host.lab_root.join("touched").exists(),
            "{} did not run",
            host.name
        );
    }
}

#[test]
fn a_changed_host_key_stops_that_host_with_the_fix() {
    let lab = TestLab::start(3);
    let work = tempfile::tempdir().expect("temp dir");
    // Replace lab2's key in the lab's known_hosts with a freshly generated one.
    let other = work.path().join("other_key");
    let status = std::process::Command::new("ssh-keygen")
        .args([
            "-q",
            "-t",
            "ed25519",
            "-N",
            "",
            "-f",
            other.to_str().expect("utf-8"),
        ])
        .status()
        .expect("ssh-keygen");
    assert!(status.success());
    let other_key = std::fs::read_to_string(other.with_extension("pub")).expect("pub key");
    let other_key: Vec<&str> = other_key.split_whitespace().take(2).collect();
    let known_hosts = lab.dir().join("known_hosts");
    let lab2 = &lab.hosts()[1];
    let pattern = format!("[{}]:{}", lab2.address, lab2.port);
    let rewritten: String = std::fs::read_to_string(&known_hosts)
        .expect("known_hosts")
        .lines()
        .map(|line| {
            if line.starts_with(&pattern) {
                format!("{pattern} {}\n", other_key.join(" "))
            } else {
                format!("{line}\n")
            }
        })
        .collect();
    std::fs::write(&known_hosts, rewritten).expect("rewrite known_hosts");
    let runbook = write_runbook(
        work.path(),
        "touch",
        "runbook: touch\nkind: maintenance\ntargets: lab\nsteps:\n  - command: touch {{vars.lab_root}}/touched\n",
    );
    let output = lab
        .cli(&["run", runbook.to_str().expect("utf-8")])
        .status(1)
        .output_contains("unreachable lab2")
        .run();
    let all = output.text();
    assert!(all.to_lowercase().contains("host key"), "{all}");
    assert!(!lab2.lab_root.join("touched").exists());
    assert!(lab.hosts()[0].lab_root.join("touched").exists());
}

#[test]
fn failed_when_false_does_not_turn_a_timeout_into_success() {
    let lab = TestLab::start(3);
    let work = tempfile::tempdir().expect("temp dir");
    let runbook = write_runbook(
        work.path(),
        "lenient",
        "runbook: lenient\nkind: maintenance\ntargets: lab\nsteps:\n  - command: sleep 30\n    timeout: 1s\n    failed_when: false\n",
    );
    lab.cli(&["run", runbook.to_str().expect("utf-8")])
        .status(1)
        .output_contains("timed out")
        .run();
}

#[test]
fn a_wait_for_host_value_is_never_shell_text() {
    let lab = TestLab::start(3);
    let work = tempfile::tempdir().expect("temp dir");
    let runbook = write_runbook(
        work.path(),
        "probe",
        "runbook: probe\nkind: maintenance\ntargets: lab\nparams:\n  db: { type: string, required: true }\nsteps:\n  - wait_for: { port: 1, host: \"{{params.db}}\", timeout: 1s }\n",
    );
    let hostile = "127.0.0.1/1; touch /tmp/opsgate-pwned-by-wait-for; echo ";
    lab.cli(&[
        "run",
        runbook.to_str().expect("utf-8"),
        "-p",
        &format!("db={hostile}"),
    ])
    .status(1)
    .run();
    assert!(
        !std::path::Path::new("/tmp/opsgate-pwned-by-wait-for").exists(),
        "the host value ran as shell code"
    );
    // Isolated lab hosts (root) have a /tmp of their own: look there too.
    for host in lab.hosts() {
        let probe = lab.ssh(
            &host.name,
            "test -e /tmp/opsgate-pwned-by-wait-for; echo $?",
        );
        assert_eq!(
            String::from_utf8_lossy(&probe.stdout).trim(),
            "1",
            "the host value ran as shell code on {}",
            host.name
        );
    }
}

#[test]
fn a_condition_may_read_facts_that_no_other_field_reads() {
    let lab = TestLab::start(3);
    let work = tempfile::tempdir().expect("temp dir");
    let runbook = write_runbook(
        work.path(),
        "facts",
        "runbook: facts\nkind: maintenance\ntargets: lab\nsteps:\n  - command: 'false'\n    failed_when: \"{{eq facts.pkg_manager 'no-such-manager'}}\"\n",
    );
    lab.cli(&["run", runbook.to_str().expect("utf-8")]).run();
}
