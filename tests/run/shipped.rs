//! The shipped runbooks against isolated lab hosts: `--check` changes nothing on any host (the
//! host's overlay upper directory and its `lab_root` are byte-for-byte the same before and
//! after), and a second run reports no change.
//!
//! `patch-debian` needs a package repository and `backup-postgres` / `restore-postgres` a
//! database server: their own files (`patch.rs`, `postgres.rs`) make the same two checks.

use std::collections::BTreeMap;
use std::fs;

use super::{count_status, shipped};
use crate::common::{Outcome, TestLab, file_names};

/// Each host's digest, by host name.
fn digests(lab: &TestLab) -> BTreeMap<String, String> {
    lab.hosts()
        .iter()
        .map(|host| (host.name.clone(), lab.host_digest(&host.name)))
        .collect()
}

/// Runs a shipped runbook; it must exit 0.
#[track_caller]
fn run(lab: &TestLab, runbook: &str, extra: &[&str]) -> Outcome {
    let path = shipped(runbook);
    let mut args = vec!["run", path.as_str()];
    args.extend_from_slice(extra);
    lab.cli(&args).run()
}

#[test]
fn every_shipped_runbook_changes_nothing_under_check_and_nothing_on_a_second_run() {
    let Some(lab) = TestLab::start_isolated(2, "the shipped-runbook idempotence test") else {
        return;
    };
    for host in lab.hosts() {
        // What an app host has before opsgate manages it: some data to back up.
        let data = host.lab_root.join("srv/app/data");
        fs::create_dir_all(&data).expect("app data directory");
        fs::write(data.join("orders.csv"), "id,total\n1,10\n").expect("app data");
    }
    let port = lab.free_port().to_string();
    let port = format!("port={port}");
    // In the order an operator meets them: the read-only check, provisioning, then a backup
    // and a restore of that backup.
    let runbooks: [(&str, Vec<&str>); 5] = [
        ("health-check", vec![]),
        ("provision-app", vec![]),
        ("provision-web", vec!["-p", &port]),
        ("backup-files", vec![]),
        ("restore-files", vec![]),
    ];
    let mut nginx_started = false;
    for (runbook, params) in &runbooks {
        let before = digests(&lab);
        let mut check = params.clone();
        check.push("--check");
        let checked = run(&lab, runbook, &check);
        assert_eq!(
            digests(&lab),
            before,
            "`{runbook} --check` changed a host:\n{}",
            checked.text()
        );

        run(&lab, runbook, params);
        if matches!(*runbook, "provision-app" | "provision-web" | "backup-files") {
            // The digest sees real changes, so equal digests above mean something.
            assert_ne!(
                digests(&lab),
                before,
                "{runbook} changed nothing the digest sees"
            );
        }
        nginx_started |= *runbook == "provision-web";
        let second = run(&lab, runbook, params);
        assert_eq!(
            (
                count_status(&second, "changed"),
                count_status(&second, "failed")
            ),
            (0, 0),
            "the second run of {runbook} changed something:\n{}",
            second.text()
        );
    }
    assert!(nginx_started);
    for host in lab.hosts() {
        // Three backup-files runs over unchanged data (the --check one wrote nothing): one
        // archive and its manifest.
        let store = host.lab_root.join("var/backups/app");
        let files = file_names(&store);
        assert_eq!(files.len(), 2, "{files:?}");
        assert!(files[1].ends_with(".sha256"), "{files:?}");
    }
}
