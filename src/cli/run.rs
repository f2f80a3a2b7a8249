//! `opsgate run`: the arguments become [`ops::run::RunOptions`], Ctrl-C becomes the run's
//! cancellation (once: stop starting steps; twice: kill the running ones), and the event stream
//! is shown live ([`super::live::Live`]).

use std::io::Write;

use tokio::signal::unix::{Signal, SignalKind, signal};
use tokio::sync::watch;

use super::args::RunArgs;
use super::live::Live;
use super::params::plan_target;
use super::terminal::TerminalPrompter;
use crate::actions::{DiffMode, RunMode};
use crate::error::{Error, Exit};
use crate::executor::{Cancel, RunOutcome};
use crate::ops::{self, Context};
use crate::render::events::{Detail, Format};

/// Runs the runbook; the exit code says how the hosts did.
pub(super) fn run(args: &RunArgs, context: Context<'_>, format: Format) -> Result<Exit, Error> {
    let options = ops::run::RunOptions {
        target: plan_target(&args.target, &context.caller.process)?,
        plan: args.plan.clone(),
        mode: if args.check {
            RunMode::Check
        } else {
            RunMode::Apply
        },
        diff: if args.diff {
            DiffMode::Show
        } else {
            DiffMode::Hide
        },
        forks: usize::from(args.forks),
        approval_timeout: args.approval_timeout,
        reason: args.reason.clone(),
        break_glass: args.break_glass,
        connect_timeout: ops::run::CONNECT_TIMEOUT,
    };
    let detail = if args.verbose {
        Detail::Verbose
    } else {
        Detail::Normal
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(Error::Runtime)?;
    let report = runtime.block_on(async {
        // Ctrl-C is caught from before the run is on record, so it always ends as `cancelled`.
        let interrupts = signal(SignalKind::interrupt()).map_err(|source| Error::Terminal {
            action: "catch Ctrl-C",
            source,
        })?;
        let (cancel_sender, cancel) = watch::channel(Cancel::Running);
        let watcher = tokio::spawn(watch_interrupts(interrupts, cancel_sender, format));
        let report = ops::run::run(
            context,
            &options,
            &TerminalPrompter,
            cancel,
            Box::new(Live::new(format, detail)),
        )
        .await;
        watcher.abort();
        report
    })?;
    Ok(match report.outcome {
        RunOutcome::Ok => Exit::Ok,
        RunOutcome::Failed => Exit::Failed,
        RunOutcome::Cancelled => Exit::Interrupted,
    })
}

/// First Ctrl-C: stop scheduling; second: kill running commands.
async fn watch_interrupts(mut signal: Signal, cancel: watch::Sender<Cancel>, format: Format) {
    while signal.recv().await.is_some() {
        let next = if *cancel.borrow() == Cancel::Running {
            Cancel::StopScheduling
        } else {
            Cancel::Kill
        };
        if format != Format::Json {
            let message = match next {
                Cancel::StopScheduling => {
                    "interrupted: no new steps start; running steps finish (Ctrl-C again to kill them)"
                }
                _ => "interrupted again: killing running remote commands",
            };
            let _ = writeln!(std::io::stderr().lock(), "{message}");
        }
        let _ = cancel.send(next);
    }
}
