//! `gate` steps (SPEC §2.1): a host reaching one pauses until an operator allowed to approve
//! approves it, and one approval releases every host waiting at that step.
//!
//! The executor never touches the audit store: a host announces [`Event::GateWaiting`] (the
//! CLI records the approval request once per step, before the host waits), then watches the
//! [`Gates::answers`] map, which the CLI fills after polling the store for other operators'
//! approvals. Under `--check` a gate passes without waiting (nothing changes anyway); with
//! [`GateMode::Open`] (single-operator mode, break-glass) every gate passes, saying why.
//!
//! [`Event::GateWaiting`]: super::Event::GateWaiting

use std::collections::BTreeMap;
use std::time::Duration;

use tokio::sync::watch;

/// Whether gates wait at all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GateMode {
    /// Wait for an approval recorded by another operator.
    Wait,
    /// Pass every gate without waiting, for this reason (shown and recorded in the step).
    Open(String),
}

/// Another operator's answer at a gate step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GateAnswer {
    /// Approved: every host waiting at the step goes on.
    Granted {
        /// The approver's account.
        approver: String,
    },
    /// Rejected: every host waiting at the step fails it.
    Rejected {
        /// The approver's account.
        approver: String,
        /// Why.
        reason: Option<String>,
    },
}

/// The answers so far, by step number (1-based; `on_failure` steps after the main ones).
pub type GateAnswers = BTreeMap<u32, GateAnswer>;

/// How gate steps behave in this run.
#[derive(Debug, Clone)]
pub struct Gates {
    /// Wait, or pass every gate.
    pub mode: GateMode,
    /// Answers from the CLI, updated as approvals arrive.
    pub answers: watch::Receiver<GateAnswers>,
    /// How long a host waits at a gate before the step fails (`--approval-timeout`).
    pub timeout: Duration,
}

impl Gates {
    /// Gates that pass without waiting, for `reason` (and a closed answer channel).
    #[must_use]
    pub fn open(reason: impl Into<String>) -> Gates {
        let (_, answers) = watch::channel(GateAnswers::new());
        Gates {
            mode: GateMode::Open(reason.into()),
            answers,
            timeout: Duration::ZERO,
        }
    }
}
