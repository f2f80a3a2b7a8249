//! What the front ends print for each operation: the text (or the `--json` document) of a
//! listing, a report, an approval, a notice, a run's event stream.
//!
//! Both front ends use it — the command line prints it, the service (team mode) sends it to its
//! client, which prints it unchanged — so the two modes print the same bytes, and neither front
//! end depends on the other (`service` never imports `cli`). It writes to a buffer it is given
//! and never to the terminal: live progress, prompts and colour decisions stay in `cli`.
//!
//! Why the service renders and the client prints, rather than the service sending data for the
//! client to render: the renderers exist and are tested, and moving them here is a move; sending
//! data would need a serialisable, versioned twin of every ops result type (catalog entries,
//! run details, verifications, …) and a decoder in the client, for output that is meant to be
//! byte for byte the local command's anyway. Typed responses can come later, as new response
//! types (`docs/protocol.md`, Decisions).
//!
//! It is presentation only: every renderer takes an operation's result as data (the runs
//! `ops::history::runs` found, the plan `ops::plan::show` loaded, …) and never calls an
//! operation or holds an `ops::Context` itself. Each front end calls the `ops` function, then
//! the renderer, so what is asked (and as whom) stays visible at the front end, and a renderer
//! can be tested on a value without a project, a store or a caller.

pub(crate) mod approve;
pub(crate) mod audit;
pub(crate) mod backups;
pub(crate) mod catalog;
pub(crate) mod events;
pub(crate) mod history;
pub(crate) mod plan;
pub(crate) mod whoami;

use std::io::Write;

use crate::audit::ApprovalTarget;
use crate::diagnostic::Style;
use crate::error::Error;
use crate::report::Notice;

/// Writes to stdout, treating a closed pipe (`opsgate … | head`) as the reader's choice.
pub(crate) fn emit(out: &mut dyn Write, text: &str) -> Result<(), Error> {
    match out.write_all(text.as_bytes()) {
        Ok(()) => Ok(()),
        Err(error) if error.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(source) => Err(Error::Terminal {
            action: "write the output",
            source,
        }),
    }
}

/// A notice as the command line prints it on stderr, or `None` for one it does not print
/// (a countdown, which each front end shows its own way; the end of a wait off a terminal).
/// `terminal`: whether stderr is a terminal, where lines are cleared with escape codes.
pub(crate) fn notice_text(notice: &Notice<'_>, style: Style, terminal: bool) -> Option<String> {
    let text = match *notice {
        Notice::Warning(warning) => format!("{}\n", warning.render(style)),
        Notice::GateNote(note) => format!("warning: {note}\n"),
        Notice::Pending { run, reason, ask } => {
            format!("run {run} is pending: {reason}\n{ask}\n  opsgate approve run {run}\n")
        }
        Notice::Countdown { .. } => return None,
        Notice::WaitEnded => {
            if terminal {
                "\r\x1b[2K".to_owned()
            } else {
                return None;
            }
        }
        Notice::Approved {
            run,
            approver,
            reason,
        } => format!(
            "run {run} approved by `{approver}`{}\n",
            reason
                .map(|reason| format!(": {reason}"))
                .unwrap_or_default()
        ),
        Notice::ApprovedInAdvance {
            run,
            approver,
            plan,
        } => format!("run {run} approved in advance by `{approver}` (plan {plan})\n"),
        Notice::ApprovalIgnored {
            run,
            target,
            approver,
            problem,
        } => {
            let what = match target {
                ApprovalTarget::Gate { step, .. } => format!("gate step {step}"),
                ApprovalTarget::Run | ApprovalTarget::Plan { .. } => format!("run {run}"),
            };
            let clear = if terminal { "\r\x1b[2K" } else { "" };
            format!("{clear}warning: ignoring an approval of {what} by `{approver}`: {problem}\n")
        }
        Notice::GateWatchStopped(error) => {
            format!("warning: cannot watch for gate approvals: {error}\n")
        }
    };
    Some(text)
}
