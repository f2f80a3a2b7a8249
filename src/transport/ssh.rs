//! One multiplexed SSH connection per host, through the system OpenSSH client.
//!
//! [`Connection::connect`] starts an `ssh -M` control master (through the `openssh` crate's
//! native multiplexing) with strict host key checking and `BatchMode`, so ssh never prompts.
//! Every command of the host then opens a channel over that master: no new handshake, no new
//! login. The master is the only thing that talks to the network; this module decides what
//! each failure means ([`TransportError`]) and bounds everything it starts:
//! - at most [`MAX_CHANNELS`] commands at once per connection (sshd's `MaxSessions` is 10; one
//!   channel stays free for [`Connection::kill_running`]);
//! - every command runs under `timeout` on the host (see [`super::command`]) and, as a
//!   backstop, under a local timer a few seconds longer;
//! - standard input is written while standard output and error are read, so large uploads and
//!   large outputs never wait on each other.
//!
//! # Lifetime of the master
//! [`Connection::close`] asks the master to stop, waits until its process is gone (sending it
//! `TERM` when an abandoned channel keeps it busy) and removes its socket directory. Dropping
//! a [`Connection`] without `close` sends the same stop request synchronously (the `openssh`
//! session does it in its `Drop`) and deletes the directory, without waiting: the master
//! exits at once when idle, or when its last open channel ends, which each command's remote
//! `timeout` bounds. If opsgate itself is killed with `SIGKILL`, the master stays until the
//! network drops it; its socket lives in the caller's control directory, so that directory
//! should be a fresh temporary directory per run. The generated ssh config files stay in the
//! control directory too; removing the directory is the caller's job.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use openssh::{ControlPersist, KnownHosts, Session, SessionBuilder, Stdio};
use sha2::{Digest as _, Sha256};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::sync::Semaphore;

use super::command::{self, CommandProblem, KILL_AFTER_SECONDS, RemoteCommand};
use super::error::{
    ConnectFailure, SshMessage, TransportError, classify_connect_failure, ssh_message,
};
use super::target::{self, JumpHop, SERVER_ALIVE_INTERVAL, SshTarget};
use super::{CommandOutput, RemoteStatus, Transport};

/// The most commands one connection runs at once. sshd allows 10 sessions per connection by
/// default (`MaxSessions`); one more is kept for killing commands.
pub const MAX_CHANNELS: usize = 8;

/// How long past a command's timeout the local timer waits before it gives up on the remote
/// side: `timeout`'s own grace before `KILL`, plus time for the exit status to travel back.
const BACKSTOP_GRACE: Duration = Duration::from_secs(KILL_AFTER_SECONDS + 5);

/// Added to the connect timeout for the handshake and login, per hop, before the local timer
/// abandons a connection attempt that ssh's own `ConnectTimeout` did not end.
const HANDSHAKE_ALLOWANCE: Duration = Duration::from_secs(20);

/// How long [`Connection::close`] waits for the master process to exit.
const CLOSE_WAIT: Duration = Duration::from_secs(5);

/// A command in flight, as [`Connection::kill_running`] needs to find it.
#[derive(Debug)]
struct Running {
    pid_file: String,
    become_user: Option<String>,
    killed: bool,
}

/// A multiplexed SSH connection to one host, reused for every command sent to it.
#[derive(Debug)]
pub struct Connection {
    host: String,
    session: Session,
    /// The master process, from the multiplexer itself; waited for on close.
    master: Option<MasterProcess>,
    /// The account ssh logged in as, so `become` of that same account skips sudo.
    login_user: String,
    channels: Semaphore,
    running: Mutex<HashMap<u64, Running>>,
    next_command: AtomicU64,
    /// How often `kill_running` was called; a command queued for a channel across a call is
    /// killed before it starts.
    kill_requests: AtomicU64,
    /// Makes this connection's pid file names unguessable and unique across controllers.
    token: String,
}

impl Connection {
    /// Connects to `target`, checking its host key strictly, and starts the control master.
    ///
    /// `control_dir` receives the master's socket and any generated ssh config files; it
    /// should be a private temporary directory of the run, with a short path (Unix socket
    /// paths are limited to about 100 bytes). `connect_timeout` bounds reaching each hop.
    pub async fn connect(
        target: &SshTarget,
        control_dir: &Path,
        connect_timeout: Duration,
    ) -> Result<Connection, TransportError> {
        // `connect_timeout` is the default; a hop's `ssh_options: [ConnectTimeout=N]` wins.
        let default_timeout = connect_timeout.max(Duration::from_secs(1));
        let connect_timeout = target
            .connect_timeout(default_timeout)
            .max(Duration::from_secs(1));
        let prepared = target::prepare(target, control_dir, default_timeout)?;

        let mut builder = SessionBuilder::default();
        builder
            .known_hosts_check(KnownHosts::Strict)
            .connect_timeout(connect_timeout)
            .server_alive_interval(SERVER_ALIVE_INTERVAL)
            .control_directory(control_dir)
            .control_persist(ControlPersist::Forever);
        if let Some(user) = &target.user {
            builder.user(user.clone());
        }
        if let Some(port) = target.port {
            builder.port(port);
        }
        if let Some(identity) = &target.identity_file {
            builder.keyfile(identity);
        }
        if let Some(config) = &prepared.config_file {
            builder.config_file(config);
        }

        // Every hop is reached in turn, each within its own timeout and handshake.
        let limit = prepared
            .jumps
            .iter()
            .map(|hop| {
                hop.target
                    .connect_timeout(default_timeout)
                    .max(Duration::from_secs(1))
            })
            .chain([connect_timeout])
            .fold(Duration::ZERO, |total, hop| {
                total.saturating_add(hop + HANDSHAKE_ALLOWANCE)
            });
        let session = match tokio::time::timeout(limit, builder.connect_mux(&target.address)).await
        {
            Err(_elapsed) => {
                return Err(TransportError::ConnectTimeout {
                    host: target.host.clone(),
                    destination: target.destination(),
                    timeout: limit,
                });
            }
            Ok(Err(error)) => {
                return Err(connect_error(
                    target,
                    &prepared.jumps,
                    connect_timeout,
                    error,
                ));
            }
            Ok(Ok(session)) => session,
        };

        let master_pid =
            match openssh_mux_client::Connection::connect(session.control_socket()).await {
                Ok(mut mux) => mux
                    .send_alive_check()
                    .await
                    .ok()
                    .map(std::num::NonZeroU32::get),
                Err(_) => None,
            };
        let master = master_pid.map(|pid| MasterProcess {
            pid,
            start_time: process_start_time(pid),
        });
        let mut connection = Connection {
            host: target.host.clone(),
            session,
            master,
            login_user: String::new(),
            channels: Semaphore::new(MAX_CHANNELS),
            running: Mutex::new(HashMap::new()),
            next_command: AtomicU64::new(0),
            kill_requests: AtomicU64::new(0),
            token: connection_token(&target.host),
        };
        connection.login_user = connection.probe().await?;
        Ok(connection)
    }

    /// The inventory host this connection reaches.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The account ssh logged in as on the host.
    pub fn login_user(&self) -> &str {
        &self.login_user
    }

    /// The part of this connection's pid file names that tells them apart from others.
    #[cfg(test)]
    pub(crate) fn pid_file_token(&self) -> &str {
        &self.token
    }

    /// Runs `command` on the host and collects its output.
    ///
    /// A command that exits, times out or is killed is an `Ok` with its [`RemoteStatus`]; an
    /// `Err` means the command could not be run or the connection broke (the command's fate is
    /// then unknown). Waits for a free channel when [`MAX_CHANNELS`] commands are running.
    /// Dropping the returned future abandons the command's output but not the command, which
    /// its remote `timeout` still bounds.
    pub async fn run(&self, command: &RemoteCommand) -> Result<CommandOutput, TransportError> {
        let invalid = |problem| TransportError::InvalidCommand {
            host: self.host.clone(),
            problem,
        };
        if command::contains_nul(command) {
            return Err(invalid(CommandProblem::NulByte));
        }
        let become_user = command
            .become_user
            .as_deref()
            .filter(|user| *user != self.login_user);
        let id = self.next_command.fetch_add(1, Ordering::Relaxed);
        let pid_file = format!("/tmp/.opsgate-{}-{id}.pid", self.token);
        let invocation = command::invocation(command, become_user, &pid_file).map_err(invalid)?;
        let line = invocation.line;

        let kill_requests = self.kill_requests.load(Ordering::SeqCst);
        let _permit = self
            .channels
            .acquire()
            .await
            .expect("the channel semaphore is never closed");
        let Some(registration) =
            Registration::new(self, id, pid_file.clone(), become_user, kill_requests)
        else {
            return Ok(CommandOutput {
                status: RemoteStatus::Killed,
                stdout: Vec::new(),
                stderr: Vec::new(),
                duration: Duration::ZERO,
            });
        };
        let started = Instant::now();
        let input = if command.stdin.is_some() || invocation.stdin_prefix.is_some() {
            Input::Piped
        } else {
            Input::Empty
        };
        let mut child = match self.open_channel(&line, input).await {
            Ok(child) => child,
            Err(error) => return Err(self.session_error(error).await),
        };

        let stdin = child.stdin().take();
        let stdout = child.stdout().take();
        let stderr = child.stderr().take();
        let mut stdout_bytes = Vec::new();
        let mut stderr_bytes = Vec::new();
        let exchange = async {
            let feed = async {
                if let Some(mut pipe) = stdin {
                    // A command may exit without reading all its input; that is its business,
                    // and its exit status tells.
                    for bytes in [invocation.stdin_prefix.as_deref(), command.stdin.as_deref()]
                        .into_iter()
                        .flatten()
                    {
                        if pipe.write_all(bytes).await.is_err() {
                            break;
                        }
                    }
                    let _ = pipe.shutdown().await;
                }
            };
            let collect_stdout = async {
                match stdout {
                    Some(mut pipe) => pipe.read_to_end(&mut stdout_bytes).await.map(drop),
                    None => Ok(()),
                }
            };
            let collect_stderr = async {
                match stderr {
                    Some(mut pipe) => pipe.read_to_end(&mut stderr_bytes).await.map(drop),
                    None => Ok(()),
                }
            };
            let ((), out, err) = tokio::join!(feed, collect_stdout, collect_stderr);
            // Output is read to its end first: waiting ends the streams of the channel.
            out.and(err).map_err(Exchange::Read)?;
            child.wait().await.map_err(Exchange::Ssh)
        };
        let outcome = match command.timeout {
            Some(limit) => tokio::time::timeout(limit + BACKSTOP_GRACE, exchange)
                .await
                .ok(),
            None => Some(exchange.await),
        };
        let duration = started.elapsed();

        let status = match outcome {
            None => {
                // The remote `timeout` should have ended the command long ago; make sure.
                self.kill_files(become_user, &[pid_file]).await;
                RemoteStatus::TimedOut
            }
            Some(Ok(exit)) => match exit.code() {
                Some(code) => exit_status(code, command.timeout, duration, registration.killed()),
                None => self.no_exit_status(&registration).await?,
            },
            Some(Err(Exchange::Ssh(openssh::Error::Remote(error))))
                if error.kind() == std::io::ErrorKind::NotFound =>
            {
                // The multiplexer turns exit status 127 into this error.
                RemoteStatus::Exited(127)
            }
            Some(Err(Exchange::Ssh(openssh::Error::RemoteProcessTerminated))) => {
                self.no_exit_status(&registration).await?
            }
            Some(Err(Exchange::Ssh(error))) => return Err(self.session_error(error).await),
            Some(Err(Exchange::Read(source))) => {
                return Err(TransportError::Io {
                    host: self.host.clone(),
                    action: "could not read the output of the command".to_owned(),
                    source,
                });
            }
        };

        if let (Some(user), RemoteStatus::Exited(code)) = (become_user, &status) {
            if let Some(message) = sudo_failure(*code, &stderr_bytes) {
                return Err(TransportError::Become {
                    host: self.host.clone(),
                    user: user.to_owned(),
                    detail: SshMessage(message),
                });
            }
        }
        Ok(CommandOutput {
            status,
            stdout: stdout_bytes,
            stderr: stderr_bytes,
            duration,
        })
    }

    /// Kills the remote process groups of every command of this connection still running:
    /// `TERM`, then `KILL` after up to three seconds. Their [`run`](Self::run) calls return
    /// [`RemoteStatus::Killed`], and so do calls still waiting for a channel, which then never
    /// start. Returns once the signals are sent; a command started a moment ago is waited for
    /// up to two seconds to record its process group.
    ///
    /// Best effort by nature: when the master is gone there is nothing to send the signal
    /// through, and the commands' remote `timeout` remains the bound.
    pub async fn kill_running(&self) {
        let mut by_user: BTreeMap<Option<String>, Vec<String>> = BTreeMap::new();
        {
            let mut running = lock(&self.running);
            // Under the lock, so that a command is either registered here or sees the count.
            self.kill_requests.fetch_add(1, Ordering::SeqCst);
            for entry in running.values_mut() {
                entry.killed = true;
                by_user
                    .entry(entry.become_user.clone())
                    .or_default()
                    .push(entry.pid_file.clone());
            }
        }
        for (user, pid_files) in by_user {
            self.kill_files(user.as_deref(), &pid_files).await;
        }
    }

    /// Stops the master and removes its socket directory; waits until the master process is
    /// gone, so nothing of this connection is left behind.
    ///
    /// A stopped master still serves the channels it has open; one left by an abandoned
    /// [`run`](Self::run) would keep it alive, so after a grace period it gets `TERM`.
    pub async fn close(self) -> Result<(), TransportError> {
        let Connection {
            host,
            session,
            master,
            ..
        } = self;
        let closed = session.close().await;
        if let Some(master) = master {
            if !wait_for_exit(master.pid, CLOSE_WAIT).await && master.is_still_running() {
                master.terminate();
                wait_for_exit(master.pid, CLOSE_WAIT).await;
            }
        }
        match closed {
            // Already gone is what closing wants.
            Ok(()) | Err(openssh::Error::Disconnected) => Ok(()),
            Err(source) => Err(TransportError::Channel { host, source }),
        }
    }

    /// Learns the login account, and checks that `timeout` exists: every command needs it.
    async fn probe(&self) -> Result<String, TransportError> {
        let opened = self
            .open_channel("id -un; command -v timeout", Input::Empty)
            .await;
        let output = match opened {
            Ok(child) => child.wait_with_output().await,
            Err(error) => Err(error),
        };
        let output = match output {
            Ok(output) => output,
            Err(error) => return Err(self.session_error(error).await),
        };
        let stdout = String::from_utf8_lossy(&output.stdout);
        let mut lines = stdout.lines();
        let user = lines.next().unwrap_or_default().trim().to_owned();
        if lines.next().is_none_or(|path| path.trim().is_empty()) {
            return Err(TransportError::MissingCommand {
                host: self.host.clone(),
                command: "timeout".to_owned(),
            });
        }
        Ok(user)
    }

    /// Signals the process groups recorded in `pid_files`, over the master, as `user`.
    async fn kill_files(&self, user: Option<&str>, pid_files: &[String]) {
        let line = command::kill_line(user, pid_files);
        // Errors are deliberately dropped: see `kill_running`.
        if let Ok(child) = self.open_channel(&line, Input::Empty).await {
            let _ = child.wait_with_output().await;
        }
    }

    /// Opens a channel running `line`, with output piped.
    ///
    /// sshd refuses a session beyond its `MaxSessions`, and a session whose exit status has
    /// already arrived may still count there for a moment. Nothing ran when a session is
    /// refused, so opening it again after a short pause is safe.
    async fn open_channel(
        &self,
        line: &str,
        input: Input,
    ) -> Result<openssh::Child<&Session>, openssh::Error> {
        let mut pauses = OPEN_RETRY_PAUSES.iter();
        loop {
            let opened = self
                .session
                .raw_command(line)
                .stdin(match input {
                    Input::Piped => Stdio::piped(),
                    Input::Empty => Stdio::null(),
                })
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .await;
            match (opened, pauses.next()) {
                (Err(error), Some(pause)) if is_session_refused(&error) => {
                    tokio::time::sleep(*pause).await;
                }
                (opened, _) => return opened,
            }
        }
    }

    /// The channel ended without an exit status: a signal ended the remote command, or the
    /// connection broke. The multiplexer cannot tell which, so the master is asked.
    async fn no_exit_status(
        &self,
        registration: &Registration<'_>,
    ) -> Result<RemoteStatus, TransportError> {
        if self.session.check().await.is_err() {
            return Err(self.disconnected());
        }
        Ok(if registration.killed() {
            RemoteStatus::Killed
        } else {
            RemoteStatus::Signaled
        })
    }

    /// Turns an error of the multiplexer into the error it means, checking the master first.
    async fn session_error(&self, error: openssh::Error) -> TransportError {
        let master_alive = self.session.check().await.is_ok();
        match error {
            openssh::Error::Disconnected | openssh::Error::RemoteProcessTerminated => {
                self.disconnected()
            }
            _ if !master_alive => self.disconnected(),
            openssh::Error::ChildIo(source) => TransportError::Io {
                host: self.host.clone(),
                action: "could not exchange data with the command".to_owned(),
                source,
            },
            source => TransportError::Channel {
                host: self.host.clone(),
                source,
            },
        }
    }

    /// A [`TransportError::Disconnected`] with the last words of the master's log.
    fn disconnected(&self) -> TransportError {
        let log = self
            .session
            .control_socket()
            .parent()
            .map(|directory| directory.join("log"))
            .and_then(|path| std::fs::read_to_string(path).ok())
            .unwrap_or_default();
        let last_lines: Vec<&str> = log.lines().rev().take(5).collect();
        let text = last_lines.into_iter().rev().collect::<Vec<_>>().join("\n");
        TransportError::Disconnected {
            host: self.host.clone(),
            detail: if text.trim().is_empty() {
                SshMessage("the ssh master ended without a message".to_owned())
            } else {
                ssh_message(&text)
            },
        }
    }
}

impl Transport for Connection {
    fn host(&self) -> &str {
        Connection::host(self)
    }

    fn run(
        &self,
        command: &RemoteCommand,
    ) -> impl Future<Output = Result<CommandOutput, TransportError>> + Send {
        Connection::run(self, command)
    }

    fn kill_running(&self) -> impl Future<Output = ()> + Send {
        Connection::kill_running(self)
    }
}

/// The standard input of a new channel.
#[derive(Debug, Clone, Copy)]
enum Input {
    /// A pipe the caller writes to.
    Piped,
    /// End of file at once.
    Empty,
}

/// Pauses between attempts to open a refused session: about six seconds in all.
const OPEN_RETRY_PAUSES: [Duration; 10] = [
    Duration::from_millis(10),
    Duration::from_millis(20),
    Duration::from_millis(40),
    Duration::from_millis(80),
    Duration::from_millis(160),
    Duration::from_millis(320),
    Duration::from_millis(640),
    Duration::from_secs(1),
    Duration::from_secs(1),
    Duration::from_secs(2),
];

/// Whether sshd refused to open a session (it answers so when `MaxSessions` is reached).
fn is_session_refused(error: &openssh::Error) -> bool {
    matches!(
        error,
        openssh::Error::SshMux(openssh_mux_client::Error::RequestFailure(reason))
            if reason.contains("refused")
    )
}

/// Why the exchange with a command ended early.
enum Exchange {
    Read(std::io::Error),
    Ssh(openssh::Error),
}

/// Keeps a running command findable by [`Connection::kill_running`] until it ends, also when
/// the future of [`Connection::run`] is dropped.
struct Registration<'a> {
    connection: &'a Connection,
    id: u64,
}

impl<'a> Registration<'a> {
    /// Registers a command about to start, unless `kill_running` was called since the
    /// caller read `kill_requests` (then the command must not start at all).
    fn new(
        connection: &'a Connection,
        id: u64,
        pid_file: String,
        become_user: Option<&str>,
        kill_requests: u64,
    ) -> Option<Self> {
        let mut running = lock(&connection.running);
        if connection.kill_requests.load(Ordering::SeqCst) != kill_requests {
            return None;
        }
        running.insert(
            id,
            Running {
                pid_file,
                become_user: become_user.map(str::to_owned),
                killed: false,
            },
        );
        Some(Self { connection, id })
    }

    fn killed(&self) -> bool {
        lock(&self.connection.running)
            .get(&self.id)
            .is_some_and(|entry| entry.killed)
    }
}

impl Drop for Registration<'_> {
    fn drop(&mut self) {
        lock(&self.connection.running).remove(&self.id);
    }
}

/// Locks the registry of running commands. A panic while it was held cannot leave it
/// inconsistent (every change is one map operation), so a poisoned lock is used as is.
fn lock(
    running: &Mutex<HashMap<u64, Running>>,
) -> std::sync::MutexGuard<'_, HashMap<u64, Running>> {
    running
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The status of a command that exited with `code`.
///
/// `timeout` exits 124 when it stopped the command with `TERM`, and 137 (128 + `KILL`) when
/// the command needed `KILL`; a command can exit with those codes itself, so they only count
/// as a timeout once the limit has really passed. A command killed through `kill_running`
/// exits with 128 + the signal.
fn exit_status(
    code: i32,
    timeout: Option<Duration>,
    duration: Duration,
    killed: bool,
) -> RemoteStatus {
    if killed && code > 128 {
        return RemoteStatus::Killed;
    }
    if let Some(limit) = timeout {
        if (code == 124 || code == 137) && duration >= limit {
            return RemoteStatus::TimedOut;
        }
    }
    RemoteStatus::Exited(code)
}

/// sudo's own refusal, told apart from the command's output: sudo exits 1 and prefixes its
/// messages with `sudo: `; a missing sudo makes the login shell exit 127.
fn sudo_failure(code: i32, stderr: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(stderr);
    let first_line = text.lines().next().unwrap_or_default();
    let refused = code == 1 && first_line.starts_with("sudo: ");
    let missing = code == 127 && first_line.contains("sudo") && first_line.contains("not found");
    (refused || missing).then(|| text.trim_end().to_owned())
}

/// The error for a failed connection attempt, blaming the first hop whose log shows why.
fn connect_error(
    target: &SshTarget,
    jumps: &[JumpHop],
    connect_timeout: Duration,
    error: openssh::Error,
) -> TransportError {
    let text = match error {
        // An OS error means `ssh` could not be started or its log read; ssh's own complaints
        // arrive as plain messages.
        openssh::Error::Connect(source) if source.raw_os_error().is_some() => {
            return TransportError::SshClient {
                host: target.host.clone(),
                source,
            };
        }
        openssh::Error::Connect(source) => source.to_string(),
        openssh::Error::Master(source) => {
            return TransportError::Io {
                host: target.host.clone(),
                action: "could not create the directory for the SSH control socket".to_owned(),
                source,
            };
        }
        source => {
            return TransportError::Channel {
                host: target.host.clone(),
                source,
            };
        }
    };
    // The farthest hop is dialled first, so its failure explains everything after it.
    for hop in jumps.iter().rev() {
        let log = std::fs::read_to_string(&hop.log).unwrap_or_default();
        if let Some(failure) = classify_connect_failure(&log) {
            return TransportError::Jump {
                host: target.host.clone(),
                jump: hop.target.host.clone(),
                source: Box::new(failure_error(&hop.target, failure, &log, connect_timeout)),
            };
        }
    }
    match classify_connect_failure(&text) {
        Some(failure) => failure_error(target, failure, &text, connect_timeout),
        None => TransportError::Connect {
            host: target.host.clone(),
            destination: target.destination(),
            detail: ssh_message(&text),
        },
    }
}

/// The error for one recognised connection failure of `target`.
fn failure_error(
    target: &SshTarget,
    failure: ConnectFailure,
    text: &str,
    connect_timeout: Duration,
) -> TransportError {
    let host = target.host.clone();
    let destination = target.destination();
    let detail = ssh_message(text);
    match failure {
        ConnectFailure::HostKey(problem) => TransportError::HostKey {
            host,
            destination,
            address: target.address.clone(),
            port: target.port,
            problem,
            detail,
        },
        ConnectFailure::Authentication => TransportError::Authentication {
            host,
            destination,
            detail,
        },
        ConnectFailure::Timeout => TransportError::ConnectTimeout {
            host,
            destination,
            timeout: connect_timeout,
        },
        ConnectFailure::Unreachable => TransportError::Connect {
            host,
            destination,
            detail,
        },
    }
}

/// A hard-to-guess token for the pid file names of one connection.
fn connection_token(host: &str) -> String {
    static CONNECTIONS: AtomicU64 = AtomicU64::new(0);
    let mut hasher = Sha256::new();
    hasher.update(host.as_bytes());
    hasher.update(std::process::id().to_le_bytes());
    hasher.update(CONNECTIONS.fetch_add(1, Ordering::Relaxed).to_le_bytes());
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    hasher.update(now.as_nanos().to_le_bytes());
    hex::encode(&hasher.finalize()[..8])
}

/// Waits up to `limit` for the process `pid` to exit; tells whether it did.
///
/// The master was started by ssh with `-f`, so it is not our child and cannot be waited for;
/// a null signal tells whether it still exists.
async fn wait_for_exit(pid: u32, limit: Duration) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return true;
    };
    let deadline = Instant::now() + limit;
    loop {
        // SAFETY: signal 0 only checks that the process exists; it sends nothing.
        let exists = unsafe { libc::kill(pid, 0) } == 0;
        // The daemonised master is not our child: once it exits it stays a zombie until
        // whichever process adopted it reaps it (on some systems, seconds later). A zombie
        // holds no socket and no session, so for closing it counts as gone.
        if !exists || is_zombie(pid) {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Whether `pid` has exited and waits to be reaped (state `Z` or `X` in `/proc/PID/stat`).
pub(super) fn is_zombie(pid: libc::pid_t) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    // The state follows the command name, which is in parentheses and may contain spaces.
    stat.rsplit_once(')')
        .and_then(|(_, rest)| rest.split_whitespace().next())
        .is_some_and(|state| state == "Z" || state == "X")
}

/// The ssh master process of a connection: its PID and, to recognise a recycled PID, the
/// time it started (from `/proc`, so only known on Linux).
#[derive(Debug, Clone, Copy)]
struct MasterProcess {
    pid: u32,
    start_time: Option<u64>,
}

impl MasterProcess {
    /// Whether the PID still belongs to this master. Without a known start time, no.
    fn is_still_running(self) -> bool {
        self.start_time
            .is_some_and(|start_time| process_start_time(self.pid) == Some(start_time))
    }

    /// Sends `TERM` to the master.
    fn terminate(self) {
        if let Ok(pid) = libc::pid_t::try_from(self.pid) {
            // SAFETY: `kill` has no memory effects; the PID was checked to be our master.
            unsafe {
                libc::kill(pid, libc::SIGTERM);
            }
        }
    }
}

/// When process `pid` started, in clock ticks since boot (field 22 of `/proc/PID/stat`).
fn process_start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may hold spaces; count after it.
    let after_name = &stat[stat.rfind(')')? + 1..];
    after_name.split_whitespace().nth(19)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::{RemoteStatus, exit_status, sudo_failure};
    use std::time::Duration;

    #[test]
    fn exit_codes_of_timeout_count_only_after_the_limit() {
        let limit = Some(Duration::from_secs(2));
        let long = Duration::from_secs(3);
        let short = Duration::from_secs(1);
        assert_eq!(exit_status(124, limit, long, false), RemoteStatus::TimedOut);
        assert_eq!(exit_status(137, limit, long, false), RemoteStatus::TimedOut);
        assert_eq!(
            exit_status(124, limit, short, false),
            RemoteStatus::Exited(124)
        );
        assert_eq!(
            exit_status(124, None, long, false),
            RemoteStatus::Exited(124)
        );
        assert_eq!(exit_status(143, None, long, true), RemoteStatus::Killed);
        assert_eq!(exit_status(0, None, long, true), RemoteStatus::Exited(0));
    }

    #[test]
    fn sudo_refusals_are_told_apart_from_command_output() {
        assert!(sudo_failure(1, b"sudo: a password is required\n").is_some());
        assert!(sudo_failure(127, b"bash: line 1: sudo: command not found\n").is_some());
        assert!(sudo_failure(1, b"grep: no match\n").is_none());
        assert!(sudo_failure(0, b"sudo: warning\n").is_none());
    }
}
