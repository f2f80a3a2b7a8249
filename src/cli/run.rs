//! `opsgate run`: plan, then execute over SSH while rendering the event stream; Ctrl-C once
//! stops starting steps, twice kills the running ones.

use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use super::args::RunArgs;
use super::render::{self, Format};
use crate::actions::{DiffMode, RunMode};
use crate::diagnostic::Style;
use crate::error::{Error, Exit};
use crate::executor::{self, Cancel, EventSender, Options, RunOutcome};
use crate::project::Project;
use crate::template::Renderer;

/// Limit for establishing one host's SSH connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);

/// Plans the run, then executes it; the exit code says how the hosts did.
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
        run_id: run_id(),
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
    let outcome = runtime.block_on(async {
        let (cancel_sender, cancel) = watch::channel(Cancel::Running);
        let interrupts = tokio::spawn(watch_interrupts(cancel_sender, format));
        let (events, receiver) = EventSender::channel(1024);
        let hosts: Vec<String> = plan
            .hosts
            .iter()
            .map(|host| host.host.name.to_string())
            .collect();
        let total = plan.hosts.iter().map(|host| host.steps.len() as u64).sum();
        let consumer =
            tokio::spawn(async move { render::consume(receiver, format, &hosts, total).await });
        let outcome = executor::execute(Arc::clone(&plan), options, renderer, events, cancel).await;
        interrupts.abort();
        let recap = consumer.await.unwrap_or_default();
        if let Format::Human(style) = format {
            let _ = write!(std::io::stdout().lock(), "{}", recap.render(style));
        }
        outcome
    });
    // Closing every connection happened inside the executor; dropping the directory removes
    // what is left of the control sockets.
    drop(control_dir);
    Ok(match outcome {
        RunOutcome::Ok => Exit::Ok,
        RunOutcome::Failed => Exit::Failed,
        RunOutcome::Cancelled => Exit::Interrupted,
    })
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

/// The OS account running opsgate, from the kernel's view of this process (never from an
/// environment variable a caller could set).
pub(super) fn operator_name() -> String {
    let uid = std::fs::metadata("/proc/self").map_or(u32::MAX, |metadata| metadata.uid());
    std::fs::read_to_string("/etc/passwd")
        .ok()
        .and_then(|passwd| {
            passwd.lines().find_map(|line| {
                let fields: Vec<&str> = line.split(':').collect();
                (fields.get(2) == Some(&uid.to_string().as_str())).then(|| fields[0].to_owned())
            })
        })
        .unwrap_or_else(|| format!("uid{uid}"))
}

fn run_id() -> String {
    let now = jiff::Timestamp::now();
    format!("{}-{}", now.strftime("%Y%m%dT%H%M%SZ"), std::process::id())
}
