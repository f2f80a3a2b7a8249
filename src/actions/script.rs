//! `script`: upload a local script to a private temp file, run it with its arguments, remove it.

use super::{Context, Outcome, RunMode, quote};
use crate::actions::Status;
use crate::runbook::model::Script;
use crate::transport::{RemoteStatus, Transport, TransportError};

/// Runs the script (never under `--check`: opsgate cannot know what it would change).
pub(super) async fn run<T: Transport>(
    context: &Context<'_, T>,
    script: &Script<String>,
) -> Result<Outcome, TransportError> {
    if context.mode == RunMode::Check {
        return Ok(Outcome::skipped(format!(
            "check mode: would run script `{}`",
            script.src.display()
        )));
    }
    let args: Vec<String> = script.args.iter().map(|arg| quote(arg)).collect();
    // The script arrives on stdin; `mktemp` makes a 0600 file only this account can read.
    let text = format!(
        "f=$(mktemp /tmp/.opsgate-script.XXXXXXXX) || exit 125; trap 'rm -f -- \"$f\"' EXIT; \
         cat > \"$f\" && chmod 700 \"$f\" && \"$f\" {}",
        args.join(" ")
    );
    let output = context
        .shell_with(text, Some(script.body.to_vec()), None)
        .await?;
    let (status, message) = match output.status {
        RemoteStatus::Exited(0) => (Status::Changed, None),
        RemoteStatus::Exited(code) => (Status::Failed, Some(format!("exit code {code}"))),
        RemoteStatus::TimedOut => (
            Status::Failed,
            Some("timed out; its remote process group was killed".to_owned()),
        ),
        RemoteStatus::Killed => (Status::Failed, Some("killed by a second Ctrl-C".to_owned())),
        RemoteStatus::Signaled => (Status::Failed, Some("ended by a signal".to_owned())),
    };
    Ok(Outcome {
        rc: output.rc(),
        stdout: output.stdout,
        stderr: output.stderr,
        ..Outcome::new(status, message)
    })
}
