//! Run control: Ctrl-C, `--json`, and cleanup of SSH masters.

use std::process::Command;
use std::time::{Duration, Instant};

use super::write_runbook;
use crate::common::background::ssh_processes_under;
use crate::common::{BackgroundRun, TestLab, arg};

#[test]
fn ctrl_c_lets_running_steps_finish_then_exits_130_without_leftover_masters() {
    let lab = TestLab::start(3);
    let work = tempfile::tempdir().expect("temp dir");
    let runbook = write_runbook(
        work.path(),
        "slow",
        "runbook: slow\nkind: maintenance\ntargets: lab\nsteps:\n  - command: sleep 2; touch {{vars.lab_root}}/first\n  - command: touch {{vars.lab_root}}/second\n",
    );
    let run = BackgroundRun::start(lab.cli(&["run", arg(&runbook)]).status(130));
    // Wait until every host has its master (the first step is then starting), then interrupt.
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(10) && run.ssh_processes().len() < 3 {
        crate::common::pause(Duration::from_millis(50));
    }
    crate::common::pause(Duration::from_millis(700));
    // kill(1) delivers SIGINT exactly as a terminal's Ctrl-C would.
    assert!(
        Command::new("kill")
            .args(["-INT", &run.process.child.id().to_string()])
            .status()
            .expect("kill")
            .success()
    );
    let tmp = run.tmp;
    run.process.finish();
    for host in lab.hosts() {
        assert!(
            host.lab_root.join("first").exists(),
            "the running step was not allowed to finish on {}",
            host.name
        );
        assert!(
            !host.lab_root.join("second").exists(),
            "a new step started after Ctrl-C on {}",
            host.name
        );
    }
    crate::common::pause(Duration::from_millis(300));
    let leftovers = ssh_processes_under(tmp.path());
    assert!(leftovers.is_empty(), "leftover ssh masters: {leftovers:?}");
}

#[test]
fn json_output_is_one_event_per_line() {
    let lab = TestLab::start(3);
    let work = tempfile::tempdir().expect("temp dir");
    let runbook = write_runbook(
        work.path(),
        "json",
        "runbook: json\nkind: maintenance\ntargets: lab\nsteps:\n  - command: echo hi\n    register: hi\n  - command: echo {{hi.stdout}} again\n",
    );
    let output = lab.cli(&["--json", "run", arg(&runbook)]).run();
    let events: Vec<serde_json::Value> = output
        .stdout
        .lines()
        .map(|line| {
            serde_json::from_str(line).unwrap_or_else(|error| panic!("not JSON ({error}): {line}"))
        })
        .collect();
    let finished: Vec<&serde_json::Value> = events
        .iter()
        .filter(|event| event["event"] == "step_finished")
        .collect();
    assert_eq!(finished.len(), 6);
    assert!(
        finished
            .iter()
            .any(|event| event["report"]["stdout"] == "hi again\n"),
        "{events:?}"
    );
    assert_eq!(events.last().expect("events")["event"], "run_finished");
}
