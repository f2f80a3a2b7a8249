//! `whoami`: who opsgate takes the caller for, under which policy, and in which mode (SPEC §4.1,
//! §4.6). Ungated and read-only; the front ends render the answer (`render::whoami`).

use std::path::PathBuf;

use super::{Channel, Context, Gatekeeper};
use crate::error::Error;

/// Under what regime the caller acts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// No policy file and no sudo identity (SPEC §4.1).
    SingleOperator,
    /// A sudo identity without a policy file: every gated command is denied.
    NoPolicyUnderSudo,
    /// A policy file applies to the account running the command line (no service).
    Policy,
    /// The service's policy applies to the peer of the socket (SPEC §4.6).
    Team,
}

/// The caller's identity report.
pub struct Whoami {
    /// The policy (if any) and the caller's identity under it.
    pub gatekeeper: Gatekeeper,
    /// How the caller reached opsgate, which is how its identity was read.
    pub channel: Channel,
    /// Where the policy file is expected, for the report when it does not exist.
    pub policy_file: PathBuf,
    /// The regime the caller acts under.
    pub mode: Mode,
}

/// Identifies the caller under the project's policy.
pub fn whoami(context: Context<'_>) -> Result<Whoami, Error> {
    let gatekeeper = context.gatekeeper()?;
    let channel = context.caller.channel.clone();
    let mode = if matches!(channel, Channel::Service { .. }) {
        Mode::Team
    } else if gatekeeper.single_operator() {
        Mode::SingleOperator
    } else if gatekeeper.policy.is_none() {
        // Without a policy, `single_operator` is false only under a sudo identity.
        Mode::NoPolicyUnderSudo
    } else {
        Mode::Policy
    };
    Ok(Whoami {
        gatekeeper,
        channel,
        policy_file: context.project.policy.clone(),
        mode,
    })
}
