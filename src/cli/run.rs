//! `opsgate run`: plan, then execute over SSH while rendering the event stream; Ctrl-C once
//! stops starting steps, twice kills the running ones.

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use sha2::{Digest, Sha256};

use super::args::RunArgs;
use super::audit_error;
use super::record::Recorder;
use super::render::{self, Format};
use crate::actions::{DiffMode, RunMode};
use crate::audit::{Actor, AuditStore, Record, RunStatus};
use crate::diagnostic::Style;
use crate::error::{Error, Exit};
use crate::executor::{self, Cancel, EventSender, Options, RunOutcome};
use crate::plan::Plan;
use crate::project::Project;
use crate::template::Renderer;

/// Limit for establishing one host's SSH connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);

/// Plans the run, records it, then executes it; the exit code says how the hosts did.
pub(super) fn run(
    args: &RunArgs,
    project: &Project,
    json: bool,
    style: Style,
) -> Result<Exit, Error> {
    let renderer = Arc::new(Renderer::new());
    let plan = Arc::new(super::plan::prepare(
        &args.target,
        project,
        &renderer,
        style,
    )?);
    let actor = Actor::current();
    // The run is on record before any host is touched: a store that cannot be opened or
    // written stops it here.
    let mut store = AuditStore::open(&project.state_dir).map_err(|error| audit_error(&error))?;
    let (run, lock) = store
        .begin_run(&actor, requested(&plan, &actor, args.check))
        .map_err(|error| audit_error(&error))?;
    if let Err(error) = store.append(run, &actor, &Record::RunStarted) {
        let _ = store.finish_run(lock, &actor, RunStatus::Failed, Some(error.to_string()));
        return Err(audit_error(&error));
    }
    // Control sockets live in a short private directory: their paths must fit in a sockaddr_un.
    let control_dir = tempfile::Builder::new()
        .prefix("opsgate-")
        .tempdir_in(std::env::temp_dir())
        .map_err(|error| {
            Error::environment(
                format!("cannot create a directory for SSH control sockets: {error}"),
                vec![],
            )
        })?;
    let options = Options {
        mode: if args.check {
            RunMode::Check
        } else {
            RunMode::Apply
        },
        diff: if args.diff {
            DiffMode::Show
        } else {
            DiffMode::Hide
        },
        forks: usize::from(args.forks),
        connect_timeout: CONNECT_TIMEOUT,
        control_dir: control_dir.path().to_path_buf(),
        run_id: run.to_string(),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|error| {
            Error::environment(format!("cannot start the async runtime: {error}"), vec![])
        })?;
    let format = if json {
        Format::Json
    } else {
        Format::Human(style)
    };
    let mut recorder = Recorder::new(store, run, actor.clone(), &plan);
    let (outcome, consumed) = runtime.block_on(async {
        let (cancel_sender, cancel) = watch::channel(Cancel::Running);
        let interrupts = tokio::spawn(watch_interrupts(cancel_sender, format));
        let (events, receiver) = EventSender::channel(1024);
        let hosts: Vec<String> = plan
            .hosts
            .iter()
            .map(|host| host.host.name.to_string())
            .collect();
        let total = plan.hosts.iter().map(|host| host.steps.len() as u64).sum();
        // Recording is synchronous SQLite work: it gets a thread of its own.
        let consumer = tokio::task::spawn_blocking(move || {
            let recap = render::consume(receiver, format, &hosts, total, |event| {
                recorder.record(event)
            });
            (recap, recorder)
        });
        let outcome = executor::execute(Arc::clone(&plan), options, renderer, events, cancel).await;
        interrupts.abort();
        (outcome, consumer.await)
    });
    // Closing every connection happened inside the executor; dropping the directory removes
    // what is left of the control sockets and generated ssh configs.
    drop(control_dir);
    let Ok((recap, recorder)) = consumed else {
        return Err(Error::environment(
            "the run's event consumer stopped unexpectedly",
            vec![],
        ));
    };
    if let Format::Human(style) = format {
        let _ = write!(std::io::stdout().lock(), "{}", recap.render(style));
    }
    let (mut store, failure) = recorder.finish();
    let (status, message) = match (&failure, outcome) {
        (Some(error), _) => (
            RunStatus::Failed,
            Some(format!("recording failed, steps stopped: {error}")),
        ),
        (None, RunOutcome::Ok) => (RunStatus::Ok, None),
        (None, RunOutcome::Failed) => (
            RunStatus::Failed,
            Some("a host failed or was unreachable".to_owned()),
        ),
        (None, RunOutcome::Cancelled) => (
            RunStatus::Cancelled,
            Some("interrupted by Ctrl-C".to_owned()),
        ),
    };
    let finished = store.finish_run(lock, &actor, status, message);
    if let Some(error) = failure {
        return Err(audit_error(&error));
    }
    finished.map_err(|error| audit_error(&error))?;
    Ok(match outcome {
        RunOutcome::Ok => Exit::Ok,
        RunOutcome::Failed => Exit::Failed,
        RunOutcome::Cancelled => Exit::Interrupted,
    })
}

/// The `run_requested` record: who asked for what, with secret params masked.
fn requested(plan: &Plan, actor: &Actor, check: bool) -> Record {
    let params = plan
        .params
        .iter()
        .map(|(name, value)| {
            let secret = plan.runbook.param(name).is_some_and(|spec| spec.secret);
            (
                name.clone(),
                if secret {
                    "***".to_owned()
                } else {
                    value.to_text()
                },
            )
        })
        .collect();
    Record::RunRequested {
        operator: actor.user.clone(),
        runbook: plan.runbook.id.clone(),
        runbook_sha256: hex::encode(Sha256::digest(plan.runbook.source.text.as_bytes())),
        params,
        pattern: plan.pattern.clone(),
        hosts: plan
            .hosts
            .iter()
            .map(|host| host.host.name.to_string())
            .collect(),
        check,
    }
}

/// First Ctrl-C: stop scheduling; second: kill running commands.
async fn watch_interrupts(cancel: watch::Sender<Cancel>, format: Format) {
    let Ok(mut signal) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())
    else {
        return;
    };
    while signal.recv().await.is_some() {
        let next = if *cancel.borrow() == Cancel::Running {
            Cancel::StopScheduling
        } else {
            Cancel::Kill
        };
        if format != Format::Json {
            let message = match next {
                Cancel::StopScheduling => {
                    "interrupted: no new steps start; running steps finish (Ctrl-C again to kill them)"
                }
                _ => "interrupted again: killing running remote commands",
            };
            let _ = writeln!(std::io::stderr().lock(), "{message}");
        }
        let _ = cancel.send(next);
    }
}
