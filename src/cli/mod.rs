//! The command line: parse arguments, run one subcommand, render its result or its error once.
//!
//! This is the edge of the program: the only place that reads the process environment, talks to
//! the terminal, builds the tokio runtime and decides exit codes (see [`crate::error`]).

mod approve;
mod args;
mod audit;
mod backups;
mod catalog;
mod gate;
mod history;
mod inventory;
mod lab;
mod plan;
mod record;
mod render;
mod run;
mod saved;
mod signed;
mod trust;
mod validate;
mod wait;
mod whoami;

use std::io::{IsTerminal, Write};
use std::path::Path;
use std::process::ExitCode;

use clap::Parser;

use crate::diagnostic::{Diagnostic, Style};
use crate::error::{Error, Exit};
use crate::project::{Overrides, Project};
use args::{Cli, Command};

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
    // Under a sudo identity, the files that govern the gate are checked before they are read.
    let process = crate::gate::ProcessIdentity::current()
        .map_err(|error| Error::environment(error.to_string(), error.hints()))?;
    trust::check_config(Path::new("."), &process)?;
    let project = Project::load(
        Path::new("."),
        Overrides {
            inventory: cli.inventory.clone(),
            policy: cli.policy.clone(),
            state_dir: cli.state_dir.clone(),
        },
    )?;
    trust::check_project(&project, &process)?;
    if matches!(cli.command, Command::Lab(_)) && trust::is_service_account(&project, &process) {
        return Err(Error::Denied {
            message: format!(
                "`opsgate lab` is refused to the service account `{}`: its SSH keys reach real \
                 hosts (rule `lab-as-service-account`)",
                process.account
            ),
            hints: vec!["run `opsgate lab` as yourself".to_owned()],
        });
    }
    if matches!(cli.command, Command::Lab(_)) && trust::acts_for_sudo_user(&process) {
        return Err(Error::Denied {
            message: format!(
                "`opsgate lab` is refused under sudo (SUDO_USER `{}`): it would start servers as \
                 `{}` (rule `lab-under-sudo`)",
                process.sudo_user.as_deref().unwrap_or_default(),
                process.account
            ),
            hints: vec!["run `opsgate lab` as yourself, without sudo".to_owned()],
        });
    }
    // Not locked: `run` writes from its renderer task on another thread.
    let mut stdout = std::io::stdout();
    match &cli.command {
        Command::Validate(args) => validate::run(args, &project, style, &mut stdout),
        Command::Plan(args) => plan::run(args, &project, cli.json, style, &mut stdout),
        Command::Run(args) => run::run(args, &project, cli.json, style),
        Command::History(args) => {
            let restricted = own_history(args, &project, style)?;
            let args = restricted.as_ref().unwrap_or(args);
            match history::run(args, &project.state_dir, cli.json, &mut stdout) {
                Ok(()) => Ok(Exit::Ok),
                Err(error) if reader_left(&error) => Ok(Exit::Ok),
                Err(error) => Err(audit_error(&error)),
            }
        }
        Command::Backups(args) => {
            let own = non_operator_account(&project, style)?;
            match backups::run(
                args,
                &project.state_dir,
                own.as_deref(),
                cli.json,
                &mut stdout,
            ) {
                Ok(()) => Ok(Exit::Ok),
                Err(error) if reader_left(&error) => Ok(Exit::Ok),
                Err(error) => Err(audit_error(&error)),
            }
        }
        Command::Audit(args) => {
            let policy =
                crate::gate::Policy::load_optional(&project.policy)?.map(|(policy, _)| policy);
            match audit::run(
                args,
                &project.state_dir,
                policy.as_ref(),
                cli.json,
                &mut stdout,
            ) {
                Ok(verdict) => Ok(verdict.exit()),
                Err(error) if reader_left(&error) => Ok(Exit::Ok),
                // A store that cannot even be opened cannot be verified: that is a failed
                // verification (exit 4), not a crash.
                Err(error) if args.is_verify() => Err(Error::Rejected {
                    message: error.to_string(),
                    hints: error.hints(),
                }),
                Err(error) => Err(audit_error(&error)),
            }
        }
        Command::Approve(args) => approve::run(args, &project, cli.json, style, &mut stdout),
        Command::Pending => approve::pending(&project, cli.json, style, &mut stdout),
        Command::Catalog => catalog::run(&project, cli.json, style, &mut stdout),
        Command::Whoami => whoami::run(&project, cli.json, style, &mut stdout),
        Command::Lab(args) => match lab::run(args, &mut stdout) {
            Ok(warnings) => {
                warn(&warnings, style);
                Ok(Exit::Ok)
            }
            Err(error) => Err(Error::environment(error.to_string(), error.hints())),
        },
        Command::Inventory(args) => {
            match inventory::run(args, &project.inventory, cli.json, &mut stdout) {
                Ok(warnings) => {
                    warn(&warnings, style);
                    Ok(Exit::Ok)
                }
                Err(inventory::InventoryCliError::Inventory(diagnostics)) => {
                    Err(diagnostics.into())
                }
                Err(error) => Err(Error::environment(error.to_string(), error.hints())),
            }
        }
    }
}

/// The caller's account when the policy does not list it as an operator (SPEC §4.1: it sees
/// only its own runs); `None` for operators and in single-operator mode.
fn non_operator_account(project: &Project, style: Style) -> Result<Option<String>, Error> {
    let gatekeeper = gate::Gatekeeper::load(project, style)?;
    if gatekeeper.single_operator() || gatekeeper.identity.operator.level.is_some() {
        return Ok(None);
    }
    Ok(Some(gatekeeper.account().to_owned()))
}

/// `history` for an account the policy does not list (SPEC §4.1): its own runs only. Returns
/// the arguments narrowed to the caller's runs, or `None` for operators and single-operator
/// mode; another operator's run or `--operator` is denied (exit 3).
fn own_history(
    args: &history::HistoryArgs,
    project: &Project,
    style: Style,
) -> Result<Option<history::HistoryArgs>, Error> {
    let Some(account) = non_operator_account(project, style)? else {
        return Ok(None);
    };
    let deny = |what: String| Error::Denied {
        message: format!(
            "account `{account}` is not an operator and may see only its own runs, not {what} \
             (rule `not-an-operator`)"
        ),
        hints: vec![format!("`opsgate history` lists the runs of `{account}`")],
    };
    if let Some(history::HistoryCommand::Show { run }) = &args.command {
        let store = crate::audit::AuditStore::open(&project.state_dir)
            .map_err(|error| audit_error(&error))?;
        let detail = store.run(*run).map_err(|error| audit_error(&error))?;
        if detail.summary.operator != account {
            return Err(deny(format!("run {run}")));
        }
        return Ok(None);
    }
    if let Some(other) = args.operator.as_ref().filter(|other| **other != account) {
        return Err(deny(format!("the runs of `{other}`")));
    }
    let mut narrowed = args.clone();
    narrowed.operator = Some(account);
    Ok(Some(narrowed))
}

/// An audit store problem, with its hints, for the renderer.
fn audit_error(error: &crate::audit::AuditError) -> Error {
    Error::environment(error.to_string(), error.hints())
}

/// Whether a command only failed because its reader went away (`opsgate history | head`):
/// that is the reader's choice, not an error.
fn reader_left(error: &crate::audit::AuditError) -> bool {
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
        Err(error) => Err(Error::environment(
            format!("cannot write output: {error}"),
            vec![],
        )),
    }
}
