//! Raw command-line arguments (clap derive). Validation of their *values* happens in the
//! subcommands, which turn them into the plain data the pipeline takes.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

const EXIT_CODES: &str = "\
Exit codes:
  0    every host ok
  1    a host failed or was unreachable
  2    invalid input (usage, YAML, validation, params, host pattern)
  3    denied by policy
  4    approval rejected or timed out, or audit verification failed
  130  interrupted (Ctrl-C)";

/// Validate, plan and run runbooks over SSH.
#[derive(Debug, Parser)]
#[command(name = "opsgate", version, about, after_help = EXIT_CODES, max_term_width = 100)]
pub(crate) struct Cli {
    /// Inventory file [default: opsgate.yaml's setting, else inventory/hosts.yaml].
    #[arg(short = 'i', long, global = true, value_name = "PATH")]
    pub(crate) inventory: Option<PathBuf>,
    /// Operators policy file [default: policy/operators.yaml].
    #[arg(long, global = true, value_name = "PATH")]
    pub(crate) policy: Option<PathBuf>,
    /// State directory holding the audit history [default: .opsgate/state].
    #[arg(long, global = true, env = "OPSGATE_STATE_DIR", value_name = "DIR")]
    pub(crate) state_dir: Option<PathBuf>,
    /// Print machine-readable JSON (one object per line for runs).
    #[arg(long, global = true)]
    pub(crate) json: bool,
    /// Never colour output (also: the `NO_COLOR` environment variable).
    #[arg(long, global = true)]
    pub(crate) no_color: bool,
    #[command(subcommand)]
    pub(crate) command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Check runbooks and inventories; report every error with `file:line:col`.
    Validate(ValidateArgs),
    /// Resolve hosts, check params and render every step, without connecting anywhere.
    Plan(PlanArgs),
    /// Plan, then run the runbook over SSH.
    Run(RunArgs),
    /// List recorded runs, newest first, or show one run in full.
    History(super::history::HistoryArgs),
    /// List the backups recorded in the audit history, newest first.
    Backups(super::backups::BackupsArgs),
    /// Verify the audit history's hash chain, write a checkpoint, or export every event.
    Audit(super::audit::AuditArgs),
    /// List the catalog's runbooks as approved, changed or draft, with their last approval.
    Catalog,
    /// Approve a runbook into the catalog, or another operator's pending run.
    Approve(super::approve::ApproveArgs),
    /// List the runs waiting for an approval that you may give.
    Pending,
    /// Show who opsgate takes you for, your SFIA level and what it allows.
    Whoami,
    /// Start, inspect or stop a local lab of OpenSSH hosts on 127.0.0.x.
    Lab(super::lab::LabArgs),
    /// List the inventory's hosts, show its group graph, or import an Ansible inventory.
    Inventory(super::inventory::InventoryArgs),
    /// Run the team-mode service on its Unix socket, in the foreground (as the service account).
    Serve(super::serve::ServeArgs),
}

/// `opsgate validate`.
#[derive(Debug, Args)]
pub(crate) struct ValidateArgs {
    /// Runbook or inventory files [default: the catalog and the inventory].
    pub(crate) paths: Vec<PathBuf>,
}

/// What to plan: shared by `plan` and `run`.
#[derive(Debug, Args)]
pub(crate) struct Target {
    /// A runbook path (contains `/` or ends in .yaml) or a catalog id.
    pub(crate) runbook: Option<String>,
    /// Narrow the runbook's targets to hosts matching PATTERN.
    #[arg(short = 'l', long, value_name = "PATTERN")]
    pub(crate) limit: Option<String>,
    /// Add hosts outside the runbook's targets.
    #[arg(long, value_name = "PATTERN")]
    pub(crate) widen: Option<String>,
    /// Set a param: NAME=VALUE, or NAME=@FILE to read the value from a file.
    #[arg(short = 'p', long = "param", value_name = "NAME=VALUE")]
    pub(crate) params: Vec<String>,
    /// Read params from a YAML mapping (refused unless mode 0600).
    #[arg(long, value_name = "FILE")]
    pub(crate) params_file: Option<PathBuf>,
}

/// `opsgate plan`.
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub(crate) struct PlanArgs {
    /// Show a saved plan instead.
    #[command(subcommand)]
    pub(crate) command: Option<PlanCommand>,
    #[command(flatten)]
    pub(crate) target: Target,
    /// Save the plan for review and approval; prints its id for `approve plan` and
    /// `run --plan` (operators only).
    #[arg(long)]
    pub(crate) save: bool,
}

/// `plan` subcommands.
#[derive(Debug, clap::Subcommand)]
pub(crate) enum PlanCommand {
    /// Show a saved plan, who saved it, and its approvals.
    Show {
        /// The plan id `plan --save` printed.
        plan: String,
    },
}

/// `opsgate run`.
#[derive(Debug, Args)]
pub(crate) struct RunArgs {
    #[command(flatten)]
    pub(crate) target: Target,
    /// Report what would change without changing anything.
    #[arg(long)]
    pub(crate) check: bool,
    /// Show a unified diff for every file that changes.
    #[arg(long)]
    pub(crate) diff: bool,
    /// Hosts worked on at once.
    #[arg(long, default_value_t = 50, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    pub(crate) forks: u16,
    /// How long a run that needs an approval waits for one (500ms, 30s, 15m, 1h).
    #[arg(long, default_value = "30m", value_name = "DUR", value_parser = crate::runbook::value::parse_duration)]
    pub(crate) approval_timeout: Duration,
    /// Why you run it: recorded; required by --break-glass and by L5 runs of unapproved
    /// runbooks in production.
    #[arg(long, value_name = "TEXT")]
    pub(crate) reason: Option<String>,
    /// Level 5 only, with --reason: skip waiting approvals; recorded as break-glass.
    #[arg(long)]
    pub(crate) break_glass: bool,
    /// Run exactly a saved, approved plan (by its author, once, within the policy's `plan_ttl`, default 24h); secret
    /// params are asked for again (-p NAME=@FILE, --params-file or a prompt).
    #[arg(long, value_name = "PLAN", conflicts_with_all = ["runbook", "limit", "widen"])]
    pub(crate) plan: Option<String>,
}
