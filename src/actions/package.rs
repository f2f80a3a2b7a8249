//! `package`: named packages to a state (`present`, `latest`, `absent`), or an upgrade of what is
//! installed (`upgrade: all|security`), through the host's package manager.
//!
//! The manager comes from the `pkg_manager` fact: apt (dpkg) is first-class, dnf (also yum) and
//! apk sit behind the same [`Manager`] interface. Each run is *query → decide → change →
//! re-query*:
//!
//! 1. **Query** every installed package and its version (`dpkg-query -W`, `rpm -qa`, `apk info
//!    -v`): an [`Installed`] snapshot.
//! 2. **Decide**: `present` with every name installed, or `absent` with none, is `ok` at once.
//!    Otherwise the manager *simulates* the operation (`apt-get -s`, `dnf --assumeno`, `apk -s`)
//!    and its transcript is parsed into the [`Change`]s it would make — dependencies included.
//!    No change pending → `ok`, "nothing to do". Under `--check` the step stops here and reports
//!    those changes as `changed`, "would …".
//! 3. **Change** with the non-interactive command (apt keeps existing config files:
//!    `--force-confdef --force-confold`).
//! 4. **Re-query** and report what *actually* changed: the difference between the two snapshots,
//!    not what the simulation promised.
//!
//! The package index is refreshed (`apt-get update`, `dnf makecache`, `apk update`) before
//! `latest` and `upgrade`, and before `present` only when the simulation says a named package
//! has no candidate — then the simulation runs once more. The refresh is not a change. Under
//! `--check` nothing on the host changes, the index included: apt refreshes a throwaway copy of
//! its lists inside the simulation (a report from a stale index would be wrong), and dnf
//! (`--cacheonly`) and apk report from the index they have.
//!
//! `upgrade: security` on apt takes the pending upgrades whose candidate comes from an origin or
//! archive whose name contains "security" (Debian's `Debian-Security:12/stable-security`,
//! Ubuntu's `jammy-security`) and upgrades exactly those, keeping their auto-installed marks;
//! dnf has `--security`; apk has no security metadata, so it refuses.
//!
//! The registered result carries `packages`: `[{name, from, to}]`, `from` null for an install
//! and `to` null for a removal.

mod apk;
mod apt;
mod dnf;

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::time::Duration;

use serde_json::{Map, Value, json};
use thiserror::Error;

use super::{Context, Outcome, RunMode, quote};
use crate::runbook::model::{Package, PackageState, UpgradeScope};
use crate::transport::{CommandOutput, Transport, TransportError};

/// How long a step waits in total for another process's package-manager lock.
const LOCK_WAIT: Duration = Duration::from_secs(120);

/// Pause between attempts while the lock is held.
const LOCK_POLL: Duration = Duration::from_secs(5);

/// Package names as shell words, each quoted, space-separated.
fn quoted_names<S: AsRef<str>>(names: &[S]) -> String {
    names
        .iter()
        .map(|name| quote(name.as_ref()))
        .collect::<Vec<_>>()
        .join(" ")
}

/// What happened (or would happen) to one package.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Change {
    /// Package name (`libc6:i386` for a foreign architecture on apt).
    pub(super) name: String,
    /// Installed version before; `None` for an install.
    pub(super) from: Option<String>,
    /// Installed version after; `None` for a removal.
    pub(super) to: Option<String>,
}

impl Change {
    /// A change from one version to another; `None` on a side for an install or a removal.
    #[cfg(test)]
    fn new(name: &str, from: Option<&str>, to: Option<&str>) -> Self {
        Self {
            name: name.to_owned(),
            from: from.map(str::to_owned),
            to: to.map(str::to_owned),
        }
    }

    fn verb(&self) -> Verb {
        match (&self.from, &self.to) {
            (None, _) => Verb::Install,
            (Some(_), None) => Verb::Remove,
            // Only the version itself: an unfinished one carries its state after a blank.
            (Some(from), Some(to)) => match compare_versions(
                from.split(' ').next().unwrap_or(from),
                to.split(' ').next().unwrap_or(to),
            ) {
                Ordering::Greater => Verb::Downgrade,
                Ordering::Equal => Verb::Reinstall,
                Ordering::Less => Verb::Upgrade,
            },
        }
    }

    fn to_json(&self) -> Value {
        json!({ "name": self.name, "from": self.from, "to": self.to })
    }
}

/// Kinds of change, in the order the summary lists them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Verb {
    Install,
    Upgrade,
    Downgrade,
    Reinstall,
    Remove,
}

impl Verb {
    fn past(self) -> &'static str {
        match self {
            Verb::Install => "installed",
            Verb::Upgrade => "upgraded",
            Verb::Downgrade => "downgraded",
            Verb::Reinstall => "reinstalled",
            Verb::Remove => "removed",
        }
    }

    fn infinitive(self) -> &'static str {
        match self {
            Verb::Install => "install",
            Verb::Upgrade => "upgrade",
            Verb::Downgrade => "downgrade",
            Verb::Reinstall => "reinstall",
            Verb::Remove => "remove",
        }
    }
}

/// Every installed package: name → installed versions (rpm installs several kernels at once).
/// A package dpkg left unfinished (unpacked, half-configured after a failed upgrade) is listed
/// with its state after the version, so a report says so, but does not count as installed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct Installed {
    versions: BTreeMap<String, BTreeSet<String>>,
    unfinished: BTreeSet<String>,
}

impl Installed {
    /// Records one installed version.
    pub(super) fn add(&mut self, name: &str, version: &str) {
        self.versions
            .entry(name.to_owned())
            .or_default()
            .insert(version.to_owned());
    }

    /// Records a version whose files are on disk but which is not usable yet (`state`:
    /// `half-configured` …).
    pub(super) fn add_unfinished(&mut self, name: &str, version: &str, state: &str) {
        self.add(name, &format!("{version} ({state})"));
        self.unfinished.insert(name.to_owned());
    }

    /// Whether `name` is installed and usable at some version.
    pub(super) fn contains(&self, name: &str) -> bool {
        self.versions.contains_key(name) && !self.unfinished.contains(name)
    }

    /// The installed versions of `name`, joined (`None` when it is not installed).
    pub(super) fn version(&self, name: &str) -> Option<String> {
        self.versions.get(name).map(join)
    }

    /// What differs from `before` to `self`, by name: a version that disappeared is `from`, one
    /// that appeared is `to`.
    fn changes_since(&self, before: &Installed) -> Vec<Change> {
        let empty = BTreeSet::new();
        let names: BTreeSet<&String> = before.versions.keys().chain(self.versions.keys()).collect();
        names
            .into_iter()
            .filter_map(|name| {
                let old = before.versions.get(name).unwrap_or(&empty);
                let new = self.versions.get(name).unwrap_or(&empty);
                if old == new {
                    return None;
                }
                let gone: BTreeSet<&String> = old.difference(new).collect();
                let came: BTreeSet<&String> = new.difference(old).collect();
                let side =
                    |versions: BTreeSet<&String>| (!versions.is_empty()).then(|| join(versions));
                Some(Change {
                    name: name.clone(),
                    from: side(gone),
                    to: side(came),
                })
            })
            .collect()
    }
}

fn join<'a>(versions: impl IntoIterator<Item = &'a String>) -> String {
    versions
        .into_iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .join(", ")
}

/// What a step asks of the package manager, once the installed packages are known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Operation {
    /// Install these (for `present`: the ones missing).
    Install(Vec<String>),
    /// Install or upgrade these to the newest version available.
    Latest(Vec<String>),
    /// Remove these (the ones installed).
    Remove(Vec<String>),
    /// Upgrade installed packages.
    Upgrade(UpgradeScope),
    /// Upgrade exactly these installed packages (apt's security subset), keeping how they were
    /// marked (auto or manual).
    UpgradeOnly(Vec<String>),
}

impl Operation {
    /// Whether the index is refreshed before simulating: `latest` and upgrades want the newest
    /// versions; `install` refreshes only when a name has no candidate.
    fn refreshes_first(&self) -> bool {
        matches!(self, Operation::Latest(_) | Operation::Upgrade(_))
    }
}

/// What a simulation found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Simulation {
    /// The changes the operation would make (empty: nothing to do).
    Pending(Vec<Change>),
    /// The manager knows no installable package by these names.
    Unknown(Vec<String>),
    /// The simulation failed for another reason.
    Failed,
}

/// The host's package manager, from the `pkg_manager` fact.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Manager {
    /// Debian and derivatives: apt-get over dpkg.
    Apt,
    /// Fedora, RHEL and derivatives: dnf, or yum where dnf is missing.
    Dnf,
    /// Alpine.
    Apk,
}

impl Manager {
    fn from_fact(fact: &str) -> Option<Self> {
        match fact {
            "apt" => Some(Manager::Apt),
            "dnf" => Some(Manager::Dnf),
            "apk" => Some(Manager::Apk),
            _ => None,
        }
    }

    /// The command operators know it by, for messages.
    fn command(self) -> &'static str {
        match self {
            Manager::Apt => "apt-get",
            Manager::Dnf => "dnf",
            Manager::Apk => "apk",
        }
    }

    /// Lists every installed package, one per line, for [`Manager::parse_installed`].
    fn query_script(self) -> String {
        match self {
            Manager::Apt => apt::QUERY.to_owned(),
            Manager::Dnf => dnf::QUERY.to_owned(),
            Manager::Apk => apk::QUERY.to_owned(),
        }
    }

    fn parse_installed(self, text: &str) -> Installed {
        match self {
            Manager::Apt => apt::parse_installed(text),
            Manager::Dnf => dnf::parse_installed(text),
            Manager::Apk => apk::parse_installed(text),
        }
    }

    fn refresh_script(self) -> String {
        match self {
            Manager::Apt => apt::refresh_script(),
            Manager::Dnf => dnf::refresh_script(),
            Manager::Apk => apk::refresh_script(),
        }
    }

    fn simulate_script(self, operation: &Operation, installed: &Installed, index: Index) -> String {
        match self {
            Manager::Apt => apt::simulate_script(operation, index),
            Manager::Dnf => dnf::simulate_script(operation, installed, index),
            Manager::Apk => apk::simulate_script(operation),
        }
    }

    fn apply_script(self, operation: &Operation, installed: &Installed) -> String {
        match self {
            Manager::Apt => apt::apply_script(operation),
            Manager::Dnf => dnf::apply_script(operation, installed),
            Manager::Apk => apk::apply_script(operation),
        }
    }

    fn parse_simulation(self, output: &CommandOutput, installed: &Installed) -> Simulation {
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        match self {
            Manager::Apt => apt::parse_simulation(output.rc(), &stdout, &stderr),
            Manager::Dnf => dnf::parse_simulation(output.rc(), &stdout, &stderr, installed),
            Manager::Apk => apk::parse_simulation(output.rc(), &stdout, &stderr),
        }
    }

    /// Whether a failed command only met another process's lock, so that waiting may help.
    fn lock_held(self, output: &CommandOutput) -> bool {
        let stderr = String::from_utf8_lossy(&output.stderr);
        match self {
            Manager::Apt => apt::lock_held(&stderr),
            Manager::Dnf => false, // dnf waits for its own lock
            Manager::Apk => apk::lock_held(&stderr),
        }
    }

    /// Which names were not found, and how to fix that; the index has just been refreshed.
    fn unknown_message(self, names: &[String], index: Index) -> String {
        let (subject, verb) = if names.len() == 1 {
            ("package", "was")
        } else {
            ("packages", "were")
        };
        let listed: Vec<String> = names.iter().map(|name| format!("`{name}`")).collect();
        let (sources, refresh) = match self {
            Manager::Apt => ("apt sources", "`apt-get update`"),
            Manager::Dnf => ("dnf repositories", "`dnf makecache`"),
            Manager::Apk => ("apk repositories", "`apk update`"),
        };
        let refreshed = match (self, index) {
            (Manager::Apt, Index::Private) => {
                format!("a fresh copy of the index, refreshed with {refresh}")
            }
            (_, Index::Private) => format!(
                "the host's cached index, which --check does not refresh (a real run, or \
                 {refresh} on the host, would)"
            ),
            (_, Index::Host) => format!("the index was refreshed with {refresh}"),
        };
        format!(
            "{subject} {} {verb} not found in the host's {sources} ({refreshed}): check the \
             name for a typo, or add the repository that provides it",
            listed.join(", ")
        )
    }
}

/// Which package index a simulation reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Index {
    /// The host's own, refreshed in place when the operation calls for it.
    Host,
    /// Under `--check`: apt refreshes a throwaway copy of its lists; dnf (`--cacheonly`) and
    /// apk use theirs as they are, unrefreshed.
    Private,
}

/// Whether the index was refreshed during this step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refreshed {
    Yes,
    No,
}

/// Brings named packages to their state, or upgrades the host (unless `--check`). The outcome
/// always carries `packages`, empty when nothing changed or the step failed before changing.
pub(super) async fn run<T: Transport>(
    context: &Context<'_, T>,
    spec: &Package<String>,
) -> Result<Outcome, TransportError> {
    let mut outcome = converge(context, spec).await?;
    outcome
        .extra
        .entry("packages")
        .or_insert_with(|| Value::Array(vec![]));
    Ok(outcome)
}

async fn converge<T: Transport>(
    context: &Context<'_, T>,
    spec: &Package<String>,
) -> Result<Outcome, TransportError> {
    let manager = match context.fact("pkg_manager") {
        None => {
            return Ok(Outcome::failed(
                "the host's package manager is not known: fact `pkg_manager` was not gathered",
            ));
        }
        Some(fact) => match Manager::from_fact(fact) {
            Some(manager) => manager,
            None => {
                return Ok(Outcome::failed(format!(
                    "no supported package manager on this host: fact `pkg_manager` is `{fact}` \
                     (`package` drives apt-get, dnf, yum and apk; none was found on the PATH)"
                )));
            }
        },
    };
    if let Package::Named { names, .. } = spec {
        if let Err(bad) = check_names(names) {
            return Ok(Outcome::failed(bad.to_string()));
        }
    }
    if manager == Manager::Apk && matches!(spec, Package::Upgrade(UpgradeScope::Security)) {
        return Ok(Outcome::failed(
            "`upgrade: security` is not possible with apk: Alpine's index does not mark \
             security fixes; use `upgrade: all`",
        ));
    }

    let before = match query(context, manager).await? {
        Ok(installed) => installed,
        Err(outcome) => return Ok(outcome),
    };
    let Some(mut operation) = decide(spec, &before) else {
        return Ok(Outcome::ok("nothing to do".to_owned()));
    };

    // `--check` changes nothing on the host, the package index included: apt refreshes a
    // private copy inside each simulation instead; dnf and apk report from the index they have.
    let index = match context.mode {
        RunMode::Apply => Index::Host,
        RunMode::Check => Index::Private,
    };
    let mut refreshed = if index == Index::Private {
        Refreshed::Yes
    } else {
        Refreshed::No
    };
    if operation.refreshes_first() && index == Index::Host {
        if let Err(outcome) = refresh(context, manager).await? {
            return Ok(outcome);
        }
        refreshed = Refreshed::Yes;
    }
    // apt has no security filter of its own: find the security upgrades among all pending ones
    // (its transcript names each candidate's origin), then upgrade exactly those.
    if manager == Manager::Apt && operation == Operation::Upgrade(UpgradeScope::Security) {
        let output = context
            .shell(apt::simulate_script(
                &Operation::Upgrade(UpgradeScope::All),
                index,
            ))
            .await?;
        if !output.success() {
            return Ok(Outcome::failed_with(
                format!("simulating the upgrade failed: {}", output.failure()),
                &output,
            ));
        }
        let security = apt::security_upgrades(&String::from_utf8_lossy(&output.stdout));
        if security.is_empty() {
            return Ok(Outcome::ok(
                "nothing to do: no pending security update".to_owned(),
            ));
        }
        operation = Operation::UpgradeOnly(security);
    }

    let (pending, simulation_output) = loop {
        let output = context
            .shell(manager.simulate_script(&operation, &before, index))
            .await?;
        match manager.parse_simulation(&output, &before) {
            Simulation::Pending(pending) => break (pending, output),
            // A package with no candidate may only be missing from a stale index.
            Simulation::Unknown(_) if refreshed == Refreshed::No => {
                if let Err(outcome) = refresh(context, manager).await? {
                    return Ok(outcome);
                }
                refreshed = Refreshed::Yes;
            }
            Simulation::Unknown(names) => {
                return Ok(Outcome::failed_with(
                    manager.unknown_message(&names, index),
                    &output,
                ));
            }
            Simulation::Failed => {
                return Ok(Outcome::failed_with(
                    format!(
                        "simulating the change with {} failed: {}",
                        manager.command(),
                        output.failure()
                    ),
                    &output,
                ));
            }
        }
    };
    if pending.is_empty() {
        return Ok(Outcome::ok("nothing to do".to_owned()));
    }
    if context.mode == RunMode::Check {
        return Ok(Outcome {
            stdout: simulation_output.stdout,
            extra: packages_extra(&pending),
            ..Outcome::changed(summary(&pending, RunMode::Check))
        });
    }

    let applied =
        run_waiting_for_lock(context, manager, manager.apply_script(&operation, &before)).await?;
    let after = match query(context, manager).await? {
        Ok(installed) => installed,
        Err(outcome) => return Ok(outcome),
    };
    let changes = after.changes_since(&before);
    if !applied.success() {
        let mut message = if manager.lock_held(&applied) {
            lock_message(manager)
        } else {
            format!("{} failed: {}", manager.command(), applied.failure())
        };
        if !changes.is_empty() {
            let _ = write!(
                message,
                "; before it failed: {}",
                summary(&changes, RunMode::Apply)
            );
        }
        return Ok(Outcome {
            extra: packages_extra(&changes),
            ..Outcome::failed_with(message, &applied)
        });
    }
    let outcome = if changes.is_empty() {
        Outcome::ok("nothing to do".to_owned())
    } else {
        Outcome::changed(summary(&changes, RunMode::Apply))
    };
    Ok(Outcome {
        rc: applied.rc(),
        stdout: applied.stdout,
        stderr: applied.stderr,
        extra: packages_extra(&changes),
        ..outcome
    })
}

/// The operation a step needs given what is installed; `None` when it is already satisfied.
fn decide(spec: &Package<String>, installed: &Installed) -> Option<Operation> {
    match spec {
        Package::Named { names, state } => {
            let names = unique(names);
            match state {
                PackageState::Present => {
                    let missing: Vec<String> = names
                        .into_iter()
                        .filter(|name| !installed.contains(name))
                        .collect();
                    (!missing.is_empty()).then_some(Operation::Install(missing))
                }
                PackageState::Latest => Some(Operation::Latest(names)),
                PackageState::Absent => {
                    let present: Vec<String> = names
                        .into_iter()
                        .filter(|name| installed.contains(name))
                        .collect();
                    (!present.is_empty()).then_some(Operation::Remove(present))
                }
            }
        }
        Package::Upgrade(scope) => Some(Operation::Upgrade(*scope)),
    }
}

/// Names in their first order, without repeats.
fn unique(names: &[String]) -> Vec<String> {
    let mut seen = BTreeSet::new();
    names
        .iter()
        .map(|name| name.trim().to_owned())
        .filter(|name| seen.insert(name.clone()))
        .collect()
}

/// Why a package name is not one package name.
#[derive(Debug, Error, PartialEq, Eq)]
enum BadName {
    #[error("a package name is empty")]
    Empty,
    #[error(
        "package name `{0}` starts with `-`, which the package manager would read as an option"
    )]
    LeadingDash(String),
    #[error(
        "package name `{name}` contains `{}`: name one package per entry, without wildcards",
        character.escape_default()
    )]
    Contains { name: String, character: char },
}

/// A name must be one package: not empty, no blanks, no glob characters (apt and dpkg-query
/// would expand them), and not starting with `-` (it would read as an option).
fn check_names(names: &[String]) -> Result<(), BadName> {
    for name in names {
        let name = name.trim();
        if name.is_empty() {
            return Err(BadName::Empty);
        }
        if name.starts_with('-') {
            return Err(BadName::LeadingDash(name.to_owned()));
        }
        if let Some(character) = name.chars().find(|character| {
            character.is_whitespace() || character.is_control() || "*?[]".contains(*character)
        }) {
            return Err(BadName::Contains {
                name: name.to_owned(),
                character,
            });
        }
    }
    Ok(())
}

/// Queries the installed packages; the `Err` side is the step's failed outcome.
async fn query<T: Transport>(
    context: &Context<'_, T>,
    manager: Manager,
) -> Result<Result<Installed, Outcome>, TransportError> {
    let output = context.shell(manager.query_script()).await?;
    if !output.success() {
        return Ok(Err(Outcome::failed_with(
            format!("cannot list the installed packages: {}", output.failure()),
            &output,
        )));
    }
    Ok(Ok(
        manager.parse_installed(&String::from_utf8_lossy(&output.stdout))
    ))
}

/// Refreshes the package index; the `Err` side is the step's failed outcome.
async fn refresh<T: Transport>(
    context: &Context<'_, T>,
    manager: Manager,
) -> Result<Result<(), Outcome>, TransportError> {
    let output = run_waiting_for_lock(context, manager, manager.refresh_script()).await?;
    if output.success() {
        return Ok(Ok(()));
    }
    let message = if manager.lock_held(&output) {
        lock_message(manager)
    } else {
        format!("refreshing the package index failed: {}", output.failure())
    };
    Ok(Err(Outcome::failed_with(message, &output)))
}

/// Runs a command that takes the package manager's lock, waiting while another process holds it
/// (unattended-upgrades, a boot-time `apt-get update`), up to [`LOCK_WAIT`] in all.
async fn run_waiting_for_lock<T: Transport>(
    context: &Context<'_, T>,
    manager: Manager,
    script: String,
) -> Result<CommandOutput, TransportError> {
    let mut waited = Duration::ZERO;
    loop {
        let output = context.shell(script.clone()).await?;
        if output.success() || !manager.lock_held(&output) || waited >= LOCK_WAIT {
            return Ok(output);
        }
        tokio::time::sleep(LOCK_POLL).await;
        waited += LOCK_POLL;
    }
}

fn lock_message(manager: Manager) -> String {
    format!(
        "another process holds the {} lock (unattended-upgrades, another run?); waited {}s: \
         let it finish, then run the step again",
        manager.command(),
        LOCK_WAIT.as_secs()
    )
}

/// `packages: [{name, from, to}]` for the registered result.
fn packages_extra(changes: &[Change]) -> Map<String, Value> {
    let mut extra = Map::new();
    extra.insert(
        "packages".into(),
        Value::Array(changes.iter().map(Change::to_json).collect()),
    );
    extra
}

/// One line: `upgraded 2: hello 1.0-1 → 2.0-1, …; installed 1: libfoo 3.1` (`would upgrade …`
/// under `--check`).
fn summary(changes: &[Change], mode: RunMode) -> String {
    let mut by_verb: BTreeMap<Verb, Vec<&Change>> = BTreeMap::new();
    for change in changes {
        by_verb.entry(change.verb()).or_default().push(change);
    }
    by_verb
        .into_iter()
        .map(|(verb, changes)| {
            let items: Vec<String> = changes
                .iter()
                .map(|change| match (&change.from, &change.to) {
                    (Some(from), Some(to)) => format!("{} {from} → {to}", change.name),
                    (None, Some(version)) | (Some(version), None) => {
                        format!("{} {version}", change.name)
                    }
                    (None, None) => change.name.clone(),
                })
                .collect();
            let verb = match mode {
                RunMode::Apply => verb.past().to_owned(),
                RunMode::Check => format!("would {}", verb.infinitive()),
            };
            format!("{verb} {}: {}", changes.len(), items.join(", "))
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// Orders two versions the way dpkg does (`epoch:upstream-revision`; digits compare as numbers,
/// `~` sorts before everything). Only labels a change as an upgrade or a downgrade, so it is
/// used for rpm and apk versions too, whose rules agree on every common case.
pub(super) fn compare_versions(left: &str, right: &str) -> Ordering {
    let (left_epoch, left_rest) = split_epoch(left);
    let (right_epoch, right_rest) = split_epoch(right);
    left_epoch.cmp(&right_epoch).then_with(|| {
        let (left_upstream, left_revision) = split_revision(left_rest);
        let (right_upstream, right_revision) = split_revision(right_rest);
        compare_fragment(left_upstream, right_upstream)
            .then_with(|| compare_fragment(left_revision, right_revision))
    })
}

fn split_epoch(version: &str) -> (u64, &str) {
    match version.split_once(':') {
        Some((epoch, rest)) if epoch.bytes().all(|byte| byte.is_ascii_digit()) => {
            (epoch.parse().unwrap_or(0), rest)
        }
        _ => (0, version),
    }
}

fn split_revision(version: &str) -> (&str, &str) {
    version.rsplit_once('-').unwrap_or((version, ""))
}

/// dpkg's `verrevcmp`: alternate non-digit runs (compared by [`order_weight`]) and digit runs
/// (compared as numbers).
fn compare_fragment(left: &str, right: &str) -> Ordering {
    let (mut left, mut right) = (left.as_bytes(), right.as_bytes());
    while !left.is_empty() || !right.is_empty() {
        loop {
            let left_byte = left.first().filter(|byte| !byte.is_ascii_digit());
            let right_byte = right.first().filter(|byte| !byte.is_ascii_digit());
            if left_byte.is_none() && right_byte.is_none() {
                break;
            }
            let order = order_weight(left_byte.copied()).cmp(&order_weight(right_byte.copied()));
            if order != Ordering::Equal {
                return order;
            }
            left = &left[usize::from(left_byte.is_some())..];
            right = &right[usize::from(right_byte.is_some())..];
        }
        let left_digits = left.iter().take_while(|byte| byte.is_ascii_digit()).count();
        let right_digits = right
            .iter()
            .take_while(|byte| byte.is_ascii_digit())
            .count();
        let number = |digits: &[u8]| {
            let trimmed: Vec<u8> = digits
                .iter()
                .copied()
                .skip_while(|byte| *byte == b'0')
                .collect();
            (trimmed.len(), trimmed)
        };
        let order = number(&left[..left_digits]).cmp(&number(&right[..right_digits]));
        if order != Ordering::Equal {
            return order;
        }
        left = &left[left_digits..];
        right = &right[right_digits..];
    }
    Ordering::Equal
}

/// dpkg's character order: `~` first, then the end of the string, then letters, then the rest.
fn order_weight(byte: Option<u8>) -> i32 {
    match byte {
        None => 0,
        Some(b'~') => -1,
        Some(byte) if byte.is_ascii_alphabetic() => i32::from(byte),
        Some(byte) => i32::from(byte) + 256,
    }
}

#[cfg(test)]
mod tests {
    use std::cmp::Ordering;

    use super::{
        Change, Installed, Operation, Package, PackageState, RunMode, check_names,
        compare_versions, decide, summary,
    };
    use crate::runbook::model::UpgradeScope;

    fn installed(pairs: &[(&str, &str)]) -> Installed {
        let mut installed = Installed::default();
        for (name, version) in pairs {
            installed.add(name, version);
        }
        installed
    }

    #[test]
    fn versions_order_like_dpkg() {
        for (left, right, order) in [
            ("1.0-1", "2.0-1", Ordering::Less),
            ("2.0-1", "1.0-1", Ordering::Greater),
            ("1.0-1", "1.0-1", Ordering::Equal),
            ("1.10", "1.9", Ordering::Greater),
            ("1.0~rc1", "1.0", Ordering::Less),
            ("1:0.9", "2.0", Ordering::Greater),
            ("5.2.15-2+b8", "5.2.15-2+b13", Ordering::Less),
            ("1.10.1-3", "1.10.1-3+deb12u1", Ordering::Less),
            ("1.0a", "1.0+", Ordering::Less),
            ("1.2.4-r1", "1.2.4-r2", Ordering::Less),
            ("007", "7", Ordering::Equal),
        ] {
            assert_eq!(compare_versions(left, right), order, "{left} vs {right}");
        }
    }

    #[test]
    fn snapshots_differ_by_installs_upgrades_and_removals() {
        let before = installed(&[("hello", "1.0-1"), ("gone", "3.0"), ("same", "1")]);
        let after = installed(&[
            ("hello", "2.0-1"),
            ("new", "0.1"),
            ("same", "1"),
            ("kernel", "6.1"),
        ]);
        let mut both = before.clone();
        both.add("kernel", "6.0");
        assert_eq!(
            after.changes_since(&before),
            vec![
                Change::new("gone", Some("3.0"), None),
                Change::new("hello", Some("1.0-1"), Some("2.0-1")),
                Change::new("kernel", None, Some("6.1")),
                Change::new("new", None, Some("0.1")),
            ]
        );
        // A second kernel installed beside the first is an install of the new version.
        let mut kernels = both.clone();
        kernels.add("kernel", "6.1");
        assert_eq!(
            kernels.changes_since(&both),
            vec![Change::new("kernel", None, Some("6.1"))]
        );
    }

    #[test]
    fn the_summary_groups_changes_by_kind() {
        let changes = [
            Change::new("hello", Some("1.0-1"), Some("2.0-1")),
            Change::new("libfoo", None, Some("3.1")),
            Change::new("old", Some("2"), Some("1")),
            Change::new("bar", Some("0.9"), Some("1.0")),
            Change::new("gone", Some("4"), None),
        ];
        assert_eq!(
            summary(&changes, RunMode::Apply),
            "installed 1: libfoo 3.1; upgraded 2: hello 1.0-1 → 2.0-1, bar 0.9 → 1.0; \
             downgraded 1: old 2 → 1; removed 1: gone 4"
        );
        assert_eq!(
            summary(&changes[..1], RunMode::Check),
            "would upgrade 1: hello 1.0-1 → 2.0-1"
        );
    }

    #[test]
    fn present_and_absent_are_satisfied_without_the_package_manager() {
        let host = installed(&[("hello", "1.0-1")]);
        let named = |names: &[&str], state| Package::Named {
            names: names.iter().map(|name| (*name).to_owned()).collect(),
            state,
        };
        assert_eq!(
            decide(&named(&["hello"], PackageState::Present), &host),
            None
        );
        assert_eq!(
            decide(&named(&["other"], PackageState::Absent), &host),
            None
        );
        assert_eq!(
            decide(
                &named(&["hello", "curl", "curl"], PackageState::Present),
                &host
            ),
            Some(Operation::Install(vec!["curl".into()]))
        );
        assert_eq!(
            decide(&named(&["hello", "curl"], PackageState::Absent), &host),
            Some(Operation::Remove(vec!["hello".into()]))
        );
        assert_eq!(
            decide(&named(&["hello"], PackageState::Latest), &host),
            Some(Operation::Latest(vec!["hello".into()]))
        );
        assert_eq!(
            decide(&Package::Upgrade(UpgradeScope::Security), &host),
            Some(Operation::Upgrade(UpgradeScope::Security))
        );
    }

    #[test]
    fn names_that_are_not_one_package_are_refused() {
        assert!(check_names(&["nginx".into(), "libstdc++6".into(), "libc6:i386".into()]).is_ok());
        for bad in ["", "-o", "two words", "lib*", "a\nb"] {
            assert!(check_names(&[bad.to_owned()]).is_err(), "{bad:?}");
        }
    }

    /// The flow against a scripted apt host: each test answers commands by their text.
    mod flow {
        use std::sync::Mutex;
        use std::sync::atomic::{AtomicBool, Ordering as AtomicOrdering};
        use std::time::Duration;

        use serde_json::{Value, json};

        use crate::actions::Status;
        use crate::actions::package::run;
        use crate::actions::{Context, DiffMode, Outcome, RunMode};
        use crate::runbook::model::{Package, PackageState, UpgradeScope};
        use crate::transport::{
            CommandOutput, Program, RemoteCommand, RemoteStatus, Transport, TransportError,
        };

        /// What the scripted host has seen so far.
        #[derive(Default)]
        struct Seen {
            commands: Mutex<Vec<String>>,
            refreshed: AtomicBool,
            applied: AtomicBool,
        }

        type Answer = (i32, String, String);

        struct Scripted<F> {
            seen: Seen,
            answer: F,
        }

        impl<F: Fn(&str, &Seen) -> Answer + Send + Sync> Transport for Scripted<F> {
            fn host(&self) -> &'static str {
                "web1"
            }

            async fn run(&self, command: &RemoteCommand) -> Result<CommandOutput, TransportError> {
                let Program::Script { text, .. } = &command.program else {
                    panic!("package runs shell text");
                };
                let (rc, stdout, stderr) = (self.answer)(text, &self.seen);
                if text.contains(" update") && rc == 0 {
                    self.seen.refreshed.store(true, AtomicOrdering::SeqCst);
                }
                if text.contains("apt-get -y") {
                    self.seen.applied.store(true, AtomicOrdering::SeqCst);
                }
                self.seen
                    .commands
                    .lock()
                    .expect("commands lock")
                    .push(text.clone());
                Ok(CommandOutput {
                    status: RemoteStatus::Exited(rc),
                    stdout: stdout.into_bytes(),
                    stderr: stderr.into_bytes(),
                    duration: Duration::ZERO,
                })
            }

            async fn kill_running(&self) {}
        }

        fn scripted<F: Fn(&str, &Seen) -> Answer + Send + Sync>(answer: F) -> Scripted<F> {
            Scripted {
                seen: Seen::default(),
                answer,
            }
        }

        fn ok(stdout: &str) -> Answer {
            (0, stdout.to_owned(), String::new())
        }

        /// apt-get's failure, exit code 100.
        fn apt_failure(stderr: &str) -> Answer {
            (100, String::new(), stderr.to_owned())
        }

        /// `dpkg-query`'s answer: `before` until the change is applied, `after` from then on.
        fn packages(seen: &Seen, before: &str, after: &str) -> Answer {
            ok(if seen.applied.load(AtomicOrdering::SeqCst) {
                after
            } else {
                before
            })
        }

        /// The kind of each command, in order: query, update, simulate, apply.
        fn kinds(seen: &Seen) -> Vec<&'static str> {
            seen.commands
                .lock()
                .expect("commands lock")
                .iter()
                .map(|text| {
                    if text.contains("dpkg-query") {
                        "query"
                    } else if text.contains("Dir::State::Lists") {
                        // `--check`: a private index refreshed, then the simulation.
                        "private update and simulate"
                    } else if text.contains(" update") {
                        "update"
                    } else if text.contains("apt-get -s") {
                        "simulate"
                    } else if text.contains("apt-get -y") {
                        "apply"
                    } else {
                        "other"
                    }
                })
                .collect()
        }

        async fn converge<F: Fn(&str, &Seen) -> Answer + Send + Sync>(
            host: &Scripted<F>,
            spec: &Package<String>,
            mode: RunMode,
            facts: &Value,
        ) -> Outcome {
            let context = Context {
                transport: host,
                host: "web1",
                runbook: "patch",
                mode,
                diff: DiffMode::Hide,
                become_user: Some("root".to_owned()),
                env: vec![],
                timeout: None,
                secrets: &[],
                facts,
            };
            run(&context, spec)
                .await
                .expect("the scripted host answers")
        }

        fn named(names: &[&str], state: PackageState) -> Package<String> {
            Package::Named {
                names: names.iter().map(|name| (*name).to_owned()).collect(),
                state,
            }
        }

        fn apt() -> Value {
            json!({ "pkg_manager": "apt" })
        }

        #[tokio::test]
        async fn present_refreshes_only_when_a_name_has_no_candidate_then_reports_the_install() {
            let host = scripted(|text: &str, seen: &Seen| {
                let refreshed = seen.refreshed.load(AtomicOrdering::SeqCst);
                if text.contains("dpkg-query") {
                    packages(
                        seen,
                        "ii \tbash\t5.2\n",
                        "ii \tbash\t5.2\nii \thello\t2.0-1\n",
                    )
                } else if text.contains("apt-get -s") && !refreshed {
                    apt_failure("E: Unable to locate package hello\n")
                } else if text.contains("apt-get -s") {
                    ok(
                        "Inst hello (2.0-1 test:stable [all])\nConf hello (2.0-1 test:stable [all])\n",
                    )
                } else {
                    ok("")
                }
            });
            let outcome = converge(
                &host,
                &named(&["bash", "hello"], PackageState::Present),
                RunMode::Apply,
                &apt(),
            )
            .await;
            assert_eq!(outcome.status, Status::Changed, "{:?}", outcome.message);
            assert_eq!(outcome.message.as_deref(), Some("installed 1: hello 2.0-1"));
            assert_eq!(
                outcome.extra["packages"],
                json!([{ "name": "hello", "from": null, "to": "2.0-1" }])
            );
            assert_eq!(
                kinds(&host.seen),
                ["query", "simulate", "update", "simulate", "apply", "query"]
            );
            let commands = host.seen.commands.lock().expect("commands lock").clone();
            assert!(commands[4].ends_with("install -- hello"), "{}", commands[4]);
        }

        #[tokio::test]
        async fn present_with_everything_installed_asks_nothing_more() {
            let host = scripted(|_: &str, _: &Seen| ok("ii \thello\t1.0-1\n"));
            let outcome = converge(
                &host,
                &named(&["hello"], PackageState::Present),
                RunMode::Apply,
                &apt(),
            )
            .await;
            assert_eq!(outcome.status, Status::Ok);
            assert_eq!(outcome.message.as_deref(), Some("nothing to do"));
            assert_eq!(outcome.extra["packages"], json!([]));
            assert_eq!(kinds(&host.seen), ["query"]);
        }

        #[tokio::test]
        async fn check_mode_simulates_on_a_private_index_and_stops() {
            let host = scripted(|text: &str, _: &Seen| {
                if text.contains("dpkg-query") {
                    ok("ii \thello\t1.0-1\n")
                } else if text.contains("apt-get -s") {
                    ok("Inst hello [1.0-1] (2.0-1 test:stable [all])\n")
                } else {
                    ok("")
                }
            });
            let outcome = converge(
                &host,
                &Package::Upgrade(UpgradeScope::All),
                RunMode::Check,
                &apt(),
            )
            .await;
            assert_eq!(outcome.status, Status::Changed);
            assert_eq!(
                outcome.message.as_deref(),
                Some("would upgrade 1: hello 1.0-1 → 2.0-1")
            );
            assert_eq!(
                outcome.extra["packages"],
                json!([{ "name": "hello", "from": "1.0-1", "to": "2.0-1" }])
            );
            // The host's own lists are never refreshed under --check.
            assert_eq!(kinds(&host.seen), ["query", "private update and simulate"]);
        }

        #[tokio::test]
        async fn a_name_unknown_after_the_refresh_fails_with_the_fix() {
            let host = scripted(|text: &str, _: &Seen| {
                if text.contains("apt-get -s") {
                    apt_failure("E: Unable to locate package helo\n")
                } else {
                    ok("ii \tbash\t5.2\n")
                }
            });
            let outcome = converge(
                &host,
                &named(&["helo"], PackageState::Latest),
                RunMode::Apply,
                &apt(),
            )
            .await;
            assert_eq!(outcome.status, Status::Failed);
            assert_eq!(
                outcome.message.as_deref(),
                Some(
                    "package `helo` was not found in the host's apt sources (the index was \
                     refreshed with `apt-get update`): check the name for a typo, or add the \
                     repository that provides it"
                )
            );
            // `latest` refreshed first, so it does not refresh again.
            assert_eq!(kinds(&host.seen), ["query", "update", "simulate"]);
        }

        #[tokio::test]
        async fn security_upgrades_only_what_comes_from_a_security_archive() {
            let host = scripted(|text: &str, seen: &Seen| {
                if text.contains("dpkg-query") {
                    packages(
                        seen,
                        "ii \tlibssl3\t3.0.1\nii \thello\t1.0-1\n",
                        "ii \tlibssl3\t3.0.2\nii \thello\t1.0-1\n",
                    )
                } else if text.contains("upgrade --with-new-pkgs") {
                    ok("Inst hello [1.0-1] (2.0-1 Debian:12/stable [all])\n\
                            Inst libssl3 [3.0.1] (3.0.2 Debian-Security:12/stable-security [amd64])\n")
                } else if text.contains("apt-get -s") {
                    ok("Inst libssl3 [3.0.1] (3.0.2 Debian-Security:12/stable-security [amd64])\n")
                } else {
                    ok("")
                }
            });
            let outcome = converge(
                &host,
                &Package::Upgrade(UpgradeScope::Security),
                RunMode::Apply,
                &apt(),
            )
            .await;
            assert_eq!(outcome.status, Status::Changed);
            assert_eq!(
                outcome.message.as_deref(),
                Some("upgraded 1: libssl3 3.0.1 → 3.0.2")
            );
            assert_eq!(
                kinds(&host.seen),
                ["query", "update", "simulate", "simulate", "apply", "query"]
            );
            let commands = host.seen.commands.lock().expect("commands lock").clone();
            assert!(
                commands[4].contains("apt-mark showauto -- libssl3"),
                "{}",
                commands[4]
            );
            assert!(
                commands[4].contains("install --only-upgrade --no-remove -- libssl3;"),
                "{}",
                commands[4]
            );
        }

        #[tokio::test]
        async fn a_failed_upgrade_still_reports_what_changed_before_it_failed() {
            let host = scripted(|text: &str, seen: &Seen| {
                if text.contains("dpkg-query") {
                    packages(seen, "ii \ta\t1\nii \tb\t1\n", "iF \ta\t2\nii \tb\t1\n")
                } else if text.contains("apt-get -s") {
                    ok("Inst a [1] (2 x:y [all])\nInst b [1] (2 x:y [all])\n")
                } else if text.contains("apt-get -y") {
                    apt_failure("E: Sub-process /usr/bin/dpkg returned an error code (1)\n")
                } else {
                    ok("")
                }
            });
            let outcome = converge(
                &host,
                &Package::Upgrade(UpgradeScope::All),
                RunMode::Apply,
                &apt(),
            )
            .await;
            assert_eq!(outcome.status, Status::Failed);
            let message = outcome.message.clone().unwrap_or_default();
            assert!(message.starts_with("apt-get failed: "), "{message}");
            // dpkg unpacked `a` 2 and could not configure it: the report says so.
            assert!(
                message.ends_with("; before it failed: upgraded 1: a 1 → 2 (half-configured)"),
                "{message}"
            );
            assert_eq!(
                outcome.extra["packages"],
                json!([{ "name": "a", "from": "1", "to": "2 (half-configured)" }])
            );
        }

        #[tokio::test]
        async fn an_unknown_package_manager_or_apk_security_is_refused_before_any_command() {
            let host = scripted(|_: &str, _: &Seen| ok(""));
            let spec = Package::Upgrade(UpgradeScope::Security);
            let unknown = converge(
                &host,
                &spec,
                RunMode::Apply,
                &json!({ "pkg_manager": "unknown" }),
            )
            .await;
            assert_eq!(unknown.status, Status::Failed);
            assert!(
                unknown
                    .message
                    .as_deref()
                    .is_some_and(|message| message.contains("fact `pkg_manager` is `unknown`")),
                "{:?}",
                unknown.message
            );
            let apk = converge(
                &host,
                &spec,
                RunMode::Apply,
                &json!({ "pkg_manager": "apk" }),
            )
            .await;
            assert!(
                apk.message
                    .as_deref()
                    .is_some_and(|message| message.contains("not possible with apk")),
                "{:?}",
                apk.message
            );
            let missing = converge(&host, &spec, RunMode::Apply, &Value::Null).await;
            assert!(
                missing
                    .message
                    .as_deref()
                    .is_some_and(|message| message.contains("`pkg_manager` was not gathered")),
                "{:?}",
                missing.message
            );
            assert_eq!(missing.extra["packages"], json!([]));
            assert!(kinds(&host.seen).is_empty());
        }
    }
}
