//! `opsgate::lab` against real sshd: hosts answer over ssh with strict host keys, each has its
//! own root, labs run side by side, and `down` stops exactly what `up` started. As root, hosts
//! have filesystems of their own (an overlay per host), a lab reboot gives a host a new boot id
//! without its processes, and `down` leaves nothing of a host's namespace behind.

use std::collections::HashSet;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::{Duration, Instant};

use opsgate::lab::{self, HostFilesystem, HostState, LabError, LabHost, LabOptions};

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

/// Whether `pid` is running: it exists and is not a zombie waiting for its parent (a killed
/// daemon's parent is init, which collects it when it gets to it).
fn process_alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        stat.rsplit_once(") ")
            .is_some_and(|(_, rest)| !rest.starts_with('Z'))
    })
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

    // An isolated host runs more than its recorded process: a daemon it started outlives the
    // supervisor's death in the host's namespace, and the next `up` must stop it.
    let daemon = format!("1000.{}", std::process::id());
    let isolated = lab.hosts().iter().all(LabHost::is_isolated);
    if isolated {
        for host in lab.hosts() {
            stdout(&lab.ssh(
                &host.name,
                &format!("nohup setsid sleep {daemon} >/dev/null 2>&1 </dev/null &"),
            ));
        }
        wait_for(|| (processes_running(&["sleep", &daemon]).len() == 2).then_some(()));
    }

    // Processes that died behind opsgate's back: status sees it, down cleans up quietly.
    for host in lab.hosts() {
        let pid = libc::pid_t::try_from(host.pid).expect("pid fits");
        // SAFETY: kill has no memory preconditions; the pid is a lab sshd (or an isolated
        // host's supervisor) this test started.
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
    assert_eq!(
        processes_running(&["sleep", &daemon]),
        Vec::<u32>::new(),
        "daemons of the stopped lab outlived the next `up`"
    );
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

/// Pids of the live processes whose mount namespace has inode `namespace`.
fn processes_in_namespace(namespace: u64) -> Vec<u32> {
    std::fs::read_dir("/proc")
        .expect("reading /proc")
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::metadata(format!("/proc/{pid}/ns/mnt"))
                .is_ok_and(|metadata| metadata.ino() == namespace)
        })
        .collect()
}

/// Pids of the live processes whose command line is exactly `argv`.
fn processes_running(argv: &[&str]) -> Vec<u32> {
    let expected: Vec<u8> = argv
        .iter()
        .flat_map(|argument| argument.bytes().chain([0]))
        .collect();
    std::fs::read_dir("/proc")
        .expect("reading /proc")
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| c == expected))
        .collect()
}

/// A name no other test (or earlier run) uses.
fn unique(what: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .subsec_nanos();
    format!("opsgate-lab-{what}-{}-{nanos}", std::process::id())
}

#[test]
fn a_file_written_under_etc_on_one_host_is_invisible_elsewhere_and_gone_after_down() {
    let Some(lab) = TestLab::start_isolated(2, "lab isolation") else {
        return;
    };
    let path = format!("/etc/{}", unique("etc"));
    assert_eq!(
        stdout(&lab.ssh("lab1", &format!("echo lab1 > {path} && cat {path}"))),
        "lab1"
    );
    assert_eq!(
        stdout(&lab.ssh("lab2", &format!("test -e {path}; echo $?"))),
        "1",
        "lab2 sees lab1's {path}"
    );
    assert!(
        !Path::new(&path).exists(),
        "the machine itself sees lab1's {path}"
    );
    for host in lab.hosts() {
        assert!(host.is_isolated(), "{host:?}");
    }
    let inventory: serde_json::Value = serde_saphyr::from_str(
        &std::fs::read_to_string(lab.inventory()).expect("inventory written"),
    )
    .expect("inventory is YAML");
    assert_eq!(inventory["hosts"]["lab1"]["vars"]["lab_isolated"], true);

    // The change is in lab1's upper directory, and nowhere once the lab is down.
    let upper = lab.lab().upper_dir(lab.host("lab1"));
    assert_eq!(
        std::fs::read_to_string(upper.join(path.trim_start_matches('/')))
            .expect("the file is in lab1's upper directory"),
        "lab1\n"
    );
    lab::down(lab.dir()).expect("down");
    assert!(!upper.exists(), "{} outlived down", upper.display());
    assert!(!Path::new(&path).exists());
}

#[test]
fn lab_root_is_the_same_directory_on_an_isolated_host_and_on_the_machine() {
    let Some(lab) = TestLab::start_isolated(2, "lab isolation") else {
        return;
    };
    let (lab1, lab2) = (lab.host("lab1"), lab.host("lab2"));
    let root = lab1.lab_root.display();
    stdout(&lab.ssh("lab1", &format!("echo from-host > '{root}/from-host'")));
    assert_eq!(
        std::fs::read_to_string(lab1.lab_root.join("from-host")).expect("written over ssh"),
        "from-host\n"
    );
    std::fs::write(lab1.lab_root.join("from-machine"), "from-machine\n").expect("write");
    assert_eq!(
        stdout(&lab.ssh("lab1", &format!("cat '{root}/from-machine'"))),
        "from-machine"
    );
    // The app_root and backup_root the shipped runbooks use live under lab_root, so they too.
    stdout(&lab.ssh("lab1", &format!("mkdir -p '{root}/srv/app'")));
    assert!(lab1.lab_root.join("srv/app").is_dir());

    // What lab1 must not see of the lab directory: another host's files, the client key, the
    // overlay's own directories.
    for path in [
        lab2.lab_root.clone(),
        lab.lab().client_key(),
        lab.lab().upper_dir(lab1),
    ] {
        assert_eq!(
            stdout(&lab.ssh("lab1", &format!("test -e '{}'; echo $?", path.display()))),
            "1",
            "lab1 sees {}",
            path.display()
        );
    }
}

#[test]
fn a_lab_reboot_answers_again_with_a_new_boot_id_and_without_the_hosts_processes() {
    let Some(lab) = TestLab::start_isolated(2, "lab isolation") else {
        return;
    };
    let host = lab.host("lab1");
    assert_eq!(
        stdout(&lab.ssh("lab1", "echo \"$OPSGATE_LAB_REBOOT\"")),
        lab.lab().reboot_script(host).to_str().expect("utf-8 path")
    );
    let boot_id = |name: &str| stdout(&lab.ssh(name, "cat /proc/sys/kernel/random/boot_id"));
    let before = boot_id("lab1");
    assert_eq!(before.len(), 36, "{before}");
    let machine = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").expect("boot id");
    assert_ne!(
        before,
        machine.trim(),
        "the host reports the machine's boot id"
    );
    let other_before = boot_id("lab2");

    // A service of the host: detached from its session, as a daemon would be.
    let seconds = format!("1000.{}", std::process::id());
    stdout(&lab.ssh(
        "lab1",
        &format!("nohup setsid sleep {seconds} >/dev/null 2>&1 </dev/null &"),
    ));
    let service = wait_for(|| {
        let pids = processes_running(&["sleep", &seconds]);
        (!pids.is_empty()).then_some(pids)
    });

    // What the `reboot` action runs instead of `shutdown -r now`.
    stdout(&lab.ssh(
        "lab1",
        "nohup setsid sh -c 'sleep 1; exec \"$OPSGATE_LAB_REBOOT\"' >/dev/null 2>&1 </dev/null &",
    ));
    let started = Instant::now();
    let after = loop {
        let output = lab.ssh("lab1", "cat /proc/sys/kernel/random/boot_id");
        let text = String::from_utf8_lossy(&output.stdout).trim().to_owned();
        if output.status.success() && !text.is_empty() && text != before {
            break text;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "lab1 did not come back with a new boot id within 30 s:\n{}",
            lab.logs()
        );
        crate::common::pause(Duration::from_millis(100));
    };
    assert_eq!(after.len(), 36, "{after}");
    for pid in service {
        assert!(
            !process_alive(pid),
            "the host's service {pid} survived its reboot"
        );
    }
    assert_eq!(boot_id("lab2"), other_before, "lab2 rebooted with lab1");
    assert_eq!(
        lab::status(lab.dir()).expect("status").running(),
        2,
        "the supervisor survives the reboot"
    );
    // The host still works as before: same address, port and host key (ssh checks it strictly).
    assert_eq!(stdout(&lab.ssh("lab1", "echo back")), "back");
}

#[test]
fn down_leaves_no_process_in_an_isolated_hosts_namespace() {
    let Some(lab) = TestLab::start_isolated(2, "lab isolation") else {
        return;
    };
    let mut namespaces = Vec::new();
    for host in lab.hosts() {
        let HostFilesystem::Overlay {
            namespace: Some(namespace),
        } = host.filesystem
        else {
            panic!("{} has no recorded namespace: {host:?}", host.name)
        };
        // A daemon of the host, and a process holding files open in its /tmp.
        stdout(&lab.ssh(
            &host.name,
            "nohup setsid sleep 1000 >/dev/null 2>&1 </dev/null & \
             nohup setsid sh -c 'exec 3>/tmp/held; sleep 1000' >/dev/null 2>&1 </dev/null &",
        ));
        let members = wait_for(|| {
            let members = processes_in_namespace(namespace);
            // The supervisor, sshd and the three processes started above.
            (members.len() >= 5).then_some(members)
        });
        assert!(members.contains(&host.pid), "{members:?}");
        namespaces.push(namespace);
    }
    lab::down(lab.dir()).expect("down");
    for namespace in namespaces {
        assert_eq!(
            processes_in_namespace(namespace),
            Vec::<u32>::new(),
            "processes of namespace {namespace} outlived down"
        );
    }
    assert!(
        !lab.dir().join("hosts").exists(),
        "down removes every host's files"
    );
}
