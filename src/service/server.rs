//! The service's listener (`opsgate serve`): accepts connections on the Unix socket, reads each
//! caller's identity from the kernel, and answers requests by calling `ops`.
//!
//! The shape is mini-redis's: [`serve`] takes the listener and a `shutdown` future; a
//! [`Semaphore`] bounds the connections being served; every connection is a task in a
//! [`JoinSet`], told to stop through a `watch` channel and awaited before `serve` returns.
//!
//! **Identity** is the peer uid of the connection (`SO_PEERCRED`, read by the kernel when the
//! client connected) mapped to its account name through the user database — nothing else: no
//! `SUDO_USER`, no field of a request, no environment variable. The peer's login uid is read
//! from `/proc/PID/loginuid` for the audit record only.
//!
//! **Files** are the service's: [`Service::prepare`] loads `opsgate.yaml` once, refuses to
//! serve when the files that govern the gate are writable by anyone but root or the service
//! account, and no request carries a path.
//!
//! The `ops` functions are synchronous (`SQLite`), so each request runs on the blocking pool;
//! requests on one connection are answered in order.

use std::os::unix::fs::{DirBuilderExt, FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncWriteExt, BufReader};
use tokio::net::unix::OwnedWriteHalf;
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;

use super::ServiceError;
use super::protocol::{
    self, ErrorResponse, Format, HistoryQuery, ProtocolError, Request, RequestKind, Response,
};
use super::runs::{Following, Runs, catalog_id, escalate, param_inputs};
use crate::approval::signed::Verdict as Decision;
use crate::audit::{Actor, AuditError, AuditStore, BackupFilter, Checkpoint, RunFilter, RunId};
use crate::diagnostic::{Diagnostic, Style};
use crate::error::{Error, Exit};
use crate::gate::{Policy, ProcessIdentity};
use crate::ops::approve::{Approved, RunApproval, Signing};
use crate::ops::prepare::NoPrompt;
use crate::ops::{self, Caller, Channel, Context, PlanTarget, Prompter, trust};
use crate::os_account;
use crate::project::Project;
use crate::render;
use crate::render::audit::Verdict;
use crate::report::{Notice, Reporter};

/// Connections served at once. Each holds a socket, a buffer of up to
/// [`protocol::MAX_LINE`] bytes and possibly a blocking thread; the bound keeps a burst of
/// clients (or one misbehaving operator) from exhausting memory, threads or file descriptors.
/// Further clients wait in the kernel's accept queue.
pub const MAX_CONNECTIONS: usize = 64;

/// How long a connection may stay silent before its first line or between requests; an idle
/// connection holds one of the [`MAX_CONNECTIONS`] permits.
const IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// How long a stopping service waits for the requests in flight.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// The service's project, loaded and checked once at start.
#[derive(Debug)]
pub struct Service {
    /// The project the configuration names; every request works on it.
    project: Project,
    /// The socket to listen on.
    socket: PathBuf,
    /// The runs in progress: the service's, not their clients'.
    pub(super) runs: Runs,
}

impl Service {
    /// Loads `config` and checks everything the gate depends on, once: the configuration has a
    /// `service:` socket; the policy exists, parses, and names this account (if it names a
    /// service account at all); the configuration, policy, inventory, catalog and state
    /// directory are owned by root or this account and writable by nobody else; the audit
    /// store opens. Warnings (a policy's) go to `reporter`.
    pub fn prepare(
        config: &Path,
        process: &ProcessIdentity,
        reporter: &dyn Reporter,
    ) -> Result<Service, Error> {
        let config = std::path::absolute(config).map_err(|source| Error::Io {
            action: "resolve",
            path: config.to_path_buf(),
            source,
        })?;
        trust::check_service_path(&config, "configuration", process)?;
        let project = Project::load_config(&config)?;
        let socket =
            project
                .service_socket
                .clone()
                .ok_or_else(|| ServiceError::NoServiceSection {
                    config: config.clone(),
                })?;
        trust::check_service_path(&project.policy, "policy file", process)?;
        let Some((policy, warnings)) = Policy::load_optional(&project.policy)? else {
            return Err(ServiceError::NoPolicy {
                policy: project.policy.clone(),
            }
            .into());
        };
        reporter.warnings(&warnings);
        if let Some(named) = policy.service_account()
            && named != process.account
        {
            return Err(ServiceError::WrongAccount {
                policy: project.policy.clone(),
                named: named.to_owned(),
                running: process.account.clone(),
            }
            .into());
        }
        trust::check_service_path(&project.inventory, "inventory", process)?;
        trust::check_service_path(&project.runbooks, "catalog directory", process)?;
        trust::check_service_path(&project.state_dir, "state directory", process)?;
        AuditStore::open(&project.state_dir)?;
        Ok(Service {
            project,
            socket,
            runs: Runs::default(),
        })
    }

    /// The socket the configuration names.
    #[must_use]
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// The project every request works on.
    pub(super) fn project(&self) -> &Project {
        &self.project
    }
}

/// Creates the socket: its directory must exist or is created (mode 0750), must belong to this
/// account and be writable by nobody else; a stale socket from an earlier run is removed (a
/// socket another service answers on, or anything else in its place, is refused); the new
/// socket gets mode 0660, so the directory's group (`opsgate`) may connect and others may not.
pub fn bind(socket: &Path) -> Result<UnixListener, ServiceError> {
    let directory = match socket.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
        _ => PathBuf::from("."),
    };
    if !directory.exists() {
        std::fs::DirBuilder::new()
            .mode(0o750)
            .create(&directory)
            .map_err(|source| ServiceError::Socket {
                action: "create the socket directory",
                path: directory.clone(),
                source,
            })?;
    }
    let metadata = std::fs::metadata(&directory).map_err(|source| ServiceError::Socket {
        action: "inspect the socket directory",
        path: directory.clone(),
        source,
    })?;
    let uid = os_account::effective_uid();
    if metadata.uid() != uid {
        return Err(ServiceError::SocketDirectory {
            directory,
            problem: format!(
                "is owned by {}, not by the service account",
                os_account::account_name(metadata.uid()).map_or_else(
                    || format!("uid {}", metadata.uid()),
                    |name| format!("`{name}`")
                )
            ),
        });
    }
    if metadata.mode() & 0o022 != 0 {
        return Err(ServiceError::SocketDirectory {
            directory,
            problem: format!(
                "is writable by group or others (mode {:04o})",
                metadata.mode() & 0o7777
            ),
        });
    }
    match std::fs::symlink_metadata(socket) {
        Ok(existing) if existing.file_type().is_socket() => {
            // A socket someone answers on belongs to a running service: never take it over.
            if std::os::unix::net::UnixStream::connect(socket).is_ok() {
                return Err(ServiceError::InUse {
                    socket: socket.to_path_buf(),
                });
            }
            std::fs::remove_file(socket).map_err(|source| ServiceError::Socket {
                action: "remove the stale socket",
                path: socket.to_path_buf(),
                source,
            })?;
        }
        Ok(_) => {
            return Err(ServiceError::NotASocket {
                socket: socket.to_path_buf(),
            });
        }
        Err(_) => {}
    }
    let listener = UnixListener::bind(socket).map_err(|source| ServiceError::Socket {
        action: "listen on",
        path: socket.to_path_buf(),
        source,
    })?;
    std::fs::set_permissions(socket, std::fs::Permissions::from_mode(0o660)).map_err(|source| {
        ServiceError::Socket {
            action: "set the mode of",
            path: socket.to_path_buf(),
            source,
        }
    })?;
    Ok(listener)
}

/// Serves `listener` until `shutdown` completes, then stops accepting, lets every connection
/// finish the request it is answering (for up to 10 seconds), removes the socket and returns.
pub async fn serve(
    listener: UnixListener,
    service: Arc<Service>,
    shutdown: impl Future<Output = ()>,
) {
    let limit = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let (stop, stopped) = watch::channel(false);
    let mut connections = JoinSet::new();
    tokio::select! {
        () = accept(&listener, &service, &limit, &stopped, &mut connections) => {}
        () = shutdown => {}
    }
    drop(listener);
    let _ = stop.send(true);
    // Cancelled first, so the connections following them get their `done` within the grace.
    service.runs.cancel_all();
    // A client that stopped reading could hold a connection in `send` forever: after a grace
    // period the remaining connections are aborted.
    let drained = tokio::time::timeout(SHUTDOWN_GRACE, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        connections.shutdown().await;
    }
    // Runs are the service's: each is cancelled and awaited, so it ends on record.
    service.runs.stop().await;
    let _ = std::fs::remove_file(&service.socket);
}

/// Accepts connections forever, each once a permit is free.
async fn accept(
    listener: &UnixListener,
    service: &Arc<Service>,
    limit: &Arc<Semaphore>,
    stopped: &watch::Receiver<bool>,
    connections: &mut JoinSet<()>,
) {
    loop {
        // Reap finished connections so the set does not grow with the service's uptime.
        while connections.try_join_next().is_some() {}
        service.runs.reap();
        let Ok(permit) = Arc::clone(limit).acquire_owned().await else {
            return;
        };
        let Ok((stream, _)) = listener.accept().await else {
            // Out of file descriptors or a connection reset before accept: back off
            // briefly instead of spinning.
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        let service = Arc::clone(service);
        let stopped = stopped.clone();
        connections.spawn(async move {
            connection(stream, service, stopped).await;
            drop(permit);
        });
    }
}

/// Reads the next line, or `None` when the connection should end (end of stream, idle for too
/// long, or the service stopping while it waits).
async fn next_line(
    reader: &mut BufReader<tokio::net::unix::OwnedReadHalf>,
    line: &mut Vec<u8>,
    stopped: &mut watch::Receiver<bool>,
) -> Option<Result<(), ProtocolError>> {
    line.clear();
    tokio::select! {
        read = tokio::time::timeout(IDLE_TIMEOUT, protocol::read_line(reader, line)) => {
            match read {
                Ok(Ok(true)) => Some(Ok(())),
                Ok(Ok(false)) | Err(_) => None,
                Ok(Err(error)) => Some(Err(error)),
            }
        }
        _ = stopped.wait_for(|stop| *stop) => None,
    }
}

/// Sends `responses`; a client that went away is not an error of the service's.
async fn send(writer: &mut OwnedWriteHalf, responses: &[Response]) -> bool {
    for response in responses {
        if writer.write_all(&protocol::encode(response)).await.is_err() {
            return false;
        }
    }
    true
}

/// One connection: identify the peer, exchange `hello`s, answer requests until the client
/// closes, errs at the protocol level, idles out, or the service stops.
async fn connection(stream: UnixStream, service: Arc<Service>, mut stopped: watch::Receiver<bool>) {
    let caller = match peer(&stream, &service.socket) {
        Ok(caller) => caller,
        Err(error) => {
            let (_, mut writer) = stream.into_split();
            send(&mut writer, &[Response::Error(error_response(&error))]).await;
            return;
        }
    };
    let (reader, mut writer) = stream.into_split();
    let mut reader = BufReader::new(reader);
    let mut line = Vec::new();
    // The client's hello.
    let hello = match next_line(&mut reader, &mut line, &mut stopped).await {
        None => return,
        Some(Err(error)) => Err(error),
        Some(Ok(())) => protocol::decode_request(&line).and_then(|request| match request.kind {
            RequestKind::Hello { protocol } if protocol == protocol::VERSION => Ok(()),
            RequestKind::Hello { protocol } => Err(ProtocolError::Version {
                peer: protocol,
                ours: protocol::VERSION,
            }),
            _ => Err(ProtocolError::NoHello {
                found: request_type(&request.kind),
            }),
        }),
    };
    if let Err(error) = hello {
        send(
            &mut writer,
            &[Response::Error(ErrorResponse::protocol(&error))],
        )
        .await;
        return;
    }
    let hello = Response::Hello {
        protocol: protocol::VERSION,
        account: caller.process.account.clone(),
        uid: caller.process.uid,
    };
    if !send(&mut writer, &[hello]).await {
        return;
    }
    loop {
        let request = match next_line(&mut reader, &mut line, &mut stopped).await {
            None => return,
            // A line too long or cut short leaves the stream out of step: answer and close.
            Some(Err(error)) => {
                send(
                    &mut writer,
                    &[Response::Error(ErrorResponse::protocol(&error))],
                )
                .await;
                return;
            }
            Some(Ok(())) => protocol::decode_request(&line),
        };
        let request = match request {
            Ok(request) => request,
            // One bad line: the next one may be fine.
            Err(error) => {
                if send(
                    &mut writer,
                    &[Response::Error(ErrorResponse::protocol(&error))],
                )
                .await
                {
                    continue;
                }
                return;
            }
        };
        match request.kind {
            RequestKind::Run(run) => {
                let following = Runs::start(&service, caller.clone(), run, request.format);
                if follow(&mut reader, &mut writer, &mut line, following).await {
                    continue;
                }
                return;
            }
            RequestKind::Cancel { .. } => {
                let error = Error::from(Diagnostic::error(
                    "`cancel` applies to the run this connection follows, and there is none",
                ));
                if send(&mut writer, &[Response::Error(error_response(&error))]).await {
                    continue;
                }
                return;
            }
            _ => {}
        }
        let service = Arc::clone(&service);
        let caller = caller.clone();
        let responses =
            tokio::task::spawn_blocking(move || answer(&service, &caller, &request, &NoPrompt))
                .await
                .unwrap_or_else(|_| {
                    // The operation panicked: a bug, reported to the client as a failure.
                    let error = ErrorResponse {
                        exit: Exit::Failed.code(),
                        rule: None,
                        message: "the service failed to answer (a bug; see its log)".to_owned(),
                        hints: Vec::new(),
                        rendered: "error: the service failed to answer (a bug; see its log)\n"
                            .to_owned(),
                    };
                    vec![Response::Error(error)]
                });
        if !send(&mut writer, &responses).await {
            return;
        }
    }
}

/// The caller behind a connection, from the kernel's peer credentials.
fn peer(stream: &UnixStream, socket: &Path) -> Result<Caller, Error> {
    let credentials = stream.peer_cred().map_err(|source| ServiceError::Socket {
        action: "read the peer credentials of a connection to",
        path: socket.to_path_buf(),
        source,
    })?;
    let uid = credentials.uid();
    let account =
        os_account::account_name(uid).ok_or(crate::gate::IdentityError::UnknownUid { uid })?;
    // Recorded, never used to decide: the peer could have exited and its pid been reused.
    let login_uid = credentials.pid().and_then(|pid| {
        std::fs::read_to_string(format!("/proc/{pid}/loginuid"))
            .ok()
            .and_then(|text| text.trim().parse::<u32>().ok())
            .filter(|uid| *uid != u32::MAX)
    });
    Ok(Caller {
        process: ProcessIdentity {
            uid,
            account: account.clone(),
            sudo_user: None,
            login_uid,
        },
        actor: Actor {
            uid,
            user: account,
            sudo_user: None,
            login_uid,
        },
        channel: Channel::Service {
            socket: socket.to_path_buf(),
        },
    })
}

/// The `type` of a request, as it travels.
fn request_type(kind: &RequestKind) -> String {
    serde_json::to_value(kind)
        .ok()
        .and_then(|value| value.get("type")?.as_str().map(str::to_owned))
        .unwrap_or_default()
}

/// Forwards a run's responses to the client until `done` or `error`, and applies the client's
/// `cancel` requests meanwhile. Whether the connection may go on: `false` when the client went
/// away (the run goes on without it) or broke the protocol.
async fn follow(
    reader: &mut BufReader<tokio::net::unix::OwnedReadHalf>,
    writer: &mut OwnedWriteHalf,
    line: &mut Vec<u8>,
    following: Following,
) -> bool {
    let Following {
        mut responses,
        cancel,
    } = following;
    line.clear();
    loop {
        tokio::select! {
            response = responses.recv() => {
                let Some(response) = response else {
                    return false;
                };
                let last = matches!(response, Response::Done { .. } | Response::Error(_));
                if !send(writer, &[response]).await {
                    return false;
                }
                if last {
                    return true;
                }
            }
            read = protocol::read_line(reader, line) => {
                let reply = match read {
                    Ok(true) => match protocol::decode_request(line) {
                        Ok(Request { kind: RequestKind::Cancel { depth }, .. }) => {
                            cancel.send_if_modified(|state| escalate(state, depth));
                            None
                        }
                        Ok(_) => Some(ErrorResponse::protocol(&ProtocolError::Busy)),
                        Err(error) => Some(ErrorResponse::protocol(&error)),
                    },
                    // The client is gone: the run is the service's and goes on.
                    Ok(false) | Err(_) => return false,
                };
                line.clear();
                if let Some(error) = reply
                    && !send(writer, &[Response::Error(error)]).await
                {
                    return false;
                }
            }
        }
    }
}

/// Collects the notices of one request, rendered as the command line prints them.
#[derive(Default)]
struct Collector {
    notices: Mutex<Vec<String>>,
}

impl Reporter for Collector {
    fn notice(&self, notice: Notice<'_>) {
        if let Some(text) = crate::render::notice_text(&notice, Style::Plain, false) {
            self.notices
                .lock()
                .expect("no notice handler panics while holding the lock")
                .push(text);
        }
    }
}

/// Answers one request: the same `ops` call and rendering as the local command.
fn answer(
    service: &Service,
    caller: &Caller,
    request: &Request,
    prompter: &dyn Prompter,
) -> Vec<Response> {
    let reporter = Collector::default();
    let context = Context {
        project: &service.project,
        caller,
        reporter: &reporter,
    };
    let json = request.format == Format::Json;
    let mut stdout = Vec::new();
    let result = match &request.kind {
        RequestKind::Hello { .. } => Err(Error::from(Diagnostic::error(
            "protocol error: `hello` is only the first line of a connection",
        ))),
        RequestKind::Run(_) | RequestKind::Cancel { .. } => Err(Error::from(Diagnostic::error(
            "protocol error: runs are followed on their connection, not answered at once",
        ))),
        RequestKind::PromptAnswer { .. } => Err(Error::from(Diagnostic::error(
            "protocol error: `prompt_answer` answers a `prompt`, and none is open",
        ))),
        RequestKind::ApproveRun {
            run,
            reject,
            reason,
            gate_step,
        } => ops::approve::approve_run(
            context,
            &RunApproval {
                run: RunId::new(*run),
                verdict: if *reject {
                    Decision::Reject
                } else {
                    Decision::Grant
                },
                reason: reason.clone(),
                gate_step: *gate_step,
            },
            &Signing::Unsigned,
        )
        .and_then(|approved| approved_output(&approved, json, &mut stdout)),
        RequestKind::ApprovePlan { plan } => {
            ops::approve::approve_plan(context, plan, &Signing::Unsigned)
                .and_then(|approved| approved_output(&approved, json, &mut stdout))
        }
        RequestKind::ApproveRunbook { runbook } => catalog_id(runbook)
            .and_then(|id| Ok(service.project.runbook_path(id)?))
            .and_then(|file| ops::approve::approve_runbook(context, &file, &Signing::Unsigned))
            .and_then(|approved| approved_output(&approved, json, &mut stdout)),
        RequestKind::ApproveSigned { document } => ops::approve::apply_signed(context, document)
            .and_then(|approved| approved_output(&approved, json, &mut stdout)),
        RequestKind::Plan(plan) => catalog_id(&plan.runbook).and_then(|id| {
            let options = ops::plan::PlanOptions {
                target: PlanTarget {
                    runbook: Some(id.to_owned()),
                    limit: plan.limit.clone(),
                    widen: plan.widen.clone(),
                    params: param_inputs(&plan.params),
                },
                save: plan.save,
            };
            let planned = ops::plan::plan(context, &options, prompter)?;
            render::emit(
                &mut stdout,
                &render::plan::planned_text(&planned, json, Style::Plain),
            )?;
            Ok(Exit::Ok)
        }),
        RequestKind::PlanShow { plan } => ops::plan::show(context, plan)
            .and_then(|shown| render::plan::show(&shown, json, &mut stdout)),
        RequestKind::Backups { query } => {
            let filter = BackupFilter {
                host: query.host.clone(),
                runbook: query.runbook.clone(),
                operator: None,
                limit: (query.limit > 0).then_some(query.limit),
            };
            ops::history::backups(context, &filter).and_then(|backups| {
                if json {
                    render::history::write_json(&mut stdout, &backups)?;
                } else {
                    render::backups::render(&backups, &mut stdout).map_err(AuditError::Output)?;
                }
                Ok(Exit::Ok)
            })
        }
        RequestKind::AuditVerify { checkpoints } => {
            audit_verify(context, checkpoints.as_deref(), json, &mut stdout)
        }
        RequestKind::AuditCheckpoint => {
            ops::audit::checkpoint(context, None).and_then(|checkpoint| {
                if json {
                    render::history::write_json(&mut stdout, &checkpoint)?;
                } else {
                    render::emit(&mut stdout, &checkpoint.render())?;
                }
                Ok(Exit::Ok)
            })
        }
        RequestKind::AuditExport { since } => time(since.as_ref(), "--since")
            .and_then(|since| ops::audit::export(context, since, &mut stdout))
            .map(|()| Exit::Ok),
        RequestKind::Whoami => ops::whoami::whoami(context)
            .and_then(|whoami| render::whoami::report(&whoami, json, &mut stdout)),
        RequestKind::Catalog => ops::catalog::catalog(context).and_then(|entries| {
            render::catalog::list(&entries, &service.project.runbooks, json, &mut stdout)
        }),
        RequestKind::Pending => ops::approve::pending(context)
            .and_then(|runs| render::approve::pending(&runs, json, &mut stdout)),
        RequestKind::History { query } => run_filter(query)
            .and_then(|filter| ops::history::runs(context, &filter))
            .and_then(|runs| render::history::list(&runs, json, &mut stdout))
            .map(|()| Exit::Ok),
        RequestKind::HistoryShow { run } => ops::history::show(context, RunId::new(*run))
            .and_then(|detail| render::history::show(&detail, json, &mut stdout))
            .map(|()| Exit::Ok),
    };
    let notices = reporter
        .notices
        .into_inner()
        .expect("no notice handler panicked while holding the lock");
    let mut responses: Vec<Response> = notices
        .into_iter()
        .map(|text| Response::Warning { text })
        .collect();
    match result {
        Ok(exit) => {
            let stdout = String::from_utf8_lossy(&stdout);
            responses.extend(chunks(&stdout, OUTPUT_CHUNK).map(|text| Response::Output {
                stdout: text.to_owned(),
            }));
            responses.push(Response::Done { exit: exit.code() });
        }
        Err(error) => responses.push(Response::Error(error_response(&error))),
    }
    responses
}

/// The filter of `history` from a request's filters, parsed as the command line parses them.
fn run_filter(query: &HistoryQuery) -> Result<RunFilter, Error> {
    let status = query
        .status
        .as_deref()
        .map(str::parse)
        .transpose()
        .map_err(|error: crate::audit::ParseRunStatusError| {
            let mut diagnostic = Diagnostic::error(error.to_string());
            for hint in error.hints() {
                diagnostic = diagnostic.hint(hint);
            }
            Error::from(diagnostic)
        })?;
    Ok(RunFilter {
        operator: query.operator.clone(),
        runbook: query.runbook.clone(),
        host: query.host.clone(),
        status,
        since: time(query.since.as_ref(), "--since")?,
        until: time(query.until.as_ref(), "--until")?,
        limit: (query.limit > 0).then_some(query.limit),
    })
}

/// The most text one `output` line carries: an `audit export` can be far longer than
/// [`protocol::MAX_LINE`], so it travels in pieces the client prints one after another. A
/// quarter of the limit leaves room for JSON escaping (at most doubling text without control
/// characters, which `output` never has but for newlines).
const OUTPUT_CHUNK: usize = protocol::MAX_LINE / 4;

/// `text` in pieces of at most `size` bytes, each cut on a character boundary.
fn chunks(text: &str, size: usize) -> impl Iterator<Item = &str> {
    let mut rest = text;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let mut end = size.min(rest.len());
        while !rest.is_char_boundary(end) {
            end -= 1;
        }
        let (piece, tail) = rest.split_at(end);
        rest = tail;
        Some(piece)
    })
}

/// An instant a client sent (RFC 3339: the client resolves ages against its own clock).
fn time(text: Option<&String>, flag: &str) -> Result<Option<jiff::Timestamp>, Error> {
    text.map(|text| {
        text.parse::<jiff::Timestamp>().map_err(|error| {
            Error::from(Diagnostic::error(format!(
                "`{flag}` `{text}` is not an RFC 3339 instant: {error}"
            )))
        })
    })
    .transpose()
}

/// What an approval did, as `opsgate approve` prints it.
fn approved_output(approved: &Approved, json: bool, stdout: &mut Vec<u8>) -> Result<Exit, Error> {
    render::emit(stdout, &render::approve::approved_text(approved, json))?;
    Ok(Exit::Ok)
}

/// `audit verify`: the client's checkpoint file arrives as text and is parsed here, never
/// opened. A broken history is the command's answer (exit 4), not an error.
fn audit_verify(
    context: Context<'_>,
    checkpoints: Option<&str>,
    json: bool,
    stdout: &mut Vec<u8>,
) -> Result<Exit, Error> {
    let checkpoints = match checkpoints {
        Some(text) => Checkpoint::parse_all(Path::new("the client's checkpoint file"), text)
            .map_err(Error::Unverifiable)?,
        None => Vec::new(),
    };
    let verification = ops::audit::verify(context, &checkpoints, None)?;
    let verdict = if verification.is_intact() {
        Verdict::Success
    } else {
        Verdict::Broken
    };
    if json {
        render::history::write_json(stdout, &render::audit::verify_json(&verification, verdict))?;
    } else {
        render::audit::render_verify(&verification, verdict, stdout).map_err(AuditError::Output)?;
    }
    Ok(verdict.exit())
}

/// An error as a response: its exit code, rule, message, hints and the command line's rendering.
pub(super) fn error_response(error: &Error) -> ErrorResponse {
    ErrorResponse {
        exit: error.exit().code(),
        rule: match error {
            Error::Denied { denial, .. } => Some(denial.rule.as_str().to_owned()),
            _ => None,
        },
        message: error.to_string(),
        hints: error.hints(),
        rendered: error.render(Style::Plain),
    }
}

#[cfg(test)]
mod tests {
    use super::chunks;

    #[test]
    fn long_output_travels_in_pieces_cut_on_character_boundaries() {
        let text = "aé".repeat(5);
        let pieces: Vec<&str> = chunks(&text, 4).collect();
        assert_eq!(pieces.concat(), text);
        assert!(pieces.iter().all(|piece| piece.len() <= 4));
        assert_eq!(chunks("", 4).count(), 0);
    }
}
