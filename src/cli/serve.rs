//! `opsgate serve [--config opsgate.yaml]` and the command line's team-mode front end.
//!
//! `serve` runs the service in the foreground as the account that starts it (the service
//! account, under systemd: `deploy/opsgate.service`): it loads and checks its configuration once,
//! listens on the configured socket and stops on SIGTERM or Ctrl-C after the requests in flight
//! are answered. SIGHUP is logged and ignored (reloading is a later step of issue 10).
//!
//! In team mode (`OPSGATE_SOCKET`, or `service:` in `opsgate.yaml`) the command line sends
//! every command but `validate`, `plan` without `--save`, `inventory` and `lab` to the service
//! and prints what it answers — the same text the local command prints — instead of opening any
//! project file itself. The operator's files (`-p NAME=@FILE`, `--params-file`, a checkpoint
//! file, a signed approval) are read and written here, with the operator's rights; only their
//! contents travel.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::args::{
    ApproveArgs, ApproveCommand, AuditArgs, AuditCommand, Cli, Command, PlanArgs, PlanCommand,
    RunArgs,
};
use super::args::{HistoryArgs, HistoryCommand, ServeArgs};
use super::emit;
use super::terminal::TerminalReporter;
use crate::audit::{AuditError, Checkpoint};
use crate::diagnostic::{Diagnostic, Style};
use crate::error::{Error, Exit};
use crate::gate::ProcessIdentity;
use crate::plan::{ParamInput, ParamSource};
use crate::project::CONFIG_FILE;
use crate::service::ServiceError;
use crate::service::client::Client;
use crate::service::protocol::{
    BackupsQuery, CancelDepth, Format, HistoryQuery, Param, ParamOrigin, PlanRequest, Request,
    RequestKind, Response, RunRequest,
};
use crate::service::server::{self, Service};

/// Refuses the global options that name project files: the service's configuration decides.
fn refuse_file_options(
    cli: &Cli,
    refusal: impl Fn(&'static str) -> ServiceError,
) -> Result<(), Error> {
    let chosen = [
        (cli.inventory.is_some(), "-i/--inventory"),
        (cli.policy.is_some(), "--policy"),
        (
            cli.state_dir.is_some(),
            "--state-dir (or OPSGATE_STATE_DIR)",
        ),
    ];
    match chosen.into_iter().find(|(given, _)| *given) {
        Some((_, option)) => Err(refusal(option).into()),
        None => Ok(()),
    }
}

/// Runs the service until SIGTERM or Ctrl-C.
pub(super) fn serve(cli: &Cli, args: &ServeArgs, style: Style) -> Result<Exit, Error> {
    refuse_file_options(cli, |option| ServiceError::ServeOption { option })?;
    let process = ProcessIdentity::current()?;
    let reporter = TerminalReporter::new(style);
    let service = Service::prepare(&args.config, &process, &reporter)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(Error::Runtime)?;
    runtime.block_on(async {
        let listener = server::bind(service.socket())?;
        let mut terminate =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                .map_err(ServiceError::Signals)?;
        let socket = service.socket().to_path_buf();
        log(&format!(
            "opsgate serve: listening on `{}` as `{}` (protocol {})",
            socket.display(),
            process.account,
            crate::service::protocol::VERSION
        ));
        // SIGHUP would end the process by default; until reloads exist it only says so.
        let mut hangup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
            .map_err(ServiceError::Signals)?;
        let shutdown = async move {
            loop {
                tokio::select! {
                    _ = terminate.recv() => break,
                    _ = tokio::signal::ctrl_c() => break,
                    _ = hangup.recv() => log(
                        "opsgate serve: SIGHUP ignored: reloading is not implemented yet; \
                         restart the service to load changed files",
                    ),
                }
            }
        };
        server::serve(listener, Arc::new(service), shutdown).await;
        log(&format!(
            "opsgate serve: stopped; `{}` removed",
            socket.display()
        ));
        Ok::<(), Error>(())
    })?;
    Ok(Exit::Ok)
}

/// A line on the service's stderr (its log under systemd).
fn log(line: &str) {
    let mut stderr = std::io::stderr().lock();
    let _ = writeln!(stderr, "{line}");
}

/// The service's socket when this command line is in team mode: `OPSGATE_SOCKET`, else
/// `service:` in `./opsgate.yaml`.
pub(super) fn team_socket() -> Result<Option<PathBuf>, Error> {
    if let Some(socket) = std::env::var_os("OPSGATE_SOCKET").filter(|value| !value.is_empty()) {
        return Ok(Some(PathBuf::from(socket)));
    }
    if !Path::new(CONFIG_FILE).exists() {
        return Ok(None);
    }
    Ok(
        crate::project::Project::load(Path::new("."), crate::project::Overrides::default())?
            .service_socket,
    )
}

/// Runs `cli.command` through the service at `socket`; `None` when the command stays local
/// (`validate`, `plan`, `inventory`, `lab` work on the operator's own files).
pub(super) fn through_service(
    cli: &Cli,
    socket: &Path,
    out: &mut dyn Write,
) -> Option<Result<Exit, Error>> {
    let kind = match &cli.command {
        Command::Whoami => RequestKind::Whoami,
        Command::Catalog => RequestKind::Catalog,
        Command::Pending => RequestKind::Pending,
        Command::History(args) => history_request(args),
        Command::Plan(args) => match &args.command {
            Some(PlanCommand::Show { plan }) => RequestKind::PlanShow { plan: plan.clone() },
            None if args.save => {
                return Some(
                    plan_request(args).and_then(|kind| ask(socket, &request(kind, cli.json), out)),
                );
            }
            // Planning without saving reads the operator's own files, locally.
            None => return None,
        },
        Command::Validate(_) | Command::Inventory(_) | Command::Lab(_) => {
            return None;
        }
        Command::Serve(_) | Command::Completions { .. } | Command::Man => {
            unreachable!("answered before team mode is looked for")
        }
        Command::Approve(args) => match approve_request(args, socket) {
            Ok(kind) => kind,
            Err(error) => return Some(Err(error)),
        },
        Command::Backups(args) => RequestKind::Backups {
            query: BackupsQuery {
                host: args.host.clone(),
                runbook: args.runbook.clone(),
                limit: args.limit,
            },
        },
        Command::Audit(args) => match audit_request(args, socket) {
            Ok(AuditRequest::Ask(kind)) => kind,
            Ok(AuditRequest::Checkpoint { append }) => {
                return Some(checkpoint(socket, append.as_deref(), cli.json, out));
            }
            Err(error) => return Some(Err(error)),
        },
        Command::Run(args) => {
            return Some(
                refuse_file_options(cli, |option| ServiceError::ServiceOwned {
                    option,
                    socket: socket.to_path_buf(),
                })
                .and_then(|()| run(args, cli.json, socket, out)),
            );
        }
    };
    let request = request(kind, cli.json);
    Some(
        refuse_file_options(cli, |option| ServiceError::ServiceOwned {
            option,
            socket: socket.to_path_buf(),
        })
        .and_then(|()| ask(socket, &request, out)),
    )
}

/// `opsgate run` through the service: the client reads the param files with its own rights and
/// sends values; the service plans, gates, runs and records; Ctrl-C sends a `cancel` (once: no
/// new steps; twice: kill running commands); events print as the local command prints them.
fn run(args: &RunArgs, json: bool, socket: &Path, out: &mut dyn Write) -> Result<Exit, Error> {
    let target = super::params::plan_target(&args.target, &ProcessIdentity::current()?)?;
    let runbook = match (target.runbook, &args.plan) {
        (Some(runbook), _) => runbook,
        (None, Some(_)) => String::new(),
        (None, None) => {
            return Err(Diagnostic::error("no RUNBOOK given")
                .hint("name a catalog id: `opsgate catalog` lists them")
                .into());
        }
    };
    let request = Request {
        kind: RequestKind::Run(RunRequest {
            runbook,
            plan: args.plan.clone(),
            limit: target.limit,
            widen: target.widen,
            params: params(target.params),
            check: args.check,
            diff: args.diff,
            forks: args.forks,
            approval_timeout_ms: u64::try_from(args.approval_timeout.as_millis())
                .unwrap_or(u64::MAX),
            reason: args.reason.clone(),
            break_glass: args.break_glass,
            verbose: args.verbose,
        }),
        format: if json { Format::Json } else { Format::Human },
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(Error::Runtime)?;
    let mut written = Ok(());
    let exit = runtime.block_on(async {
        let interrupts = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())
            .map_err(|source| Error::Terminal {
                action: "catch Ctrl-C",
                source,
            })?;
        let (cancel, mut cancels) = tokio::sync::mpsc::unbounded_channel();
        let watcher = tokio::spawn(watch_interrupts(interrupts, cancel, json));
        let result = async {
            let mut client = Client::connect(socket).await?;
            client
                .follow(&request, &mut cancels, |response| match response {
                    Response::Event { stdout, .. } | Response::Output { stdout }
                        if written.is_ok() && !stdout.is_empty() =>
                    {
                        written = emit(out, stdout);
                    }
                    Response::Warning { text } => {
                        let mut stderr = std::io::stderr().lock();
                        let _ = stderr.write_all(text.as_bytes());
                    }
                    _ => {}
                })
                .await
        }
        .await;
        watcher.abort();
        Ok::<u8, Error>(result?)
    })?;
    written?;
    Ok(Exit::from_code(exit))
}

/// First Ctrl-C: ask the service to start no new step; second: to kill running commands.
async fn watch_interrupts(
    mut signal: tokio::signal::unix::Signal,
    cancel: tokio::sync::mpsc::UnboundedSender<CancelDepth>,
    json: bool,
) {
    let mut depth = CancelDepth::StopScheduling;
    while signal.recv().await.is_some() {
        if !json {
            let message = match depth {
                CancelDepth::StopScheduling => {
                    "interrupted: no new steps start; running steps finish (Ctrl-C again to kill \
                     them)"
                }
                CancelDepth::Kill => "interrupted again: killing running remote commands",
            };
            let _ = writeln!(std::io::stderr().lock(), "{message}");
        }
        if cancel.send(depth).is_err() {
            return;
        }
        depth = CancelDepth::Kill;
    }
}

/// A request in the format the command line was asked for.
fn request(kind: RequestKind, json: bool) -> Request {
    Request {
        kind,
        format: if json { Format::Json } else { Format::Human },
    }
}

/// Param values as they travel: read by this process, with the operator's rights.
fn params(inputs: Vec<ParamInput>) -> Vec<Param> {
    inputs
        .into_iter()
        .map(|param| Param {
            name: param.name,
            value: param.value,
            origin: match param.source {
                ParamSource::FileReference => ParamOrigin::FileReference,
                ParamSource::ParamsFile => ParamOrigin::ParamsFile,
                ParamSource::Prompt => ParamOrigin::Prompt,
                ParamSource::CommandLine | ParamSource::SavedPlan => ParamOrigin::CommandLine,
            },
        })
        .collect()
}

/// `plan RUNBOOK --save` of a catalog runbook: the service plans and saves it.
fn plan_request(args: &PlanArgs) -> Result<RequestKind, Error> {
    let target = super::params::plan_target(&args.target, &ProcessIdentity::current()?)?;
    let Some(runbook) = target.runbook else {
        return Err(Diagnostic::error("no RUNBOOK given")
            .hint("name a catalog id: `opsgate catalog` lists them")
            .into());
    };
    Ok(RequestKind::Plan(PlanRequest {
        runbook,
        limit: target.limit,
        widen: target.widen,
        params: params(target.params),
        save: true,
    }))
}

/// `approve …`: ids go to the service; a signed document is read here. Signing (`--sign`)
/// needs the statement the service would sign and is not offered in team mode yet.
fn approve_request(args: &ApproveArgs, socket: &Path) -> Result<RequestKind, Error> {
    Ok(match &args.command {
        None => match &args.signed {
            Some(file) => RequestKind::ApproveSigned {
                document: super::approve::read_document(file)?,
            },
            None if args.sign.is_some() => return Err(not_yet("approve --sign", socket)),
            None => {
                return Err(Diagnostic::error("nothing to approve")
                    .hint("`opsgate approve run ID`, `approve runbook ID` or `approve plan PLAN`")
                    .into());
            }
        },
        Some(
            ApproveCommand::Run { sign: Some(_), .. }
            | ApproveCommand::Plan { sign: Some(_), .. }
            | ApproveCommand::Runbook { sign: Some(_), .. },
        ) => return Err(not_yet("approve --sign", socket)),
        Some(
            ApproveCommand::Run { prepare: true, .. }
            | ApproveCommand::Plan { prepare: true, .. }
            | ApproveCommand::Runbook { prepare: true, .. },
        ) => return Err(not_yet("approve --prepare", socket)),
        Some(ApproveCommand::Run {
            run,
            reject,
            reason,
            gate_step,
            sign: None,
            prepare: false,
        }) => RequestKind::ApproveRun {
            run: run.get(),
            reject: *reject,
            reason: reason.clone(),
            gate_step: *gate_step,
        },
        Some(ApproveCommand::Plan {
            plan,
            sign: None,
            prepare: false,
        }) => RequestKind::ApprovePlan { plan: plan.clone() },
        // In team mode the argument is a catalog id; the service refuses a path.
        Some(ApproveCommand::Runbook {
            file,
            sign: None,
            prepare: false,
        }) => RequestKind::ApproveRunbook {
            runbook: file.to_string_lossy().into_owned(),
        },
    })
}

/// What an `audit` command becomes in team mode.
enum AuditRequest {
    /// A request answered like any other.
    Ask(RequestKind),
    /// `audit checkpoint`, appended to the operator's file here.
    Checkpoint { append: Option<PathBuf> },
}

/// `audit …`: the checkpoint file to verify against is read here and sent as text; signing
/// keys and allowed-signers files are the operator's and not offered in team mode yet.
fn audit_request(args: &AuditArgs, socket: &Path) -> Result<AuditRequest, Error> {
    Ok(match &args.command {
        AuditCommand::Verify {
            allowed_signers: Some(_),
            ..
        } => return Err(not_yet("audit verify --allowed-signers", socket)),
        AuditCommand::Verify { checkpoint, .. } => AuditRequest::Ask(RequestKind::AuditVerify {
            checkpoints: checkpoint
                .as_ref()
                .map(|path| {
                    std::fs::read_to_string(path).map_err(|source| {
                        Error::Unverifiable(AuditError::Read {
                            path: path.clone(),
                            source,
                        })
                    })
                })
                .transpose()?,
        }),
        AuditCommand::Checkpoint { key: Some(_), .. } => {
            return Err(not_yet("audit checkpoint --key", socket));
        }
        AuditCommand::Checkpoint { append, .. } => AuditRequest::Checkpoint {
            append: append.clone(),
        },
        AuditCommand::Export { since, .. } => AuditRequest::Ask(RequestKind::AuditExport {
            since: since.map(|time| time.to_string()),
        }),
    })
}

/// `audit checkpoint [--append FILE]` through the service: the service answers with the
/// checkpoint's text, which this process appends to the operator's file with the operator's
/// own rights (the service never writes a file a client names).
fn checkpoint(
    socket: &Path,
    append: Option<&Path>,
    json: bool,
    out: &mut dyn Write,
) -> Result<Exit, Error> {
    let mut text = Vec::new();
    let exit = ask(
        socket,
        &request(RequestKind::AuditCheckpoint, false),
        &mut text,
    )?;
    let text = String::from_utf8_lossy(&text);
    let checkpoints = Checkpoint::parse_all(Path::new("the service's checkpoint"), &text)
        .map_err(Error::Unverifiable)?;
    let [checkpoint] = checkpoints.as_slice() else {
        return Err(ServiceError::Closed.into());
    };
    if let Some(path) = append {
        super::audit::append_checkpoint(path, checkpoint)?;
    }
    if json {
        crate::render::history::write_json(out, checkpoint)?;
    } else {
        emit(out, &text)?;
    }
    Ok(exit)
}

fn not_yet(command: &'static str, socket: &Path) -> Error {
    ServiceError::NotInTeamMode {
        command,
        socket: socket.to_path_buf(),
    }
    .into()
}

/// The request for `history [filters]` or `history show RUN`; times travel as RFC 3339, so an
/// age like `2h` is resolved here, against the client's clock, as the local command does.
fn history_request(args: &HistoryArgs) -> RequestKind {
    if let Some(HistoryCommand::Show { run }) = &args.command {
        return RequestKind::HistoryShow { run: run.get() };
    }
    RequestKind::History {
        query: HistoryQuery {
            operator: args.operator.clone(),
            runbook: args.runbook.clone(),
            host: args.host.clone(),
            status: args.status.map(|status| status.to_string()),
            since: args.since.map(|time| time.to_string()),
            until: args.until.map(|time| time.to_string()),
            limit: args.limit,
        },
    }
}

/// Sends `request` and prints the answer: outputs on stdout, warnings on stderr.
fn ask(socket: &Path, request: &Request, out: &mut dyn Write) -> Result<Exit, Error> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(Error::Runtime)?;
    let mut written = Ok(());
    let exit = runtime.block_on(async {
        let mut client = Client::connect(socket).await?;
        client
            .request(request, |response| match response {
                Response::Output { stdout } if written.is_ok() => {
                    written = emit(out, stdout);
                }
                Response::Warning { text } => {
                    let mut stderr = std::io::stderr().lock();
                    let _ = stderr.write_all(text.as_bytes());
                }
                _ => {}
            })
            .await
    })?;
    written?;
    Ok(Exit::from_code(exit))
}
