//! `opsgate run`: plan, then execute over SSH while rendering the event stream; Ctrl-C once
//! stops starting steps, twice kills the running ones.

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use sha2::{Digest, Sha256};

use super::args::RunArgs;
use super::audit_error;
use super::gate::{Gatekeeper, RunFlags, catalog_approvals, run_request};
use super::record::Recorder;
use super::render::{self, Format};
use super::saved;
use super::wait::{self, GateWatch, Verdict, Wait};
use crate::actions::{DiffMode, RunMode};
use crate::audit::{
    Actor, ApprovalTarget, AuditError, AuditStore, GateOutcome, Record, RunId, RunLock, RunStatus,
};
use crate::diagnostic::Style;
use crate::error::{Error, Exit};
use crate::executor::{
    self, Cancel, EventSender, GateAnswers, GateMode, Gates, Options, RunOutcome,
};
use crate::gate::{Decision, Level, RunRequest, approver_level, ask_for_approval, decide};
use crate::plan::Plan;
use crate::project::Project;
use crate::runbook::model::Action;
use crate::template::Renderer;

/// Limit for establishing one host's SSH connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);

/// Plans the run, records it, puts it through the gate (recorded, and waiting for an approval
/// when one is needed), then executes it; the exit code says how the hosts did.
pub(super) fn run(
    args: &RunArgs,
    project: &Project,
    json: bool,
    style: Style,
) -> Result<Exit, Error> {
    let gatekeeper = Gatekeeper::load(project, style)?;
    let renderer = Arc::new(Renderer::new());
    let saved = match &args.plan {
        Some(id) => Some((id.clone(), saved::load(&project.state_dir, id)?)),
        None => None,
    };
    let saved_target = saved
        .as_ref()
        .map(|(_, saved)| saved::target(saved, &args.target));
    let plan = Arc::new(super::plan::prepare(
        saved_target.as_ref().unwrap_or(&args.target),
        project,
        &renderer,
        style,
        gatekeeper.account(),
    )?);
    if let Some((id, saved)) = &saved {
        saved::check_for_run(id, saved, &plan, &gatekeeper)?;
    }
    let actor = Actor::current();
    // The run is on record before any host is touched: a store that cannot be opened or
    // written stops it here.
    let mut store = AuditStore::open(&project.state_dir).map_err(|error| audit_error(&error))?;
    let approvals = catalog_approvals(&store, gatekeeper.policy.as_ref())
        .map_err(|error| audit_error(&error))?;
    let advance = match &saved {
        Some((id, _)) => Some(saved::approval(&store, &project.state_dir, id)?),
        None => None,
    };
    let request = run_request(
        &plan,
        &approvals,
        RunFlags {
            check: args.check,
            break_glass: args.break_glass,
            reason: args.reason.clone(),
        },
    );
    let decision = decide(gatekeeper.policy.as_ref(), &gatekeeper.identity, &request);
    // What can fail before a host is touched is set up before the run is on record, so no
    // recorded run is left open by it.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|error| {
            Error::environment(format!("cannot start the async runtime: {error}"), vec![])
        })?;
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
    let (run, lock) = store
        .begin_run(&actor, requested(&plan, gatekeeper.account(), args.check))
        .map_err(|error| audit_error(&error))?;
    // Every decision is on record before any host is contacted, denials included.
    let gate = Gate {
        gatekeeper: &gatekeeper,
        request: &request,
        actor: &actor,
        run,
        timeout: args.approval_timeout,
        advance: advance.as_ref(),
    };
    let lock = match gate.pass(&mut store, lock, decision, &runtime)? {
        Passage::Through(lock) => lock,
        Passage::Stopped(exit) => return Ok(exit),
    };
    // A saved plan runs once: the first run past the gate claims it.
    if let Some((id, _)) = &saved {
        match saved::mark_ran(&project.state_dir, id) {
            Ok(true) => {}
            Ok(false) => {
                let message = format!("plan {id} has already run (rule `plan-used`)");
                let _ = store.finish_run(lock, &actor, RunStatus::Denied, Some(message.clone()));
                return Err(Error::Denied {
                    message,
                    hints: vec!["an approved plan runs once; save a new one".to_owned()],
                });
            }
            Err(error) => {
                let _ = store.finish_run(lock, &actor, RunStatus::Failed, Some(error.to_string()));
                return Err(error);
            }
        }
    }
    if let Err(error) = store.append(run, &actor, &Record::RunStarted) {
        let _ = store.finish_run(lock, &actor, RunStatus::Failed, Some(error.to_string()));
        return Err(audit_error(&error));
    }
    // Gate steps: open in single-operator mode and under break-glass, else answered by a
    // watcher that polls the store for other operators' approvals.
    let mut gate_watch = None;
    let gates = if gatekeeper.single_operator() {
        Gates::open("single-operator mode: there is no policy, so no one else to approve")
    } else if request.break_glass {
        Gates::open(format!(
            "break-glass by `{}`: {}",
            gatekeeper.account(),
            request.reason.as_deref().unwrap_or_default()
        ))
    } else {
        let (sender, answers) = watch::channel(GateAnswers::new());
        if let Some(policy) = &gatekeeper.policy {
            let watcher_store = match store.connect_again() {
                Ok(watcher_store) => watcher_store,
                Err(error) => {
                    let _ =
                        store.finish_run(lock, &actor, RunStatus::Failed, Some(error.to_string()));
                    return Err(audit_error(&error));
                }
            };
            gate_watch = Some((
                GateWatch {
                    store: watcher_store,
                    run,
                    policy: policy.clone(),
                    requester: gatekeeper.account().to_owned(),
                    levels: gate_levels(&plan, requester_level(&gatekeeper)),
                },
                sender,
            ));
        }
        Gates {
            mode: GateMode::Wait,
            answers,
            timeout: args.approval_timeout,
        }
    };
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
        gates,
    };
    let format = if json {
        Format::Json
    } else {
        Format::Human(style)
    };
    let mut recorder = Recorder::new(store, run, actor.clone(), &plan)
        .requester_level(requester_level(&gatekeeper));
    let (outcome, consumed) = runtime.block_on(async {
        let (cancel_sender, cancel) = watch::channel(Cancel::Running);
        let interrupts = tokio::spawn(watch_interrupts(cancel_sender, format));
        let gate_watcher =
            gate_watch.map(|(watch, sender)| tokio::spawn(wait::watch_gates(watch, sender)));
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
        if let Some(watcher) = gate_watcher {
            watcher.abort();
        }
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
fn requested(plan: &Plan, operator: &str, check: bool) -> Record {
    let params = plan.masked_params();
    Record::RunRequested {
        operator: operator.to_owned(),
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

/// The requester's level under the policy (`None` in single-operator mode or when unlisted).
fn requester_level(gatekeeper: &Gatekeeper) -> Option<Level> {
    gatekeeper
        .policy
        .as_ref()
        .and_then(|policy| policy.operator(gatekeeper.account()))
        .and_then(|operator| operator.level)
}

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

/// The gate of one run, between `run_requested` and `run_started`.
struct Gate<'a> {
    gatekeeper: &'a Gatekeeper,
    request: &'a RunRequest,
    actor: &'a Actor,
    run: RunId,
    timeout: Duration,
    /// The approval of the saved plan being run, which may stand in for a run approval.
    advance: Option<&'a saved::PlanApproval>,
}

/// Whether the run goes on to its hosts.
enum Passage {
    /// Allowed (now or after an approval): execute, then finish the run with this lock.
    Through(RunLock),
    /// Finished here (denied, rejected, timed out, cancelled) with this exit code; the run's
    /// `run_finished` event is written.
    Stopped(Exit),
}

impl Gate<'_> {
    /// Records the decision, then acts on it: a denial ends the run (exit 3), an approval is
    /// requested and waited for.
    fn pass(
        &self,
        store: &mut AuditStore,
        lock: RunLock,
        decision: Decision,
        runtime: &tokio::runtime::Runtime,
    ) -> Result<Passage, Error> {
        if let Err(error) = store.append(self.run, self.actor, &self.record(&decision)) {
            let _ = store.finish_run(lock, self.actor, RunStatus::Failed, Some(error.to_string()));
            return Err(audit_error(&error));
        }
        match decision {
            Decision::Deny(denial) => {
                store
                    .finish_run(
                        lock,
                        self.actor,
                        RunStatus::Denied,
                        Some(denial.to_string()),
                    )
                    .map_err(|error| audit_error(&error))?;
                let mut error = Error::from(denial);
                if let Error::Denied { hints, .. } = &mut error {
                    hints.push(format!(
                        "the refusal is recorded as run {}: `opsgate history show {}`",
                        self.run, self.run
                    ));
                }
                Err(error)
            }
            Decision::Allow { notes } => {
                show_notes(&notes);
                Ok(Passage::Through(lock))
            }
            Decision::NeedsApproval { by, reason, notes } => {
                show_notes(&notes);
                if let Some(advance) = self.advance
                    && advance.admissible(self.gatekeeper, by)
                {
                    return self.approved_in_advance(store, lock, by, &reason, advance);
                }
                self.wait_for_approval(store, lock, by, &reason, runtime)
            }
        }
    }

    fn wait_for_approval(
        &self,
        store: &mut AuditStore,
        lock: RunLock,
        by: Level,
        reason: &str,
        runtime: &tokio::runtime::Runtime,
    ) -> Result<Passage, Error> {
        let requested = Record::ApprovalRequested {
            target: ApprovalTarget::Run,
            approver_level: by.get(),
            message: reason.to_owned(),
        };
        // Ctrl-C is caught from before the run is pending, so it always ends as `cancelled`.
        let interrupts = {
            let _context = runtime.enter();
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())
        };
        let interrupts = match interrupts {
            Ok(interrupts) => interrupts,
            Err(error) => {
                let message = format!("cannot catch Ctrl-C while waiting: {error}");
                let _ =
                    store.finish_run(lock, self.actor, RunStatus::Failed, Some(message.clone()));
                return Err(Error::environment(message, vec![]));
            }
        };
        let after_seq = match store.append(self.run, self.actor, &requested) {
            Ok(seq) => seq,
            Err(error) => {
                let _ =
                    store.finish_run(lock, self.actor, RunStatus::Failed, Some(error.to_string()));
                return Err(audit_error(&error));
            }
        };
        let _ = writeln!(
            std::io::stderr().lock(),
            "run {run} is pending: {reason}\n{ask}\n  opsgate approve run {run}",
            run = self.run,
            ask = ask_for_approval(by, &self.run.to_string()),
        );
        // A pending run always has a policy: without one nothing needs an approval.
        let Some(policy) = self.gatekeeper.policy.as_ref() else {
            let _ = store.finish_run(lock, self.actor, RunStatus::Failed, None);
            return Err(Error::environment(
                "a run needs an approval but there is no policy to check it against",
                vec![],
            ));
        };
        let wait = Wait {
            run: self.run,
            after_seq,
            requester: self.gatekeeper.account(),
            level: by,
            policy,
            timeout: self.timeout,
        };
        let verdict = runtime.block_on(wait::wait(store, &wait, interrupts));
        let verdict = match verdict {
            Ok(verdict) => verdict,
            Err(error) => return Err(self.fail(store, lock, &error)),
        };
        let (status, message, exit, error) = match verdict {
            Verdict::Granted { approver, reason } => {
                let reason = reason
                    .map(|reason| format!(": {reason}"))
                    .unwrap_or_default();
                let _ = writeln!(
                    std::io::stderr().lock(),
                    "run {} approved by `{approver}`{reason}",
                    self.run
                );
                return Ok(Passage::Through(lock));
            }
            Verdict::Rejected { approver, reason } => {
                let reason = reason
                    .map(|reason| format!(": {reason}"))
                    .unwrap_or_default();
                let message = format!("approval rejected by `{approver}`{reason}");
                (
                    RunStatus::Denied,
                    message.clone(),
                    Exit::Rejected,
                    Some(message),
                )
            }
            Verdict::TimedOut => {
                let message = format!(
                    "no approval within {}; nothing ran",
                    crate::cli::history::human_duration(
                        u64::try_from(self.timeout.as_millis()).unwrap_or(u64::MAX)
                    )
                );
                (
                    RunStatus::Denied,
                    message.clone(),
                    Exit::Rejected,
                    Some(message),
                )
            }
            Verdict::Cancelled => (
                RunStatus::Cancelled,
                "interrupted by Ctrl-C while waiting for an approval".to_owned(),
                Exit::Interrupted,
                None,
            ),
        };
        store
            .finish_run(lock, self.actor, status, Some(message))
            .map_err(|error| audit_error(&error))?;
        match error {
            Some(message) => Err(Error::Rejected {
                message: format!("run {}: {message}", self.run),
                hints: vec![format!(
                    "the run is recorded: `opsgate history show {}`",
                    self.run
                )],
            }),
            None => Ok(Passage::Stopped(exit)),
        }
    }

    /// Records the saved plan's approval as this run's approval: the request, then the grant,
    /// naming the plan and its approver.
    fn approved_in_advance(
        &self,
        store: &mut AuditStore,
        lock: RunLock,
        by: Level,
        reason: &str,
        advance: &saved::PlanApproval,
    ) -> Result<Passage, Error> {
        let records = [
            Record::ApprovalRequested {
                target: ApprovalTarget::Run,
                approver_level: by.get(),
                message: reason.to_owned(),
            },
            Record::ApprovalGranted {
                target: ApprovalTarget::Run,
                approver: advance.approver.clone(),
                approver_level: advance.level,
                reason: Some(format!("approved plan {} in advance", advance.plan)),
                signature: None,
            },
        ];
        for record in &records {
            if let Err(error) = store.append(self.run, self.actor, record) {
                return Err(self.fail(store, lock, &error));
            }
        }
        let _ = writeln!(
            std::io::stderr().lock(),
            "run {} approved in advance by `{}` (plan {})",
            self.run,
            advance.approver,
            advance.plan
        );
        Ok(Passage::Through(lock))
    }

    fn fail(&self, store: &mut AuditStore, lock: RunLock, error: &AuditError) -> Error {
        let _ = store.finish_run(lock, self.actor, RunStatus::Failed, Some(error.to_string()));
        audit_error(error)
    }

    /// The `gate_decision` record.
    fn record(&self, decision: &Decision) -> Record {
        let level = self.gatekeeper.identity.operator.level.map(Level::get);
        let level = if self.gatekeeper.policy.is_some() {
            level
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
}

/// Prints the gate's notes (single-operator mode, draft runbooks, break-glass) as warnings.
fn show_notes(notes: &[String]) {
    let mut stderr = std::io::stderr().lock();
    for note in notes {
        let _ = writeln!(stderr, "warning: {note}");
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
