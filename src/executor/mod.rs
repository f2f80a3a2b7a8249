//! Drives a [`Plan`] over many hosts and reports what happens as [`Event`]s.
//!
//! Hosts run in the plan's rolling batches. Inside a batch every host proceeds on its own (no
//! barrier per step, so one slow host does not hold the others back); the batch is the barrier.
//! At most `--forks` hosts work at once. A failed host stops its own steps and runs its
//! `on_failure` steps; once failed hosts exceed `max_failures`, later batches are skipped.
//!
//! Cancellation has two levels ([`Cancel`]): the first Ctrl-C stops starting new steps and lets
//! running ones finish; the second kills the running remote commands.
//!
//! The executor renders only what the plan deferred (facts, registered results, the run id),
//! never prints, and never touches the audit store: everything leaves through [`EventSender`].

pub mod event;
mod facts;
pub mod gate;
mod host;
mod reboot;
mod resolved;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;

pub use event::{Event, EventSender, HostOutcome, RunOutcome, Status};
pub use gate::{GateAnswer, GateAnswers, GateMode, Gates};

use crate::actions::{DiffMode, RunMode};
use crate::plan::Plan;
use crate::template::Renderer;

/// How a run is executed; fixed before it starts.
#[derive(Debug, Clone)]
pub struct Options {
    /// Apply, or `--check`.
    pub mode: RunMode,
    /// `--diff`.
    pub diff: DiffMode,
    /// Hosts worked on at once.
    pub forks: usize,
    /// Limit for establishing each host's SSH connection.
    pub connect_timeout: Duration,
    /// Private directory for this run's SSH control sockets and generated ssh configs.
    pub control_dir: PathBuf,
    /// `run.id` in templates.
    pub run_id: String,
    /// How `gate` steps wait for approvals.
    pub gates: Gates,
}

/// How far Ctrl-C has gone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Cancel {
    /// Not cancelled.
    Running,
    /// First Ctrl-C: start no new step.
    StopScheduling,
    /// Second Ctrl-C: kill running remote commands too.
    Kill,
}

/// Everything a host task shares with the others.
struct Shared {
    plan: Arc<Plan>,
    options: Options,
    renderer: Arc<Renderer>,
    events: EventSender,
}

/// Runs the plan to the end (or to cancellation) and returns how it ended.
pub async fn execute(
    plan: Arc<Plan>,
    options: Options,
    renderer: Arc<Renderer>,
    events: EventSender,
    cancel: watch::Receiver<Cancel>,
) -> RunOutcome {
    let steps = plan.hosts.first().map_or(0, |host| host.steps.len());
    let _ = events
        .send(Event::RunStarted {
            hosts: plan.hosts.len(),
            steps,
        })
        .await;
    let forks = Arc::new(Semaphore::new(options.forks.max(1)));
    let shared = Arc::new(Shared {
        plan: Arc::clone(&plan),
        options,
        renderer,
        events: events.clone(),
    });
    let mut failures = 0;
    let mut cancelled = false;
    for batch in &plan.batches {
        let names = || {
            batch
                .iter()
                .map(|index| plan.hosts[*index].host.name.to_string())
                .collect()
        };
        if *cancel.borrow() != Cancel::Running {
            cancelled = true;
            let _ = events
                .send(Event::BatchSkipped {
                    hosts: names(),
                    reason: "the run was cancelled".into(),
                })
                .await;
            continue;
        }
        if failures > plan.max_failures {
            let reason = format!(
                "{failures} failed hosts exceed max_failures {}",
                plan.max_failures
            );
            let _ = events
                .send(Event::BatchSkipped {
                    hosts: names(),
                    reason,
                })
                .await;
            continue;
        }
        let mut tasks = JoinSet::new();
        for &index in batch {
            let shared = Arc::clone(&shared);
            let forks = Arc::clone(&forks);
            let cancel = cancel.clone();
            // Taken here, not in the task, so hosts start in inventory order. The semaphore is
            // never closed, so acquiring only waits for a free fork.
            let permit = forks.acquire_owned().await;
            tasks.spawn(async move {
                let _permit = permit;
                host::run(&shared, index, cancel).await
            });
        }
        while let Some(joined) = tasks.join_next().await {
            match joined {
                // A panicking host task is a bug; count the host as failed rather than hide it.
                Ok(HostOutcome::Failed | HostOutcome::Unreachable) | Err(_) => failures += 1,
                Ok(HostOutcome::Cancelled) => cancelled = true,
                Ok(HostOutcome::Ok | HostOutcome::Skipped) => {}
            }
        }
    }
    let outcome = if cancelled || *cancel.borrow() != Cancel::Running {
        RunOutcome::Cancelled
    } else if failures > 0 {
        RunOutcome::Failed
    } else {
        RunOutcome::Ok
    };
    let _ = events.send(Event::RunFinished { outcome }).await;
    outcome
}
