//! The executor's output: a typed stream of [`Event`]s.
//!
//! The terminal renderer, `--json` and the audit history are all consumers of this one stream;
//! the executor never prints and never touches `SQLite`. Events that announce an action travel
//! with a [`Durable`] acknowledgement: the executor waits for it before the action starts, so a
//! consumer that records events (the audit store) makes "recorded before it happens" true.

use std::time::Duration;

use serde::Serialize;
use tokio::sync::{mpsc, oneshot};

pub use crate::actions::Status;

/// Which list a step belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// `steps:`.
    Main,
    /// `on_failure:`.
    OnFailure,
}

/// What one step did on one host, with secrets already masked.
#[derive(Debug, Clone, Serialize)]
pub struct StepReport {
    /// Outcome.
    pub status: Status,
    /// Exit code of the main remote command; `None` after a timeout or when nothing ran.
    pub rc: Option<i32>,
    /// Whether the step changed (or would change) the host.
    pub changed: bool,
    /// Wall time, attempts included.
    #[serde(serialize_with = "as_millis")]
    pub duration: Duration,
    /// Standard output (masked).
    pub stdout: String,
    /// Standard error (masked).
    pub stderr: String,
    /// One line for the operator: why it failed, was skipped, or what changed.
    pub message: Option<String>,
    /// Unified diff of a changed file, when `--diff` asked for it.
    pub diff: Option<String>,
    /// A failure that `ignore_errors` let the host go on from.
    pub ignored: bool,
    /// Attempts made (1 without retries).
    pub attempts: u32,
    /// The backup a `backup` step wrote.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backup: Option<Box<crate::actions::BackupMade>>,
}

fn as_millis<S: serde::Serializer>(duration: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_u64(duration.as_millis() as u64)
}

/// How a host ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum HostOutcome {
    /// Every step ok, changed or skipped.
    Ok,
    /// A step failed (its `on_failure` steps ran).
    Failed,
    /// Connection failed.
    Unreachable,
    /// Its batch was skipped after too many failures, or the run was cancelled first.
    Skipped,
    /// Ctrl-C stopped it between steps.
    Cancelled,
}

/// How the whole run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RunOutcome {
    /// All hosts ok.
    Ok,
    /// A host failed or was unreachable.
    Failed,
    /// Ctrl-C.
    Cancelled,
}

/// One thing that happened during a run.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// Execution begins.
    RunStarted {
        /// Hosts in the plan.
        hosts: usize,
        /// Steps per host (main list).
        steps: usize,
    },
    /// A step is about to start on a host (durable before it does).
    StepStarted {
        /// Inventory host.
        host: String,
        /// 0-based index in its list.
        index: usize,
        /// Main or on-failure list.
        phase: Phase,
        /// Step name.
        name: String,
    },
    /// A step ended on a host.
    StepFinished {
        /// Inventory host.
        host: String,
        /// 0-based index in its list.
        index: usize,
        /// Main or on-failure list.
        phase: Phase,
        /// Step name.
        name: String,
        /// What it did.
        report: StepReport,
    },
    /// A host reached a `gate` step and is about to wait for an approval (durable before it
    /// does: the approval request is on record before anyone is asked).
    GateWaiting {
        /// Inventory host.
        host: String,
        /// The run id, for the `opsgate approve run` command to show.
        run: String,
        /// 1-based step number (`on_failure` steps after the main ones).
        step: u32,
        /// Step name.
        name: String,
        /// The step's `approver_level`, if it sets one.
        approver_level: Option<u8>,
        /// The rendered `message` (masked).
        message: String,
    },
    /// A host could not be reached; its steps do not run.
    HostUnreachable {
        /// Inventory host.
        host: String,
        /// Why (and the fix, for host-key problems).
        message: String,
    },
    /// A host is done.
    HostFinished {
        /// Inventory host.
        host: String,
        /// How it ended.
        outcome: HostOutcome,
    },
    /// A batch is skipped because failures exceeded `max_failures`, or the run was cancelled.
    BatchSkipped {
        /// Hosts of the batch.
        hosts: Vec<String>,
        /// Why.
        reason: String,
    },
    /// Execution ended.
    RunFinished {
        /// How.
        outcome: RunOutcome,
    },
}

/// An event, and for announcing events the acknowledgement the executor waits for.
#[derive(Debug)]
pub struct Envelope {
    /// The event.
    pub event: Event,
    /// Sent back once the event is durable; dropping it unsent tells the executor that the
    /// event could not be recorded, and the announced action does not start.
    pub durable: Option<Durable>,
}

/// Acknowledgement that an announcing event was recorded.
#[derive(Debug)]
pub struct Durable(oneshot::Sender<()>);

impl Durable {
    /// Confirms the event is recorded.
    pub fn confirm(self) {
        let _ = self.0.send(());
    }
}

/// The executor's end of the event stream.
#[derive(Debug, Clone)]
pub struct EventSender(mpsc::Sender<Envelope>);

/// The event stream was closed, or a consumer could not record an announcing event.
#[derive(Debug, thiserror::Error)]
#[error("the run's events could not be recorded")]
pub struct NotRecorded;

impl EventSender {
    /// A bounded stream; the consumer applies back-pressure to the executor.
    #[must_use]
    pub fn channel(capacity: usize) -> (EventSender, mpsc::Receiver<Envelope>) {
        let (sender, receiver) = mpsc::channel(capacity);
        (EventSender(sender), receiver)
    }

    /// Sends an event that reports something already done.
    pub async fn send(&self, event: Event) -> Result<(), NotRecorded> {
        self.0
            .send(Envelope {
                event,
                durable: None,
            })
            .await
            .map_err(|_| NotRecorded)
    }

    /// Sends an event that announces an action and waits until it is recorded.
    pub async fn announce(&self, event: Event) -> Result<(), NotRecorded> {
        let (sender, receiver) = oneshot::channel();
        self.0
            .send(Envelope {
                event,
                durable: Some(Durable(sender)),
            })
            .await
            .map_err(|_| NotRecorded)?;
        receiver.await.map_err(|_| NotRecorded)
    }
}
