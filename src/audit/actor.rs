//! Who, at the operating-system level, wrote an event.
//!
//! The actor is recorded on every event, next to whatever identity the gate derived: the uid
//! that ran opsgate, its account name, the `SUDO_USER` that sudo passed along and the kernel's
//! login uid (which survives `sudo` and `su`, so it names the person who logged in even when
//! opsgate runs as a service account). These are facts, not a claim the caller can choose.

use crate::os_account;

use serde::Serialize;

/// The OS identity behind an event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Actor {
    /// Real uid of the opsgate process.
    pub uid: u32,
    /// Account name of `uid` from the password database, or the uid in decimal when there is
    /// no entry.
    pub user: String,
    /// `SUDO_USER` when opsgate runs under sudo.
    pub sudo_user: Option<String>,
    /// `/proc/self/loginuid`, when the kernel tracks one (unset reads as 4294967295).
    pub login_uid: Option<u32>,
}

impl Actor {
    /// The actor of the current process.
    #[must_use]
    pub fn current() -> Actor {
        let uid = os_account::real_uid();
        Actor {
            uid,
            user: os_account::account_name(uid).unwrap_or_else(|| uid.to_string()),
            sudo_user: os_account::sudo_user(),
            login_uid: os_account::login_uid(),
        }
    }

    /// A fixed actor for tests: `alice`, uid and login uid 1000.
    #[cfg(test)]
    pub(crate) fn alice() -> Actor {
        Actor {
            uid: 1000,
            user: "alice".into(),
            sudo_user: None,
            login_uid: Some(1000),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Actor;

    #[test]
    fn the_current_actor_has_the_process_uid_and_its_name() {
        let actor = Actor::current();
        // SAFETY: getuid has no preconditions.
        assert_eq!(actor.uid, unsafe { libc::getuid() });
        if actor.uid == 0 {
            assert_eq!(actor.user, "root");
        }
        assert!(!actor.user.is_empty());
    }
}
