//! `command` / `shell`: run shell text, with guards that make it idempotent.

use super::{Context, Outcome, RunMode, quote};
use crate::executor::event::Status;
use crate::runbook::model::Command;
use crate::transport::{RemoteStatus, Transport, TransportError};

/// Evaluates the guards, then runs the text (unless `--check`).
pub(super) async fn run<T: Transport>(
    context: &Context<'_, T>,
    command: &Command<String>,
) -> Result<Outcome, TransportError> {
    if let Some(done) = already_done(context, command).await? {
        return Ok(Outcome::ok(done));
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
        status,
        rc,
        stdout: output.stdout,
        stderr: output.stderr,
        message,
        diff: None,
        extra: serde_json::Map::new(),
    })
}

/// A guard that says "already done" returns why; guards are read-only, so they run in check
/// mode too.
async fn already_done<T: Transport>(
    context: &Context<'_, T>,
    command: &Command<String>,
) -> Result<Option<String>, TransportError> {
    if let Some(path) = &command.creates {
        if context
            .shell(format!("test -e {}", quote(path)))
            .await?
            .success()
        {
            return Ok(Some(format!("`{path}` exists (creates)")));
        }
    }
    if let Some(path) = &command.removes {
        if !context
            .shell(format!("test -e {}", quote(path)))
            .await?
            .success()
        {
            return Ok(Some(format!("`{path}` does not exist (removes)")));
        }
    }
    if let Some(test) = &command.unless {
        if context.shell(test.clone()).await?.success() {
            return Ok(Some(format!("`{}` succeeded (unless)", first_line(test))));
        }
    }
    if let Some(test) = &command.only_if {
        if !context.shell(test.clone()).await?.success() {
            return Ok(Some(format!("`{}` failed (only_if)", first_line(test))));
        }
    }
    Ok(None)
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
