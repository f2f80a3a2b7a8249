//! Who is asking: the operator identity of this process (SPEC §4.1).
//!
//! The identity is the OS account the kernel says runs opsgate (its effective uid, named through
//! the user database), never a flag or an environment variable the caller chooses, with one
//! exception that sudo makes trustworthy: when the account is root or the policy's
//! `service_account` and `SUDO_USER` is set, the identity is `SUDO_USER`. Only a process that
//! already holds root or the service account can set `SUDO_USER` for itself, and those accounts
//! own the policy and the audit store anyway, so honouring it there gives nobody new power.
//!
//! Reading the OS happens once, in [`ProcessIdentity::current`]; [`identify`] is a pure function
//! of that data and the policy, so every identity case is a table test.
//!
//! Decisions where the spec is silent:
//! - A `SUDO_USER` equal to the account itself (root running `sudo` as root) changes nothing:
//!   the identity is that account, from the process, not from sudo.
//! - An empty `SUDO_USER` is treated as unset.
//! - Without a policy file there is no `service_account` to compare with, so any `SUDO_USER`
//!   naming another account is taken as the identity. The gate then denies (a missing policy
//!   under a sudo identity is a denial): otherwise `sudo -u opsgate opsgate --policy /nowhere`
//!   would run ungated with the service account's SSH keys.

use crate::os_account;

use crate::gate::level::Level;
use crate::gate::policy::Policy;

/// An operator as the policy knows them. An account the policy does not list has no level and
/// may only use the ungated commands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Operator {
    /// The OS account name, the key under `operators:`.
    pub account: String,
    /// The SFIA level, `None` when the policy does not list the account (or there is no policy).
    pub level: Option<Level>,
    /// The human name from `name:`, for messages and history.
    pub display_name: Option<String>,
    /// The registered SSH public key that signed approvals are verified against.
    pub key: Option<ssh_key::PublicKey>,
}

impl Operator {
    /// An account the policy does not list: no level, no name, no key.
    #[must_use]
    pub fn unlisted(account: impl Into<String>) -> Operator {
        Operator {
            account: account.into(),
            level: None,
            display_name: None,
            key: None,
        }
    }

    /// `alice (L5)`, or just `alice` when unlisted; used in messages.
    #[must_use]
    pub fn label(&self) -> String {
        match self.level {
            Some(level) => format!("`{}` ({level})", self.account),
            None => format!("`{}`", self.account),
        }
    }
}

/// What the OS says about this process, gathered once at the edge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessIdentity {
    /// The effective uid of the process.
    pub uid: u32,
    /// The account name of `uid` from the user database.
    pub account: String,
    /// `SUDO_USER` from the environment, when set and not empty.
    pub sudo_user: Option<String>,
    /// The audit login uid (`/proc/self/loginuid`): who logged in, across `su` and `sudo`;
    /// `None` where the kernel does not track it. Recorded in events, never used to decide.
    pub login_uid: Option<u32>,
}

/// Why [`ProcessIdentity::current`] could not tell who runs opsgate.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    /// The effective uid has no entry in the user database.
    #[error("uid {uid} has no account in the user database")]
    UnknownUid {
        /// The effective uid.
        uid: u32,
    },
}

impl IdentityError {
    /// Ways to fix it.
    #[must_use]
    pub fn hints(&self) -> Vec<String> {
        match self {
            IdentityError::UnknownUid { .. } => vec![
                "opsgate identifies operators by account name; run it as an account listed in \
                 /etc/passwd (or your directory service)"
                    .to_owned(),
            ],
        }
    }
}

impl ProcessIdentity {
    /// Reads this process's identity from the kernel and the user database. This is the only
    /// place opsgate reads `SUDO_USER`.
    pub fn current() -> Result<ProcessIdentity, IdentityError> {
        let uid = os_account::effective_uid();
        let account = os_account::account_name(uid).ok_or(IdentityError::UnknownUid { uid })?;
        Ok(ProcessIdentity {
            uid,
            account,
            sudo_user: os_account::sudo_user(),
            login_uid: os_account::login_uid(),
        })
    }
}

/// Where the identity came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdentitySource {
    /// The account running the process.
    Process,
    /// `SUDO_USER`, because the process runs as root or the service account.
    SudoUser,
}

/// The operator opsgate acts for, and how it knows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The operator: the identity's account with its level from the policy.
    pub operator: Operator,
    /// Whether the identity is the process's account or `SUDO_USER`.
    pub source: IdentitySource,
    /// The raw process facts, for the audit record (OS uid, sudo identity, login uid).
    pub process: ProcessIdentity,
}

/// The identity of `process` under `policy` (SPEC §4.1): `SUDO_USER` when the process runs as
/// root (uid 0) or as the policy's `service_account`, else the process's own account. See the
/// module docs for the cases the spec leaves open.
#[must_use]
pub fn identify(process: &ProcessIdentity, policy: Option<&Policy>) -> Identity {
    let sudo_user = process
        .sudo_user
        .as_deref()
        .filter(|user| !user.is_empty() && *user != process.account);
    let trusts_sudo = match policy {
        Some(policy) => {
            process.uid == 0 || policy.service_account() == Some(process.account.as_str())
        }
        None => true,
    };
    let (account, source) = match sudo_user {
        Some(user) if trusts_sudo => (user, IdentitySource::SudoUser),
        _ => (process.account.as_str(), IdentitySource::Process),
    };
    let operator = policy
        .and_then(|policy| policy.operator(account))
        .cloned()
        .unwrap_or_else(|| Operator::unlisted(account));
    Identity {
        operator,
        source,
        process: process.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::{IdentitySource, ProcessIdentity, identify};
    use crate::diagnostic::SourceFile;
    use crate::gate::level::Level;
    use crate::gate::policy::Policy;

    fn policy() -> Policy {
        let text =
            "service_account: opsgate\noperators:\n  alice: { level: 5 }\n  bob: { level: 2 }\n";
        Policy::parse(SourceFile::new("policy/operators.yaml", text))
            .expect("the policy is valid")
            .0
    }

    fn process(uid: u32, account: &str, sudo_user: Option<&str>) -> ProcessIdentity {
        ProcessIdentity {
            uid,
            account: account.to_owned(),
            sudo_user: sudo_user.map(str::to_owned),
            login_uid: Some(1000),
        }
    }

    /// (process uid, account, `SUDO_USER`, with policy, identity, source, level)
    type Case = (
        u32,
        &'static str,
        Option<&'static str>,
        bool,
        &'static str,
        IdentitySource,
        Option<Level>,
    );

    #[test]
    fn identity_table() {
        use IdentitySource::{Process, SudoUser};
        let policy = policy();
        #[rustfmt::skip]
        let cases: [Case; 11] = [
            (1000, "alice", None, true, "alice", Process, Some(Level::L5)),
            (0, "root", Some("bob"), true, "bob", SudoUser, Some(Level::L2)),
            (999, "opsgate", Some("bob"), true, "bob", SudoUser, Some(Level::L2)),
            // A plain account's SUDO_USER (e.g. a shell from `sudo -u carol`) is ignored.
            (1002, "carol", Some("alice"), true, "carol", Process, None),
            (0, "root", None, true, "root", Process, None),
            (0, "root", Some(""), true, "root", Process, None),
            (0, "root", Some("root"), true, "root", Process, None),
            (999, "opsgate", None, true, "opsgate", Process, None),
            // No policy: no service account to compare with, so SUDO_USER is the identity and
            // the gate will deny; without SUDO_USER it is single-operator mode.
            (1000, "alice", None, false, "alice", Process, None),
            (0, "root", Some("bob"), false, "bob", SudoUser, None),
            (999, "opsgate", Some("bob"), false, "bob", SudoUser, None),
        ];
        for (uid, account, sudo_user, with_policy, expected, source, level) in cases {
            let process = process(uid, account, sudo_user);
            let identity = identify(&process, with_policy.then_some(&policy));
            let case = format!("{account} (uid {uid}) with SUDO_USER={sudo_user:?}");
            assert_eq!(identity.operator.account, expected, "{case}");
            assert_eq!(identity.source, source, "{case}");
            assert_eq!(identity.operator.level, level, "{case}");
            assert_eq!(identity.process, process, "{case}");
        }
    }

    #[test]
    fn a_service_account_is_only_trusted_when_the_policy_names_it() {
        let text = "operators:\n  bob: { level: 2 }\n";
        let (policy, _) = Policy::parse(SourceFile::new("p.yaml", text)).expect("valid");
        let identity = identify(&process(999, "opsgate", Some("bob")), Some(&policy));
        assert_eq!(identity.operator.account, "opsgate");
        assert_eq!(identity.source, IdentitySource::Process);
    }

    #[test]
    fn the_current_process_has_an_account() {
        let process = ProcessIdentity::current().expect("the test account has a passwd entry");
        assert!(!process.account.is_empty());
        if process.uid == 0 {
            assert_eq!(process.account, "root");
        }
        let from_proc = std::fs::metadata("/proc/self")
            .map(|metadata| std::os::unix::fs::MetadataExt::uid(&metadata));
        if let Ok(uid) = from_proc {
            assert_eq!(uid, process.uid);
        }
    }
}
