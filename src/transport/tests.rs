//! The transport against real OpenSSH servers started by [`TestSshd`].

use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use sha2::{Digest as _, Sha256};

use super::test_sshd::{TestSshd, free_port, keygen};
use super::{
    CommandOutput, CommandProblem, Connection, HostKeyProblem, MAX_CHANNELS, Program,
    RemoteCommand, RemoteStatus, SshTarget, Transport, TransportError,
};

const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Connects to `target` with a fresh control directory, failing the test with sshd's log.
async fn connect(server: &TestSshd, target: &SshTarget) -> (Connection, tempfile::TempDir) {
    let control = control_dir();
    match Connection::connect(target, control.path(), CONNECT_TIMEOUT).await {
        Ok(connection) => (connection, control),
        Err(error) => panic!(
            "connect failed: {error}\ncaused by: {:?}\nsshd log:\n{}",
            std::error::Error::source(&error),
            server.log()
        ),
    }
}

/// A short control directory: the master's socket path must stay under ~100 bytes.
fn control_dir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("og-ctl-")
        .tempdir_in("/tmp")
        .expect("control dir")
}

async fn run(connection: &Connection, command: &RemoteCommand) -> CommandOutput {
    connection.run(command).await.unwrap_or_else(|error| {
        panic!(
            "run failed: {error}: {:?}",
            std::error::Error::source(&error)
        )
    })
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8(bytes.to_vec()).expect("utf-8 output")
}

/// A word no other process on this machine has in its command line.
fn unique_marker() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .subsec_nanos();
    format!(
        "{}{:09}{}",
        std::process::id(),
        nanos,
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// PIDs of local processes whose command line contains `marker` (sshd runs here, so remote
/// processes are local ones).
fn processes_with(marker: &str) -> Vec<String> {
    let output = Command::new("pgrep")
        .arg("-f")
        .arg(marker)
        .output()
        .expect("run pgrep");
    text(&output.stdout)
        .lines()
        .map(str::to_owned)
        .filter(|pid| *pid != std::process::id().to_string())
        .collect()
}

/// Waits up to five seconds for every process with `marker` to be gone.
async fn assert_processes_gone(marker: &str) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let left = processes_with(marker);
        if left.is_empty() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "processes with `{marker}` survived: {left:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `sleep` for a long time under a name that is unique to `marker`: `sleep 9999.MARKER`
/// would not parse, so the marker becomes the fractional part of a number of seconds.
fn long_sleep(marker: &str) -> String {
    format!("sleep 9999.{marker}")
}

fn master_alive(pid: u32) -> bool {
    let pid = libc::pid_t::try_from(pid).expect("pid fits");
    // SAFETY: signal 0 only checks that the process exists.
    let exists = unsafe { libc::kill(pid, 0) == 0 };
    // An exited master waiting to be reaped by its adopter holds nothing: it is not alive.
    exists && !super::ssh::is_zombie(pid)
}

/// PIDs of the ssh masters whose control directory is inside `control`.
fn masters_in(control: &Path) -> Vec<String> {
    processes_with(&control.display().to_string())
}

#[tokio::test]
async fn run_returns_stdout_stderr_and_exit_code_over_one_connection() {
    let server = TestSshd::start().await;
    let (connection, _control) = connect(&server, &server.target("lab1")).await;
    assert_eq!(connection.host(), "lab1");
    assert_eq!(connection.login_user(), server.user);

    let output = run(
        &connection,
        &RemoteCommand::script("echo out; echo err >&2; exit 3"),
    )
    .await;
    assert_eq!(output.status, RemoteStatus::Exited(3));
    assert_eq!(text(&output.stdout), "out\n");
    assert_eq!(text(&output.stderr), "err\n");

    // Both commands travel over the same TCP connection: the client port does not change.
    let first = run(&connection, &RemoteCommand::script("echo $SSH_CONNECTION")).await;
    let second = run(&connection, &RemoteCommand::script("echo $SSH_CONNECTION")).await;
    assert_eq!(first.stdout, second.stdout);
    assert!(!first.stdout.is_empty());

    let missing = run(
        &connection,
        &RemoteCommand::argv(["no-such-command-opsgate"]),
    )
    .await;
    assert_eq!(missing.status, RemoteStatus::Exited(127));

    // The wrapper around the command (the parent of `timeout`) dies by a signal that opsgate
    // did not send: the channel ends without an exit status while the master is fine.
    let signaled = run(
        &connection,
        &RemoteCommand::script("kill -s KILL \"$(cut -d' ' -f4 /proc/$PPID/stat)\""),
    )
    .await;
    assert_eq!(signaled.status, RemoteStatus::Signaled);
    // Removing the pid file was the dead wrapper's job.
    let token = connection.pid_file_token().to_owned();
    std::fs::remove_file(format!("/tmp/.opsgate-{token}-4.pid")).expect("the wrapper's pid file");
    connection.close().await.expect("close");
}

#[tokio::test]
async fn argv_words_and_script_text_arrive_as_written() {
    let server = TestSshd::start().await;
    let (connection, _control) = connect(&server, &server.target("lab1")).await;

    let dangerous = "x; rm -rf /";
    let output = run(
        &connection,
        &RemoteCommand::argv(["sh", "-c", "printf '%s|' \"$#\" \"$@\"", "sh", dangerous]),
    )
    .await;
    assert_eq!(text(&output.stdout), "1|x; rm -rf /|");

    let words = ["it's", "$(id)", "`id`", "*", "a\nb", "", "~", "a=b"];
    let mut argv = vec!["printf".to_owned(), "[%s]".to_owned()];
    argv.extend(words.iter().map(|word| (*word).to_owned()));
    let output = run(&connection, &RemoteCommand::new(Program::Argv(argv))).await;
    let expected = words
        .iter()
        .fold(String::new(), |text, word| text + "[" + word + "]");
    assert_eq!(text(&output.stdout), expected);

    let script = format!(
        "printf '%s\\n' {} | tr a-z A-Z && echo \"quotes: '\\\"\"",
        crate::quote::shell_quote(dangerous)
    );
    let output = run(&connection, &RemoteCommand::script(script)).await;
    assert_eq!(text(&output.stdout), "X; RM -RF /\nquotes: '\"\n");

    let bash = RemoteCommand::new(Program::Script {
        text: "echo ${BASH_VERSION:+bash}".to_owned(),
        executable: Some("/bin/bash".to_owned()),
    });
    assert_eq!(text(&run(&connection, &bash).await.stdout), "bash\n");
    connection.close().await.expect("close");
}

#[tokio::test]
async fn env_values_are_passed_verbatim_and_names_are_checked() {
    let server = TestSshd::start().await;
    let (connection, _control) = connect(&server, &server.target("lab1")).await;
    let value = "hello 'world' $(id) \"x\"\nsecond line";
    let mut command = RemoteCommand::script("printf '%s' \"$GREETING\"; printf '|%s' \"$OTHER\"");
    command.env = vec![
        ("GREETING".to_owned(), value.to_owned()),
        ("OTHER".to_owned(), String::new()),
    ];
    let output = run(&connection, &command).await;
    assert_eq!(text(&output.stdout), format!("{value}|"));

    command.env = vec![("NOT-VALID".to_owned(), "x".to_owned())];
    match connection.run(&command).await {
        Err(TransportError::InvalidCommand {
            host,
            problem: CommandProblem::InvalidEnvName(name),
        }) => {
            assert_eq!(host, "lab1");
            assert_eq!(name, "NOT-VALID");
        }
        other => panic!("expected an invalid env name, got {other:?}"),
    }
    connection.close().await.expect("close");
}

#[tokio::test]
async fn large_stdin_and_large_output_flow_without_deadlock() {
    let server = TestSshd::start().await;
    let (connection, _control) = connect(&server, &server.target("lab1")).await;

    // 200 KB of varied bytes: checksum on the host equals the local one.
    let upload: Vec<u8> = (0..200_000_u32)
        .map(|index| (index.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let mut command = RemoteCommand::argv(["sha256sum"]);
    command.stdin = Some(upload.clone());
    let output = run(&connection, &command).await;
    let expected = hex::encode(Sha256::digest(&upload));
    assert_eq!(text(&output.stdout), format!("{expected}  -\n"));

    // `cat` echoes while it reads: only concurrent writing and reading can finish this.
    let echo: Vec<u8> = upload.iter().cycle().take(3_000_000).copied().collect();
    let mut command = RemoteCommand::argv(["cat"]);
    command.stdin = Some(echo.clone());
    command.timeout = Some(Duration::from_secs(60));
    let output = run(&connection, &command).await;
    assert_eq!(output.status, RemoteStatus::Exited(0));
    assert!(output.stdout == echo, "echoed bytes differ");

    let output = run(
        &connection,
        &RemoteCommand::script("seq 1 1000; seq 1 1000 >&2"),
    )
    .await;
    let lines: Vec<String> = text(&output.stdout).lines().map(str::to_owned).collect();
    assert_eq!(lines.len(), 1000);
    assert_eq!(lines[999], "1000");
    assert_eq!(text(&output.stderr).lines().count(), 1000);

    let output = run(
        &connection,
        &RemoteCommand::script("head -c 5000000 /dev/zero | tr '\\0' x"),
    )
    .await;
    assert_eq!(output.stdout.len(), 5_000_000);
    connection.close().await.expect("close");
}

#[tokio::test]
async fn timeout_kills_the_whole_remote_process_group() {
    let server = TestSshd::start().await;
    let (connection, _control) = connect(&server, &server.target("lab1")).await;
    let marker = unique_marker();
    // A background child and a foreground one: both must go.
    let mut command = RemoteCommand::script(format!(
        "echo started; {sleep} & {sleep}; echo never",
        sleep = long_sleep(&marker)
    ));
    command.timeout = Some(Duration::from_secs(1));
    let started = Instant::now();
    let output = run(&connection, &command).await;
    assert_eq!(output.status, RemoteStatus::TimedOut);
    assert_eq!(text(&output.stdout), "started\n");
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "took {:?}",
        started.elapsed()
    );
    assert_processes_gone(&marker).await;

    // A command that ignores TERM is killed after timeout's grace period.
    let marker = unique_marker();
    let mut command = RemoteCommand::script(format!(
        "trap '' TERM; {sleep} & wait; {sleep}",
        sleep = long_sleep(&marker)
    ));
    command.timeout = Some(Duration::from_secs(1));
    let output = run(&connection, &command).await;
    assert_eq!(output.status, RemoteStatus::TimedOut);
    assert_processes_gone(&marker).await;

    // The pid files of finished commands are gone too.
    let leftover = run(
        &connection,
        &RemoteCommand::script(format!(
            "ls /tmp/.opsgate-{}-* 2>/dev/null | wc -l",
            connection.pid_file_token()
        )),
    )
    .await;
    // The `ls` command's own pid file is the only one.
    assert_eq!(text(&leftover.stdout).trim(), "1");
    connection.close().await.expect("close");
}

#[tokio::test]
async fn kill_running_kills_every_running_command() {
    let server = TestSshd::start().await;
    let (connection, _control) = connect(&server, &server.target("lab1")).await;
    let marker = unique_marker();
    let sleeper = RemoteCommand::script(format!("{sleep} & {sleep}", sleep = long_sleep(&marker)));
    let mut as_nobody = RemoteCommand::script(long_sleep(&marker));
    as_nobody.become_user = Some("nobody".to_owned());
    let quick = RemoteCommand::script("true");

    let started = Instant::now();
    let (first, second, third, finished) = tokio::join!(
        connection.run(&sleeper),
        connection.run(&as_nobody),
        connection.run(&quick),
        async {
            // Long enough for the sleepers to record their process groups.
            tokio::time::sleep(Duration::from_secs(2)).await;
            Transport::kill_running(&connection).await;
        },
    );
    let ((), first, second, third) = (finished, first, second, third);
    assert_eq!(first.expect("first run").status, RemoteStatus::Killed);
    assert_eq!(second.expect("second run").status, RemoteStatus::Killed);
    assert_eq!(third.expect("third run").status, RemoteStatus::Exited(0));
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_processes_gone(&marker).await;

    // The connection is still usable afterwards.
    let output = run(&connection, &RemoteCommand::script("echo alive")).await;
    assert_eq!(text(&output.stdout), "alive\n");
    connection.close().await.expect("close");
}

#[tokio::test]
async fn become_uses_sudo_only_for_another_account() {
    let server = TestSshd::start().await;
    let (connection, _control) = connect(&server, &server.target("lab1")).await;

    let mut same = RemoteCommand::script("id -un; echo \"${SUDO_USER:-no sudo}\"");
    same.become_user = Some(server.user.clone());
    let output = run(&connection, &same).await;
    assert_eq!(text(&output.stdout), format!("{}\nno sudo\n", server.user));

    let mut other = RemoteCommand::script("id -un; printf '%s' \"$GREETING\"");
    other.become_user = Some("nobody".to_owned());
    other.env = vec![("GREETING".to_owned(), "kept through sudo".to_owned())];
    let output = run(&connection, &other).await;
    assert_eq!(text(&output.stdout), "nobody\nkept through sudo");

    let mut unknown = RemoteCommand::script("true");
    unknown.become_user = Some("no-such-user-opsgate".to_owned());
    match connection.run(&unknown).await {
        Err(error @ TransportError::Become { .. }) => {
            assert!(
                error.to_string().contains("no-such-user-opsgate"),
                "{error}"
            );
            assert!(!error.hints().is_empty());
        }
        other => panic!("expected a become error, got {other:?}"),
    }
    connection.close().await.expect("close");
}

#[tokio::test]
async fn unknown_host_key_fails_with_host_key_error() {
    let server = TestSshd::start().await;
    let mut target = server.target("lab1");
    let empty = server.scratch("empty").join("known_hosts");
    std::fs::write(&empty, "").expect("write empty known_hosts");
    target.known_hosts = Some(empty);
    let control = control_dir();
    let error = Connection::connect(&target, control.path(), CONNECT_TIMEOUT)
        .await
        .expect_err("an unknown host key must fail");
    match &error {
        TransportError::HostKey { host, problem, .. } => {
            assert_eq!(host, "lab1");
            assert_eq!(*problem, HostKeyProblem::Unknown);
        }
        other => panic!("expected a host key error, got {other:?}"),
    }
    assert!(error.to_string().contains("`lab1`"), "{error}");
    let hints = error.hints().join("\n");
    assert!(
        hints.contains(&format!(
            "ssh-keyscan -p {} -t ed25519 127.0.0.1",
            server.port
        )),
        "{hints}"
    );
    assert!(hints.contains("host_key:"), "{hints}");
    assert!(masters_in(control.path()).is_empty());
}

#[tokio::test]
async fn changed_host_key_fails_with_host_key_error() {
    let server = TestSshd::start().await;
    let other_key = server.scratch("other").join("host_ed25519");
    let other_public_key = keygen(&other_key);
    let recorded = server.scratch("changed").join("known_hosts");
    std::fs::write(
        &recorded,
        format!("[127.0.0.1]:{} {other_public_key}\n", server.port),
    )
    .expect("write known_hosts");
    let mut target = server.target("lab1");
    target.known_hosts = Some(recorded);
    let control = control_dir();
    let error = Connection::connect(&target, control.path(), CONNECT_TIMEOUT)
        .await
        .expect_err("a changed host key must fail");
    assert!(
        matches!(
            &error,
            TransportError::HostKey { host, problem: HostKeyProblem::Changed, .. } if host == "lab1"
        ),
        "{error:?}"
    );
    let hints = error.hints().join("\n");
    assert!(
        hints.contains(&format!("ssh-keygen -R '[127.0.0.1]:{}'", server.port)),
        "{hints}"
    );

    // A wrong pinned key is a changed key as well.
    let mut pinned = server.target("lab1");
    pinned.known_hosts = None;
    pinned.host_key = Some(other_public_key);
    let error = Connection::connect(&pinned, control.path(), CONNECT_TIMEOUT)
        .await
        .expect_err("a wrong pinned key must fail");
    assert!(
        matches!(
            &error,
            TransportError::HostKey {
                problem: HostKeyProblem::Changed,
                ..
            }
        ),
        "{error:?}"
    );
}

#[tokio::test]
async fn pinned_host_key_works_without_known_hosts() {
    let server = TestSshd::start().await;
    let mut target = server.target("lab1");
    target.known_hosts = None;
    target.host_key = Some(format!("{} pinned-in-inventory", server.host_public_key));
    let (connection, _control) = connect(&server, &target).await;
    let output = run(&connection, &RemoteCommand::argv(["echo", "pinned"])).await;
    assert_eq!(text(&output.stdout), "pinned\n");
    connection.close().await.expect("close");
}

#[tokio::test]
async fn ssh_options_and_the_inventory_ssh_config_are_honoured() {
    let server = TestSshd::start().await;
    // The port comes only from the inventory's ssh config; the pinned key then has to match
    // any port of the address.
    let config = server.scratch("config").join("ssh_config");
    std::fs::write(&config, format!("Host 127.0.0.1\n  Port {}\n", server.port))
        .expect("write ssh_config");
    let mut target = server.target("lab1");
    target.port = None;
    target.known_hosts = None;
    target.host_key = Some(server.host_public_key.clone());
    target.ssh_config = Some(config);
    target.ssh_options = vec![
        "Compression=yes".to_owned(),
        "ServerAliveCountMax 2".to_owned(),
    ];
    let (connection, _control) = connect(&server, &target).await;
    let output = run(&connection, &RemoteCommand::script("echo configured")).await;
    assert_eq!(text(&output.stdout), "configured\n");
    connection.close().await.expect("close");
}

#[tokio::test]
async fn twenty_concurrent_commands_share_eight_channels() {
    let server = TestSshd::start().await;
    let (connection, _control) = connect(&server, &server.target("lab1")).await;
    let commands: Vec<RemoteCommand> = (0..20)
        .map(|index| RemoteCommand::script(format!("sleep 0.5; echo {index}")))
        .collect();
    let started = Instant::now();
    let outputs = futures_join_all(commands.iter().map(|command| connection.run(command))).await;
    let elapsed = started.elapsed();
    for (index, output) in outputs.into_iter().enumerate() {
        let output = output.unwrap_or_else(|error| panic!("command {index} failed: {error}"));
        assert_eq!(output.status, RemoteStatus::Exited(0));
        assert_eq!(text(&output.stdout), format!("{index}\n"));
    }
    // 20 commands of 0.5 s through 8 channels need three rounds.
    assert!(
        elapsed >= Duration::from_millis(1500),
        "finished in {elapsed:?}, so more than 8 ran at once"
    );
    connection.close().await.expect("close");
}

/// Runs all futures concurrently on this task and returns their results in order.
async fn futures_join_all<F: Future>(futures: impl Iterator<Item = F>) -> Vec<F::Output> {
    let mut pinned: Vec<_> = futures.map(Box::pin).collect();
    let mut results: Vec<Option<F::Output>> = pinned.iter().map(|_| None).collect();
    std::future::poll_fn(|context| {
        let mut pending = false;
        for (future, result) in pinned.iter_mut().zip(results.iter_mut()) {
            if result.is_none() {
                match future.as_mut().poll(context) {
                    std::task::Poll::Ready(value) => *result = Some(value),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    results
        .into_iter()
        .map(|result| result.expect("every future completed"))
        .collect()
}

#[tokio::test]
async fn close_and_drop_leave_no_master_behind() {
    let server = TestSshd::start().await;
    let (connection, control) = connect(&server, &server.target("lab1")).await;
    let masters = masters_in(control.path());
    assert_eq!(masters.len(), 1, "one master per connection: {masters:?}");
    let pid: u32 = masters[0].parse().expect("numeric pid");
    connection.close().await.expect("close");
    assert!(!master_alive(pid), "the master outlived close()");
    // The generated ssh config stays (the directory is the caller's); the socket goes.
    let left: Vec<String> = std::fs::read_dir(control.path())
        .expect("control dir")
        .map(|entry| {
            entry
                .expect("entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    assert_eq!(left, ["lab1.ssh_config"], "the socket directory is removed");

    let (connection, control) = connect(&server, &server.target("lab1")).await;
    let masters = masters_in(control.path());
    assert_eq!(masters.len(), 1);
    drop(connection);
    let deadline = Instant::now() + Duration::from_secs(5);
    while !masters_in(control.path()).is_empty() {
        assert!(Instant::now() < deadline, "the master outlived drop");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn jump_host_reaches_the_target_and_its_failures_are_named() {
    let jump_server = TestSshd::start().await;
    let server = TestSshd::start().await;
    let mut target = server.target("lab2");
    target.jump = Some(Box::new(jump_server.target("bastion")));
    let (connection, _control) = connect(&server, &target).await;
    let output = run(&connection, &RemoteCommand::script("echo $SSH_CONNECTION")).await;
    // The target sees the connection coming from the jump host's forwarding, which is local
    // here too; what matters is that the command ran over the jump.
    assert!(text(&output.stdout).starts_with("127.0.0.1 "));
    // The jump host was used: its sshd serves a session (a child process) while the
    // connection is open; nothing else connects to this test's own server.
    let sessions = Command::new("pgrep")
        .arg("-P")
        .arg(jump_server.pid().to_string())
        .output()
        .expect("run pgrep");
    assert!(
        !sessions.stdout.is_empty(),
        "the jump host serves no session:\n{}",
        jump_server.log()
    );
    connection.close().await.expect("close");

    // An unknown key on the jump host stops the target with an error naming the jump.
    let mut bad_jump = jump_server.target("bastion");
    let empty = jump_server.scratch("empty").join("known_hosts");
    std::fs::write(&empty, "").expect("write empty known_hosts");
    bad_jump.known_hosts = Some(empty);
    let mut target = server.target("lab2");
    target.jump = Some(Box::new(bad_jump));
    let control = control_dir();
    let error = Connection::connect(&target, control.path(), CONNECT_TIMEOUT)
        .await
        .expect_err("the jump's unknown key must fail");
    match &error {
        TransportError::Jump { host, jump, source } => {
            assert_eq!(host, "lab2");
            assert_eq!(jump, "bastion");
            assert!(
                matches!(
                    **source,
                    TransportError::HostKey {
                        problem: HostKeyProblem::Unknown,
                        ..
                    }
                ),
                "{source:?}"
            );
        }
        other => panic!("expected a jump error, got {other:?}"),
    }
    assert!(error.hints().join("\n").contains("ssh-keyscan"));
}

#[tokio::test]
async fn refused_logins_and_closed_ports_are_told_apart() {
    let server = TestSshd::start().await;
    let control = control_dir();

    let stranger = server.scratch("stranger").join("id_ed25519");
    keygen(&stranger);
    let mut target = server.target("lab1");
    target.identity_file = Some(stranger);
    let error = Connection::connect(&target, control.path(), CONNECT_TIMEOUT)
        .await
        .expect_err("an unknown client key must fail");
    assert!(
        matches!(error, TransportError::Authentication { ref host, .. } if host == "lab1"),
        "{error:?}"
    );

    let mut closed = server.target("lab1");
    closed.port = Some(free_port());
    let error = Connection::connect(&closed, control.path(), CONNECT_TIMEOUT)
        .await
        .expect_err("a closed port must fail");
    assert!(matches!(error, TransportError::Connect { .. }), "{error:?}");
    assert!(error.is_unreachable());
}

#[tokio::test]
async fn a_lost_connection_is_reported_as_disconnected() {
    let server = TestSshd::start().await;
    let (connection, _control) = connect(&server, &server.target("lab1")).await;
    run(&connection, &RemoteCommand::script("true")).await;

    // Kill the per-connection sshd processes that serve this client (children of the sshd
    // this test started), which cuts the TCP connection under the master.
    let children = Command::new("pgrep")
        .arg("-P")
        .arg(server.pid().to_string())
        .output()
        .expect("run pgrep");
    for pid in text(&children.stdout).lines() {
        let pid: libc::pid_t = pid.parse().expect("numeric pid");
        // SAFETY: a process started by this test's sshd, signalled by its PID.
        unsafe {
            libc::kill(pid, libc::SIGKILL);
        }
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    let error = loop {
        if let Err(error) = connection.run(&RemoteCommand::script("true")).await {
            break error;
        }
        assert!(Instant::now() < deadline, "the connection never broke");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(
        matches!(error, TransportError::Disconnected { ref host, .. } if host == "lab1"),
        "{error:?}"
    );
    assert!(error.is_unreachable());
}

#[tokio::test]
async fn close_ends_a_master_kept_busy_by_an_abandoned_command() {
    let server = TestSshd::start().await;
    let (connection, control) = connect(&server, &server.target("lab1")).await;
    let masters = masters_in(control.path());
    assert_eq!(masters.len(), 1);
    let pid: u32 = masters[0].parse().expect("numeric pid");
    let marker = unique_marker();
    let mut command = RemoteCommand::script(long_sleep(&marker));
    // Longer than `close` waits for an idle master, so `close` has to end it.
    command.timeout = Some(Duration::from_secs(8));
    let started = Instant::now();
    let abandoned =
        tokio::time::timeout(Duration::from_millis(500), connection.run(&command)).await;
    assert!(abandoned.is_err(), "the command was still running");
    connection.close().await.expect("close");
    assert!(!master_alive(pid), "the master outlived close()");
    assert!(!processes_with(&marker).is_empty(), "the command runs on");
    // The remote `timeout` still ends the abandoned command.
    tokio::time::sleep(Duration::from_secs(8).saturating_sub(started.elapsed())).await;
    assert_processes_gone(&marker).await;
}

#[tokio::test]
async fn kill_running_also_stops_commands_waiting_for_a_channel() {
    let server = TestSshd::start().await;
    let (connection, _control) = connect(&server, &server.target("lab1")).await;
    let marker = unique_marker();
    let sleeper = RemoteCommand::script(long_sleep(&marker));
    let started = Instant::now();
    let runs = futures_join_all((0..MAX_CHANNELS + 3).map(|_| connection.run(&sleeper)));
    let kill = async {
        tokio::time::sleep(Duration::from_secs(2)).await;
        connection.kill_running().await;
    };
    let (outputs, ()) = tokio::join!(runs, kill);
    for output in outputs {
        assert_eq!(output.expect("run").status, RemoteStatus::Killed);
    }
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_processes_gone(&marker).await;
    connection.close().await.expect("close");
}

/// sshd counts a session against `MaxSessions` for a moment after its exit status arrived;
/// bursts of short commands hit that and must be retried, not failed.
#[tokio::test]
async fn bursts_of_short_commands_are_not_refused_by_max_sessions() {
    let server = TestSshd::start().await;
    let (connection, _control) = connect(&server, &server.target("lab1")).await;
    for round in 0..5 {
        let commands: Vec<RemoteCommand> = (0..40)
            .map(|index| RemoteCommand::script(format!("echo {index}")))
            .collect();
        let outputs =
            futures_join_all(commands.iter().map(|command| connection.run(command))).await;
        for (index, output) in outputs.into_iter().enumerate() {
            let output =
                output.unwrap_or_else(|error| panic!("round {round}, command {index}: {error:?}"));
            assert_eq!(text(&output.stdout), format!("{index}\n"));
        }
    }
    connection.close().await.expect("close");
}
