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
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use tempfile::TempDir;

use crate::common::pause;
use crate::gate::accounts::{Deployment, OPERATORS, SERVICE, chmod, chown, ensure_accounts};

/// Both streams of a finished command, for assertion messages.
fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
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
        ensure_accounts();
        let output = Command::new("groupadd")
            .args(["-f", TEAM_GROUP])
            .output()
            .expect("groupadd");
        assert!(output.status.success(), "groupadd: {}", text(&output));
        for account in OPERATORS {
            let output = Command::new("usermod")
                .args(["-a", "-G", TEAM_GROUP, account])
                .output()
                .expect("usermod");
            assert!(
                output.status.success(),
                "usermod {account}: {}",
                text(&output)
            );
        }
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
    service: Option<Child>,
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
        let dave = team.local("og-dave", &["run", "hello"]);
        assert_eq!(dave.status.code(), Some(3), "{}", text(&dave));
        let open = Command::new("chmod")
            .args(["-R", "a+rwX"])
            .arg(root.join("state"))
            .output()
            .expect("chmod");
        assert!(open.status.success(), "{}", text(&open));
        let bob = team.local("og-bob", &["run", "hello"]);
        assert_eq!(bob.status.code(), Some(3), "{}", text(&bob));
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
        let output = Command::new("chown")
            .arg(format!("{SERVICE}:{TEAM_GROUP}"))
            .arg(root.join("run"))
            .output()
            .expect("chown");
        assert!(output.status.success(), "{}", text(&output));
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
    fn spawn_service(&self) -> Child {
        Command::new(env!("CARGO_BIN_EXE_opsgate"))
            .arg("serve")
            .arg("--config")
            .arg(self.path().join("opsgate.yaml"))
            .current_dir("/")
            .env_remove("OPSGATE_STATE_DIR")
            .env_remove("OPSGATE_SOCKET")
            .env("NO_COLOR", "1")
            .uid(id("-u", SERVICE))
            .gid(id("-g", SERVICE))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("opsgate serve")
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
                .and_then(|service| service.try_wait().expect("try_wait"));
            if exited.is_some() || Instant::now() > deadline {
                let output = self
                    .service
                    .take()
                    .expect("a service")
                    .wait_with_output()
                    .expect("service output");
                panic!("the service did not start: {}", text(&output));
            }
            pause(Duration::from_millis(50));
        }
    }

    /// opsgate as `account` without a service: a policy without a service, own files.
    fn local(&self, account: &str, args: &[&str]) -> Output {
        Command::new("runuser")
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
            .env_remove("SUDO_USER")
            .stdin(Stdio::null())
            .output()
            .expect("runuser")
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

    fn run(&self, account: &str, args: &[&str]) -> Output {
        self.command(account, args).output().expect("runuser")
    }

    /// Sends SIGTERM and returns the service's exit and log.
    fn stop(&mut self) -> Output {
        let service = self.service.take().expect("a running service");
        let pid = service.id().to_string();
        let kill = Command::new("kill")
            .args(["-TERM", &pid])
            .output()
            .expect("kill");
        assert!(kill.status.success(), "{}", text(&kill));
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut service = service;
        while service.try_wait().expect("try_wait").is_none() {
            assert!(Instant::now() < deadline, "the service ignored SIGTERM");
            pause(Duration::from_millis(50));
        }
        service.wait_with_output().expect("service output")
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
            let _ = service.kill();
            let _ = service.wait();
        }
    }
}

fn read_json(reader: &mut impl BufRead) -> serde_json::Value {
    let mut line = String::new();
    reader.read_line(&mut line).expect("a response line");
    serde_json::from_str(&line).unwrap_or_else(|error| panic!("{error}: {line:?}"))
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn identity_is_the_peer_uid_and_sudo_user_claims_nothing() {
    let team = Team::start();
    let bob = team.run("og-bob", &["whoami"]);
    let out = text(&bob);
    assert_eq!(bob.status.code(), Some(0), "{out}");
    assert!(out.contains("operator: og-bob"), "{out}");
    assert!(out.contains("level:    L2"), "{out}");
    assert!(
        out.contains("identity: the peer uid of your connection to the opsgate service"),
        "{out}"
    );
    assert!(out.contains("mode:     team"), "{out}");

    // A client that sets SUDO_USER (and OPSGATE_SOCKET, its own way to find the service) is
    // still itself.
    let forged = team
        .command("og-bob", &["--json", "whoami"])
        .env("SUDO_USER", "og-alice")
        .env("OPSGATE_SOCKET", team.socket())
        .output()
        .expect("runuser");
    assert_eq!(forged.status.code(), Some(0), "{}", text(&forged));
    let json: serde_json::Value = serde_json::from_slice(&forged.stdout).expect("whoami --json");
    assert_eq!(json["operator"], "og-bob", "{json}");
    assert_eq!(json["level"], 2, "{json}");
    assert_eq!(json["source"], "peer", "{json}");
    assert_eq!(json["mode"], "team", "{json}");
    assert_eq!(json["uid"], id("-u", "og-bob"), "{json}");

    // An account outside the socket's group cannot even connect.
    let outsider = team
        .command("nobody", &["whoami"])
        .env("OPSGATE_SOCKET", team.socket())
        .output()
        .expect("runuser");
    assert_eq!(outsider.status.code(), Some(1), "{}", text(&outsider));
    assert!(
        text(&outsider).contains("cannot connect to the opsgate service"),
        "{}",
        text(&outsider)
    );

    // Twenty clients at once are each answered as themselves.
    let clients: Vec<(&str, Child)> = OPERATORS
        .iter()
        .cycle()
        .take(20)
        .map(|account| {
            let child = team
                .command(account, &["--json", "whoami"])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("runuser");
            (*account, child)
        })
        .collect();
    for (account, child) in clients {
        let output = child.wait_with_output().expect("client");
        let json: serde_json::Value = serde_json::from_slice(&output.stdout)
            .unwrap_or_else(|error| panic!("{account}: {error}: {}", text(&output)));
        assert_eq!(json["operator"], account, "{json}");
    }

    // An unlisted account is told so, with the exit code scripts check.
    let dave = team.run("og-dave", &["whoami"]);
    assert_eq!(dave.status.code(), Some(3), "{}", text(&dave));
    assert!(
        text(&dave).contains("account `og-dave` is not listed"),
        "{}",
        text(&dave)
    );

    // The catalog and the pending runs come from the service's project, rendered as locally.
    let catalog = team.run("og-carol", &["catalog"]);
    assert_eq!(catalog.status.code(), Some(0), "{}", text(&catalog));
    assert!(
        stdout(&catalog).starts_with("RUNBOOK"),
        "{}",
        text(&catalog)
    );
    assert!(stdout(&catalog).contains("hello"), "{}", text(&catalog));
    assert!(stdout(&catalog).contains("draft"), "{}", text(&catalog));
    let pending = team.run("og-alice", &["pending"]);
    assert_eq!(pending.status.code(), Some(0), "{}", text(&pending));
    assert_eq!(stdout(&pending), "no pending runs that you may approve\n");
}

#[test]
fn service_options_are_refused_in_team_mode() {
    let team = Team::start();
    for (args, option) in [
        (&["-i", "/tmp/evil.yaml", "catalog"][..], "`-i/--inventory`"),
        (&["--policy", "/tmp/evil.yaml", "whoami"][..], "`--policy`"),
        (&["--state-dir", "/tmp/evil", "history"][..], "`--state-dir"),
    ] {
        let output = team.run("og-bob", args);
        let out = text(&output);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {out}");
        assert!(out.contains(option), "{args:?}: {out}");
        assert!(out.contains("cannot be chosen in team mode"), "{out}");
    }
    let from_env = team
        .command("og-bob", &["history"])
        .env("OPSGATE_STATE_DIR", "/tmp/evil")
        .output()
        .expect("runuser");
    assert_eq!(from_env.status.code(), Some(2), "{}", text(&from_env));
    assert!(
        text(&from_env).contains("OPSGATE_STATE_DIR"),
        "{}",
        text(&from_env)
    );
}

#[test]
fn an_unlisted_account_sees_only_its_own_runs() {
    let team = Team::start();
    let all = team.run("og-alice", &["--json", "history"]);
    assert_eq!(all.status.code(), Some(0), "{}", text(&all));
    let runs: serde_json::Value = serde_json::from_slice(&all.stdout).expect("history --json");
    let operators: Vec<&str> = runs
        .as_array()
        .expect("a list")
        .iter()
        .map(|run| run["operator"].as_str().expect("an operator"))
        .collect();
    assert_eq!(operators, ["og-bob", "og-dave"], "{runs}");
    let bob_run = runs[0]["id"].as_i64().expect("a run id").to_string();

    let dave = team.run("og-dave", &["history"]);
    let out = stdout(&dave);
    assert_eq!(dave.status.code(), Some(0), "{}", text(&dave));
    assert!(out.starts_with("RUN"), "{out}");
    assert!(out.contains("og-dave"), "{out}");
    assert!(!out.contains("og-bob"), "{out}");

    let other = team.run("og-dave", &["history", "--operator", "og-bob"]);
    assert_eq!(other.status.code(), Some(3), "{}", text(&other));
    let shown = team.run("og-dave", &["history", "show", &bob_run]);
    assert_eq!(shown.status.code(), Some(3), "{}", text(&shown));
    assert!(
        text(&shown).contains("may see only its own runs"),
        "{}",
        text(&shown)
    );
    // An operator reads it in full, exactly as the local command renders it.
    let alice = team.run("og-alice", &["history", "show", &bob_run]);
    assert_eq!(alice.status.code(), Some(0), "{}", text(&alice));
    assert!(stdout(&alice).contains("og-bob"), "{}", text(&alice));
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
    let pid = team.service.as_ref().expect("a service").id().to_string();
    let hangup = Command::new("kill")
        .args(["-HUP", &pid])
        .output()
        .expect("kill");
    assert!(hangup.status.success(), "{}", text(&hangup));
    pause(Duration::from_millis(200));
    // A second service on the same socket refuses to take it over.
    let second = team.spawn_service().wait_with_output().expect("serve");
    assert_eq!(second.status.code(), Some(1), "{}", text(&second));
    assert!(
        text(&second).contains("already listening"),
        "{}",
        text(&second)
    );
    // The service still serves, and stops cleanly on SIGTERM, removing its socket.
    let bob = team.run("og-bob", &["whoami"]);
    assert_eq!(bob.status.code(), Some(0), "{}", text(&bob));
    let stopped = team.stop();
    assert!(stopped.status.success(), "{}", text(&stopped));
    assert!(text(&stopped).contains("stopped"), "{}", text(&stopped));
    assert!(
        text(&stopped).contains("SIGHUP ignored"),
        "{}",
        text(&stopped)
    );
    assert!(!team.socket().exists());
    let after = team.run("og-bob", &["whoami"]);
    assert_eq!(after.status.code(), Some(1), "{}", text(&after));
    assert!(
        text(&after).contains("cannot connect to the opsgate service"),
        "{}",
        text(&after)
    );
}

#[test]
fn the_service_refuses_a_policy_others_can_write() {
    let mut team = Team::start();
    team.stop();
    let policy = team.path().join("policy/operators.yaml");
    chmod(&policy, 0o666);
    let output = team.spawn_service().wait_with_output().expect("serve");
    let out = text(&output);
    assert_eq!(output.status.code(), Some(3), "{out}");
    assert!(out.contains("is writable by group or others"), "{out}");
    assert!(out.contains("the service refuses to serve"), "{out}");
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
    let output = team.run("og-alice", &["--json", "history"]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    serde_json::from_slice::<serde_json::Value>(&output.stdout)
        .expect("history --json")
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
    let bob = team.run("og-bob", &["run", "hello"]);
    let out = stdout(&bob);
    assert_eq!(bob.status.code(), Some(0), "{}", text(&bob));
    assert!(out.contains("lab1"), "{out}");
    assert!(out.contains("RECAP"), "{out}");
    // Without `-v`, a step that did not fail shows no output excerpt.
    assert!(!out.contains("| greetings from the lab"), "{out}");
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
    let json = team.run("og-carol", &["--json", "run", "hello", "-l", "lab2"]);
    assert_eq!(json.status.code(), Some(0), "{}", text(&json));
    let events: Vec<serde_json::Value> = stdout(&json)
        .lines()
        .map(|line| serde_json::from_str(line).expect("an event per line"))
        .collect();
    assert!(!events.is_empty(), "{}", text(&json));
    assert!(
        events
            .iter()
            .all(|event| event.get("event").is_some() || event.get("type").is_some()),
        "{events:?}"
    );

    // `-v` travels in the request: the service renders every step's output excerpt.
    let verbose = team.run("og-bob", &["run", "hello", "-v", "-l", "lab1"]);
    assert_eq!(verbose.status.code(), Some(0), "{}", text(&verbose));
    assert!(
        stdout(&verbose).contains("| greetings from the lab"),
        "{}",
        text(&verbose)
    );

    // The gate judges the peer: og-dave (L1) may not run a min_level 2 runbook, whatever
    // SUDO_USER says; a path is refused before anything is opened.
    let dave = team
        .command("og-dave", &["run", "hello"])
        .env("SUDO_USER", "og-alice")
        .output()
        .expect("runuser");
    assert_eq!(dave.status.code(), Some(3), "{}", text(&dave));
    assert!(text(&dave).contains("og-dave"), "{}", text(&dave));
    let path = team.run("og-alice", &["run", "/etc/opsgate/evil.yaml"]);
    assert_eq!(path.status.code(), Some(2), "{}", text(&path));
    assert!(text(&path).contains("by id"), "{}", text(&path));
}

#[test]
fn a_lost_client_does_not_stop_its_run_and_ctrl_c_cancels() {
    let team = Team::with_lab(1, &[("slow", SLOW)]);
    // Killed mid-run: the run is the service's, finishes and is recorded.
    let mut client = team
        .direct("og-bob", &["run", "slow"])
        .spawn()
        .expect("client");
    let deadline = Instant::now() + Duration::from_secs(30);
    while runs(&team).is_empty() {
        assert!(Instant::now() < deadline, "the run never started");
        pause(Duration::from_millis(100));
    }
    client.kill().expect("kill the client");
    let _ = client.wait();
    let newest = finished_run(&team);
    assert_eq!(newest["status"], "ok", "{newest}");
    assert!(team.deployment().lab_file("lab1", "slow.ran").exists());

    // Ctrl-C (SIGINT to the client) sends a cancel: no new step starts, the run is cancelled.
    std::fs::remove_file(team.deployment().lab_file("lab1", "slow.ran")).expect("reset");
    let client = team
        .direct("og-bob", &["run", "slow"])
        .spawn()
        .expect("client");
    let deadline = Instant::now() + Duration::from_secs(30);
    while runs(&team).len() < 2 {
        assert!(Instant::now() < deadline, "the second run never started");
        pause(Duration::from_millis(100));
    }
    pause(Duration::from_millis(500));
    let interrupt = Command::new("kill")
        .args(["-INT", &client.id().to_string()])
        .output()
        .expect("kill");
    assert!(interrupt.status.success(), "{}", text(&interrupt));
    let output = client.wait_with_output().expect("client");
    assert_eq!(output.status.code(), Some(130), "{}", text(&output));
    assert!(text(&output).contains("interrupted"), "{}", text(&output));
    let newest = finished_run(&team);
    assert_eq!(newest["status"], "cancelled", "{newest}");
    assert!(!team.deployment().lab_file("lab1", "slow.ran").exists());
}

#[test]
fn stopping_the_service_cancels_its_runs_on_record() {
    let mut team = Team::with_lab(1, &[("slow", SLOW)]);
    let client = team
        .direct("og-bob", &["run", "slow"])
        .spawn()
        .expect("client");
    let deadline = Instant::now() + Duration::from_secs(30);
    while runs(&team).is_empty() {
        assert!(Instant::now() < deadline, "the run never started");
        pause(Duration::from_millis(100));
    }
    pause(Duration::from_millis(500));
    let stopped = team.stop();
    assert!(stopped.status.success(), "{}", text(&stopped));
    let output = client.wait_with_output().expect("client");
    assert_eq!(output.status.code(), Some(130), "{}", text(&output));
    assert!(!team.deployment().lab_file("lab1", "slow.ran").exists());
    // Read on the store itself, as root: the run ended on record as cancelled.
    let history = Command::new(env!("CARGO_BIN_EXE_opsgate"))
        .args(["--json", "history", "--state-dir"])
        .arg(team.path().join("state"))
        .current_dir("/")
        .env_remove("OPSGATE_SOCKET")
        .env_remove("OPSGATE_STATE_DIR")
        .output()
        .expect("history");
    assert_eq!(history.status.code(), Some(0), "{}", text(&history));
    let runs: serde_json::Value = serde_json::from_slice(&history.stdout).expect("history --json");
    assert_eq!(runs[0]["status"], "cancelled", "{runs}");
}

const LOW: &str = "runbook: low\nkind: maintenance\nmin_level: 1\ntargets: lab\nsteps:\n  \
    - name: hi\n    command: echo hi\n";

/// The id of the run waiting for an approval, as `og-alice`'s `pending --json` lists it.
fn pending_run(team: &Team) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let output = team.run("og-alice", &["--json", "pending"]);
        assert_eq!(output.status.code(), Some(0), "{}", text(&output));
        let pending: serde_json::Value =
            serde_json::from_slice(&output.stdout).expect("pending --json");
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
        .command("og-dave", &["run", "low", "--approval-timeout", "60s"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("og-dave's run");
    let run = pending_run(&team);

    // Two-person rule: nobody approves their own run; og-bob (L2) is below the approver level.
    let own = team.run("og-dave", &["approve", "run", &run]);
    assert_eq!(own.status.code(), Some(3), "{}", text(&own));
    let bob = team.run("og-bob", &["approve", "run", &run]);
    assert_eq!(bob.status.code(), Some(3), "{}", text(&bob));
    // A signature needs a key the service cannot read: not offered in team mode yet.
    let signed = team.run(
        "og-carol",
        &["approve", "run", &run, "--sign", "/nonexistent"],
    );
    assert_eq!(signed.status.code(), Some(2), "{}", text(&signed));
    assert!(text(&signed).contains("team mode"), "{}", text(&signed));

    let carol = team.run(
        "og-carol",
        &["approve", "run", &run, "--reason", "looks fine"],
    );
    assert_eq!(carol.status.code(), Some(0), "{}", text(&carol));
    assert!(
        stdout(&carol).contains(&format!("approved the run of run {run}")),
        "{}",
        text(&carol)
    );
    let dave = dave.wait_with_output().expect("og-dave's run ends");
    assert_eq!(dave.status.code(), Some(0), "{}", text(&dave));
    assert!(
        text(&dave).contains("approved by `og-carol`"),
        "{}",
        text(&dave)
    );

    // The history of it, through the same socket.
    let export = team.run("og-alice", &["audit", "export", "--jsonl"]);
    assert_eq!(export.status.code(), Some(0), "{}", text(&export));
    assert!(
        stdout(&export).contains("\"approval_granted\""),
        "{}",
        text(&export)
    );
    let verify = team.run("og-bob", &["audit", "verify"]);
    assert_eq!(verify.status.code(), Some(0), "{}", text(&verify));
    assert!(
        stdout(&verify).starts_with("audit history intact"),
        "{}",
        text(&verify)
    );
    let backups = team.run("og-bob", &["backups"]);
    assert_eq!(backups.status.code(), Some(0), "{}", text(&backups));
    assert_eq!(stdout(&backups), "no backups recorded match\n");
}

#[test]
fn catalog_approval_and_audit_commands_go_through_the_service() {
    let team = Team::start();
    // A catalog runbook is approved by id; a path is refused before anything is opened.
    let path = team.run("og-alice", &["approve", "runbook", "/etc/shadow"]);
    assert_eq!(path.status.code(), Some(2), "{}", text(&path));
    assert!(text(&path).contains("by id"), "{}", text(&path));
    let carol = team.run("og-carol", &["approve", "runbook", "hello"]);
    assert_eq!(carol.status.code(), Some(3), "{}", text(&carol));
    let alice = team.run("og-alice", &["approve", "runbook", "hello"]);
    assert_eq!(alice.status.code(), Some(0), "{}", text(&alice));
    assert!(
        stdout(&alice).contains("approved runbook `hello`"),
        "{}",
        text(&alice)
    );
    let catalog = team.run("og-bob", &["catalog"]);
    assert!(stdout(&catalog).contains("approved"), "{}", text(&catalog));

    // `audit export` needs an operator (SPEC §4.1): unlisted og-dave is refused.
    let dave = team.run("og-dave", &["audit", "export", "--jsonl"]);
    assert_eq!(dave.status.code(), Some(3), "{}", text(&dave));
    assert!(text(&dave).contains("not an operator"), "{}", text(&dave));

    // The checkpoint file is the operator's: written by the client with its own rights, and
    // read by it for `verify --checkpoint`.
    let home = tempfile::tempdir().expect("bob's dir");
    chmod(home.path(), 0o777);
    let file = home.path().join("checkpoints");
    let file = file.to_str().expect("utf-8");
    let checkpoint = team.run("og-bob", &["audit", "checkpoint", "--append", file]);
    assert_eq!(checkpoint.status.code(), Some(0), "{}", text(&checkpoint));
    assert!(
        stdout(&checkpoint).starts_with("opsgate audit checkpoint v1\n"),
        "{}",
        text(&checkpoint)
    );
    let owner = std::fs::metadata(file).expect("the file").uid();
    assert_eq!(owner, id("-u", "og-bob"));
    let verify = team.run("og-dave", &["audit", "verify", "--checkpoint", file]);
    assert_eq!(verify.status.code(), Some(0), "{}", text(&verify));
    assert!(stdout(&verify).contains("matches"), "{}", text(&verify));
}
