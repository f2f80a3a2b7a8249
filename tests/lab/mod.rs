//! `opsgate::lab` against real sshd: hosts answer over ssh with strict host keys, each has its
//! own root, labs run side by side, and `down` stops exactly what `up` started.

use std::collections::HashSet;
use std::path::Path;
use std::time::{Duration, Instant};

use opsgate::lab::{self, HostState, LabError, LabOptions};

use crate::common::TestLab;

fn stdout(output: &std::process::Output) -> String {
    assert!(
        output.status.success(),
        "ssh failed ({}): {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout.clone())
        .expect("utf-8 output")
        .trim_end()
        .to_owned()
}

fn process_exists(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

/// Polls `check` until it returns a value, for at most five seconds.
#[expect(
    clippy::disallowed_methods,
    reason = "a synchronous test polling a process state"
)]
fn wait_for<T>(mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(Instant::now() < deadline, "condition not met within 5 s");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn every_lab_host_answers_ssh_with_its_pinned_host_key() {
    let lab = TestLab::start(3);
    assert_eq!(
        lab.hosts()
            .iter()
            .map(|host| host.name.as_str())
            .collect::<Vec<_>>(),
        ["lab1", "lab2", "lab3"]
    );
    for host in lab.hosts() {
        // StrictHostKeyChecking yes + BatchMode yes: this only works when known_hosts holds
        // exactly this host's key at `[address]:port` and the client key is authorized.
        assert_eq!(stdout(&lab.ssh(&host.name, "echo ok")), "ok");
        assert!(!stdout(&lab.ssh(&host.name, "hostname")).is_empty());
        assert_eq!(stdout(&lab.ssh(&host.name, "id -un")), lab.lab().user);
        let [first, second, third, last] = host.address.octets();
        assert_eq!((first, second, third), (127, 0, 0));
        assert!((2..=254).contains(&last), "{}", host.address);
    }
}

/// The login shell of `user` from the user database.
fn login_shell(user: &str) -> String {
    let passwd = std::fs::read_to_string("/etc/passwd").expect("reading /etc/passwd");
    passwd
        .lines()
        .map(|line| line.split(':').collect::<Vec<_>>())
        .find(|fields| fields.first() == Some(&user))
        .and_then(|fields| fields.get(6).map(|shell| (*shell).to_owned()))
        .unwrap_or_else(|| panic!("`{user}` is not in /etc/passwd"))
}

#[test]
fn remote_commands_skip_the_login_shells_rc_files() {
    let lab = TestLab::start(1);
    // sshd's `SetEnv SHLVL=1` makes bash count itself as a nested shell (level 2), and bash reads
    // ~/.bashrc for an ssh command only at level 1: root's pyenv init there would cost every
    // remote command hundreds of milliseconds. Other shells leave the variable as it came.
    let level = stdout(&lab.ssh("lab1", "echo \"$SHLVL\""));
    let expected = if login_shell(&lab.lab().user).ends_with("/bash") {
        "2"
    } else {
        "1"
    };
    assert_eq!(level, expected);
    // The fastest of a few round trips (a new connection each) bounds the per-command cost
    // without being at the mercy of one slow moment on a loaded machine.
    let fastest = (0..5)
        .map(|_| {
            let started = Instant::now();
            assert_eq!(stdout(&lab.ssh("lab1", "echo hi")), "hi");
            started.elapsed()
        })
        .min()
        .expect("five measurements");
    assert!(
        fastest < Duration::from_millis(500),
        "fastest `echo hi` took {fastest:?}"
    );
}

#[test]
fn each_host_has_its_own_lab_root_in_the_inventory() {
    let lab = TestLab::start(3);
    let roots: HashSet<_> = lab
        .hosts()
        .iter()
        .map(|host| host.lab_root.clone())
        .collect();
    assert_eq!(roots.len(), 3, "lab_root directories are distinct");
    for host in lab.hosts() {
        assert!(
            host.lab_root.is_absolute() && host.lab_root.is_dir(),
            "{host:?}"
        );
        let file = host.lab_root.join("written-remotely");
        let command = format!("echo {} > '{}'", host.name, file.display());
        stdout(&lab.ssh(&host.name, &command));
        assert_eq!(
            std::fs::read_to_string(&file).expect("file written over ssh"),
            format!("{}\n", host.name)
        );
    }

    let text = std::fs::read_to_string(lab.inventory()).expect("inventory written");
    let inventory: serde_json::Value = serde_saphyr::from_str(&text).expect("inventory is YAML");
    assert_eq!(inventory["defaults"]["user"], lab.lab().user.as_str());
    assert_eq!(
        inventory["defaults"]["identity_file"],
        lab.lab().client_key().to_str().expect("utf-8 path")
    );
    assert_eq!(
        inventory["defaults"]["known_hosts"],
        lab.lab().known_hosts().to_str().expect("utf-8 path")
    );
    assert_eq!(
        inventory["groups"]["lab"]["hosts"],
        serde_json::json!(["lab1", "lab2", "lab3"])
    );
    for host in lab.hosts() {
        let entry = &inventory["hosts"][host.name.as_str()];
        assert_eq!(entry["address"], host.address.to_string());
        assert_eq!(entry["port"], host.port);
        assert_eq!(
            entry["vars"]["lab_root"],
            host.lab_root.to_str().expect("utf-8 path")
        );
        assert!(entry.get("environment").is_none());
    }
    assert!(!text.contains("environment"), "{text}");
}

#[test]
fn labs_side_by_side_do_not_collide_and_down_stops_only_its_own() {
    let labs: Vec<TestLab> = std::thread::scope(|scope| {
        let starting: Vec<_> = (0..4).map(|_| scope.spawn(|| TestLab::start(3))).collect();
        starting
            .into_iter()
            .map(|handle| handle.join().expect("lab started"))
            .collect()
    });
    let endpoints: HashSet<_> = labs
        .iter()
        .flat_map(TestLab::hosts)
        .map(|host| (host.address, host.port))
        .collect();
    assert_eq!(
        endpoints.len(),
        12,
        "every host of every lab has its own address and port"
    );
    for lab in &labs {
        for host in lab.hosts() {
            assert_eq!(stdout(&lab.ssh(&host.name, "echo ok")), "ok");
        }
    }

    let (stopped, others) = labs.split_first().expect("four labs");
    let pids: Vec<u32> = stopped.hosts().iter().map(|host| host.pid).collect();
    lab::down(stopped.dir()).expect("down");
    for pid in pids {
        assert!(!process_exists(pid), "sshd {pid} still runs after down");
    }
    assert!(
        !stopped.dir().join("lab.json").exists(),
        "down removes the lab's state"
    );
    for lab in others {
        let status = lab::status(lab.dir()).expect("status");
        assert_eq!(status.running(), 3, "{status:?}");
        for host in lab.hosts() {
            assert!(process_exists(host.pid));
            assert_eq!(
                stdout(&lab.ssh(&host.name, "echo still-here")),
                "still-here"
            );
        }
    }
    // The stopped lab's Drop finds no lab any more; that must not disturb the others.
    drop(labs);
}

#[test]
fn up_refuses_a_running_lab_and_reuses_a_stopped_one() {
    let lab = TestLab::start(2);
    let again = lab::up(&LabOptions {
        dir: lab.dir().to_owned(),
        hosts: 2,
    });
    let Err(error) = again else {
        panic!("second `lab up` in {} started", lab.dir().display())
    };
    assert!(
        matches!(error, LabError::AlreadyRunning { .. }),
        "{error:?}"
    );
    assert!(
        error
            .hints()
            .iter()
            .any(|hint| hint.contains("opsgate lab down")),
        "{:?}",
        error.hints()
    );
    assert_eq!(
        lab::status(lab.dir()).expect("status").running(),
        2,
        "the refusal touched nothing"
    );

    // Processes that died behind opsgate's back: status sees it, down cleans up quietly.
    for host in lab.hosts() {
        let pid = libc::pid_t::try_from(host.pid).expect("pid fits");
        // SAFETY: kill has no memory preconditions; the pid is a lab sshd this test started.
        assert_eq!(unsafe { libc::kill(pid, libc::SIGKILL) }, 0);
    }
    let status = wait_for(|| {
        let status = lab::status(lab.dir()).expect("status");
        (status.running() == 0).then_some(status)
    });
    assert!(
        status
            .hosts
            .iter()
            .all(|host| host.state == HostState::Stopped),
        "{status:?}"
    );

    let restarted = lab::up(&LabOptions {
        dir: lab.dir().to_owned(),
        hosts: 1,
    })
    .expect("up over a stopped lab");
    assert_eq!(restarted.hosts.len(), 1);
    assert_eq!(stdout(&lab.ssh("lab1", "echo back")), "back");
    // `lab`'s Drop takes the restarted lab down (same directory).
}

#[test]
fn status_and_down_say_when_there_is_no_lab() {
    let dir = tempfile::tempdir().expect("temp dir");
    let missing = dir.path().join("nothing-here");
    let error = lab::status(&missing).expect_err("no lab");
    assert!(matches!(error, LabError::NoLab { .. }), "{error:?}");
    let error = lab::down(dir.path()).expect_err("no lab");
    assert!(matches!(error, LabError::NoLab { .. }), "{error:?}");
    assert!(
        error
            .hints()
            .iter()
            .any(|hint| hint.contains("opsgate lab up"))
    );
}

#[test]
fn a_lab_directory_with_spaces_in_its_path_works() {
    let temp = tempfile::tempdir().expect("temp dir");
    let dir = temp.path().join("my lab");
    let started = lab::up(&LabOptions {
        dir: dir.clone(),
        hosts: 1,
    })
    .expect("up");
    let output = std::process::Command::new("ssh")
        .arg("-F")
        .arg(started.ssh_config())
        .args(["lab1", "echo spaced"])
        .output()
        .expect("running ssh");
    let text = std::fs::read_to_string(&started.inventory).expect("inventory");
    lab::down(&dir).expect("down");
    assert_eq!(stdout(&output), "spaced");
    let inventory: serde_json::Value = serde_saphyr::from_str(&text).expect("inventory is YAML");
    assert_eq!(
        inventory["hosts"]["lab1"]["vars"]["lab_root"],
        started.hosts[0].lab_root.to_str().expect("utf-8 path")
    );
}
