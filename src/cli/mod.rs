//! The command line: parse arguments, run one subcommand, render its result or its error once.
//!
//! This is the edge of the program: the only place that reads the process environment, talks to
//! the terminal, builds the tokio runtime and decides exit codes (see [`crate::error`]).

mod approve;
pub(crate) mod args;
mod audit;
mod backups;
mod docs;
pub(crate) mod history;
mod inventory;
mod lab;
mod live;
mod params;
mod plan;
mod run;
mod serve;
mod terminal;
mod validate;

pub use inventory::InventoryCliError;

use std::io::{IsTerminal, Write};
use std::path::Path;
use std::process::ExitCode;

use clap::Parser;

use crate::audit::Actor;
use crate::diagnostic::{Diagnostic, Style};
use crate::error::{Error, Exit};
use crate::gate::ProcessIdentity;
use crate::ops::{self, Caller, Channel, Context, trust};
use crate::project::{Overrides, Project};
use crate::render;
use crate::render::emit;
use crate::render::events::Format;
use crate::report::Reporter;
use args::{Cli, Command};
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
    // Documents about the command line itself need no project, identity, state or service.
    match &cli.command {
        Command::Completions { shell } => {
            return docs::completions(*shell, &mut std::io::stdout()).map(|()| Exit::Ok);
        }
        Command::Man => return docs::man(&mut std::io::stdout()).map(|()| Exit::Ok),
        Command::Serve(args) => return serve::serve(cli, args, style),
        _ => {}
    }
    // Team mode: the service owns the project; what it offers goes through the socket.
    if let Some(socket) = serve::team_socket()? {
        let mut stdout = std::io::stdout();
        match serve::through_service(cli, &socket, &mut stdout) {
            Some(Err(error)) if error.is_broken_pipe() => return Ok(Exit::Ok),
            Some(result) => return result,
            None => {}
        }
    }
    // Who asks is read from the process here, at the edge, and handed down.
    let caller = Caller {
        process: ProcessIdentity::current()?,
        actor: Actor::current(),
        channel: Channel::Process,
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
        Command::History(args) => history::run(args, context, json, &mut stdout).map(|()| Exit::Ok),
        Command::Backups(args) => backups::run(args, context, json, &mut stdout).map(|()| Exit::Ok),
        Command::Audit(args) => {
            audit::run(args, context, json, &mut stdout).map(render::audit::Verdict::exit)
        }
        Command::Approve(args) => approve::run(args, context, json, &mut stdout),
        Command::Pending => ops::approve::pending(context)
            .and_then(|runs| render::approve::pending(&runs, json, &mut stdout)),
        Command::Catalog => ops::catalog::catalog(context).and_then(|entries| {
            render::catalog::list(&entries, &project.runbooks, json, &mut stdout)
        }),
        Command::Whoami => ops::whoami::whoami(context)
            .and_then(|whoami| render::whoami::report(&whoami, json, &mut stdout)),
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
        Command::Completions { .. } | Command::Man | Command::Serve(_) => {
            unreachable!("answered before the project is loaded")
        }
    };
    match result {
        // The reader went away (`opsgate history | head`): that is its choice, not an error.
        Err(error) if error.is_broken_pipe() => Ok(Exit::Ok),
        result => result,
    }
}

/// Prints warnings (diagnostics that do not stop the command) on stderr.
fn warn(warnings: &[Diagnostic], style: Style) {
    let mut stderr = std::io::stderr().lock();
    for warning in warnings {
        let _ = writeln!(stderr, "{}", warning.render(style));
    }
}

/// What the command line's unit tests need to call a subcommand: a [`Context`] for a project
/// in a directory of the test's, as the account running the tests, with warnings on stderr.
#[cfg(test)]
pub(crate) mod testing {
    use std::path::Path;

    use crate::audit::Actor;
    use crate::diagnostic::Style;
    use crate::gate::ProcessIdentity;
    use crate::ops::{Caller, Context};
    use crate::project::{Overrides, Project};

    /// Calls `body` with a context whose state directory is `state_dir` and whose other files
    /// (policy, inventory, catalog) would be beside it, so there is no policy: single-operator
    /// mode.
    pub(crate) fn with_context(state_dir: &Path, body: impl FnOnce(Context<'_>)) {
        let project = Project::load(
            state_dir,
            Overrides {
                inventory: None,
                policy: Some(state_dir.join("no-policy.yaml")),
                state_dir: Some(state_dir.to_path_buf()),
            },
        )
        .expect("the test project loads");
        let caller = Caller {
            process: ProcessIdentity::current().expect("the test account has a name"),
            actor: Actor::current(),
            channel: crate::ops::Channel::Process,
        };
        let reporter = super::TerminalReporter::new(Style::Plain);
        body(Context {
            project: &project,
            caller: &caller,
            reporter: &reporter,
        });
    }
}
