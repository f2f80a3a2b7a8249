//! The operations: one function per thing a user asks opsgate to do (`run`, `plan`, `approve`,
//! `pending`, `catalog`, `whoami`, …), each joining the pipeline stages for that operation.
//!
//! The command line (`cli`) and the service (team mode) are front ends over this layer: they
//! turn their input into a plain options struct and call one `ops::…` function with a
//! [`Context`]. Everything an operation needs from its front end is passed in, never read from
//! the process or the terminal here:
//! - **who asks** — a [`Caller`]: the command line reads it from the process, the service from
//!   the socket's peer credentials;
//! - **cancellation** — a `watch::Receiver<Cancel>` (Ctrl-C, or the service's cancel request);
//! - **secrets** — a [`Prompter`] asked for each required secret param still missing;
//! - **progress** — a [`Reporter`] for notices, and for a run an observer of its event stream.
//!
//! Operations return data (a plan, a decision, a run's outcome, a listing); rendering it is the
//! front end's job. They never print and never exit the process.

pub mod approve;
pub mod audit;
pub mod catalog;
mod gatekeeper;
pub mod history;
pub mod plan;
pub mod prepare;
mod record;
pub mod run;
pub mod trust;
pub mod whoami;

pub use gatekeeper::{Gatekeeper, RunFlags, run_request};
pub use prepare::{PlanTarget, Prompter};

use crate::audit::Actor;
use crate::gate::ProcessIdentity;
use crate::project::Project;
use crate::report::Reporter;

/// Who asks for an operation, as the OS vouches for it.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The identity the gate judges (uid, account, `SUDO_USER`, login uid).
    pub process: ProcessIdentity,
    /// The OS identity every audit event of the operation records.
    pub actor: Actor,
    /// How the OS vouches for it.
    pub channel: Channel,
}

/// How a caller reached the operation, which is also how its identity was read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Channel {
    /// The command line in the caller's own process: identity from the process.
    Process,
    /// The service (team mode): identity from the peer credentials of the socket connection.
    Service {
        /// The socket the caller connected to.
        socket: std::path::PathBuf,
    },
}

/// What every operation is given by its front end.
#[derive(Clone, Copy)]
pub struct Context<'a> {
    /// The project: where the catalog, inventory, policy and state live.
    pub project: &'a Project,
    /// Who asks.
    pub caller: &'a Caller,
    /// Where notices go.
    pub reporter: &'a dyn Reporter,
}

impl Context<'_> {
    /// The policy and the caller's identity under it.
    pub fn gatekeeper(&self) -> Result<Gatekeeper, crate::error::Error> {
        Gatekeeper::load(self.project, &self.caller.process, self.reporter)
    }
}
