//! `user` and `service` end to end, and the shipped `runbooks/provision-web.yaml`.
//!
//! These tests create OS accounts and start nginx, so they run ONLY inside isolated lab hosts:
//! `opsgate lab up` as root gives each host a private overlay of `/` in its own mount
//! namespace (inventory var `lab_isolated: true`). [`isolated_lab`] checks both that the
//! inventory says so and that a file written to `/etc` inside one host shows neither on this
//! machine nor in another host, and panics before any account or service is touched otherwise.
//! Without root there is no overlay: the tests say so on stderr and return.
//!
//! nginx is installed on the machine by `scripts/setup.sh` without being started (lab hosts see
//! the machine's packages through the overlay). Each lab host runs its own nginx on its own
//! loopback address; [`NginxGuard`] stops them even when a test fails.

use std::fs;
use std::io::{Read as _, Write as _};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use super::{count_status, write_runbook};
use crate::common::{Opsgate, Outcome, TestLab};

/// Whether `command` succeeds on host `name`.
fn succeeds_on_host(lab: &TestLab, name: &str, command: &str) -> bool {
    lab.ssh(name, command).status.success()
}

/// Whether this machine (outside every lab host) knows the account.
fn account_on_machine(account: &str) -> bool {
    Command::new("getent")
        .args(["passwd", account])
        .output()
        .expect("getent")
        .status
        .success()
}

/// Asserts a run exited 0 and reports exactly `changed` changed steps and no failed ones.
#[track_caller]
fn assert_run(opsgate: Opsgate, changed: usize) -> Outcome {
    let output = opsgate.run();
    assert_eq!(count_status(&output, "failed"), 0, "{}", output.text());
    assert_eq!(
        count_status(&output, "changed"),
        changed,
        "{}",
        output.text()
    );
    output
}

fn run_yaml(lab: &TestLab, dir: &Path, name: &str, yaml: &str, extra: &[&str]) -> Opsgate {
    let runbook = write_runbook(dir, name, yaml);
    let mut args = vec!["run", runbook.to_str().expect("utf-8 path")];
    args.extend_from_slice(extra);
    lab.cli(&args)
}

fn account_runbook(body: &str) -> String {
    format!("runbook: accounts\nkind: provision\ntargets: lab\nsteps:\n{body}")
}

const ALICE: &str = "opsgate-test-alice";
const DAEMON: &str = "opsgate-test-daemon";

#[test]
fn user_creates_changes_and_removes_accounts_only_inside_the_lab_host() {
    let Some(lab) = TestLab::start_isolated(1, "user_creates_changes_and_removes_accounts") else {
        return;
    };
    let work = tempfile::tempdir().expect("temp dir");
    let present = account_runbook(&format!(
        "  - user: {{ name: {ALICE}, shell: /bin/bash, groups: [users, staff] }}\n  \
         - user: {{ name: {DAEMON}, system: true, shell: /usr/sbin/nologin, home: /var/lib/{DAEMON} }}\n"
    ));

    let check = assert_run(
        run_yaml(&lab, work.path(), "present", &present, &["--check"]),
        2,
    );
    assert!(
        check
            .text()
            .contains(&format!("would create account `{ALICE}`")),
        "{}",
        check.text()
    );
    assert!(
        !succeeds_on_host(&lab, "lab1", &format!("getent passwd {ALICE}")),
        "--check created the account"
    );

    assert_run(run_yaml(&lab, work.path(), "present", &present, &[]), 2);
    let entry = lab.ssh_ok("lab1", &format!("getent passwd {ALICE}"));
    assert!(entry.ends_with(":/bin/bash"), "{entry}");
    let groups = lab.ssh_ok("lab1", &format!("id -nG {ALICE}"));
    for group in ["users", "staff"] {
        assert!(groups.split(' ').any(|have| have == group), "{groups}");
    }
    assert!(succeeds_on_host(
        &lab,
        "lab1",
        &format!("test -d /home/{ALICE}")
    ));
    let daemon = lab.ssh_ok("lab1", &format!("getent passwd {DAEMON}"));
    assert!(
        daemon.ends_with(&format!(":/var/lib/{DAEMON}:/usr/sbin/nologin")),
        "{daemon}"
    );
    assert!(
        !succeeds_on_host(&lab, "lab1", &format!("test -e /var/lib/{DAEMON}")),
        "a system account gets no home directory"
    );
    assert!(
        !account_on_machine(ALICE) && !account_on_machine(DAEMON),
        "the accounts must exist only inside the lab host"
    );

    assert_run(run_yaml(&lab, work.path(), "present", &present, &[]), 0);

    let changed = account_runbook(&format!(
        "  - user: {{ name: {ALICE}, shell: /bin/sh, groups: [users, adm] }}\n"
    ));
    let change = assert_run(run_yaml(&lab, work.path(), "changed", &changed, &[]), 1);
    assert!(
        change
            .text()
            .contains("shell /bin/bash → /bin/sh, added to groups adm"),
        "{}",
        change.text()
    );
    let groups = lab.ssh_ok("lab1", &format!("id -nG {ALICE}"));
    for group in ["users", "adm", "staff"] {
        assert!(
            groups.split(' ').any(|have| have == group),
            "`{group}` missing (groups not named are left alone): {groups}"
        );
    }
    assert_run(run_yaml(&lab, work.path(), "changed", &changed, &[]), 0);

    let absent = account_runbook(&format!(
        "  - user: {{ name: {ALICE}, state: absent }}\n  - user: {{ name: {DAEMON}, state: absent }}\n"
    ));
    assert_run(
        run_yaml(&lab, work.path(), "absent", &absent, &["--check"]),
        2,
    );
    assert!(succeeds_on_host(
        &lab,
        "lab1",
        &format!("getent passwd {ALICE}")
    ));
    assert_run(run_yaml(&lab, work.path(), "absent", &absent, &[]), 2);
    assert!(!succeeds_on_host(
        &lab,
        "lab1",
        &format!("getent passwd {ALICE}")
    ));
    assert!(
        succeeds_on_host(&lab, "lab1", &format!("test -d /home/{ALICE}")),
        "the home directory is left in place"
    );
    assert_run(run_yaml(&lab, work.path(), "absent", &absent, &[]), 0);
}

#[test]
fn unknown_groups_and_unknown_services_fail_with_clear_messages() {
    let Some(lab) = TestLab::start_isolated(1, "unknown_groups_and_unknown_services_fail") else {
        return;
    };
    let work = tempfile::tempdir().expect("temp dir");
    let group = account_runbook(&format!(
        "  - user: {{ name: {ALICE}, groups: [users, opsgate-no-such-group] }}\n"
    ));
    run_yaml(&lab, work.path(), "group", &group, &[])
        .status(1)
        .output_contains("group `opsgate-no-such-group` does not exist on the host")
        .run();
    assert!(
        !succeeds_on_host(&lab, "lab1", &format!("getent passwd {ALICE}")),
        "no account is created when a group is missing"
    );

    let service = "runbook: svc\nkind: maintenance\ntargets: lab\nsteps:\n  - service: { name: opsgate-no-such-service, state: started }\n";
    let output = run_yaml(&lab, work.path(), "unknown", service, &[])
        .status(1)
        .run();
    assert!(
        output.text().contains(
            "service `opsgate-no-such-service` is unknown: systemd does not run on this host \
             and there is no `/etc/init.d/opsgate-no-such-service`"
        ),
        "{}",
        output.text()
    );

    // An init script whose start fails: the step's message carries what it said on stderr.
    lab.ssh_ok("lab1",
        "printf '#!/bin/sh\\ncase \"$1\" in\\n  start) echo \"opsgate-broken: port 1 is taken\" >&2; exit 1;;\\n  status) exit 3;;\\n  *) exit 0;;\\nesac\\n' > /etc/init.d/opsgate-broken && chmod 755 /etc/init.d/opsgate-broken",
    );
    let broken = "runbook: svc\nkind: maintenance\ntargets: lab\nsteps:\n  - service: { name: opsgate-broken, state: started }\n";
    let output = run_yaml(&lab, work.path(), "broken", broken, &[])
        .status(1)
        .run();
    assert!(
        output.text().contains(
            "cannot start `opsgate-broken`: exit code 1: opsgate-broken: port 1 is taken"
        ),
        "{}",
        output.text()
    );
    assert!(
        !Path::new("/etc/init.d/opsgate-broken").exists(),
        "the init script must exist only inside the lab host"
    );
}

/// Stops the nginx of every lab host when dropped, so that no nginx outlives a test, passed or
/// failed: first through the host (its own `/run/nginx.pid`), then by the master pids seen
/// during the test, still checked to be nginx.
struct NginxGuard<'a> {
    lab: &'a TestLab,
    masters: Vec<u32>,
}

impl NginxGuard<'_> {
    /// Remembers the master pid each host's nginx wrote into its own `/run/nginx.pid`.
    fn remember(&mut self) {
        for host in self.lab.hosts() {
            let output = self.lab.ssh(&host.name, "cat /run/nginx.pid");
            if let Ok(pid) = String::from_utf8_lossy(&output.stdout).trim().parse() {
                if !self.masters.contains(&pid) {
                    self.masters.push(pid);
                }
            }
        }
    }
}

impl Drop for NginxGuard<'_> {
    fn drop(&mut self) {
        for host in self.lab.hosts() {
            let _ = self.lab.ssh(
                &host.name,
                "if [ -s /run/nginx.pid ]; then kill \"$(cat /run/nginx.pid)\"; fi",
            );
        }
        for pid in &self.masters {
            let comm = fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
            if comm.trim() == "nginx" {
                let _ = Command::new("kill").arg(pid.to_string()).status();
            }
        }
    }
}

/// `GET /` from `address:port`, the whole response as text.
fn http_get(address: Ipv4Addr, port: u16) -> std::io::Result<String> {
    let target = SocketAddr::from((address, port));
    let mut stream = TcpStream::connect_timeout(&target, Duration::from_secs(5))?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    stream.write_all(format!("GET / HTTP/1.0\r\nHost: {address}\r\n\r\n").as_bytes())?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    Ok(response)
}

/// The shipped runbook, as an operator runs it.
fn provision_web() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("runbooks/provision-web.yaml")
}

#[test]
fn provision_web_serves_each_lab_host_on_its_own_address_then_stops() {
    let Some(lab) = TestLab::start_isolated(2, "provision_web_serves_each_lab_host") else {
        return;
    };
    assert!(
        Path::new("/usr/sbin/nginx").exists(),
        "nginx is not installed on this machine: run scripts/setup.sh as root (it installs \
         nginx without starting it; lab hosts see it through their overlay)"
    );
    let mut guard = NginxGuard {
        lab: &lab,
        masters: vec![],
    };
    let port = lab.free_port();
    let port_param = format!("port={port}");
    let runbook = provision_web();
    let runbook = runbook.to_str().expect("utf-8 path");

    let first = lab.cli(&["run", runbook, "-p", &port_param]).run();
    guard.remember();
    assert_eq!(count_status(&first, "failed"), 0, "{}", first.text());

    let mut masters = Vec::new();
    for host in lab.hosts() {
        let page = http_get(host.address, port)
            .unwrap_or_else(|error| panic!("GET / from {}:{port}: {error}", host.address));
        assert!(page.starts_with("HTTP/1.1 200"), "{page}");
        assert!(
            page.contains(&format!("<h1>{}</h1>", host.name)),
            "{} must serve its own page:\n{page}",
            host.name
        );
        assert!(
            !succeeds_on_host(&lab, &host.name, "test -e /etc/nginx/sites-enabled/default"),
            "the default site (0.0.0.0:80) is removed"
        );
        let master = lab.ssh_ok(&host.name, "cat /run/nginx.pid");
        assert!(
            lab.ssh_ok(&host.name, "ls /etc/rc2.d").contains("S01nginx"),
            "nginx is enabled at boot"
        );
        assert!(
            !lab.ssh_ok(&host.name, "cat /var/log/nginx/opsgate-web.access.log")
                .is_empty(),
            "each host logs to its own /var/log"
        );
        masters.push(master);
    }
    assert_ne!(masters[0], masters[1], "each host runs its own nginx");
    assert!(
        !Path::new("/run/nginx.pid").exists()
            && !Path::new("/var/log/nginx/opsgate-web.access.log").exists()
            && !Path::new("/etc/nginx/sites-enabled/opsgate-web").exists(),
        "nothing of the lab hosts' nginx (pid file, logs, site) reaches this machine"
    );
    // Every socket an nginx of ours listens on is its host's address and the site's port.
    let sockets = Command::new("ss").args(["-ltnpH"]).output().expect("ss");
    let sockets = String::from_utf8_lossy(&sockets.stdout);
    for (host, master) in lab.hosts().iter().zip(&masters) {
        let listening: Vec<&str> = sockets
            .lines()
            .filter(|line| line.contains(&format!("pid={master},")))
            .collect();
        assert!(
            !listening.is_empty(),
            "nginx of {} listens:\n{sockets}",
            host.name
        );
        for line in listening {
            assert!(
                line.contains(&format!(" {}:{port} ", host.address)),
                "nginx of {} must listen only on {}:{port}:\n{line}",
                host.name,
                host.address
            );
        }
    }

    let second = assert_run(lab.cli(&["run", runbook, "-p", &port_param]), 0);
    assert_eq!(
        count_status(&second, "skipped"),
        lab.hosts().len(),
        "only the reload (site config unchanged) is skipped:\n{}",
        second.text()
    );

    let work = tempfile::tempdir().expect("temp dir");
    let stop = "runbook: stop-web\nkind: maintenance\ntargets: lab\nsteps:\n  - service: { name: nginx, state: stopped }\n";
    assert_run(run_yaml(&lab, work.path(), "stop", stop, &[]), 2);
    for host in lab.hosts() {
        assert!(
            http_get(host.address, port).is_err(),
            "{} still answers after stop",
            host.name
        );
    }
    assert_run(run_yaml(&lab, work.path(), "stop", stop, &[]), 0);

    let disable = "runbook: boot\nkind: maintenance\ntargets: lab\nsteps:\n  - service: { name: nginx, enabled: false }\n";
    assert_run(
        run_yaml(&lab, work.path(), "disable", disable, &["--check"]),
        2,
    );
    assert!(
        lab.ssh_ok("lab1", "ls /etc/rc2.d").contains("S01nginx"),
        "--check disabled it"
    );
    assert_run(run_yaml(&lab, work.path(), "disable", disable, &[]), 2);
    let links = lab.ssh_ok("lab1", "ls /etc/rc2.d");
    assert!(
        links.contains("K01nginx") && !links.contains("S01nginx"),
        "{links}"
    );
    assert!(
        Path::new("/etc/rc2.d/S01nginx").exists(),
        "the machine's own boot links are untouched"
    );
    assert_run(run_yaml(&lab, work.path(), "disable", disable, &[]), 0);
}
