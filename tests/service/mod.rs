//! Team mode end to end (SPEC §4.6, §7): `opsgate serve` runs as the real service account
//! `og-svc` on a socket in a directory only it may write, group-accessible to the operators
//! (group `og-team`); the operators run the real command line as themselves (`runuser -u og-bob
//! -- opsgate whoami`), so their identity is the socket's peer uid and nothing else.
//!
//! The audit history is seeded before the service starts, by the operators' own local runs
//! against the state directory (denials need no host), then handed to the service account.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use tempfile::TempDir;

use crate::common::opsgate::Running;
use crate::common::{Opsgate, Outcome, pause};
use crate::gate::accounts::{Deployment, OPERATORS, SERVICE, chmod, chown, ensure_accounts};

/// Runs a system command (not opsgate: `groupadd`, `chown`, `kill`, …) that must succeed.
#[track_caller]
fn system(command: &mut Command) {
    let output = command.output().expect("starting a system command");
    assert!(
        output.status.success(),
        "{command:?} failed ({}):\n{}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// The group that may connect to the socket.
const TEAM_GROUP: &str = "og-team";

/// The service's policy: `og-dave` is deliberately not listed.
const POLICY: &str = "service_account: og-svc\noperators:\n  og-alice: { level: 5, name: Alice }\n  \
    og-carol: { level: 3 }\n  og-bob: { level: 2 }\n";

const RUNBOOK: &str = "runbook: hello\nkind: maintenance\nmin_level: 2\ntargets: lab\nsteps:\n  \
    - name: hi\n    command: echo hi\n";

/// One host nobody needs to reach: every seeded run ends at the gate.
const INVENTORY: &str =
    "groups:\n  lab: { hosts: [lab1] }\nhosts:\n  lab1: { address: 127.0.0.1, port: 9 }\n";

/// Creates `og-team` with every operator in it, once.
fn ensure_team_group() {
    static READY: OnceLock<()> = OnceLock::new();
    READY.get_or_init(|| {
        // First: it takes the accounts lock itself, and the lock is not reentrant.
        ensure_accounts();
        crate::common::HOST_ACCOUNTS.change(|| {
            system(Command::new("groupadd").args(["-f", TEAM_GROUP]));
            for account in OPERATORS {
                system(Command::new("usermod").args(["-a", "-G", TEAM_GROUP, account]));
            }
        });
    });
}

fn id(flag: &str, account: &str) -> u32 {
    let output = Command::new("id")
        .args([flag, account])
        .output()
        .expect("id");
    String::from_utf8_lossy(&output.stdout)
        .trim()
        .parse()
        .expect("a numeric id")
}

/// What keeps a project's files alive.
enum Files {
    /// A project without hosts.
    Bare(TempDir),
    /// A project with a lab the service reaches with its own key.
    Lab(Deployment),
}

/// A deployed team-mode project and its running service.
struct Team {
    files: Files,
    /// `opsgate serve`, expected to stop cleanly (exit 0) when [`Team::stop`] asks it to.
    service: Option<Running>,
}

impl Team {
    /// Deploys the project, seeds the history with runs of `og-dave` (unlisted) and `og-bob`
    /// (L2, a draft runbook), both denied, and starts the service.
    fn start() -> Self {
        ensure_team_group();
        let dir = tempfile::tempdir().expect("project dir");
        let root = dir.path().to_path_buf();
        let root = root.as_path();
        chmod(root, 0o755);
        for sub in ["policy", "runbooks", "state"] {
            std::fs::create_dir(root.join(sub)).expect("project subdir");
            chmod(&root.join(sub), 0o755);
        }
        std::fs::write(root.join("policy/operators.yaml"), POLICY).expect("policy");
        std::fs::write(root.join("runbooks/hello.yaml"), RUNBOOK).expect("runbook");
        std::fs::write(root.join("inventory.yaml"), INVENTORY).expect("inventory");
        let team = Team {
            files: Files::Bare(dir),
            service: None,
        };
        // Seeding: the operators' own processes, with the state directory open to them for now.
        chmod(&root.join("state"), 0o777);
        team.local("og-dave", &["run", "hello"]).status(3).run();
        system(
            Command::new("chmod")
                .args(["-R", "a+rwX"])
                .arg(root.join("state")),
        );
        team.local("og-bob", &["run", "hello"]).status(3).run();
        chown(&root.join("state"), SERVICE);
        chmod(&root.join("state"), 0o700);
        team.serve()
    }

    /// The deployment of the gate's sudo tests (a lab of `hosts` hosts, its key the service
    /// account's) with `runbooks` approved into the catalog, served in team mode.
    fn with_lab(hosts: usize, runbooks: &[(&str, &str)]) -> Self {
        ensure_team_group();
        let deployment = Deployment::start(hosts, None);
        for (name, yaml) in runbooks {
            let path = deployment.runbook(name, yaml);
            deployment.approve_runbook(&path);
        }
        let team = Team {
            files: Files::Lab(deployment),
            service: None,
        };
        team.serve()
    }

    /// Writes `opsgate.yaml` and the socket directory, and starts the service.
    fn serve(mut self) -> Self {
        let root = self.path().to_path_buf();
        std::fs::create_dir(root.join("run")).expect("socket dir");
        // The socket directory: the service account's, group og-team, setgid so the socket
        // gets that group.
        system(
            Command::new("chown")
                .arg(format!("{SERVICE}:{TEAM_GROUP}"))
                .arg(root.join("run")),
        );
        chmod(&root.join("run"), 0o2750);
        std::fs::write(
            root.join("opsgate.yaml"),
            "inventory: inventory.yaml\nstate_dir: state\nservice:\n  socket: run/opsgate.sock\n",
        )
        .expect("opsgate.yaml");
        self.service = Some(self.spawn_service());
        self.wait_ready();
        self
    }

    fn path(&self) -> &Path {
        match &self.files {
            Files::Bare(dir) => dir.path(),
            Files::Lab(deployment) => deployment.path(),
        }
    }

    fn deployment(&self) -> &Deployment {
        match &self.files {
            Files::Lab(deployment) => deployment,
            Files::Bare(_) => panic!("this team has no lab"),
        }
    }

    /// The command line as `account` without `runuser` in between, so that signals sent to it
    /// reach opsgate itself (`setpriv` execs; groups from the account, og-team included).
    fn direct(&self, account: &str, args: &[&str]) -> Command {
        let mut command = Command::new("setpriv");
        command
            .args([
                "--reuid",
                account,
                "--regid",
                account,
                "--init-groups",
                "--",
            ])
            .arg(env!("CARGO_BIN_EXE_opsgate"))
            .args(args)
            .current_dir(self.path())
            .env("NO_COLOR", "1")
            .env_remove("OPSGATE_STATE_DIR")
            .env_remove("OPSGATE_SOCKET")
            .env_remove("SUDO_USER")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        command
    }

    fn socket(&self) -> PathBuf {
        self.path().join("run/opsgate.sock")
    }

    /// `opsgate serve --config …/opsgate.yaml` as `og-svc` (its own uid and gid, no groups).
    fn service(&self) -> Opsgate {
        let mut command = Command::new(env!("CARGO_BIN_EXE_opsgate"));
        command
            .arg("serve")
            .arg("--config")
            .arg(self.path().join("opsgate.yaml"))
            .current_dir("/")
            .env_remove("OPSGATE_STATE_DIR")
            .env_remove("OPSGATE_SOCKET")
            .env("NO_COLOR", "1")
            .uid(id("-u", SERVICE))
            .gid(id("-g", SERVICE));
        Opsgate::through(command)
    }

    /// Starts the service in the background.
    fn spawn_service(&self) -> Running {
        self.service().spawn()
    }

    /// Waits until the socket has its final mode, or fails with the service's log.
    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let ready = std::fs::metadata(self.socket())
                .is_ok_and(|metadata| metadata.permissions().mode() & 0o777 == 0o660);
            if ready {
                return;
            }
            let exited = self
                .service
                .as_mut()
                .and_then(|service| service.child.try_wait().expect("try_wait"));
            if exited.is_some() || Instant::now() > deadline {
                let mut service = self.service.take().expect("a service");
                // Still running past the deadline: stop it to read its log.
                let _ = service.child.kill();
                // Fails on the exit status with the service's log; a service that exited 0
                // without listening falls through to the panic below.
                let outcome = service.finish();
                panic!("the service did not start: {}", outcome.text());
            }
            pause(Duration::from_millis(50));
        }
    }

    /// opsgate as `account` without a service: a policy without a service, own files.
    fn local(&self, account: &str, args: &[&str]) -> Opsgate {
        let mut command = Command::new("runuser");
        command
            .args(["-u", account, "--"])
            .arg(env!("CARGO_BIN_EXE_opsgate"))
            .arg("--policy")
            .arg(self.path().join("policy/operators.yaml"))
            .arg("--state-dir")
            .arg(self.path().join("state"))
            .arg("-i")
            .arg(self.path().join("inventory.yaml"))
            .args(args)
            .current_dir(self.path())
            .env("NO_COLOR", "1")
            .env_remove("OPSGATE_STATE_DIR")
            .env_remove("OPSGATE_SOCKET")
            .env_remove("SUDO_USER");
        Opsgate::through(command)
    }

    /// The command line as `account`, in the project (team mode through `opsgate.yaml`).
    fn command(&self, account: &str, args: &[&str]) -> Command {
        let mut command = Command::new("runuser");
        command
            .args(["-u", account, "--"])
            .arg(env!("CARGO_BIN_EXE_opsgate"))
            .args(args)
            .current_dir(self.path())
            .env("NO_COLOR", "1")
            .env_remove("OPSGATE_STATE_DIR")
            .env_remove("OPSGATE_SOCKET")
            .env_remove("SUDO_USER")
            .stdin(Stdio::null());
        command
    }

    /// [`Team::command`] with expectations: exit 0 unless the test says otherwise.
    fn opsgate(&self, account: &str, args: &[&str]) -> Opsgate {
        Opsgate::through(self.command(account, args))
    }

    /// Sends SIGTERM, checks that the service stops cleanly (exit 0) and returns its log.
    fn stop(&mut self) -> Outcome {
        let mut service = self.service.take().expect("a running service");
        let pid = service.child.id().to_string();
        system(Command::new("kill").args(["-TERM", &pid]));
        let deadline = Instant::now() + Duration::from_secs(20);
        while service.child.try_wait().expect("try_wait").is_none() {
            assert!(Instant::now() < deadline, "the service ignored SIGTERM");
            pause(Duration::from_millis(50));
        }
        service.finish()
    }

    /// A raw connection from the test process (root), past the `hello`s.
    fn connect(&self) -> (BufReader<UnixStream>, UnixStream) {
        let stream = UnixStream::connect(self.socket()).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .expect("timeout");
        let mut writer = stream.try_clone().expect("clone");
        let mut reader = BufReader::new(stream);
        writer
            .write_all(b"{\"type\":\"hello\",\"protocol\":1}\n")
            .expect("hello");
        let hello = read_json(&mut reader);
        assert_eq!(hello["type"], "hello", "{hello}");
        assert_eq!(hello["protocol"], 1, "{hello}");
        assert_eq!(hello["account"], "root", "{hello}");
        (reader, writer)
    }
}

impl Drop for Team {
    fn drop(&mut self) {
        if let Some(mut service) = self.service.take() {
            let _ = service.child.kill();
            let _ = service.child.wait();
        }
    }
}

fn read_json(reader: &mut impl BufRead) -> serde_json::Value {
    let mut line = String::new();
    reader.read_line(&mut line).expect("a response line");
    serde_json::from_str(&line).unwrap_or_else(|error| panic!("{error}: {line:?}"))
}

#[test]
fn identity_is_the_peer_uid_and_sudo_user_claims_nothing() {
    let team = Team::start();
    team.opsgate("og-bob", &["whoami"])
        .output_contains("operator: og-bob")
        .output_contains("level:    L2")
        .output_contains("identity: the peer uid of your connection to the opsgate service")
        .output_contains("mode:     team")
        .run();

    // A client that sets SUDO_USER (and OPSGATE_SOCKET, its own way to find the service) is
    // still itself.
    let forged = team
        .opsgate("og-bob", &["--json", "whoami"])
        .env("SUDO_USER", "og-alice")
        .env("OPSGATE_SOCKET", team.socket())
        .run()
        .json();
    assert_eq!(forged["operator"], "og-bob", "{forged}");
    assert_eq!(forged["level"], 2, "{forged}");
    assert_eq!(forged["source"], "peer", "{forged}");
    assert_eq!(forged["mode"], "team", "{forged}");
    assert_eq!(forged["uid"], id("-u", "og-bob"), "{forged}");

    // An account outside the socket's group cannot even connect.
    team.opsgate("nobody", &["whoami"])
        .env("OPSGATE_SOCKET", team.socket())
        .status(1)
        .output_contains("cannot connect to the opsgate service")
        .run();

    // Twenty clients at once are each answered as themselves.
    let clients: Vec<(&str, Running)> = OPERATORS
        .iter()
        .cycle()
        .take(20)
        .map(|account| {
            // og-dave is among them: unlisted, answered with exit 3 and the same report.
            let client = team
                .opsgate(account, &["--json", "whoami"])
                .any_status()
                .spawn();
            (*account, client)
        })
        .collect();
    for (account, client) in clients {
        let json = client.finish().json();
        assert_eq!(json["operator"], account, "{json}");
    }

    // An unlisted account is told so, with the exit code scripts check.
    team.opsgate("og-dave", &["whoami"])
        .status(3)
        .output_contains("account `og-dave` is not listed")
        .run();

    // The catalog and the pending runs come from the service's project, rendered as locally.
    let catalog = team
        .opsgate("og-carol", &["catalog"])
        .stdout_contains("hello")
        .stdout_contains("draft")
        .run();
    assert!(catalog.stdout.starts_with("RUNBOOK"), "{}", catalog.text());
    let pending = team.opsgate("og-alice", &["pending"]).run();
    assert_eq!(pending.stdout, "no pending runs that you may approve\n");
}

#[test]
fn service_options_are_refused_in_team_mode() {
    let team = Team::start();
    for (args, option) in [
        (&["-i", "/tmp/evil.yaml", "catalog"][..], "`-i/--inventory`"),
        (&["--policy", "/tmp/evil.yaml", "whoami"][..], "`--policy`"),
        (&["--state-dir", "/tmp/evil", "history"][..], "`--state-dir"),
    ] {
        team.opsgate("og-bob", args)
            .status(2)
            .output_contains(option)
            .output_contains("cannot be chosen in team mode")
            .run();
    }
    team.opsgate("og-bob", &["history"])
        .env("OPSGATE_STATE_DIR", "/tmp/evil")
        .status(2)
        .output_contains("OPSGATE_STATE_DIR")
        .run();
}

#[test]
fn an_unlisted_account_sees_only_its_own_runs() {
    let team = Team::start();
    let runs = team
        .opsgate("og-alice", &["--json", "history"])
        .run()
        .json();
    let operators: Vec<&str> = runs
        .as_array()
        .expect("a list")
        .iter()
        .map(|run| run["operator"].as_str().expect("an operator"))
        .collect();
    assert_eq!(operators, ["og-bob", "og-dave"], "{runs}");
    let bob_run = runs[0]["id"].as_i64().expect("a run id").to_string();

    let dave = team
        .opsgate("og-dave", &["history"])
        .stdout_contains("og-dave")
        .output_lacks("og-bob")
        .run();
    assert!(dave.stdout.starts_with("RUN"), "{}", dave.text());

    team.opsgate("og-dave", &["history", "--operator", "og-bob"])
        .status(3)
        .run();
    team.opsgate("og-dave", &["history", "show", &bob_run])
        .status(3)
        .output_contains("may see only its own runs")
        .run();
    // An operator reads it in full, exactly as the local command renders it.
    team.opsgate("og-alice", &["history", "show", &bob_run])
        .stdout_contains("og-bob")
        .run();
}

#[test]
fn bad_request_lines_get_protocol_errors_and_the_service_lives_on() {
    let mut team = Team::start();
    let (mut reader, mut writer) = team.connect();
    for (line, expected) in [
        (&b"this is not json\n"[..], "not a JSON object"),
        (
            b"{\"type\":\"format-disk\"}\n",
            "unknown request type `format-disk`",
        ),
        (
            b"{\"type\":\"history_show\",\"run\":\"x\"}\n",
            "bad `history_show`",
        ),
    ] {
        writer.write_all(line).expect("send");
        let error = read_json(&mut reader);
        assert_eq!(error["type"], "error", "{error}");
        assert_eq!(error["exit"], 2, "{error}");
        assert!(
            error["message"]
                .as_str()
                .expect("a message")
                .contains(expected),
            "{error}"
        );
    }
    // The same connection still answers, ignoring fields it does not know.
    writer
        .write_all(b"{\"type\":\"catalog\",\"colour\":\"blue\"}\n")
        .expect("send");
    let output = read_json(&mut reader);
    assert_eq!(output["type"], "output", "{output}");
    assert!(
        output["stdout"]
            .as_str()
            .expect("stdout")
            .starts_with("RUNBOOK"),
        "{output}"
    );
    assert_eq!(
        read_json(&mut reader),
        serde_json::json!({"type": "done", "exit": 0})
    );
    // A refusal carries the exit code, the rule and the message the command line prints.
    writer.write_all(b"{\"type\":\"pending\"}\n").expect("send");
    let refusal = read_json(&mut reader);
    assert_eq!(refusal["type"], "error", "{refusal}");
    assert_eq!(refusal["exit"], 3, "{refusal}");
    assert_eq!(refusal["rule"], "not-an-operator", "{refusal}");
    assert!(
        refusal["rendered"]
            .as_str()
            .expect("rendered")
            .starts_with("error: account `root` may not list runs to approve"),
        "{refusal}"
    );

    // An oversized line is refused and its connection closed.
    let (mut reader, mut writer) = team.connect();
    let huge = vec![b'x'; 3 << 20];
    // The service stops reading at the limit; the rest of the write may fail.
    let _ = writer.write_all(&huge);
    let error = read_json(&mut reader);
    assert_eq!(error["type"], "error", "{error}");
    assert!(
        error["message"]
            .as_str()
            .expect("a message")
            .contains("longer than the limit"),
        "{error}"
    );
    let mut rest = Vec::new();
    let _ = reader.read_to_end(&mut rest);
    assert!(rest.is_empty(), "{}", String::from_utf8_lossy(&rest));

    // The first line must be a hello of this version.
    let mut stream = UnixStream::connect(team.socket()).expect("connect");
    stream
        .write_all(b"{\"type\":\"hello\",\"protocol\":99}\n")
        .expect("send");
    let error = read_json(&mut BufReader::new(stream));
    assert!(
        error["message"]
            .as_str()
            .expect("a message")
            .contains("protocol version 99"),
        "{error}"
    );

    // SIGHUP does not end it (reloading is not implemented: it is logged and ignored).
    let pid = team
        .service
        .as_ref()
        .expect("a service")
        .child
        .id()
        .to_string();
    system(Command::new("kill").args(["-HUP", &pid]));
    pause(Duration::from_millis(200));
    // A second service on the same socket refuses to take it over.
    team.service()
        .status(1)
        .output_contains("already listening")
        .run();
    // The service still serves, and stops cleanly on SIGTERM, removing its socket.
    team.opsgate("og-bob", &["whoami"]).run();
    let stopped = team.stop();
    assert!(stopped.text().contains("stopped"), "{}", stopped.text());
    assert!(
        stopped.text().contains("SIGHUP ignored"),
        "{}",
        stopped.text()
    );
    assert!(!team.socket().exists());
    team.opsgate("og-bob", &["whoami"])
        .status(1)
        .output_contains("cannot connect to the opsgate service")
        .run();
}

#[test]
fn the_service_refuses_a_policy_others_can_write() {
    let mut team = Team::start();
    team.stop();
    let policy = team.path().join("policy/operators.yaml");
    chmod(&policy, 0o666);
    team.service()
        .status(3)
        .output_contains("is writable by group or others")
        .output_contains("the service refuses to serve")
        .run();
    assert!(!team.socket().exists());
}

const HELLO: &str = "runbook: hello\nkind: maintenance\nmin_level: 2\ntargets: lab\nsteps:\n  \
    - name: mark\n    command: echo {{run.operator}} > {{vars.lab_root}}/hello.ran\n  - name: greet\n    \
    command: echo greetings from the lab\n";

const SLOW: &str = "runbook: slow\nkind: maintenance\nmin_level: 2\ntargets: lab\nsteps:\n  \
    - name: nap\n    command: sleep 3\n  - name: mark\n    command: echo done > \
    {{vars.lab_root}}/slow.ran\n";

/// The runs of `history --json` as `og-alice` sees them.
fn runs(team: &Team) -> Vec<serde_json::Value> {
    team.opsgate("og-alice", &["--json", "history"])
        .run()
        .json()
        .as_array()
        .expect("a list")
        .clone()
}

/// Waits until the newest run has left `running`, and returns it.
fn finished_run(team: &Team) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let newest = runs(team).into_iter().next().expect("a run");
        if newest["status"] != "running" && newest["status"] != "pending" {
            return newest;
        }
        assert!(
            Instant::now() < deadline,
            "the run never finished: {newest}"
        );
        pause(Duration::from_millis(200));
    }
}

#[test]
fn runs_execute_in_the_service_as_the_peer_and_stream_their_events() {
    let team = Team::with_lab(2, &[("hello", HELLO)]);
    team.opsgate("og-bob", &["run", "hello"])
        .stdout_contains("lab1")
        .stdout_contains("RECAP")
        // Without `-v`, a step that did not fail shows no output excerpt.
        .output_lacks("| greetings from the lab")
        .run();
    // The service ran it with its own key, for og-bob, who is recorded as the operator.
    let marker = team.deployment().lab_file("lab1", "hello.ran");
    assert_eq!(
        std::fs::read_to_string(&marker).expect("the step ran"),
        "og-bob\n"
    );
    let newest = finished_run(&team);
    assert_eq!(newest["operator"], "og-bob", "{newest}");
    assert_eq!(newest["status"], "ok", "{newest}");

    // --json streams the `run --json` events, one object per line.
    let json = team
        .opsgate("og-carol", &["--json", "run", "hello", "-l", "lab2"])
        .run();
    let events: Vec<serde_json::Value> = json
        .stdout
        .lines()
        .map(|line| serde_json::from_str(line).expect("an event per line"))
        .collect();
    assert!(!events.is_empty(), "{}", json.text());
    assert!(
        events
            .iter()
            .all(|event| event.get("event").is_some() || event.get("type").is_some()),
        "{events:?}"
    );

    // `-v` travels in the request: the service renders every step's output excerpt.
    team.opsgate("og-bob", &["run", "hello", "-v", "-l", "lab1"])
        .stdout_contains("| greetings from the lab")
        .run();

    // The gate judges the peer: og-dave (L1) may not run a min_level 2 runbook, whatever
    // SUDO_USER says; a path is refused before anything is opened.
    team.opsgate("og-dave", &["run", "hello"])
        .env("SUDO_USER", "og-alice")
        .status(3)
        .output_contains("og-dave")
        .run();
    team.opsgate("og-alice", &["run", "/etc/opsgate/evil.yaml"])
        .status(2)
        .output_contains("by id")
        .run();
}

#[test]
fn a_lost_client_does_not_stop_its_run_and_ctrl_c_cancels() {
    let team = Team::with_lab(1, &[("slow", SLOW)]);
    // Killed mid-run: the run is the service's, finishes and is recorded.
    let mut client = Opsgate::through(team.direct("og-bob", &["run", "slow"]))
        .any_status()
        .spawn();
    let deadline = Instant::now() + Duration::from_secs(30);
    while runs(&team).is_empty() {
        assert!(Instant::now() < deadline, "the run never started");
        pause(Duration::from_millis(100));
    }
    client.child.kill().expect("kill the client");
    let _ = client.child.wait();
    let newest = finished_run(&team);
    assert_eq!(newest["status"], "ok", "{newest}");
    assert!(team.deployment().lab_file("lab1", "slow.ran").exists());

    // Ctrl-C (SIGINT to the client) sends a cancel: no new step starts, the run is cancelled.
    std::fs::remove_file(team.deployment().lab_file("lab1", "slow.ran")).expect("reset");
    let client = Opsgate::through(team.direct("og-bob", &["run", "slow"]))
        .status(130)
        .output_contains("interrupted")
        .spawn();
    let deadline = Instant::now() + Duration::from_secs(30);
    while runs(&team).len() < 2 {
        assert!(Instant::now() < deadline, "the second run never started");
        pause(Duration::from_millis(100));
    }
    pause(Duration::from_millis(500));
    system(Command::new("kill").args(["-INT", &client.child.id().to_string()]));
    client.finish();
    let newest = finished_run(&team);
    assert_eq!(newest["status"], "cancelled", "{newest}");
    assert!(!team.deployment().lab_file("lab1", "slow.ran").exists());
}

#[test]
fn stopping_the_service_cancels_its_runs_on_record() {
    let mut team = Team::with_lab(1, &[("slow", SLOW)]);
    let client = Opsgate::through(team.direct("og-bob", &["run", "slow"]))
        .status(130)
        .spawn();
    let deadline = Instant::now() + Duration::from_secs(30);
    while runs(&team).is_empty() {
        assert!(Instant::now() < deadline, "the run never started");
        pause(Duration::from_millis(100));
    }
    pause(Duration::from_millis(500));
    team.stop();
    client.finish();
    assert!(!team.deployment().lab_file("lab1", "slow.ran").exists());
    // Read on the store itself, as root: the run ended on record as cancelled.
    let runs = Opsgate::new()
        .args(["--json", "history", "--state-dir"])
        .arg(team.path().join("state"))
        .current_dir("/")
        .env_remove("OPSGATE_SOCKET")
        .env_remove("OPSGATE_STATE_DIR")
        .run()
        .json();
    assert_eq!(runs[0]["status"], "cancelled", "{runs}");
}

const LOW: &str = "runbook: low\nkind: maintenance\nmin_level: 1\ntargets: lab\nsteps:\n  \
    - name: hi\n    command: echo hi\n";

/// The id of the run waiting for an approval, as `og-alice`'s `pending --json` lists it.
fn pending_run(team: &Team) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let pending = team
            .opsgate("og-alice", &["--json", "pending"])
            .run()
            .json();
        if let Some(run) = pending.as_array().and_then(|runs| runs.first()) {
            return run["run"].to_string();
        }
        assert!(Instant::now() < deadline, "no run became pending");
        pause(Duration::from_millis(200));
    }
}

#[test]
fn a_pending_run_is_approved_through_the_service_but_never_by_its_requester() {
    let team = Team::with_lab(1, &[("low", LOW)]);
    // og-dave (L1) may run a min_level 1 runbook only after an L3+ approves the run.
    let dave = team
        .opsgate("og-dave", &["run", "low", "--approval-timeout", "60s"])
        .output_contains("approved by `og-carol`")
        .spawn();
    let run = pending_run(&team);

    // Two-person rule: nobody approves their own run; og-bob (L2) is below the approver level.
    team.opsgate("og-dave", &["approve", "run", &run])
        .status(3)
        .run();
    team.opsgate("og-bob", &["approve", "run", &run])
        .status(3)
        .run();
    // A signature needs a key the service cannot read: not offered in team mode yet.
    team.opsgate(
        "og-carol",
        &["approve", "run", &run, "--sign", "/nonexistent"],
    )
    .status(2)
    .output_contains("team mode")
    .run();

    team.opsgate(
        "og-carol",
        &["approve", "run", &run, "--reason", "looks fine"],
    )
    .stdout_contains(format!("approved the run of run {run}"))
    .run();
    dave.finish();

    // The history of it, through the same socket.
    team.opsgate("og-alice", &["audit", "export", "--jsonl"])
        .stdout_contains("\"approval_granted\"")
        .run();
    let verify = team.opsgate("og-bob", &["audit", "verify"]).run();
    assert!(
        verify.stdout.starts_with("audit history intact"),
        "{}",
        verify.text()
    );
    let backups = team.opsgate("og-bob", &["backups"]).run();
    assert_eq!(backups.stdout, "no backups recorded match\n");
}

#[test]
fn catalog_approval_and_audit_commands_go_through_the_service() {
    let team = Team::start();
    // A catalog runbook is approved by id; a path is refused before anything is opened.
    team.opsgate("og-alice", &["approve", "runbook", "/etc/shadow"])
        .status(2)
        .output_contains("by id")
        .run();
    team.opsgate("og-carol", &["approve", "runbook", "hello"])
        .status(3)
        .run();
    team.opsgate("og-alice", &["approve", "runbook", "hello"])
        .stdout_contains("approved runbook `hello`")
        .run();
    team.opsgate("og-bob", &["catalog"])
        .stdout_contains("approved")
        .run();

    // `audit export` needs an operator (SPEC §4.1): unlisted og-dave is refused.
    team.opsgate("og-dave", &["audit", "export", "--jsonl"])
        .status(3)
        .output_contains("not an operator")
        .run();

    // The checkpoint file is the operator's: written by the client with its own rights, and
    // read by it for `verify --checkpoint`.
    let home = tempfile::tempdir().expect("bob's dir");
    chmod(home.path(), 0o777);
    let file = home.path().join("checkpoints");
    let file = file.to_str().expect("utf-8");
    let checkpoint = team
        .opsgate("og-bob", &["audit", "checkpoint", "--append", file])
        .run();
    assert!(
        checkpoint
            .stdout
            .starts_with("opsgate audit checkpoint v1\n"),
        "{}",
        checkpoint.text()
    );
    let owner = std::fs::metadata(file).expect("the file").uid();
    assert_eq!(owner, id("-u", "og-bob"));
    team.opsgate("og-dave", &["audit", "verify", "--checkpoint", file])
        .stdout_contains("matches")
        .run();
}
