//! Raw command-line arguments: every clap derive struct of every subcommand lives here, so the
//! whole command line reads in one file. Validation of their *values* happens in the
//! subcommands, which turn them into the plain data the pipeline takes.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use jiff::Timestamp;

use super::history::parse_time;
use crate::audit::{RunId, RunStatus};

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
    History(HistoryArgs),
    /// List the backups recorded in the audit history, newest first.
    Backups(BackupsArgs),
    /// Verify the audit history's hash chain, write a checkpoint, or export every event.
    Audit(AuditArgs),
    /// List the catalog's runbooks as approved, changed or draft, with their last approval.
    Catalog,
    /// Approve a runbook into the catalog, or another operator's pending run.
    Approve(ApproveArgs),
    /// List the runs waiting for an approval that you may give.
    Pending,
    /// Show who opsgate takes you for, your SFIA level and what it allows.
    Whoami,
    /// Start, inspect or stop a local lab of OpenSSH hosts on 127.0.0.x.
    Lab(LabArgs),
    /// List the inventory's hosts, show its group graph, or import an Ansible inventory.
    Inventory(InventoryArgs),
    /// Run the team-mode service on its Unix socket, in the foreground (as the service account).
    Serve(ServeArgs),
    /// Print a shell completion script: `opsgate completions bash > /etc/bash_completion.d/opsgate`.
    Completions {
        /// The shell to complete in.
        shell: Shell,
    },
    /// Print the man page (roff): `opsgate man | man -l -`, or save it as `opsgate.1`.
    Man,
}

/// Shells `opsgate completions` writes scripts for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Shell {
    /// GNU Bash.
    Bash,
    /// Z shell.
    Zsh,
    /// fish.
    Fish,
}

/// `opsgate validate`.
#[derive(Debug, Args)]
pub(crate) struct ValidateArgs {
    /// Runbook or inventory files, or directories: every runbook under them, recursively
    /// [default: the catalog and the inventory].
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
#[derive(Debug, Subcommand)]
pub(crate) enum PlanCommand {
    /// Show a saved plan, who saved it, and its approvals.
    Show {
        /// The plan id `plan --save` printed.
        plan: String,
    },
}

/// `opsgate run`.
#[derive(Debug, Args)]
#[expect(
    clippy::struct_excessive_bools,
    reason = "each is one switch of the command line; `run.rs` turns them into enums"
)]
pub(crate) struct RunArgs {
    #[command(flatten)]
    pub(crate) target: Target,
    /// Report what would change without changing anything.
    #[arg(long)]
    pub(crate) check: bool,
    /// Show a unified diff for every file that changes.
    #[arg(long)]
    pub(crate) diff: bool,
    /// Show each step's output excerpt (the last lines of stdout and stderr) as it finishes,
    /// not only for failed steps.
    #[arg(short = 'v', long)]
    pub(crate) verbose: bool,
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

/// Parses `opsgate ARGUMENTS…` to its subcommand: the subcommands' unit tests parse through the
/// real command line rather than a wrapper of their own.
#[cfg(test)]
pub(crate) fn parse_command<'a>(
    arguments: impl IntoIterator<Item = &'a str>,
) -> Result<Command, clap::Error> {
    Cli::try_parse_from(std::iter::once("opsgate").chain(arguments)).map(|cli| cli.command)
}

/// `opsgate approve`.
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub(crate) struct ApproveArgs {
    #[command(subcommand)]
    pub(crate) command: Option<ApproveCommand>,
    /// Apply a signed approval (made with `approve … --sign KEY`) read from FILE, or `-` for
    /// stdin: `opsgate approve --sign ~/.ssh/id_ed25519 --statement FILE | sudo -u opsgate
    /// opsgate approve --signed -`.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["sign", "statement"])]
    pub(crate) signed: Option<PathBuf>,
    /// Sign the statement given with `--statement` with this SSH key (or the agent's key for
    /// this public key) as yourself, and print the signed approval; nothing is applied.
    #[arg(long, value_name = "KEY", requires = "statement")]
    pub(crate) sign: Option<PathBuf>,
    /// The statement to sign (FILE, or `-` for stdin), as `approve … --prepare` printed it
    /// through the account that owns the store.
    #[arg(long, value_name = "FILE", requires = "sign")]
    pub(crate) statement: Option<PathBuf>,
}

/// What to approve.
#[derive(Debug, Subcommand)]
pub(crate) enum ApproveCommand {
    /// Approve (or reject) another operator's pending run, which then starts (or ends).
    Run {
        /// The run id, as the waiting run and `opsgate pending` print it.
        run: RunId,
        /// Reject the run instead: it ends as denied, exit 4 on the requester's side.
        #[arg(long, requires = "reason")]
        reject: bool,
        /// Why: recorded with the approval; required with --reject.
        #[arg(long, value_name = "TEXT")]
        reason: Option<String>,
        /// Answer this gate step's request (default: the run's oldest open request; a signed
        /// approval names exactly one: the run itself unless this is given).
        #[arg(long, value_name = "N")]
        gate_step: Option<u32>,
        /// Do not apply: sign the approval with this SSH key (or the agent's key for this
        /// public key) as yourself and print it for `approve --signed -`; needs read access to
        /// the store (else use --prepare).
        #[arg(long, value_name = "KEY")]
        sign: Option<PathBuf>,
        /// Do not apply: print the statement a signed approval signs (it names this store and
        /// the run's request), for `approve --sign KEY --statement FILE`.
        #[arg(long, conflicts_with = "sign")]
        prepare: bool,
    },
    /// Approve a saved plan (`plan --save`), which its author may then run once with
    /// `run --plan`; never your own.
    Plan {
        /// The plan id.
        plan: String,
        /// Do not apply: sign the approval with this SSH key and print it (see `approve run`).
        #[arg(long, value_name = "KEY")]
        sign: Option<PathBuf>,
        /// Do not apply: print the statement to sign (see `approve run`).
        #[arg(long, conflicts_with = "sign")]
        prepare: bool,
    },
    /// Approve a runbook file's current content into the catalog (L5; L4 up to `min_level` 3).
    Runbook {
        /// The runbook file.
        file: PathBuf,
        /// Do not apply: sign the approval with this SSH key and print it (see `approve run`).
        #[arg(long, value_name = "KEY")]
        sign: Option<PathBuf>,
        /// Do not apply: print the statement to sign (see `approve run`).
        #[arg(long, conflicts_with = "sign")]
        prepare: bool,
    },
}

/// `opsgate audit …`.
#[derive(Debug, Clone, Args)]
pub(crate) struct AuditArgs {
    /// What to do with the history.
    #[command(subcommand)]
    pub(crate) command: AuditCommand,
}

/// `audit` subcommands.
#[derive(Debug, Clone, Subcommand)]
pub(crate) enum AuditCommand {
    /// Recompute the hash chain; print the head hash and event count, or name the first event
    /// altered, inserted or removed (exit 4).
    Verify {
        /// Also compare with the checkpoints in FILE (detects a cut-off tail or a rewritten
        /// history).
        #[arg(long, value_name = "FILE")]
        checkpoint: Option<PathBuf>,
        /// Require every checkpoint to be signed by a key in this ssh allowed-signers file.
        #[arg(long, value_name = "FILE", requires = "checkpoint")]
        allowed_signers: Option<PathBuf>,
    },
    /// Print a checkpoint (event count and head hash) to keep outside the state directory.
    Checkpoint {
        /// Sign it with this SSH key (`ssh-keygen -Y sign`; a public key uses the ssh-agent).
        #[arg(long, value_name = "KEY")]
        key: Option<PathBuf>,
        /// Also append it to FILE.
        #[arg(long, value_name = "FILE")]
        append: Option<PathBuf>,
    },
    /// Write every event as one JSON object per line, with its chain fields.
    Export {
        /// JSON Lines output (the only format; required so scripts say what they expect).
        #[arg(long, required = true)]
        jsonl: bool,
        /// Only events appended at or after TIME (`2025-01-31`, an instant, or an age like `7d`).
        #[arg(long, value_name = "TIME", value_parser = parse_time)]
        since: Option<Timestamp>,
    },
}

/// `opsgate backups [--host H] [--runbook R]`.
#[derive(Debug, Clone, Args)]
pub(crate) struct BackupsArgs {
    /// Only backups of this host.
    #[arg(long, value_name = "HOST")]
    pub(crate) host: Option<String>,
    /// Only backups written by runs of this runbook id.
    #[arg(long, value_name = "ID")]
    pub(crate) runbook: Option<String>,
    /// At most N backups, newest first; 0 lists all.
    #[arg(long, value_name = "N", default_value_t = 50)]
    pub(crate) limit: usize,
}

/// `opsgate history [filters] | history show RUN`.
#[derive(Debug, Clone, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub(crate) struct HistoryArgs {
    /// Show one run instead of listing.
    #[command(subcommand)]
    pub(crate) command: Option<HistoryCommand>,
    /// Only runs of this operator.
    #[arg(long, value_name = "NAME")]
    pub(crate) operator: Option<String>,
    /// Only runs of this runbook id.
    #[arg(long, value_name = "ID")]
    pub(crate) runbook: Option<String>,
    /// Only runs that targeted this host.
    #[arg(long, value_name = "HOST")]
    pub(crate) host: Option<String>,
    /// Only runs in this status: running, pending, ok, failed, denied, cancelled, interrupted.
    #[arg(long, value_name = "STATUS")]
    pub(crate) status: Option<RunStatus>,
    /// Only runs requested at or after TIME: `2025-01-31`, `2025-01-31T12:00:00Z`, or an age
    /// such as `2h`, `7d` (dates and times without an offset are UTC).
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    pub(crate) since: Option<Timestamp>,
    /// Only runs requested before TIME (same forms as `--since`).
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    pub(crate) until: Option<Timestamp>,
    /// At most N runs, newest first; 0 lists all.
    #[arg(long, value_name = "N", default_value_t = 50)]
    pub(crate) limit: usize,
}

/// `history` subcommands.
#[derive(Debug, Clone, Subcommand)]
pub(crate) enum HistoryCommand {
    /// Show one run: header, approvals, each host's steps with status, duration and output.
    Show {
        /// The run id, as `history` lists it.
        run: RunId,
    },
}

/// `opsgate inventory`: list by default.
#[derive(Debug, Args)]
pub(crate) struct InventoryArgs {
    #[command(subcommand)]
    pub(crate) command: Option<InventoryCommand>,
}

/// `inventory` subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum InventoryCommand {
    /// List hosts (all, or those a pattern selects) with address, user, groups and environment
    List {
        /// Host pattern: names, groups, globs (`web*`), `a,b`, `&group`, `!host`
        pattern: Option<String>,
    },
    /// Show groups, their child groups and hosts as a tree
    Graph,
    /// Convert an Ansible YAML inventory and print it as an opsgate inventory
    Import {
        /// The Ansible inventory (YAML; convert INI first with `ansible-inventory --list --yaml`)
        file: PathBuf,
    },
}

/// Default lab directory, relative to the working directory.
const DEFAULT_LAB_DIR: &str = ".opsgate/lab";

/// Arguments of `opsgate lab`.
#[derive(Debug, Args)]
pub(crate) struct LabArgs {
    #[command(subcommand)]
    pub(crate) command: LabCommand,
}

/// `lab` subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum LabCommand {
    /// Start N local OpenSSH servers on 127.0.0.x and write an inventory for them.
    ///
    /// As root each host gets its own overlay of `/`; otherwise hosts share this machine's files
    /// (docs/lab.md).
    Up {
        /// Number of hosts (lab1…labN).
        #[arg(long, default_value_t = 3, value_name = "N")]
        hosts: usize,
        /// Lab directory: keys, configs, logs, per-host roots and inventory.yaml.
        #[arg(long, default_value = DEFAULT_LAB_DIR, value_name = "DIR")]
        dir: PathBuf,
    },
    /// Say which lab hosts are running.
    Status {
        /// Lab directory.
        #[arg(long, default_value = DEFAULT_LAB_DIR, value_name = "DIR")]
        dir: PathBuf,
    },
    /// Stop exactly what `lab up` started and remove the lab's files.
    ///
    /// On hosts with their own filesystem that is every process of the host, services included.
    Down {
        /// Lab directory.
        #[arg(long, default_value = DEFAULT_LAB_DIR, value_name = "DIR")]
        dir: PathBuf,
    },
}

/// `opsgate serve`.
#[derive(Debug, clap::Args)]
pub(crate) struct ServeArgs {
    /// The service's configuration: socket, catalog, inventory, policy and state directory;
    /// relative paths in it resolve against its directory.
    #[arg(long, value_name = "PATH", default_value = crate::project::CONFIG_FILE)]
    pub(crate) config: PathBuf,
}
