//! `package` and the shipped `patch-debian` runbook end to end with apt, no network: the test
//! builds two versions of tiny `.deb` fixtures (`dpkg-deb --build`), serves them from flat
//! file-based apt repositories, installs v1 on lab hosts, publishes v2, and checks what each
//! host reports and what dpkg says afterwards.
//!
//! Packages are installed only inside *isolated* lab hosts (as root, `opsgate lab up` gives each
//! host a private overlay of `/`, inventory var `lab_isolated: true`), never on the machine that
//! runs the tests: [`isolated_lab`] refuses to go on unless every host says it is isolated *and*
//! sees a different mount namespace and root filesystem than the test. Inside each host apt is
//! pointed at the test's repositories only (the host's other sources are moved aside, inside the
//! overlay). Without root the tests skip with a message; CI runs as root.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use sha2::{Digest, Sha256};

use super::{count_status, shipped, write_runbook};
use crate::common::{Outcome, TestLab};

const HELLO: &str = "opsgate-fixture-hello";
const EXTRA: &str = "opsgate-fixture-extra";

/// Runs a local command that must succeed.
fn run(command: &mut Command) -> Output {
    let output = command.output().expect("running a local command");
    assert!(
        output.status.success(),
        "{command:?} failed: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// Builds `name_version_all.deb` in `dir`: it ships `/usr/share/<name>/VERSION`.
fn build_deb(dir: &Path, name: &str, version: &str) -> PathBuf {
    build_deb_with(dir, name, version, &[])
}

/// [`build_deb`] plus `files`: `(path, content)` pairs, paths relative to the package root
/// (`etc/x.conf`, or `DEBIAN/postinst`, which is made executable).
fn build_deb_with(dir: &Path, name: &str, version: &str, files: &[(&str, &str)]) -> PathBuf {
    let root = dir.join(format!("build-{name}-{version}"));
    let share = root.join(format!("usr/share/{name}"));
    fs::create_dir_all(root.join("DEBIAN")).expect("DEBIAN dir");
    fs::create_dir_all(&share).expect("share dir");
    fs::write(share.join("VERSION"), format!("{version}\n")).expect("VERSION");
    fs::write(
        root.join("DEBIAN/control"),
        format!(
            "Package: {name}\nVersion: {version}\nArchitecture: all\n\
             Maintainer: opsgate tests <tests@opsgate.invalid>\nSection: misc\n\
             Priority: optional\nDescription: opsgate test fixture\n \
             Installed only inside isolated opsgate lab hosts.\n"
        ),
    )
    .expect("control");
    for (path, content) in files {
        let file = root.join(path);
        fs::create_dir_all(file.parent().expect("a parent")).expect("file dir");
        fs::write(&file, content).expect("package file");
        if path.starts_with("DEBIAN/") {
            fs::set_permissions(&file, fs::Permissions::from_mode(0o755)).expect("chmod");
        }
    }
    let deb = dir.join(format!("{name}_{version}_all.deb"));
    run(Command::new("dpkg-deb")
        .args(["--build", "--root-owner-group"])
        .arg(&root)
        .arg(&deb));
    deb
}

/// Makes `repo` a flat apt repository holding `debs` (every version, so the newest is the
/// candidate), with a Release file naming `suite`: apt shows a candidate's origin as
/// `opsgate-test:<suite>`, which is how `upgrade: security` tells a security archive apart.
fn publish(repo: &Path, suite: &str, debs: &[&Path]) {
    fs::create_dir_all(repo).expect("repo dir");
    for deb in debs {
        fs::copy(deb, repo.join(deb.file_name().expect("a file name"))).expect("copy deb");
    }
    let packages = run(Command::new("dpkg-scanpackages")
        .args(["--multiversion", "."])
        .current_dir(repo))
    .stdout;
    fs::write(repo.join("Packages"), &packages).expect("Packages");
    let architecture =
        String::from_utf8_lossy(&run(Command::new("dpkg").arg("--print-architecture")).stdout)
            .trim()
            .to_owned();
    let date = String::from_utf8_lossy(&run(Command::new("date").arg("-Ru")).stdout)
        .trim()
        .to_owned();
    fs::write(
        repo.join("Release"),
        format!(
            "Origin: opsgate-test\nLabel: opsgate-test\nSuite: {suite}\nCodename: {suite}\n\
             Date: {date}\nArchitectures: all {architecture}\nSHA256:\n {} {} Packages\n",
            hex::encode(Sha256::digest(&packages)),
            packages.len()
        ),
    )
    .expect("Release");
}

/// The repository directory `kind` of a host, under its `lab_root` (the same path inside the
/// host).
fn repo(lab: &TestLab, host: &str, kind: &str) -> PathBuf {
    lab.host(host).lab_root.join(format!("apt-{kind}"))
}

/// Inside the host only: apt uses exactly `repos`, then installs `packages` from them.
fn use_only(lab: &TestLab, host: &str, repos: &[&Path], packages: &[&str]) {
    let lines: Vec<String> = repos
        .iter()
        .map(|repo| format!("deb [trusted=yes] file:{} ./", repo.display()))
        .collect();
    lab.ssh_ok(host,
        &format!(
            "set -e; export DEBIAN_FRONTEND=noninteractive; \
             aside=/etc/apt/opsgate-test-aside; mkdir -p $aside; \
             for source in /etc/apt/sources.list /etc/apt/sources.list.d/*; do \
               if [ -e \"$source\" ]; then mv \"$source\" $aside/; fi; done; \
             printf '%s\\n' '{}' > /etc/apt/sources.list.d/opsgate-test.list; \
             find /var/lib/apt/lists -maxdepth 1 -type f ! -name lock -delete; apt-get -q update >/dev/null; \
             apt-get -y -q install {} >/dev/null",
            lines.join("' '"),
            packages.join(" ")
        ),
    );
}

/// `dpkg-query`'s installed version of `package` on the host, `None` when it is not installed.
fn installed_version(lab: &TestLab, host: &str, package: &str) -> Option<String> {
    let answer = lab.ssh_ok(
        host,
        &format!(
            "dpkg-query -W -f='${{db:Status-Abbrev}} ${{Version}}' {package} 2>/dev/null || true"
        ),
    );
    answer
        .strip_prefix("ii ")
        .map(|version| version.trim().to_owned())
}

/// How many times `needle` appears in the run's output.
fn occurrences(output: &Outcome, needle: &str) -> usize {
    output.text().matches(needle).count()
}

/// v1 of hello installed on every host from its `main` repository, then v2 (with `v2_files`)
/// published there.
fn hosts_with_v1_and_v2_pending(lab: &TestLab, debs: &Path, v2_files: &[(&str, &str)]) {
    let v1 = build_deb(debs, HELLO, "1.0-1");
    let v2 = build_deb_with(debs, HELLO, "2.0-1", v2_files);
    for host in lab.hosts() {
        let main = repo(lab, &host.name, "main");
        publish(&main, "opsgate", &[&v1]);
        use_only(lab, &host.name, &[&main], &[HELLO]);
        assert_eq!(
            installed_version(lab, &host.name, HELLO).as_deref(),
            Some("1.0-1")
        );
        publish(&main, "opsgate", &[&v1, &v2]);
    }
}

/// The step lines (`STATUS HOST N. NAME (…)`) of a run with this status and step name.
fn step_lines(output: &Outcome, status: &str, step: &str) -> usize {
    output
        .stdout
        .lines()
        .filter(|line| line.starts_with(&format!("{status} ")) && line.contains(step))
        .count()
}

fn boot_id(lab: &TestLab, host: &str) -> String {
    lab.ssh_ok(host, "cat /proc/sys/kernel/random/boot_id")
}

#[test]
fn patch_debian_upgrades_every_host_from_v1_to_v2_reboots_then_has_nothing_to_do() {
    let Some(lab) = TestLab::start_isolated(3, "apt patching") else {
        return;
    };
    let debs = tempfile::tempdir().expect("temp dir");
    // Like a kernel update, v2 asks for a reboot.
    hosts_with_v1_and_v2_pending(
        &lab,
        debs.path(),
        &[(
            "DEBIAN/postinst",
            "#!/bin/sh\ntouch /var/run/reboot-required\n",
        )],
    );
    let boot_ids: Vec<String> = lab
        .hosts()
        .iter()
        .map(|host| boot_id(&lab, &host.name))
        .collect();

    let runbook = shipped("patch-debian");
    let first = lab.cli(&["run", &runbook]).run();
    assert_eq!(
        occurrences(&first, "upgraded 1: opsgate-fixture-hello 1.0-1 → 2.0-1"),
        3,
        "{}",
        first.text()
    );
    assert_eq!(
        step_lines(&first, "changed", "7. reboot"),
        3,
        "{}",
        first.text()
    );
    // The history says plainly that these were lab reboots, not real ones.
    let audit = lab.cli(&["audit", "export", "--jsonl"]).run();
    assert_eq!(
        occurrences(&audit, "rebooted by the lab's reboot script"),
        3,
        "{}",
        audit.text()
    );
    for (host, old_boot_id) in lab.hosts().iter().zip(&boot_ids) {
        assert_eq!(
            installed_version(&lab, &host.name, HELLO).as_deref(),
            Some("2.0-1")
        );
        assert_eq!(
            lab.ssh_ok(&host.name, &format!("cat /usr/share/{HELLO}/VERSION")),
            "2.0-1"
        );
        assert_ne!(
            &boot_id(&lab, &host.name),
            old_boot_id,
            "{} rebooted",
            host.name
        );
        let store = host.lab_root.join("var/backups/app/patch-debian");
        let backups = fs::read_dir(&store)
            .expect("the /etc backup store")
            .filter(|entry| {
                !entry
                    .as_ref()
                    .expect("entry")
                    .file_name()
                    .to_string_lossy()
                    .ends_with(".sha256")
            })
            .count();
        assert_eq!(backups, 1, "one /etc backup on {}", host.name);
    }

    let second = lab.cli(&["run", &runbook]).run();
    assert_eq!(occurrences(&second, "upgraded"), 0, "{}", second.text());
    assert_eq!(
        step_lines(&second, "ok", "4. upgrade every package"),
        3,
        "{}",
        second.text()
    );
    assert_eq!(
        step_lines(&second, "skipped", "7. reboot"),
        3,
        "{}",
        second.text()
    );
}

#[test]
fn check_mode_reports_the_upgrade_and_changes_nothing() {
    let Some(lab) = TestLab::start_isolated(2, "apt patching") else {
        return;
    };
    let debs = tempfile::tempdir().expect("temp dir");
    hosts_with_v1_and_v2_pending(&lab, debs.path(), &[]);
    let before: Vec<String> = lab
        .hosts()
        .iter()
        .map(|host| lab.host_digest(&host.name))
        .collect();

    let check = lab.cli(&["run", &shipped("patch-debian"), "--check"]).run();
    for (host, before) in lab.hosts().iter().zip(&before) {
        // Not a file of the host changed — apt's package lists included (--check refreshes a
        // throwaway copy of them).
        assert_eq!(
            &lab.host_digest(&host.name),
            before,
            "--check changed {}",
            host.name
        );
    }
    assert_eq!(
        occurrences(
            &check,
            "would upgrade 1: opsgate-fixture-hello 1.0-1 → 2.0-1"
        ),
        2,
        "{}",
        check.text()
    );
    for host in lab.hosts() {
        assert_eq!(
            installed_version(&lab, &host.name, HELLO).as_deref(),
            Some("1.0-1"),
            "--check upgraded {}",
            host.name
        );
        assert!(
            !host.lab_root.join("var/backups/app/patch-debian").exists(),
            "--check wrote a backup on {}",
            host.name
        );
    }
}

/// Runs a one-step `package` runbook that writes its registered `packages` to
/// `lab_root/<name>.txt`, one `name from to` line each (`-` for null).
fn package_runbook(dir: &Path, name: &str, package: &str) -> String {
    let yaml = format!(
        "runbook: {name}\nkind: maintenance\ntargets: lab\nsteps:\n  \
         - name: {name}\n    package: {package}\n    register: result\n  \
         - name: keep the report\n    copy:\n      dest: \"{{{{vars.lab_root}}}}/{name}.txt\"\n      \
         content: \"{{{{#each result.packages}}}}{{{{this.name}}}} \
         {{{{#if this.from}}}}{{{{this.from}}}}{{{{else}}}}-{{{{/if}}}} \
         {{{{#if this.to}}}}{{{{this.to}}}}{{{{else}}}}-{{{{/if}}}}\\n{{{{/each}}}}\"\n"
    );
    write_runbook(dir, name, &yaml)
        .to_str()
        .expect("utf-8 path")
        .to_owned()
}

/// Runs `runbook`; it must succeed and print `message` exactly `times` times.
fn run_expecting(lab: &TestLab, runbook: &str, message: &str, times: usize) {
    let output = lab.cli(&["run", runbook]).run();
    assert_eq!(occurrences(&output, message), times, "{}", output.text());
}

#[test]
fn absent_present_and_latest_report_each_change_and_then_nothing() {
    let Some(lab) = TestLab::start_isolated(1, "apt patching") else {
        return;
    };
    let debs = tempfile::tempdir().expect("temp dir");
    let work = tempfile::tempdir().expect("temp dir");
    let v1 = build_deb(debs.path(), HELLO, "1.0-1");
    let v2 = build_deb(debs.path(), HELLO, "2.0-1");
    let main = repo(&lab, "lab1", "main");
    publish(&main, "opsgate", &[&v1]);
    use_only(&lab, "lab1", &[&main], &[HELLO]);
    let lab_root = lab.host("lab1").lab_root.clone();
    let report =
        |name: &str| fs::read_to_string(lab_root.join(format!("{name}.txt"))).expect("report");

    let absent = package_runbook(
        work.path(),
        "absent",
        &format!("{{ names: [{HELLO}], state: absent }}"),
    );
    run_expecting(&lab, &absent, "removed 1: opsgate-fixture-hello 1.0-1", 1);
    assert_eq!(report("absent"), "opsgate-fixture-hello 1.0-1 -\n");
    assert_eq!(installed_version(&lab, "lab1", HELLO), None);
    run_expecting(&lab, &absent, "removed", 0);
    // Nothing changed, so the registered `packages` is empty.
    assert_eq!(report("absent"), "");

    let present = package_runbook(work.path(), "present", &format!("{{ name: {HELLO} }}"));
    run_expecting(
        &lab,
        &present,
        "installed 1: opsgate-fixture-hello 1.0-1",
        1,
    );
    assert_eq!(report("present"), "opsgate-fixture-hello - 1.0-1\n");
    run_expecting(&lab, &present, "installed", 0);
    assert_eq!(
        installed_version(&lab, "lab1", HELLO).as_deref(),
        Some("1.0-1")
    );

    publish(&main, "opsgate", &[&v1, &v2]);
    let latest = package_runbook(
        work.path(),
        "latest",
        &format!("{{ names: [{HELLO}], state: latest }}"),
    );
    run_expecting(
        &lab,
        &latest,
        "upgraded 1: opsgate-fixture-hello 1.0-1 → 2.0-1",
        1,
    );
    assert_eq!(report("latest"), "opsgate-fixture-hello 1.0-1 2.0-1\n");
    run_expecting(&lab, &latest, "upgraded", 0);
    assert_eq!(
        installed_version(&lab, "lab1", HELLO).as_deref(),
        Some("2.0-1")
    );
    // `present` is satisfied by any version: no downgrade, nothing to do.
    run_expecting(&lab, &present, "installed", 0);
}

#[test]
fn an_unknown_package_fails_naming_it_and_the_fix() {
    let Some(lab) = TestLab::start_isolated(1, "apt patching") else {
        return;
    };
    let debs = tempfile::tempdir().expect("temp dir");
    let work = tempfile::tempdir().expect("temp dir");
    let v1 = build_deb(debs.path(), HELLO, "1.0-1");
    let main = repo(&lab, "lab1", "main");
    publish(&main, "opsgate", &[&v1]);
    use_only(&lab, "lab1", &[&main], &[HELLO]);

    let runbook = package_runbook(
        work.path(),
        "typo",
        "{ names: [opsgate-fixture-hello, opsgate-fixture-helo] }",
    );
    let output = lab.cli(&["run", &runbook]).status(1).run();
    assert!(
        output.text().contains(
            "package `opsgate-fixture-helo` was not found in the host's apt sources (the index \
             was refreshed with `apt-get update`): check the name for a typo, or add the \
             repository that provides it"
        ),
        "{}",
        output.text()
    );
}

#[test]
fn security_only_upgrades_just_the_packages_from_a_security_archive() {
    let Some(lab) = TestLab::start_isolated(1, "apt patching") else {
        return;
    };
    let debs = tempfile::tempdir().expect("temp dir");
    let hello = [
        build_deb(debs.path(), HELLO, "1.0-1"),
        build_deb(debs.path(), HELLO, "2.0-1"),
    ];
    let extra = [
        build_deb(debs.path(), EXTRA, "1.0-1"),
        // A security fix that asks for a reboot, which `reboot=false` declines.
        build_deb_with(
            debs.path(),
            EXTRA,
            "1.1-1",
            &[(
                "DEBIAN/postinst",
                "#!/bin/sh\ntouch /var/run/reboot-required\n",
            )],
        ),
    ];
    let main = repo(&lab, "lab1", "main");
    let security = repo(&lab, "lab1", "security");
    publish(&main, "opsgate", &[&hello[0]]);
    publish(&security, "opsgate-security", &[&extra[0]]);
    use_only(&lab, "lab1", &[&main, &security], &[HELLO, EXTRA]);
    lab.ssh_ok("lab1", &format!("apt-mark auto {EXTRA} >/dev/null"));
    publish(&main, "opsgate", &[&hello[0], &hello[1]]);
    publish(&security, "opsgate-security", &[&extra[0], &extra[1]]);

    let runbook = shipped("patch-debian");
    let security_run = lab
        .cli(&[
            "run",
            &runbook,
            "-p",
            "security_only=true",
            "-p",
            "reboot=false",
        ])
        .run();
    assert_eq!(
        occurrences(
            &security_run,
            "upgraded 1: opsgate-fixture-extra 1.0-1 → 1.1-1"
        ),
        1,
        "{}",
        security_run.text()
    );
    assert_eq!(
        installed_version(&lab, "lab1", HELLO).as_deref(),
        Some("1.0-1")
    );
    assert_eq!(
        installed_version(&lab, "lab1", EXTRA).as_deref(),
        Some("1.1-1")
    );
    assert_eq!(
        step_lines(&security_run, "skipped", "7. reboot"),
        1,
        "{}",
        security_run.text()
    );
    assert_eq!(
        lab.ssh_ok("lab1", "test -e /var/run/reboot-required && echo required"),
        "required"
    );
    // Upgrading by name did not turn the automatically installed package into a manual one.
    assert_eq!(
        lab.ssh_ok("lab1", &format!("apt-mark showauto {EXTRA}")),
        EXTRA
    );
    let all = lab.cli(&["run", &runbook, "-p", "reboot=false"]).run();
    assert_eq!(
        occurrences(&all, "upgraded 1: opsgate-fixture-hello 1.0-1 → 2.0-1"),
        1,
        "{}",
        all.text()
    );
}

#[test]
fn a_failed_upgrade_gets_etc_back_and_stops_the_later_batches() {
    let Some(lab) = TestLab::start_isolated(2, "apt patching") else {
        return;
    };
    let debs = tempfile::tempdir().expect("temp dir");
    let conf = "etc/opsgate-fixture-hello.conf";
    let v1 = build_deb_with(debs.path(), HELLO, "1.0-1", &[(conf, "version=1\n")]);
    // v2 unpacks a new /etc file, then its postinst fails: dpkg leaves it half-configured.
    let v2 = build_deb_with(
        debs.path(),
        HELLO,
        "2.0-1",
        &[
            (conf, "version=2\n"),
            (
                "DEBIAN/postinst",
                "#!/bin/sh\necho 'fixture: failing on purpose' >&2\nexit 1\n",
            ),
        ],
    );
    for host in lab.hosts() {
        let main = repo(&lab, &host.name, "main");
        publish(&main, "opsgate", &[&v1]);
        use_only(&lab, &host.name, &[&main], &[HELLO]);
        publish(&main, "opsgate", &[&v1, &v2]);
    }

    let output = lab
        .cli(&["run", &shipped("patch-debian")])
        .status(1)
        .output_contains("apt-get failed")
        .run();
    assert!(
        output.text().contains(
            "before it failed: upgraded 1: opsgate-fixture-hello 1.0-1 → 2.0-1 (half-configured)"
        ),
        "{}",
        output.text()
    );
    assert!(
        output.text().contains("exceed max_failures"),
        "{}",
        output.text()
    );
    // lab1 (first batch) failed and got its /etc back from the backup this run took…
    assert_eq!(
        lab.ssh_ok("lab1", &format!("cat /{conf}")),
        "version=1",
        "{}",
        output.text()
    );
    // …and lab2's batch never started.
    assert_eq!(lab.ssh_ok("lab2", &format!("cat /{conf}")), "version=1");
    assert_eq!(
        installed_version(&lab, "lab2", HELLO).as_deref(),
        Some("1.0-1")
    );
    assert!(
        !lab.host("lab2")
            .lab_root
            .join("var/backups/app/patch-debian")
            .exists()
    );
}

/// Read-only cases (nothing to install or remove, so only `dpkg-query` runs): safe on any lab,
/// isolated or not.
#[test]
fn satisfied_states_and_skipped_steps_register_an_empty_packages_list() {
    let lab = TestLab::start(1);
    let work = tempfile::tempdir().expect("temp dir");
    let runbook = write_runbook(
        work.path(),
        "satisfied",
        "runbook: satisfied\nkind: maintenance\ntargets: lab\nsteps:\n  \
         - name: dpkg is installed\n    package: { name: dpkg }\n    register: kept\n  \
         - name: no such package is installed\n    \
         package: { names: [opsgate-fixture-never-installed], state: absent }\n    register: gone\n  \
         - name: never runs\n    when: false\n    package: { upgrade: all }\n    register: skipped\n  \
         - name: keep the counts\n    copy:\n      dest: \"{{vars.lab_root}}/counts.txt\"\n      \
         content: \"{{len kept.packages}} {{len gone.packages}} {{len skipped.packages}} {{skipped.status}}\"\n",
    );
    let output = lab
        .cli(&["run", runbook.to_str().expect("utf-8 path")])
        .run();
    assert_eq!(count_status(&output, "ok"), 2, "{}", output.text());
    assert_eq!(
        fs::read_to_string(lab.host("lab1").lab_root.join("counts.txt")).expect("counts"),
        "0 0 0 skipped"
    );
}
