//! The command line: parse arguments, run one subcommand, render its result or its error once.
//!
//! This is the edge of the program: the only place that reads the process environment, talks to
//! the terminal, builds the tokio runtime and decides exit codes (see [`crate::error`]).

mod approve;
mod args;
mod audit;
mod backups;
mod catalog;
mod history;
mod inventory;
mod lab;
mod params;
mod plan;
mod render;
mod run;
mod terminal;
mod validate;
mod whoami;

pub use inventory::InventoryCliError;

use std::io::{IsTerminal, Write};
use std::path::Path;
use std::process::ExitCode;

use clap::Parser;

use crate::audit::{Actor, AuditStore};
use crate::diagnostic::{Diagnostic, Style};
use crate::error::{Error, Exit};
use crate::gate::ProcessIdentity;
use crate::ops::history::Viewer;
use crate::ops::{self, Caller, Context, trust};
use crate::project::{Overrides, Project};
use crate::report::Reporter;
use args::{Cli, Command};
use render::Format;
use terminal::TerminalReporter;

/// Entry point of the binary.
#[must_use]
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => {
            let _ = error.print();
            return ExitCode::from(if error.use_stderr() {
                Exit::Invalid.code()
            } else {
                0
            });
        }
    };
    // One style for both streams: colour only when both reach a terminal, so `opsgate run |
    // tee run.log` and `2> errors.log` never capture escape codes.
    let style = if cli.no_color
        || std::env::var_os("NO_COLOR").is_some_and(|value| !value.is_empty())
        || !std::io::stderr().is_terminal()
        || !std::io::stdout().is_terminal()
    {
        Style::Plain
    } else {
        Style::Color
    };
    let exit = match dispatch(&cli, style) {
        Ok(exit) => exit,
        Err(error) => {
            let mut stderr = std::io::stderr().lock();
            let _ = write!(stderr, "{}", error.render(style));
            error.exit()
        }
    };
    ExitCode::from(exit.code())
}

fn dispatch(cli: &Cli, style: Style) -> Result<Exit, Error> {
    // Who asks is read from the process here, at the edge, and handed down.
    let caller = Caller {
        process: ProcessIdentity::current()?,
        actor: Actor::current(),
    };
    // Under a sudo identity, the files that govern the gate are checked before they are read.
    trust::check_config(Path::new("."), &caller.process)?;
    let project = Project::load(
        Path::new("."),
        Overrides {
            inventory: cli.inventory.clone(),
            policy: cli.policy.clone(),
            state_dir: cli.state_dir.clone(),
        },
    )?;
    trust::check_project(&project, &caller.process)?;
    let reporter = TerminalReporter::new(style);
    let context = Context {
        project: &project,
        caller: &caller,
        reporter: &reporter,
    };
    let format = if cli.json {
        Format::Json
    } else {
        Format::Human(style)
    };
    // Not locked: `run` writes from its recording thread.
    let mut stdout = std::io::stdout();
    let json = cli.json;
    let result = match &cli.command {
        Command::Validate(args) => validate::run(args, &project, style, &mut stdout),
        Command::Plan(args) => plan::run(args, context, json, style, &mut stdout),
        Command::Run(args) => run::run(args, context, format),
        Command::History(args) => history(args, context, json, &mut stdout),
        Command::Backups(args) => {
            let viewer = ops::history::viewer(context)?;
            backups::run(args, &project.state_dir, viewer.own(), json, &mut stdout)
                .map(|()| Exit::Ok)
                .map_err(Error::from)
        }
        Command::Audit(args) => {
            let policy =
                crate::gate::Policy::load_optional(&project.policy)?.map(|(policy, _)| policy);
            match audit::run(args, &project.state_dir, policy.as_ref(), json, &mut stdout) {
                Ok(verdict) => Ok(verdict.exit()),
                // A store that cannot even be opened cannot be verified: that is a failed
                // verification (exit 4), not a crash.
                Err(error) if args.is_verify() && !is_broken_pipe(&error) => {
                    Err(Error::Unverifiable(error))
                }
                Err(error) => Err(error.into()),
            }
        }
        Command::Approve(args) => approve::run(args, context, json, &mut stdout),
        Command::Pending => approve::pending(context, json, &mut stdout),
        Command::Catalog => catalog::run(context, json, &mut stdout),
        Command::Whoami => whoami::run(context, json, &mut stdout),
        Command::Lab(args) => {
            trust::check_lab(&project, &caller.process)?;
            let warnings = lab::run(args, &mut stdout)?;
            reporter.warnings(&warnings);
            Ok(Exit::Ok)
        }
        Command::Inventory(args) => {
            let warnings = inventory::run(args, &project.inventory, json, &mut stdout)?;
            reporter.warnings(&warnings);
            Ok(Exit::Ok)
        }
    };
    match result {
        // The reader went away (`opsgate history | head`): that is its choice, not an error.
        Err(error) if error.is_broken_pipe() => Ok(Exit::Ok),
        result => result,
    }
}

/// `history`: every run for operators, only their own for an account the policy does not list
/// (SPEC §4.1): another account's run or `--operator` is denied (exit 3).
fn history(
    args: &history::HistoryArgs,
    context: Context<'_>,
    json: bool,
    out: &mut dyn Write,
) -> Result<Exit, Error> {
    let viewer = ops::history::viewer(context)?;
    let state_dir = &context.project.state_dir;
    let mut narrowed = args.clone();
    if let Viewer::Own(_) = viewer {
        if let Some(history::HistoryCommand::Show { run }) = &args.command {
            let detail = AuditStore::open(state_dir)?.run(*run)?;
            viewer.may_see(run, &detail.summary.operator)?;
        } else {
            narrowed.operator = viewer.operator_filter(args.operator.as_deref())?;
        }
    }
    history::run(&narrowed, state_dir, json, out)?;
    Ok(Exit::Ok)
}

/// Whether an audit error is only a closed pipe.
fn is_broken_pipe(error: &crate::audit::AuditError) -> bool {
    matches!(error, crate::audit::AuditError::Output(source) if source.kind() == std::io::ErrorKind::BrokenPipe)
}

/// Prints warnings (diagnostics that do not stop the command) on stderr.
fn warn(warnings: &[Diagnostic], style: Style) {
    let mut stderr = std::io::stderr().lock();
    for warning in warnings {
        let _ = writeln!(stderr, "{}", warning.render(style));
    }
}

/// Writes to stdout, treating a closed pipe (`opsgate … | head`) as the reader's choice.
fn emit(out: &mut dyn Write, text: &str) -> Result<(), Error> {
    match out.write_all(text.as_bytes()) {
        Ok(()) => Ok(()),
        Err(error) if error.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(source) => Err(Error::Terminal {
            action: "write the output",
            source,
        }),
    }
}
