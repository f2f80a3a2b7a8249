//! `run`: plan, record the request, pass the gate (recorded, and waiting for an approval when
//! one is needed), execute over SSH while recording every event, and finish the run on record.
//!
//! A run is on record from `run_requested` on, and every way it can end after that — denied,
//! rejected, timed out, cancelled, failed to record, finished — goes through one exit,
//! `OpenRun::close`, which writes `run_finished` with the status the ending calls for. What can
//! fail before a host is touched (the runtime, the control directory) is set up before the run
//! is on record, so no recorded run is left open by it. Should the process die instead, the run's
//! lock is released and the next command records it as `interrupted`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use sha2::{Digest, Sha256};
use tokio::sync::watch;

use super::record::Recorder;
use super::{Context, Gatekeeper, PlanTarget, Prompter, RunFlags, prepare::prepare, run_request};
use crate::actions::{DiffMode, RunMode};
use crate::approval::{self, GateWatch, Verdict, Wait, catalog_approvals};
use crate::audit::{
    Actor, ApprovalTarget, AuditStore, GateOutcome, Record, RunId, RunLock, RunStatus,
};
use crate::error::Error;
use crate::executor::event::Event;
use crate::executor::{
    self, Cancel, EventSender, GateAnswers, GateMode, Gates, Options, RunOutcome,
};
use crate::gate::{Decision, Level, RunRequest, approver_level, ask_for_approval, decide};
use crate::plan::saved::{self, PlanApproval, SavedPlan};
use crate::plan::{ParamInput, ParamSource, Plan};
use crate::report::Notice;
use crate::runbook::model::Action;
use crate::secret::Secret;
use crate::template::Renderer;

/// Limit for establishing one host's SSH connection, unless its `ssh_options` say otherwise.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);

/// What `run` is asked.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// What to plan (for `run --plan`, only its params are used: the secrets given again).
    pub target: PlanTarget,
    /// `--plan PLAN`: run exactly this saved, approved plan.
    pub plan: Option<String>,
    /// Apply, or `--check`.
    pub mode: RunMode,
    /// `--diff`.
    pub diff: DiffMode,
    /// `--forks`.
    pub forks: usize,
    /// `--approval-timeout`.
    pub approval_timeout: Duration,
    /// `--reason`.
    pub reason: Option<String>,
    /// `--break-glass`.
    pub break_glass: bool,
    /// The default limit for connecting to a host.
    pub connect_timeout: Duration,
}

/// Watches a run's event stream as it happens (the terminal, the service's socket). Runs on the
/// recording thread, after each event is recorded.
pub trait RunObserver: Send {
    /// The run got past the gate and is about to start on its hosts.
    fn started(&mut self, _plan: &Plan) {}

    /// One event of the executor's, already masked.
    fn event(&mut self, event: &Event);

    /// The executor is done: no more events come.
    fn finished(&mut self) {}
}

/// How a run that got to its hosts ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunReport {
    /// Its id.
    pub run: RunId,
    /// How the hosts did.
    pub outcome: RunOutcome,
}

/// Runs the operation: see the module docs.
pub async fn run(
    context: Context<'_>,
    options: &RunOptions,
    prompter: &dyn Prompter,
    cancel: watch::Receiver<Cancel>,
    observer: Box<dyn RunObserver>,
) -> Result<RunReport, Error> {
    let project = context.project;
    let gatekeeper = context.gatekeeper()?;
    let renderer = Arc::new(Renderer::new());
    let saved = match &options.plan {
        Some(id) => Some((id.clone(), saved::load(&project.state_dir, id)?)),
        None => None,
    };
    let target = match &saved {
        Some((_, saved)) => target_of(saved, &options.target),
        None => options.target.clone(),
    };
    let plan = Arc::new(prepare(
        context,
        &target,
        prompter,
        &renderer,
        gatekeeper.account(),
    )?);
    if let Some((id, saved)) = &saved {
        saved.check_for_run(
            id,
            &plan,
            gatekeeper.account(),
            gatekeeper.policy.as_ref(),
            &project.state_dir,
        )?;
    }
    // The run is on record before any host is touched: a store that cannot be opened or
    // written stops it here.
    let store = AuditStore::open(&project.state_dir)?;
    let approvals = catalog_approvals(&store, gatekeeper.policy.as_ref())?;
    let advance = match &saved {
        Some((id, saved)) => Some(PlanApproval::of(&store, saved, id)?),
        None => None,
    };
    let request = run_request(
        &plan,
        &approvals,
        RunFlags {
            check: options.mode == RunMode::Check,
            break_glass: options.break_glass,
            reason: options.reason.clone(),
        },
    );
    let decision = decide(gatekeeper.policy.as_ref(), &gatekeeper.identity, &request);
    // Control sockets live in a short private directory: their paths must fit in a sockaddr_un.
    let control_dir = tempfile::Builder::new()
        .prefix("opsgate-")
        .tempdir_in(std::env::temp_dir())
        .map_err(|source| Error::Io {
            action: "create a directory for SSH control sockets in",
            path: std::env::temp_dir(),
            source,
        })?;
    let requested = requested(&plan, gatekeeper.account(), options.mode == RunMode::Check);
    let mut open = OpenRun::begin(store, &project.state_dir, &context.caller.actor, &requested)?;
    let attempt = Attempt {
        context,
        options,
        gatekeeper: &gatekeeper,
        request: &request,
        plan,
        renderer,
        saved: saved.as_ref().map(|(id, _)| id.as_str()),
        advance: advance.as_ref(),
        control_dir: control_dir.path().to_path_buf(),
    };
    let ending = attempt.drive(&mut open, decision, cancel, observer).await;
    // Closing every connection happened inside the executor; dropping the directory removes
    // what is left of the control sockets and generated ssh configs.
    drop(control_dir);
    open.close(ending)
}

/// The params to plan a saved plan again with: its non-secret params, then the secrets the
/// caller gives now (`-p`, `--params-file`, or a prompt).
fn target_of(saved: &SavedPlan, given: &PlanTarget) -> PlanTarget {
    let mut params: Vec<ParamInput> = saved
        .public_params()
        .into_iter()
        .map(|(name, value)| ParamInput {
            name,
            value: Secret::new(value),
            source: ParamSource::SavedPlan,
        })
        .collect();
    params.extend(given.params.iter().cloned());
    PlanTarget {
        runbook: Some(saved.runbook.clone()),
        limit: saved.limit.clone(),
        widen: saved.widen.clone(),
        params,
    }
}

/// The `run_requested` record: who asked for what, with secret params masked.
fn requested(plan: &Plan, operator: &str, check: bool) -> Record {
    Record::RunRequested {
        operator: operator.to_owned(),
        runbook: plan.runbook.id.clone(),
        runbook_sha256: hex::encode(Sha256::digest(plan.runbook.source.text.as_bytes())),
        params: plan.masked_params(),
        pattern: plan.pattern.clone(),
        hosts: plan.host_names(),
        check,
    }
}

/// How a run ended without an error: the outcome, and what the record says about it when the
/// outcome alone does not.
struct Finish {
    outcome: RunOutcome,
    message: Option<String>,
}

/// A recorded run that has not finished yet.
struct OpenRun {
    /// The store; lent to the recorder while the executor runs.
    store: Option<AuditStore>,
    /// Where the store lives, to reopen it should the recorder be lost.
    state_dir: PathBuf,
    lock: RunLock,
    run: RunId,
    actor: Actor,
}

impl OpenRun {
    /// Records `requested` and holds the run's lock.
    fn begin(
        mut store: AuditStore,
        state_dir: &Path,
        actor: &Actor,
        requested: &Record,
    ) -> Result<OpenRun, Error> {
        let (run, lock) = store.begin_run(actor, requested.clone())?;
        Ok(OpenRun {
            store: Some(store),
            state_dir: state_dir.to_path_buf(),
            lock,
            run,
            actor: actor.clone(),
        })
    }

    fn store(&mut self) -> Result<&mut AuditStore, Error> {
        if self.store.is_none() {
            self.store = Some(AuditStore::open(&self.state_dir)?);
        }
        Ok(self.store.as_mut().expect("the store was just put back"))
    }

    /// Appends one record of this run; returns its seq.
    fn append(&mut self, record: &Record) -> Result<u64, Error> {
        let (run, actor) = (self.run, self.actor.clone());
        Ok(self.store()?.append(run, &actor, record)?)
    }

    /// The one exit: records how the run ended and returns it, or the error that ended it.
    fn close(mut self, ending: Result<Finish, Error>) -> Result<RunReport, Error> {
        let (status, message) = match &ending {
            Ok(Finish { outcome, message }) => {
                let (status, default) = match outcome {
                    RunOutcome::Ok => (RunStatus::Ok, None),
                    RunOutcome::Failed => (
                        RunStatus::Failed,
                        Some("a host failed or was unreachable".to_owned()),
                    ),
                    RunOutcome::Cancelled => (
                        RunStatus::Cancelled,
                        Some("interrupted by Ctrl-C".to_owned()),
                    ),
                };
                (status, message.clone().or(default))
            }
            Err(error) => (ended_status(error), Some(ended_message(error))),
        };
        let (run, actor) = (self.run, self.actor.clone());
        let finished = match self.store() {
            Ok(_) => {
                let OpenRun { store, lock, .. } = self;
                store
                    .expect("the store was just opened")
                    .finish_run(lock, &actor, status, message)
                    .map_err(Error::from)
            }
            Err(error) => Err(error),
        };
        match ending {
            Ok(Finish { outcome, .. }) => finished.map(|_| RunReport { run, outcome }),
            Err(Error::Denied { denial, .. }) => Err(Error::Denied {
                denial,
                recorded: Some(run),
            }),
            Err(error) => Err(error),
        }
    }
}

/// The status a run ended by `error` is recorded with.
fn ended_status(error: &Error) -> RunStatus {
    match error {
        Error::Denied { .. }
        | Error::SavedPlan(saved::SavedPlanError::Denied(_))
        | Error::ApprovalRejected { .. }
        | Error::ApprovalTimedOut { .. } => RunStatus::Denied,
        _ => RunStatus::Failed,
    }
}

/// The message a run ended by `error` is recorded with: the error and its causes on one line.
fn ended_message(error: &Error) -> String {
    let mut message = match error {
        // The run id is the record's own; the message need not repeat it.
        Error::ApprovalRejected {
            approver, reason, ..
        } => format!(
            "approval rejected by `{approver}`{}",
            reason
                .as_deref()
                .map(|reason| format!(": {reason}"))
                .unwrap_or_default()
        ),
        Error::ApprovalTimedOut { timeout, .. } => format!(
            "no approval within {}; nothing ran",
            crate::report::human_duration(*timeout)
        ),
        _ => error.to_string(),
    };
    let mut cause = std::error::Error::source(error);
    while let Some(error) = cause {
        let _ = write!(message, ": {error}");
        cause = error.source();
    }
    message
}

/// One attempt at a recorded run, between `run_requested` and `run_finished`.
struct Attempt<'a> {
    context: Context<'a>,
    options: &'a RunOptions,
    gatekeeper: &'a Gatekeeper,
    request: &'a RunRequest,
    plan: Arc<Plan>,
    renderer: Arc<Renderer>,
    /// The saved plan being run.
    saved: Option<&'a str>,
    /// The approval of the saved plan being run, which may stand in for a run approval.
    advance: Option<&'a PlanApproval>,
    control_dir: PathBuf,
}

impl Attempt<'_> {
    /// Gate, claim the saved plan, execute.
    async fn drive(
        &self,
        open: &mut OpenRun,
        decision: Decision,
        mut cancel: watch::Receiver<Cancel>,
        observer: Box<dyn RunObserver>,
    ) -> Result<Finish, Error> {
        if let Some(finish) = self.pass_gate(open, decision, &mut cancel).await? {
            return Ok(finish);
        }
        // A saved plan runs once: the first run past the gate claims it.
        if let Some(id) = self.saved {
            saved::mark_ran(&self.context.project.state_dir, id)?;
        }
        open.append(&Record::RunStarted)?;
        self.execute(open, cancel, observer).await
    }

    /// Records the decision, then acts on it: a denial ends the run (exit 3), an approval is
    /// requested and waited for. `Some` when the run ended at the gate without an error
    /// (cancelled while waiting).
    async fn pass_gate(
        &self,
        open: &mut OpenRun,
        decision: Decision,
        cancel: &mut watch::Receiver<Cancel>,
    ) -> Result<Option<Finish>, Error> {
        open.append(&self.decision_record(&decision))?;
        let reporter = self.context.reporter;
        match decision {
            Decision::Deny(denial) => Err(denial.into()),
            Decision::Allow { notes } => {
                for note in &notes {
                    reporter.notice(Notice::GateNote(note));
                }
                Ok(None)
            }
            Decision::NeedsApproval { by, reason, notes } => {
                for note in &notes {
                    reporter.notice(Notice::GateNote(note));
                }
                let policy = self.gatekeeper.policy.as_ref();
                match self.advance {
                    Some(advance) if advance.admissible(policy, by) => {
                        self.approved_in_advance(open, by, &reason, advance)?;
                        Ok(None)
                    }
                    _ => self.wait_for_approval(open, by, &reason, cancel).await,
                }
            }
        }
    }

    async fn wait_for_approval(
        &self,
        open: &mut OpenRun,
        by: Level,
        reason: &str,
        cancel: &mut watch::Receiver<Cancel>,
    ) -> Result<Option<Finish>, Error> {
        let run = open.run;
        let after_seq = open.append(&Record::ApprovalRequested {
            target: ApprovalTarget::Run,
            approver_level: by.get(),
            message: reason.to_owned(),
        })?;
        let reporter = self.context.reporter;
        reporter.notice(Notice::Pending {
            run,
            reason,
            ask: &ask_for_approval(by, &run.to_string()),
        });
        // A pending run always has a policy: without one nothing needs an approval.
        let policy = self
            .gatekeeper
            .policy
            .as_ref()
            .expect("only a policy makes a run wait for an approval");
        let wait = Wait {
            run,
            after_seq,
            requester: self.gatekeeper.account(),
            level: by,
            policy,
            timeout: self.options.approval_timeout,
        };
        match approval::wait(open.store()?, &wait, cancel, reporter).await? {
            Verdict::Granted { approver, reason } => {
                reporter.notice(Notice::Approved {
                    run,
                    approver: &approver,
                    reason: reason.as_deref(),
                });
                Ok(None)
            }
            Verdict::Rejected { approver, reason } => Err(Error::ApprovalRejected {
                run,
                approver,
                reason,
            }),
            Verdict::TimedOut => Err(Error::ApprovalTimedOut {
                run,
                timeout: self.options.approval_timeout,
            }),
            Verdict::Cancelled => Ok(Some(Finish {
                outcome: RunOutcome::Cancelled,
                message: Some("interrupted by Ctrl-C while waiting for an approval".to_owned()),
            })),
        }
    }

    /// Records the saved plan's approval as this run's approval: the request, then the grant,
    /// naming the plan and its approver.
    fn approved_in_advance(
        &self,
        open: &mut OpenRun,
        by: Level,
        reason: &str,
        advance: &PlanApproval,
    ) -> Result<(), Error> {
        open.append(&Record::ApprovalRequested {
            target: ApprovalTarget::Run,
            approver_level: by.get(),
            message: reason.to_owned(),
        })?;
        open.append(&Record::ApprovalGranted {
            target: ApprovalTarget::Run,
            approver: advance.approver.clone(),
            approver_level: advance.level,
            reason: Some(format!("approved plan {} in advance", advance.plan)),
            signature: None,
        })?;
        self.context.reporter.notice(Notice::ApprovedInAdvance {
            run: open.run,
            approver: &advance.approver,
            plan: &advance.plan,
        });
        Ok(())
    }

    /// The `gate_decision` record.
    fn decision_record(&self, decision: &Decision) -> Record {
        let level = if self.gatekeeper.policy.is_some() {
            self.gatekeeper.identity.operator.level.map(Level::get)
        } else {
            None
        };
        match decision {
            Decision::Allow { notes } => Record::GateDecision {
                outcome: if self.request.break_glass {
                    GateOutcome::BreakGlass
                } else {
                    GateOutcome::Allow
                },
                rule: None,
                reason: if notes.is_empty() {
                    "allowed".to_owned()
                } else {
                    notes.join("; ")
                },
                level,
                required_level: None,
            },
            Decision::NeedsApproval { by, reason, notes } => Record::GateDecision {
                outcome: GateOutcome::NeedsApproval,
                rule: None,
                reason: std::iter::once(reason.clone())
                    .chain(notes.iter().cloned())
                    .collect::<Vec<_>>()
                    .join("; "),
                level,
                required_level: Some(by.get()),
            },
            Decision::Deny(denial) => Record::GateDecision {
                outcome: GateOutcome::Deny,
                rule: Some(denial.rule.as_str().to_owned()),
                reason: format!("{}; {}", denial.reason, denial.would_allow),
                level,
                required_level: None,
            },
        }
    }

    /// How `gate` steps are answered: open in single-operator mode and under break-glass, else
    /// by a watcher that polls the store for other operators' approvals.
    fn gates(&self, open: &mut OpenRun) -> Result<(Gates, Option<GateWatcher>), Error> {
        let gatekeeper = self.gatekeeper;
        if gatekeeper.single_operator() {
            return Ok((
                Gates::open("single-operator mode: there is no policy, so no one else to approve"),
                None,
            ));
        }
        if self.request.break_glass {
            return Ok((
                Gates::open(format!(
                    "break-glass by `{}`: {}",
                    gatekeeper.account(),
                    self.request.reason.as_deref().unwrap_or_default()
                )),
                None,
            ));
        }
        let (sender, answers) = watch::channel(GateAnswers::new());
        let watcher = match &gatekeeper.policy {
            Some(policy) => Some((
                GateWatch {
                    store: open.store()?.connect_again()?,
                    run: open.run,
                    policy: policy.clone(),
                    requester: gatekeeper.account().to_owned(),
                    levels: gate_levels(&self.plan, gatekeeper.level()),
                },
                sender,
            )),
            None => None,
        };
        Ok((
            Gates {
                mode: GateMode::Wait,
                answers,
                timeout: self.options.approval_timeout,
            },
            watcher,
        ))
    }

    /// Executes the plan, recording every event on a thread of its own (recording is
    /// synchronous `SQLite` work) and showing it to `observer` once recorded.
    async fn execute(
        &self,
        open: &mut OpenRun,
        cancel: watch::Receiver<Cancel>,
        mut observer: Box<dyn RunObserver>,
    ) -> Result<Finish, Error> {
        let (gates, watcher) = self.gates(open)?;
        let options = Options {
            mode: self.options.mode,
            diff: self.options.diff,
            forks: self.options.forks,
            connect_timeout: self.options.connect_timeout,
            control_dir: self.control_dir.clone(),
            run_id: open.run.to_string(),
            gates,
        };
        let store = open
            .store
            .take()
            .expect("the store is back between operations");
        let mut recorder = Recorder::new(store, open.run, open.actor.clone(), &self.plan)
            .requester_level(self.gatekeeper.level());
        observer.started(&self.plan);
        let (events, mut receiver) = EventSender::channel(1024);
        let consumer = tokio::task::spawn_blocking(move || {
            while let Some(envelope) = receiver.blocking_recv() {
                // An announcing event is confirmed to the executor only once recorded, so an
                // action that could not be recorded never starts.
                let on_record = recorder.record(&envelope.event);
                observer.event(&envelope.event);
                if let (Some(durable), true) = (envelope.durable, on_record) {
                    durable.confirm();
                }
            }
            observer.finished();
            recorder
        });
        let execution = executor::execute(
            Arc::clone(&self.plan),
            options,
            Arc::clone(&self.renderer),
            events,
            cancel,
        );
        let reporter = self.context.reporter;
        let outcome = match watcher {
            Some((watch, answers)) => {
                tokio::pin!(execution);
                tokio::select! {
                    outcome = &mut execution => outcome,
                    // The watcher only ends early when the store fails it; gates then time out.
                    () = approval::watch_gates(watch, answers, reporter) => execution.await,
                }
            }
            None => execution.await,
        };
        let Ok(recorder) = consumer.await else {
            return Err(Error::ConsumerStopped { run: open.run });
        };
        let (store, failure) = recorder.finish();
        open.store = Some(store);
        if let Some(source) = failure {
            return Err(Error::Recording {
                run: open.run,
                source,
            });
        }
        Ok(Finish {
            outcome,
            message: None,
        })
    }
}

/// The gate-step watcher of a run and the channel it answers the executor on.
type GateWatcher = (GateWatch, watch::Sender<GateAnswers>);

/// The level each `gate` step's approver needs, by step number (`on_failure` after the main
/// steps): the step's `approver_level`, raised to what the requester's level calls for.
fn gate_levels(plan: &Plan, requester: Option<Level>) -> BTreeMap<u32, Level> {
    let runbook = &plan.runbook;
    runbook
        .steps
        .iter()
        .chain(&runbook.on_failure)
        .enumerate()
        .filter_map(|(index, step)| match &step.action {
            Action::Gate(gate) => Some((
                u32::try_from(index + 1).unwrap_or(u32::MAX),
                approver_level(
                    requester.unwrap_or(Level::L1),
                    gate.approver_level.and_then(Level::new),
                ),
            )),
            _ => None,
        })
        .collect()
}
