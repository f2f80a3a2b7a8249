//! `command` / `shell`: run shell text, with guards that make it idempotent.

use super::{Context, Outcome, RunMode, quote};
use crate::actions::Status;
use crate::runbook::model::Command;
use crate::transport::{RemoteStatus, Transport, TransportError};

/// Evaluates the guards, then runs the text (unless `--check`).
pub(super) async fn run<T: Transport>(
    context: &Context<'_, T>,
    command: &Command<String>,
) -> Result<Outcome, TransportError> {
    match guards(context, command).await? {
        Guards::Run => {}
        Guards::Done(why) => return Ok(Outcome::ok(why)),
        Guards::Broken(why) => return Ok(Outcome::failed(why)),
    }
    if context.mode == RunMode::Check {
        return Ok(Outcome::skipped(format!(
            "check mode: would run `{}`",
            first_line(&command.text)
        )));
    }
    let output = context
        .shell_with(command.text.clone(), None, command.executable.clone())
        .await?;
    let rc = output.rc();
    let (status, message) = match output.status {
        RemoteStatus::TimedOut => (
            Status::Failed,
            Some("timed out; its remote process group was killed".to_owned()),
        ),
        RemoteStatus::Killed => (Status::Failed, Some("killed by a second Ctrl-C".to_owned())),
        RemoteStatus::Signaled => (Status::Failed, Some("ended by a signal".to_owned())),
        RemoteStatus::Exited(code) if command.expect_rc.contains(&code) => (Status::Changed, None),
        RemoteStatus::Exited(code) => (
            Status::Failed,
            Some(format!(
                "exit code {code}, expected {}",
                expected(&command.expect_rc)
            )),
        ),
    };
    Ok(Outcome {
        rc,
        stdout: output.stdout,
        stderr: output.stderr,
        ..Outcome::new(status, message)
    })
}

/// What the guards say about the step.
enum Guards {
    /// No guard says "already done": run the command.
    Run,
    /// A guard says "already done", and why.
    Done(String),
    /// A guard did not answer (timed out, killed): nothing can be concluded, the step fails.
    Broken(String),
}

/// Evaluates the guards in order; they are read-only, so they run in check mode too.
async fn guards<T: Transport>(
    context: &Context<'_, T>,
    command: &Command<String>,
) -> Result<Guards, TransportError> {
    let checks = [
        (
            command
                .creates
                .as_ref()
                .map(|path| format!("test -e {}", quote(path))),
            true,
            "creates",
        ),
        (
            command
                .removes
                .as_ref()
                .map(|path| format!("test -e {}", quote(path))),
            false,
            "removes",
        ),
        (command.unless.clone(), true, "unless"),
        (command.only_if.clone(), false, "only_if"),
    ];
    for (script, done_when, name) in checks {
        let Some(script) = script else { continue };
        let output = context.shell(script.clone()).await?;
        let answer = match output.status {
            RemoteStatus::Exited(code) => code == 0,
            _ => {
                return Ok(Guards::Broken(format!(
                    "guard `{name}` did not answer: {}",
                    output.failure()
                )));
            }
        };
        if answer == done_when {
            let verdict = if answer { "succeeded" } else { "failed" };
            return Ok(Guards::Done(format!(
                "`{}` {verdict} ({name})",
                first_line(&script)
            )));
        }
    }
    Ok(Guards::Run)
}

fn expected(codes: &[i32]) -> String {
    codes
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(" or ")
}

fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or(text)
}
