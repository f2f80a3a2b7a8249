//! Runs inside the service (SPEC §4.6): `ops::run` with the caller from the peer credentials,
//! its notices and events streamed to the client that asked, its cancellation in the client's
//! (or the stopping service's) hands.
//!
//! A run belongs to the service, not to the connection: it is a task of [`Runs`], and the
//! connection only follows it. A client that goes away stops following; the run goes on, is
//! recorded and finishes (its events still go to the audit store; only the copy for the client
//! is dropped). When the service stops, every run is cancelled (no new steps) and awaited, so it
//! ends on record as `cancelled`, never `interrupted`.
//!
//! Team mode runs catalog runbooks only, by id: a request naming a path is refused before
//! anything is opened.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;

use super::protocol::{CancelDepth, Format, Param, ParamOrigin, Response, RunRequest};
use super::server::{Service, error_response};
use crate::actions::{DiffMode, RunMode};
use crate::diagnostic::{Diagnostic, Style};
use crate::error::{Error, Exit};
use crate::executor::event::Event;
use crate::executor::{Cancel, RunOutcome};
use crate::ops::prepare::NoPrompt;
use crate::ops::run::{RunObserver, RunOptions};
use crate::ops::{Caller, Context, PlanTarget};
use crate::plan::{ParamInput, ParamSource, Plan};
use crate::render::events::Transcript;
use crate::report::{Notice, Reporter};

/// The runs of the service: their tasks and their cancellation switches.
#[derive(Default)]
pub(super) struct Runs {
    tasks: Mutex<JoinSet<()>>,
    cancels: Mutex<Vec<Arc<watch::Sender<Cancel>>>>,
}

impl std::fmt::Debug for Runs {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("Runs")
    }
}

/// What a connection holds of a run it follows.
pub(super) struct Following {
    /// The run's responses: warnings, events, output, then `done` or `error`.
    pub(super) responses: mpsc::UnboundedReceiver<Response>,
    /// Its cancellation.
    pub(super) cancel: Arc<watch::Sender<Cancel>>,
}

impl Runs {
    /// Starts a run of `request` for `caller`; its responses come in `format`.
    pub(super) fn start(
        service: &Arc<Service>,
        caller: Caller,
        request: RunRequest,
        format: Format,
    ) -> Following {
        let (sender, responses) = mpsc::unbounded_channel();
        let (cancel, cancelled) = watch::channel(Cancel::Running);
        let cancel = Arc::new(cancel);
        lock(&service.runs.cancels).push(Arc::clone(&cancel));
        let runtime = tokio::runtime::Handle::current();
        let owned = Arc::clone(service);
        let switch = Arc::clone(&cancel);
        // `ops::run` drives SQLite and the executor from its own threads; it runs on the blocking
        // pool with the service's runtime, like the command line's `block_on`.
        lock(&service.runs.tasks).spawn_blocking(move || {
            let response = match options(&request) {
                Ok(options) => {
                    let reporter = Streaming {
                        sender: sender.clone(),
                    };
                    let context = Context {
                        project: owned.project(),
                        caller: &caller,
                        reporter: &reporter,
                    };
                    let observer = Box::new(Stream {
                        transcript: Transcript::new(
                            match format {
                                Format::Human => crate::render::events::Format::Human(Style::Plain),
                                Format::Json => crate::render::events::Format::Json,
                            },
                            if request.verbose {
                                crate::render::events::Detail::Verbose
                            } else {
                                crate::render::events::Detail::Normal
                            },
                        ),
                        sender: sender.clone(),
                    });
                    let run =
                        crate::ops::run::run(context, &options, &NoPrompt, cancelled, observer);
                    match runtime.block_on(run) {
                        Ok(report) => Response::Done {
                            exit: exit(report.outcome).code(),
                        },
                        Err(error) => Response::Error(error_response(&error)),
                    }
                }
                Err(error) => Response::Error(error_response(&error)),
            };
            // The client may be gone: the run is on record either way.
            let _ = sender.send(response);
            lock(&owned.runs.cancels).retain(|other| !Arc::ptr_eq(other, &switch));
        });
        Following { responses, cancel }
    }

    /// Cancels every run in progress: no new step starts.
    pub(super) fn cancel_all(&self) {
        for cancel in lock(&self.cancels).iter() {
            cancel.send_if_modified(|state| escalate(state, CancelDepth::StopScheduling));
        }
    }

    /// Cancels every run (again: one may have started since) and waits until each has ended on
    /// record.
    pub(super) async fn stop(&self) {
        self.cancel_all();
        let mut tasks = std::mem::take(&mut *lock(&self.tasks));
        while tasks.join_next().await.is_some() {}
    }

    /// Drops the bookkeeping of runs that have ended.
    pub(super) fn reap(&self) {
        let mut tasks = lock(&self.tasks);
        while tasks.try_join_next().is_some() {}
    }
}

/// Moves a run's cancellation forward to `depth`, never back; whether it changed.
pub(super) fn escalate(state: &mut Cancel, depth: CancelDepth) -> bool {
    let next = match (depth, *state) {
        (_, Cancel::Kill) | (CancelDepth::StopScheduling, Cancel::StopScheduling) => return false,
        (CancelDepth::Kill, _) => Cancel::Kill,
        (CancelDepth::StopScheduling, Cancel::Running) => Cancel::StopScheduling,
    };
    *state = next;
    true
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .expect("no code panics while holding the runs' locks")
}

/// The exit code of a run that reached its hosts, as `opsgate run` ends.
fn exit(outcome: RunOutcome) -> Exit {
    match outcome {
        RunOutcome::Ok => Exit::Ok,
        RunOutcome::Failed => Exit::Failed,
        RunOutcome::Cancelled => Exit::Interrupted,
    }
}

/// `id` if it is a catalog id: a path (or nothing) is refused before anything is opened, since
/// the service runs and approves only what it holds.
pub(super) fn catalog_id(id: &str) -> Result<&str, Error> {
    // The same rule the project uses to tell a path from an id (`x.YAML` included), so nothing
    // the client sends is ever opened as a path.
    let is_path =
        id.is_empty() || id.contains('/') || crate::project::is_yaml(std::path::Path::new(id));
    if is_path {
        return Err(Diagnostic::error(format!(
            "team mode runs catalog runbooks by id, and `{id}` is not an id"
        ))
        .hint("`opsgate catalog` lists the ids the service holds")
        .into());
    }
    Ok(id)
}

/// The param values of a request, as `ops` takes them.
pub(super) fn param_inputs(params: &[Param]) -> Vec<ParamInput> {
    params
        .iter()
        .map(|param| ParamInput {
            name: param.name.clone(),
            value: param.value.clone(),
            source: match param.origin {
                ParamOrigin::CommandLine => ParamSource::CommandLine,
                ParamOrigin::FileReference => ParamSource::FileReference,
                ParamOrigin::ParamsFile => ParamSource::ParamsFile,
                ParamOrigin::Prompt => ParamSource::Prompt,
            },
        })
        .collect()
}

/// The run's options from the request: a catalog runbook by id (a path is refused), or a saved
/// plan.
fn options(request: &RunRequest) -> Result<RunOptions, Error> {
    let runbook = match &request.plan {
        Some(_) if !request.runbook.is_empty() => {
            return Err(
                Diagnostic::error("`run --plan` takes no RUNBOOK: the plan names it").into(),
            );
        }
        Some(_) => None,
        None => Some(catalog_id(&request.runbook)?.to_owned()),
    };
    Ok(RunOptions {
        target: PlanTarget {
            runbook,
            limit: request.limit.clone(),
            widen: request.widen.clone(),
            params: param_inputs(&request.params),
        },
        plan: request.plan.clone(),
        mode: if request.check {
            RunMode::Check
        } else {
            RunMode::Apply
        },
        diff: if request.diff {
            DiffMode::Show
        } else {
            DiffMode::Hide
        },
        forks: usize::from(request.forks.max(1)),
        approval_timeout: Duration::from_millis(request.approval_timeout_ms),
        reason: request.reason.clone(),
        break_glass: request.break_glass,
        connect_timeout: crate::ops::run::CONNECT_TIMEOUT,
    })
}

/// Notices of a run, sent as they happen.
struct Streaming {
    sender: mpsc::UnboundedSender<Response>,
}

impl Reporter for Streaming {
    fn notice(&self, notice: Notice<'_>) {
        if let Some(text) = crate::render::notice_text(&notice, Style::Plain, false) {
            let _ = self.sender.send(Response::Warning { text });
        }
    }
}

/// The run's events, sent as they are recorded, with the text the command line shows for them.
struct Stream {
    transcript: Transcript,
    sender: mpsc::UnboundedSender<Response>,
}

impl RunObserver for Stream {
    fn started(&mut self, plan: &Plan) {
        self.transcript.started(plan);
    }

    fn event(&mut self, event: &Event) {
        let stdout = self.transcript.event(event);
        let event = serde_json::to_value(event).unwrap_or(serde_json::Value::Null);
        let _ = self.sender.send(Response::Event { event, stdout });
    }

    fn finished(&mut self) {
        let stdout = self.transcript.finished();
        if !stdout.is_empty() {
            let _ = self.sender.send(Response::Output { stdout });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{CancelDepth, catalog_id, escalate, options};
    use crate::executor::Cancel;
    use crate::service::protocol::RunRequest;

    #[test]
    fn only_catalog_ids_are_accepted_never_paths() {
        assert_eq!(catalog_id("backup-files").ok(), Some("backup-files"));
        for path in [
            "",
            "../x",
            "/etc/shadow",
            "x.yaml",
            "x.yml",
            "shadow.YAML",
            "x.Yml",
        ] {
            assert!(catalog_id(path).is_err(), "{path:?} must be refused");
        }
    }

    #[test]
    fn cancellation_only_moves_forward() {
        let mut state = Cancel::Running;
        assert!(escalate(&mut state, CancelDepth::StopScheduling));
        assert_eq!(state, Cancel::StopScheduling);
        assert!(!escalate(&mut state, CancelDepth::StopScheduling));
        assert!(escalate(&mut state, CancelDepth::Kill));
        assert_eq!(state, Cancel::Kill);
        assert!(!escalate(&mut state, CancelDepth::StopScheduling));
        assert_eq!(state, Cancel::Kill);
    }

    #[test]
    fn runbooks_are_named_by_id_never_by_path() {
        for runbook in ["/etc/passwd", "../x", "mine.yaml", "x.yml", ""] {
            let request = RunRequest {
                runbook: runbook.to_owned(),
                plan: None,
                limit: None,
                widen: None,
                params: Vec::new(),
                check: false,
                diff: false,
                forks: 5,
                approval_timeout_ms: 1000,
                reason: None,
                break_glass: false,
                verbose: false,
            };
            let error = options(&request).expect_err(runbook).to_string();
            assert!(error.contains("by id"), "{runbook}: {error}");
        }
    }
}
