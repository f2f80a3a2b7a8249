//! `opsgate whoami`: who opsgate thinks you are, at which level, how it knows, and what that
//! level may do (SPEC §4.1).
//!
//! Ungated, but its exit code answers "may I use the gated commands?": 0 for a listed operator
//! or single-operator mode, 3 (denied by policy) for an account the policy does not list or a
//! sudo identity without a policy file, so scripts can check before they try.
//!
//! It also says which mode opsgate is in (SPEC §4.6): personal (no policy, no service), a policy
//! without a service (which gates nobody against their will), or team mode (the service, which
//! renders this report with the identity from the socket's peer credentials).
//!
//! Renders the answer of [`crate::ops::whoami`]; it never asks anything itself.

use std::fmt::Write as _;
use std::io::Write;

use super::emit;
use crate::error::{Error, Exit};
use crate::gate::IdentitySource;
use crate::ops::Channel;
use crate::ops::whoami::{Mode, Whoami};

/// Prints the identity report; its exit code says whether the caller may use the gated
/// commands.
pub(crate) fn report(whoami: &Whoami, json: bool, out: &mut dyn Write) -> Result<Exit, Error> {
    let gatekeeper = &whoami.gatekeeper;
    let mode = whoami.mode;
    let identity = &gatekeeper.identity;
    let operator = &identity.operator;
    let process = &identity.process;
    let source = match (&whoami.channel, identity.source) {
        (Channel::Service { socket }, _) => format!(
            "the peer uid of your connection to the opsgate service `{}` (uid {})",
            socket.display(),
            process.uid
        ),
        (Channel::Process, IdentitySource::Process) => {
            format!("the OS account running opsgate (uid {})", process.uid)
        }
        (Channel::Process, IdentitySource::SudoUser) => format!(
            "SUDO_USER, set by sudo for OS account `{}` (uid {})",
            process.account, process.uid
        ),
    };
    let rules = gatekeeper
        .policy
        .as_ref()
        .map_or(0, |policy| policy.rules().len());
    let (summary, note, exit) = match (operator.level, mode) {
        (_, Mode::SingleOperator) => (
            "may run anything: no gate applies".to_owned(),
            format!(
                "single-operator mode: there is no policy file at `{}`, so no gates apply; every \
                 run is still recorded",
                whoami.policy_file.display()
            ),
            Exit::Ok,
        ),
        (_, Mode::NoPolicyUnderSudo) => (
            "may use only the ungated commands".to_owned(),
            format!(
                "you run opsgate through sudo and there is no policy file at `{}`: every gated \
                 command is denied",
                whoami.policy_file.display()
            ),
            Exit::Denied,
        ),
        (Some(level), _) => (
            level.summary().to_owned(),
            if rules == 0 {
                "under the default gate matrix (SPEC §4.3); the policy has no tightening rules"
                    .to_owned()
            } else {
                format!(
                    "the policy's {} may tighten this for some runbooks, kinds or environments",
                    if rules == 1 {
                        "rule".to_owned()
                    } else {
                        format!("{rules} rules")
                    }
                )
            },
            Exit::Ok,
        ),
        (None, _) => (
            "may use only the ungated commands (validate, plan, catalog, inventory, whoami, lab, \
             audit verify|export, history)"
                .to_owned(),
            format!(
                "account `{}` is not listed under `operators:` in `{}`",
                operator.account,
                whoami.policy_file.display()
            ),
            Exit::Denied,
        ),
    };
    if json {
        let value = serde_json::json!({
            "operator": operator.account,
            "name": operator.display_name,
            "level": operator.level.map(crate::gate::Level::get),
            "source": match (&whoami.channel, identity.source) {
                (Channel::Service { .. }, _) => "peer",
                (Channel::Process, IdentitySource::Process) => "process",
                (Channel::Process, IdentitySource::SudoUser) => "sudo_user",
            },
            "uid": process.uid,
            "account": process.account,
            "login_uid": process.login_uid,
            "mode": mode_str(mode),
            "policy": gatekeeper.policy.as_ref().map(|policy| policy.path().display().to_string()),
            "summary": summary,
            "note": note,
        });
        emit(out, &format!("{value}\n"))?;
        return Ok(exit);
    }
    let name = operator
        .display_name
        .as_deref()
        .map(|name| format!(" ({name})"))
        .unwrap_or_default();
    let level = operator
        .level
        .map_or_else(|| "none".to_owned(), |level| level.to_string());
    let policy = gatekeeper.policy.as_ref().map_or_else(
        || format!("none (`{}` does not exist)", whoami.policy_file.display()),
        |policy| format!("`{}`", policy.path().display()),
    );
    let mut text = format!(
        "operator: {}{name}\nlevel:    {level}\nidentity: {source}\nmode:     {}\npolicy:   \
         {policy}\nmay:      {summary}\nnote:     {note}\n",
        operator.account,
        describe(mode)
    );
    if let Some(login_uid) = process.login_uid {
        let _ = writeln!(text, "login:    uid {login_uid}");
    }
    emit(out, &text)?;
    Ok(exit)
}

/// The mode as `--json` names it.
fn mode_str(mode: Mode) -> &'static str {
    match mode {
        Mode::SingleOperator => "single-operator",
        Mode::NoPolicyUnderSudo => "no-policy-under-sudo",
        Mode::Policy => "policy",
        Mode::Team => "team",
    }
}

/// The `mode:` line of the report.
fn describe(mode: Mode) -> &'static str {
    match mode {
        Mode::SingleOperator => "personal (no policy file, no service)",
        Mode::NoPolicyUnderSudo => "sudo without a policy file (every gated command is denied)",
        Mode::Policy => {
            "policy without a service: it gates only this account, which owns the files, so it \
             gates nobody against their will"
        }
        Mode::Team => "team (the opsgate service)",
    }
}
