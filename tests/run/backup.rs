//! `backup` and `restore` end to end over real SSH: the shipped runbooks round-trip a tree with
//! owners, modes, a link and a 50 MB file; a corrupt backup is refused before anything changes;
//! retention, `--check`, same-second names, `latest` and `dump`/`load`.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use super::{shipped, write_runbook};
use crate::common::{TestLab, file_names};

fn app_root(host: &opsgate::lab::LabHost) -> PathBuf {
    host.lab_root.join("srv/app")
}

fn backup_root(host: &opsgate::lab::LabHost) -> PathBuf {
    host.lab_root.join("var/backups/app")
}

/// Backup files (not manifests) in the store.
fn archives(store: &Path) -> Vec<String> {
    file_names(store)
        .into_iter()
        .filter(|name| !name.ends_with(".sha256"))
        .collect()
}

fn sh(script: &str) {
    let status = Command::new("sh")
        .args(["-c", script])
        .status()
        .expect("running sh");
    assert!(status.success(), "{script}");
}

fn mode(path: &Path) -> u32 {
    fs::symlink_metadata(path)
        .expect("stat")
        .permissions()
        .mode()
        & 0o7777
}

fn sha256(path: &Path) -> String {
    let output = Command::new("sha256sum")
        .arg(path)
        .output()
        .expect("sha256sum");
    String::from_utf8_lossy(&output.stdout)
        .split_whitespace()
        .next()
        .expect("a checksum")
        .to_owned()
}

/// A `date` that always prints `stamp`, so backups land in a chosen second.
fn fake_date(lab_root: &Path, name: &str, stamp: &str) -> PathBuf {
    let directory = lab_root.join(name);
    fs::create_dir_all(&directory).expect("fake bin dir");
    let date = directory.join("date");
    fs::write(&date, format!("#!/bin/sh\necho {stamp}\n")).expect("fake date");
    fs::set_permissions(&date, fs::Permissions::from_mode(0o755)).expect("chmod");
    directory
}

#[test]
fn backup_then_restore_round_trips_owners_modes_links_and_a_large_file() {
    let lab = TestLab::start(3);
    for host in lab.hosts() {
        let app = app_root(host);
        fs::create_dir_all(app.join("conf")).expect("app tree");
        fs::write(app.join("conf/app.conf"), "port = 8080\n").expect("config");
        fs::write(app.join("secret"), "s3cret\n").expect("secret");
        sh(&format!(
            "chown -R 1234:2345 '{app}/conf' && chmod 0640 '{app}/conf/app.conf' && \
             chmod 0600 '{app}/secret' && chmod 2750 '{app}/conf' && ln -s conf/app.conf '{app}/current'",
            app = app.display()
        ));
    }
    let big = app_root(&lab.hosts()[0]).join("big.bin");
    sh(&format!(
        "head -c 52428800 /dev/urandom > '{}'",
        big.display()
    ));
    let big_sha = sha256(&big);

    lab.cli(&["run", &shipped("backup-files"), "-p", "keep=3"])
        .run();
    for host in lab.hosts() {
        let store = backup_root(host);
        let names = archives(&store);
        assert_eq!(names.len(), 1, "{names:?}");
        let name = &names[0];
        assert!(
            name.starts_with(&format!("backup-files-{}-", host.name)) && name.ends_with(".tar.zst"),
            "{name}"
        );
        assert_eq!(mode(&store.join(name)), 0o600, "backups are private");
        // The manifest is in sha256sum format.
        let check = Command::new("sha256sum")
            .args(["-c", &format!("{name}.sha256")])
            .current_dir(&store)
            .output()
            .expect("sha256sum -c");
        assert!(check.status.success(), "{check:?}");
    }

    // Break the trees: change, delete, and add a file.
    for host in lab.hosts() {
        let app = app_root(host);
        fs::write(app.join("conf/app.conf"), "port = 1\n").expect("change");
        sh(&format!(
            "chmod 0666 '{app}/secret' && chown 0:0 '{app}/conf' && rm '{app}/current'",
            app = app.display()
        ));
    }
    fs::remove_file(&big).expect("remove big");

    lab.cli(&["run", &shipped("restore-files")]).run();
    for host in lab.hosts() {
        let app = app_root(host);
        assert_eq!(
            fs::read_to_string(app.join("conf/app.conf")).expect("config"),
            "port = 8080\n"
        );
        let conf = fs::symlink_metadata(app.join("conf")).expect("stat conf");
        assert_eq!((conf.uid(), conf.gid()), (1234, 2345), "numeric owners");
        assert_eq!(mode(&app.join("conf")), 0o2750);
        assert_eq!(mode(&app.join("conf/app.conf")), 0o640);
        assert_eq!(mode(&app.join("secret")), 0o600);
        assert_eq!(
            fs::read_link(app.join("current")).expect("link restored"),
            PathBuf::from("conf/app.conf")
        );
    }
    assert_eq!(sha256(&big), big_sha, "the 50 MB file comes back intact");
}

const REGISTERED: &str = r#"
runbook: snap
kind: backup
targets: lab
steps:
  - name: snapshot
    backup: { paths: ["{{vars.app_root}}"], store: "{{vars.backup_root}}" }
    register: snap
  - name: keep what it registered
    copy:
      content: "{{snap.id}}|{{snap.path}}|{{snap.size}}|{{snap.sha256}}|{{snap.status}}"
      dest: "{{vars.lab_root}}/registered"
"#;

#[test]
fn a_corrupt_backup_is_refused_before_anything_changes() {
    let lab = TestLab::start(3);
    let work = lab.workspace().to_path_buf();
    let runbook = write_runbook(&work, "snap", REGISTERED);
    for host in lab.hosts() {
        fs::create_dir_all(app_root(host)).expect("app");
        fs::write(app_root(host).join("data"), "original\n").expect("data");
    }
    lab.cli(&["run", runbook.to_str().expect("utf-8")]).run();

    for host in lab.hosts() {
        let store = backup_root(host);
        let name = archives(&store).remove(0);
        let registered = fs::read_to_string(host.lab_root.join("registered")).expect("registered");
        let fields: Vec<&str> = registered.split('|').collect();
        let id = name.strip_suffix(".tar.zst").expect("zstd archive");
        assert_eq!(fields[0], id);
        assert_eq!(PathBuf::from(fields[1]), store.join(&name));
        assert_eq!(
            fields[2].parse::<u64>().expect("size"),
            fs::metadata(store.join(&name)).expect("stat").len()
        );
        assert_eq!(fields[3], sha256(&store.join(&name)));
        assert_eq!(fields[4], "changed");
        fs::write(app_root(host).join("data"), "changed since\n").expect("data");
    }

    // lab1: one byte flipped. lab2: manifest gone. lab3: intact.
    let lab1 = &lab.hosts()[0];
    let archive = backup_root(lab1).join(archives(&backup_root(lab1)).remove(0));
    let mut bytes = fs::read(&archive).expect("archive");
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    fs::write(&archive, bytes).expect("corrupt");
    let lab2 = &lab.hosts()[1];
    let manifest = backup_root(lab2).join(format!("{}.sha256", archives(&backup_root(lab2))[0]));
    fs::remove_file(manifest).expect("remove manifest");

    lab.cli(&["run", &shipped("restore-files"), "--check"])
        .status(1)
        .output_contains("verified; would have restored")
        .run();
    for host in lab.hosts() {
        assert_eq!(
            fs::read_to_string(app_root(host).join("data")).expect("data"),
            "changed since\n",
            "--check restored on {}",
            host.name
        );
    }

    let restore = lab.cli(&["run", &shipped("restore-files")]).status(1).run();
    let all = restore.text();
    assert!(
        all.contains("does not match the manifest") && all.contains("nothing was changed"),
        "{all}"
    );
    assert!(all.contains(".sha256` is missing"), "{all}");
    for (host, expected) in
        lab.hosts()
            .iter()
            .zip(["changed since\n", "changed since\n", "original\n"])
    {
        assert_eq!(
            fs::read_to_string(app_root(host).join("data")).expect("data"),
            expected,
            "{}",
            host.name
        );
    }
}

#[test]
fn retention_same_second_names_and_check_mode() {
    let lab = TestLab::start(3);
    let work = lab.workspace().to_path_buf();
    for host in lab.hosts() {
        fs::create_dir_all(app_root(host)).expect("app");
        fs::write(app_root(host).join("data"), "x\n").expect("data");
        fake_date(&host.lab_root, "frozen", "20260101T000000Z");
    }
    let runbook = write_runbook(
        &work,
        "frozen",
        r#"
runbook: frozen
kind: backup
targets: lab
params:
  keep: { type: int, default: 2 }
steps:
  - name: one
    backup: { paths: ["{{vars.app_root}}"], store: "{{vars.backup_root}}", keep: "{{params.keep}}" }
    env: { PATH: "{{vars.lab_root}}/frozen:/usr/bin:/bin" }
  - name: change the data
    command: echo two > {{vars.app_root}}/data
  - name: two in the same second
    backup: { paths: ["{{vars.app_root}}"], store: "{{vars.backup_root}}", keep: "{{params.keep}}" }
    env: { PATH: "{{vars.lab_root}}/frozen:/usr/bin:/bin" }
  - name: change it again
    command: echo three > {{vars.app_root}}/data
  - name: three in the same second
    backup: { paths: ["{{vars.app_root}}"], store: "{{vars.backup_root}}", keep: "{{params.keep}}" }
    env: { PATH: "{{vars.lab_root}}/frozen:/usr/bin:/bin" }
"#,
    );
    let runbook = runbook.to_str().expect("utf-8");

    let check = lab.cli(&["run", runbook, "--check"]).run();
    assert!(
        check.text().contains("would write")
            && check
                .text()
                .contains("frozen-lab1-20260101T000000Z.tar.zst"),
        "{}",
        check.text()
    );
    for host in lab.hosts() {
        assert!(
            !backup_root(host).exists(),
            "--check wrote into the store on {}",
            host.name
        );
    }

    lab.cli(&["run", runbook]).run();
    for host in lab.hosts() {
        let prefix = format!("frozen-{}-20260101T000000Z", host.name);
        assert_eq!(
            file_names(&backup_root(host)),
            [
                format!("{prefix}-1.tar.zst"),
                format!("{prefix}-1.tar.zst.sha256"),
                format!("{prefix}-2.tar.zst"),
                format!("{prefix}-2.tar.zst.sha256"),
            ],
            "keep 2: the two newest of three, `-N` for the same second"
        );
    }

    // Real time now: with keep 3, each run adds one and the store stays at three backups of
    // this runbook; a backup of another runbook is never counted or removed.
    let other = backup_root(&lab.hosts()[0]).join("other-lab1-20200101T000000Z.tar.gz");
    fs::write(&other, "not ours").expect("other runbook's backup");
    let plain = write_runbook(
        &work,
        "plain",
        r#"
runbook: frozen
kind: backup
targets: lab
steps:
  - command: date +%s%N > {{vars.app_root}}/data
  - backup: { paths: ["{{vars.app_root}}"], store: "{{vars.backup_root}}", keep: 3 }
"#,
    );
    for _ in 0..3 {
        lab.cli(&["run", plain.to_str().expect("utf-8")]).run();
    }
    for host in lab.hosts() {
        let ours: Vec<String> = archives(&backup_root(host))
            .into_iter()
            .filter(|name| name.starts_with("frozen-"))
            .collect();
        assert_eq!(ours.len(), 3, "{ours:?}");
        assert!(
            ours.iter().all(|name| !name.contains("20260101T000000Z")),
            "the frozen ones are the oldest and go first: {ours:?}"
        );
    }
    assert!(other.exists(), "another runbook's backup was pruned");
}

#[test]
fn restore_latest_takes_the_newest_backup_of_the_host_from_any_runbook() {
    let lab = TestLab::start(3);
    let work = lab.workspace().to_path_buf();
    for host in lab.hosts() {
        fs::create_dir_all(app_root(host)).expect("app");
        fake_date(&host.lab_root, "older", "20260101T000000Z");
        fake_date(&host.lab_root, "newer", "20260102T000000Z");
    }
    let snapshot = |runbook: &str, clock: &str| {
        format!(
            r#"
runbook: {runbook}
kind: backup
targets: lab
steps:
  - backup: {{ paths: ["{{{{vars.app_root}}}}"], store: "{{{{vars.backup_root}}}}" }}
    env: {{ PATH: "{{{{vars.lab_root}}}}/{clock}:/usr/bin:/bin" }}
"#
        )
    };
    // The newer backup comes from the runbook whose name sorts first: order is by time.
    let cases = [
        ("zz-old", "older", "version 1\n"),
        ("aa-new", "newer", "version 2\n"),
    ];
    for (runbook, clock, content) in cases {
        for host in lab.hosts() {
            fs::write(app_root(host).join("data"), content).expect("data");
        }
        let path = write_runbook(&work, runbook, &snapshot(runbook, clock));
        lab.cli(&["run", path.to_str().expect("utf-8")]).run();
    }
    for host in lab.hosts() {
        fs::write(app_root(host).join("data"), "broken\n").expect("data");
    }
    lab.cli(&["run", &shipped("restore-files")]).run();
    for host in lab.hosts() {
        assert_eq!(
            fs::read_to_string(app_root(host).join("data")).expect("data"),
            "version 2\n"
        );
    }
    // An id picks that backup, from any runbook.
    lab.cli(&[
        "run",
        &shipped("restore-files"),
        "-l",
        "lab2",
        "-p",
        "from=zz-old-lab2-20260101T000000Z",
    ])
    .run();
    assert_eq!(
        fs::read_to_string(app_root(&lab.hosts()[1]).join("data")).expect("data"),
        "version 1\n"
    );
    let elsewhere = write_runbook(
        &work,
        "elsewhere",
        r#"
runbook: elsewhere
kind: restore
targets: lab
steps:
  - restore: { from: latest, store: "{{vars.backup_root}}", paths: ["{{vars.lab_root}}/etc"] }
"#,
    );
    let not_held = lab
        .cli(&["run", elsewhere.to_str().expect("utf-8"), "-l", "lab3"])
        .status(1)
        .run();
    assert!(
        not_held.text().contains(&format!(
            "the backup does not hold `{}/etc`",
            lab.hosts()[2].lab_root.display()
        )),
        "{}",
        not_held.text()
    );
    lab.cli(&[
        "run",
        &shipped("restore-files"),
        "-l",
        "lab1",
        "-p",
        "from=nope-lab1-20260101T000000Z",
    ])
    .status(1)
    .output_contains("no backup `nope-lab1-20260101T000000Z`")
    .run();
}

const DUMP: &str = r#"
runbook: dump-db
kind: backup
targets: lab
steps:
  - name: dump
    backup: { dump: "cat {{vars.lab_root}}/db.txt", store: "{{vars.backup_root}}", keep: 5 }
    register: dumped
  - name: lose the data
    file: { path: "{{vars.lab_root}}/db.txt", state: absent }
  - name: load it back
    restore: { from: "{{dumped.id}}", store: "{{vars.backup_root}}", load: "cat > {{vars.lab_root}}/db.txt" }
  - name: a dump cannot be extracted as files
    restore: { from: "{{dumped.id}}", store: "{{vars.backup_root}}", target: "{{vars.lab_root}}/x" }
"#;

#[test]
fn dump_and_load_round_trip_a_commands_output() {
    let lab = TestLab::start(3);
    let work = lab.workspace().to_path_buf();
    for host in lab.hosts() {
        fs::write(
            host.lab_root.join("db.txt"),
            format!("rows of {}\n\0binary\n", host.name),
        )
        .expect("db");
    }
    let runbook = write_runbook(&work, "dump-db", DUMP);
    lab.cli(&["run", runbook.to_str().expect("utf-8")])
        .status(1)
        .output_contains("restore it with `load`")
        .run();
    for host in lab.hosts() {
        assert_eq!(
            fs::read(host.lab_root.join("db.txt")).expect("db restored"),
            format!("rows of {}\n\0binary\n", host.name).into_bytes()
        );
        let names = archives(&backup_root(host));
        assert_eq!(names.len(), 1, "{names:?}");
        assert!(
            names[0].starts_with(&format!("dump-db-{}-", host.name))
                && names[0].rsplit_once('.').map(|(_, extension)| extension) == Some("dump")
        );
        assert!(
            !host.lab_root.join("x").exists(),
            "nothing extracted from a dump"
        );
    }
}

const WITHOUT_ZSTD: &str = r#"
runbook: gz
kind: backup
targets: lab
steps:
  - name: snapshot
    backup: { paths: ["{{vars.app_root}}"], store: "{{vars.backup_root}}" }
    env: { PATH: "{{vars.lab_root}}/nozstd" }
  - name: lose the data
    file: { path: "{{vars.app_root}}/data", state: absent }
  - name: put it back
    restore: { from: latest, store: "{{vars.backup_root}}", target: "{{vars.lab_root}}/copy" }
    env: { PATH: "{{vars.lab_root}}/nozstd" }
"#;

#[test]
fn without_zstd_on_the_host_backups_are_tar_gzip() {
    let lab = TestLab::start(3);
    let work = lab.workspace().to_path_buf();
    let tools = [
        "mkdir",
        "date",
        "tar",
        "gzip",
        "sync",
        "sha256sum",
        "cut",
        "wc",
        "tr",
        "mv",
        "ls",
        "rm",
        "head",
        "cat",
    ];
    for host in lab.hosts() {
        fs::create_dir_all(app_root(host)).expect("app");
        fs::write(app_root(host).join("data"), "kept\n").expect("data");
        let bin = host.lab_root.join("nozstd");
        fs::create_dir_all(&bin).expect("bin");
        for tool in tools {
            let found = Command::new("sh")
                .args(["-c", &format!("command -v {tool}")])
                .output()
                .expect("command -v");
            let path = String::from_utf8_lossy(&found.stdout).trim().to_owned();
            assert!(!path.is_empty(), "{tool} is installed");
            std::os::unix::fs::symlink(path, bin.join(tool)).expect("symlink");
        }
    }
    let runbook = write_runbook(&work, "gz", WITHOUT_ZSTD);
    lab.cli(&["run", runbook.to_str().expect("utf-8")]).run();
    for host in lab.hosts() {
        let names = archives(&backup_root(host));
        assert_eq!(names.len(), 1, "{names:?}");
        assert!(names[0].ends_with(".tar.gz"), "{names:?}");
        let app = app_root(host);
        let restored = host
            .lab_root
            .join("copy")
            .join(app.strip_prefix("/").expect("absolute"))
            .join("data");
        assert_eq!(
            fs::read_to_string(restored).expect("restored under target"),
            "kept\n"
        );
        assert!(
            !app.join("data").exists(),
            "target leaves the original place alone"
        );
    }
}

const FAILING: &str = r#"
runbook: failing
kind: backup
targets: lab
steps:
  - name: a path that does not exist
    backup: { paths: ["{{vars.lab_root}}/nowhere"], store: "{{vars.backup_root}}" }
    ignore_errors: true
  - name: a dump command that fails halfway
    backup: { dump: "echo partial; exit 3", store: "{{vars.backup_root}}" }
"#;

#[test]
fn a_failed_backup_leaves_nothing_in_the_store() {
    let lab = TestLab::start(3);
    let runbook = write_runbook(lab.workspace(), "failing", FAILING);
    lab.cli(&["run", runbook.to_str().expect("utf-8")])
        .status(1)
        .output_contains("nowhere does not exist")
        .output_contains("the dump command failed with exit code 3")
        .run();
    for host in lab.hosts() {
        assert_eq!(
            file_names(&backup_root(host)),
            Vec::<String>::new(),
            "no partial file, manifest or backup on {}",
            host.name
        );
    }
}

#[test]
fn backups_lists_what_the_history_recorded_with_retention() {
    let lab = TestLab::start(2);
    let work = lab.workspace().to_path_buf();
    for host in lab.hosts() {
        fs::create_dir_all(app_root(host)).expect("app");
        fs::write(app_root(host).join("data"), "x\n").expect("data");
    }
    let runbook = write_runbook(
        &work,
        "nightly",
        r#"
runbook: nightly
kind: backup
targets: lab
steps:
  - backup: { paths: ["{{vars.app_root}}"], store: "{{vars.backup_root}}", keep: 1 }
"#,
    );
    let runbook = runbook.to_str().expect("utf-8");
    lab.cli(&["run", runbook, "--check"]).run();
    let empty = lab.cli(&["backups"]).run();
    assert!(
        empty.text().contains("no backups recorded match"),
        "a --check run records no backup: {}",
        empty.text()
    );

    for round in 0..2 {
        for host in lab.hosts() {
            fs::write(app_root(host).join("data"), format!("round {round}\n")).expect("data");
        }
        lab.cli(&["run", runbook]).run();
    }
    // Unchanged data: the newest backup already holds these bytes, so nothing is written or
    // recorded, and the step is `ok`.
    let again = lab.cli(&["run", runbook]).run();
    let again = again.text();
    assert!(
        again.contains("ok          lab1  1. backup") && !again.contains("changed     lab"),
        "{again}"
    );
    let listed = lab.cli(&["--json", "backups"]).run();
    let backups: serde_json::Value =
        serde_json::from_str(&listed.stdout).expect("backups --json is JSON");
    let backups = backups.as_array().expect("a list");
    assert_eq!(backups.len(), 4, "two runs × two hosts: {backups:#?}");
    let newest_run = backups[0]["run"].as_u64().expect("run id");
    for backup in backups {
        let host = backup["host"].as_str().expect("host");
        let lab_host = lab
            .hosts()
            .iter()
            .find(|candidate| candidate.name == host)
            .expect("a lab host");
        let path = PathBuf::from(backup["path"].as_str().expect("path"));
        assert_eq!(backup["runbook"], "nightly");
        assert!(
            path.starts_with(backup_root(lab_host)),
            "{path:?} is in the host's store"
        );
        if backup["run"].as_u64() == Some(newest_run) {
            assert!(backup["removed_by"].is_null(), "{backup}");
            assert!(path.exists(), "the kept backup is on the host");
            assert_eq!(backup["sha256"].as_str(), Some(sha256(&path).as_str()));
            assert_eq!(
                backup["size"].as_u64(),
                Some(fs::metadata(&path).expect("stat").len())
            );
        } else {
            assert_eq!(backup["removed_by"].as_u64(), Some(newest_run), "{backup}");
            assert!(!path.exists(), "keep: 1 removed {path:?}");
        }
    }

    let lab1 = lab.cli(&["backups", "--host", "lab1"]).run();
    let table = lab1.text();
    assert!(table.starts_with("WRITTEN"), "{table}");
    assert_eq!(
        table.matches("nightly-lab1-").count(),
        4,
        "id and path, twice: {table}"
    );
    assert!(!table.contains("lab2"), "{table}");
    assert!(
        table.contains(&format!("removed by run {newest_run}")),
        "{table}"
    );
    lab.cli(&["backups", "--runbook", "backup-files"])
        .output_contains("no backups recorded match")
        .run();
}
