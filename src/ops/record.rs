//! The audit consumer of a run's event stream: executor [`Event`]s → audit [`Record`]s.
//!
//! Everything here is already masked: the executor redacts secrets before an event leaves it,
//! and params are masked when the `run_requested` record is built.

use std::collections::BTreeSet;

use crate::audit::{
    Actor, ApprovalTarget, AuditError, AuditStore, Output, Record, RunId, StepStatus,
};
use crate::executor::event::{Event, Phase, Status, StepReport};
use crate::gate::{Level, approver_level};
use crate::plan::Plan;

/// Appends one run's events to the store; remembers the first failure.
pub(crate) struct Recorder {
    store: AuditStore,
    run: RunId,
    actor: Actor,
    /// Main steps per host, so `on_failure` steps get indexes after them.
    main_steps: usize,
    /// The first append that failed: the run stops starting steps once this is set.
    pub(crate) failure: Option<AuditError>,
    /// The requester's level, for the level a `gate` step's approver needs.
    requester_level: Level,
    /// Gate steps whose approval is already requested: one request (and one approval) per
    /// step, however many hosts reach it.
    gates_requested: BTreeSet<u32>,
}

impl Recorder {
    /// A recorder for `run`, whose `run_requested` event is already in `store`.
    pub(crate) fn new(store: AuditStore, run: RunId, actor: Actor, plan: &Plan) -> Self {
        let main_steps = plan.hosts.first().map_or(0, |host| host.steps.len());
        Self {
            store,
            run,
            actor,
            main_steps,
            failure: None,
            requester_level: Level::L1,
            gates_requested: BTreeSet::new(),
        }
    }

    /// Sets the requester's level (L1 when unknown: the strictest approver requirement).
    pub(crate) fn requester_level(mut self, level: Option<Level>) -> Self {
        self.requester_level = level.unwrap_or(Level::L1);
        self
    }

    /// Appends what `event` means for the history; `false` when it could not be recorded.
    pub(crate) fn record(&mut self, event: &Event) -> bool {
        if let Event::GateWaiting {
            step,
            name,
            approver_level: gate_level,
            message,
            ..
        } = event
        {
            if !self.gates_requested.insert(*step) {
                return true;
            }
            let needed = approver_level(self.requester_level, gate_level.and_then(Level::new));
            return self.append(&Record::ApprovalRequested {
                target: ApprovalTarget::Gate {
                    step: *step,
                    name: name.clone(),
                },
                approver_level: needed.get(),
                message: message.clone(),
            });
        }
        let Some(record) = self.translate(event) else {
            return true;
        };
        if !self.append(&record) {
            return false;
        }
        match (event, &record) {
            (
                Event::StepFinished {
                    report:
                        StepReport {
                            backup: Some(backup),
                            ..
                        },
                    ..
                },
                Record::StepFinished { host, step, .. },
            ) => self.append(&Record::BackupCreated {
                host: host.clone(),
                step: *step,
                id: backup.id.clone(),
                store: backup.store.clone(),
                path: backup.path.clone(),
                size: backup.size,
                sha256: backup.sha256.clone(),
                removed: backup.removed.clone(),
            }),
            _ => true,
        }
    }

    /// Appends a record of this run.
    pub(crate) fn append(&mut self, record: &Record) -> bool {
        if self.failure.is_some() {
            return false;
        }
        // Benchmark builds only (`scripts/bench.sh` measures the cost of recording by comparing
        // against them); the feature is never part of a release and no flag reaches it.
        if cfg!(feature = "bench-unrecorded") {
            return true;
        }
        match self.store.append(self.run, &self.actor, record) {
            Ok(_) => true,
            Err(error) => {
                self.failure = Some(error);
                false
            }
        }
    }

    /// Gives the store back, with the first failure if there was one.
    pub(crate) fn finish(self) -> (AuditStore, Option<AuditError>) {
        (self.store, self.failure)
    }

    fn step_number(&self, index: usize, phase: Phase) -> u32 {
        let offset = if phase == Phase::OnFailure {
            self.main_steps
        } else {
            0
        };
        u32::try_from(offset + index + 1).unwrap_or(u32::MAX)
    }

    fn translate(&self, event: &Event) -> Option<Record> {
        Some(match event {
            Event::StepStarted {
                host,
                index,
                phase,
                name,
            } => Record::StepStarted {
                host: host.clone(),
                step: self.step_number(*index, *phase),
                name: step_name(name, *phase),
            },
            Event::StepFinished {
                host,
                index,
                phase,
                name,
                report,
            } => Record::StepFinished {
                host: host.clone(),
                step: self.step_number(*index, *phase),
                name: step_name(name, *phase),
                status: match report.status {
                    Status::Ok => StepStatus::Ok,
                    Status::Changed => StepStatus::Changed,
                    Status::Skipped => StepStatus::Skipped,
                    Status::Failed => StepStatus::Failed,
                    Status::Unreachable => StepStatus::Unreachable,
                },
                rc: report.rc,
                changed: report.changed,
                duration_ms: u64::try_from(report.duration.as_millis()).unwrap_or(u64::MAX),
                stdout: Output::capture(report.stdout.as_bytes()),
                stderr: Output::capture(report.stderr.as_bytes()),
            },
            Event::HostUnreachable { host, message } => Record::HostUnreachable {
                host: host.clone(),
                message: message.clone(),
            },
            // The run's start and end are appended by the caller around the executor; host and
            // batch ends are derivable from the step events.
            Event::RunStarted { .. }
            | Event::GateWaiting { .. }
            | Event::RunFinished { .. }
            | Event::HostFinished { .. }
            | Event::BatchSkipped { .. } => return None,
        })
    }
}

fn step_name(name: &str, phase: Phase) -> String {
    match phase {
        Phase::Main => name.to_owned(),
        Phase::OnFailure => format!("on_failure: {name}"),
    }
}
