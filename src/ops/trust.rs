//! Deployment checks under a sudo identity (SPEC §4.6): when opsgate acts for `SUDO_USER`, the
//! files that decide what it may do — `opsgate.yaml`, the policy, the state directory, the
//! inventory and the catalog directory — must be out of that person's reach. Each path (or,
//! when it does not exist yet, its nearest existing ancestor) and every parent directory must be
//! owned by root or the service account and not writable by group or others; otherwise the
//! command is denied (exit 3) naming the path. `--policy`, `--state-dir`, `-i` and
//! `OPSGATE_STATE_DIR` name paths like any other and get the same check.
//!
//! Decisions where the spec is silent:
//! - A world-writable directory with the sticky bit (`/tmp`) is accepted as a *parent*: nobody
//!   but the owner of an entry may rename or remove it there, so the path below stays put.
//! - Symlinks are followed and both chains are checked: the link's own directories and the
//!   target's.
//! - The policy file is checked before it is read, against root and the account opsgate runs
//!   as; only once it passes does its `service_account` become a trusted owner of the other
//!   paths. So under `sudo opsgate` (running as root) the policy itself must be root's.
//! - `lab` is refused under a sudo identity and to the service account itself (it would start
//!   servers with the keys that reach real hosts).
//!
//! The team-mode service (`opsgate serve`) applies the same walk once at start to its
//! configuration, policy, inventory, catalog and state ([`check_service_path`]), trusting root
//! and the account it runs as.

use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path, PathBuf};

use crate::error::Error;
use crate::gate::{Denial, IdentitySource, Policy, ProcessIdentity, Rule, identify};
use crate::os_account;
use crate::project::{CONFIG_FILE, Project};

/// Group- or other-writable.
const WRITABLE_BY_OTHERS: u32 = 0o022;
/// The sticky bit of a directory.
const STICKY: u32 = 0o1000;

/// Who may own the files that govern a sudo identity.
struct Owners {
    process_uid: u32,
    service_account: Option<String>,
}

impl Owners {
    fn trusts(&self, uid: u32) -> bool {
        uid == 0
            || uid == self.process_uid
            || self
                .service_account
                .as_deref()
                .is_some_and(|service| os_account::account_name(uid).as_deref() == Some(service))
    }

    fn describe(&self) -> String {
        let mut owners = vec!["root".to_owned()];
        if let Some(account) = os_account::account_name(self.process_uid)
            && self.process_uid != 0
        {
            owners.push(format!("`{account}`"));
        }
        if let Some(service) = &self.service_account
            && !owners.contains(&format!("`{service}`"))
        {
            owners.push(format!("`{service}`"));
        }
        owners.join(" or ")
    }
}

/// Whether this process acts for a `SUDO_USER` (read before the policy, so it is the raw fact:
/// `SUDO_USER` set and naming another account).
#[must_use]
pub fn acts_for_sudo_user(process: &ProcessIdentity) -> bool {
    process
        .sudo_user
        .as_deref()
        .is_some_and(|user| !user.is_empty() && user != process.account)
}

/// Whether this process runs as the policy's `service_account` (a policy that cannot be read
/// names none).
#[must_use]
pub fn is_service_account(project: &Project, process: &ProcessIdentity) -> bool {
    Policy::load_optional(&project.policy)
        .ok()
        .flatten()
        .is_some_and(|(policy, _)| policy.service_account() == Some(process.account.as_str()))
}

/// Checks `opsgate.yaml` in `directory` before it is read, when this process may act for a
/// `SUDO_USER`.
pub fn check_config(directory: &Path, process: &ProcessIdentity) -> Result<(), Error> {
    if !acts_for_sudo_user(process) {
        return Ok(());
    }
    let owners = Owners {
        process_uid: process.uid,
        service_account: None,
    };
    check_path(
        &directory.join(CONFIG_FILE),
        "project configuration",
        &owners,
        Regime::Sudo,
    )
}

/// Checks one file of the service's project (and its parents) at `opsgate serve` start: owned
/// by root or the service account (`process`), writable by nobody else.
pub fn check_service_path(path: &Path, what: &str, process: &ProcessIdentity) -> Result<(), Error> {
    let owners = Owners {
        process_uid: process.uid,
        service_account: None,
    };
    check_path(path, what, &owners, Regime::Service)
}

/// Why a path must be out of reach, for the message.
#[derive(Clone, Copy)]
enum Regime {
    /// The command line acting for a `SUDO_USER`.
    Sudo,
    /// The team-mode service.
    Service,
}

impl Regime {
    fn rule(self) -> &'static str {
        match self {
            Regime::Sudo => {
                "under a sudo identity opsgate uses only files that root or the service account \
                 own and nobody else can write"
            }
            Regime::Service => {
                "the service refuses to serve: it gates people only with files that root or the \
                 service account own and nobody else can write"
            }
        }
    }
}

/// Checks every governing path of `project` when the identity comes from `SUDO_USER`.
pub fn check_project(project: &Project, process: &ProcessIdentity) -> Result<(), Error> {
    if !acts_for_sudo_user(process) {
        return Ok(());
    }
    let mut owners = Owners {
        process_uid: process.uid,
        service_account: None,
    };
    check_path(&project.policy, "policy file", &owners, Regime::Sudo)?;
    // Only a policy that passed may name the service account; an unreadable or invalid one is
    // reported by the command itself.
    let policy = Policy::load_optional(&project.policy)
        .ok()
        .flatten()
        .map(|(policy, _)| policy);
    if identify(process, policy.as_ref()).source != IdentitySource::SudoUser {
        return Ok(());
    }
    owners.service_account = policy
        .as_ref()
        .and_then(|policy| policy.service_account().map(str::to_owned));
    check_path(&project.state_dir, "state directory", &owners, Regime::Sudo)?;
    check_path(&project.inventory, "inventory", &owners, Regime::Sudo)?;
    check_path(
        &project.runbooks,
        "catalog directory",
        &owners,
        Regime::Sudo,
    )
}

/// Refuses `opsgate lab` to the service account (its SSH keys reach real hosts) and under sudo
/// (it would start servers as the account sudo switched to).
pub fn check_lab(project: &Project, process: &ProcessIdentity) -> Result<(), Denial> {
    if is_service_account(project, process) {
        return Err(Denial::new(
            Rule::LabAsServiceAccount,
            format!(
                "`opsgate lab` is refused to the service account `{}`: its SSH keys reach real \
                 hosts",
                process.account
            ),
            "run `opsgate lab` as yourself",
        ));
    }
    if acts_for_sudo_user(process) {
        return Err(Denial::new(
            Rule::LabUnderSudo,
            format!(
                "`opsgate lab` is refused under sudo (SUDO_USER `{}`): it would start servers as \
                 `{}`",
                process.sudo_user.as_deref().unwrap_or_default(),
                process.account
            ),
            "run `opsgate lab` as yourself, without sudo",
        ));
    }
    Ok(())
}

/// Checks `path` (or its nearest existing ancestor) and every parent, through symlinks.
fn check_path(path: &Path, what: &str, owners: &Owners, regime: Regime) -> Result<(), Error> {
    let absolute = std::path::absolute(path).map_err(|source| Error::Io {
        action: "resolve",
        path: path.to_path_buf(),
        source,
    })?;
    let mut chains = vec![absolute.clone()];
    if let Ok(real) = std::fs::canonicalize(&absolute)
        && real != absolute
    {
        chains.push(real);
    }
    for chain in chains {
        let mut current = PathBuf::new();
        let components: Vec<Component<'_>> = chain.components().collect();
        let last = components.len().saturating_sub(1);
        for (index, component) in components.iter().enumerate() {
            current.push(component);
            let Ok(metadata) = std::fs::symlink_metadata(&current) else {
                // Not created yet: what exists above it was checked.
                break;
            };
            let mode = metadata.mode();
            let sticky_parent = metadata.is_dir() && mode & STICKY != 0 && index < last;
            let problem = if !owners.trusts(metadata.uid()) {
                Some(format!(
                    "is owned by {}",
                    os_account::account_name(metadata.uid()).map_or_else(
                        || format!("uid {}", metadata.uid()),
                        |name| format!("`{name}`")
                    )
                ))
            } else if mode & WRITABLE_BY_OTHERS != 0 && !metadata.is_symlink() && !sticky_parent {
                Some(format!(
                    "is writable by group or others (mode {:04o})",
                    mode & 0o7777
                ))
            } else {
                None
            };
            if let Some(problem) = problem {
                let subject = if current == chain {
                    format!("{what} `{}`", current.display())
                } else {
                    format!(
                        "`{}`, a parent of the {what} `{}`",
                        current.display(),
                        chain.display()
                    )
                };
                return Err(Denial::new(
                    Rule::UntrustedPath,
                    format!("{subject} {problem}: {}", regime.rule()),
                    format!(
                        "make it owned by {} and not group- or world-writable \
                         (docs/deployment.md): whoever can write it could change what you may \
                         do, or what the history says",
                        owners.describe()
                    ),
                )
                .into());
            }
        }
    }
    Ok(())
}
