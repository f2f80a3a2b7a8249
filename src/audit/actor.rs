//! Who, at the operating-system level, wrote an event.
//!
//! The actor is recorded on every event, next to whatever identity the gate derived: the uid
//! that ran opsgate, its account name, the `SUDO_USER` that sudo passed along and the kernel's
//! login uid (which survives `sudo` and `su`, so it names the person who logged in even when
//! opsgate runs as a service account). These are facts, not a claim the caller can choose.

use std::ffi::CStr;

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
        // SAFETY: getuid has no preconditions and cannot fail.
        let uid = unsafe { libc::getuid() };
        let user = account_name(uid).unwrap_or_else(|| uid.to_string());
        let sudo_user = std::env::var_os("SUDO_USER")
            .map(|name| name.to_string_lossy().into_owned())
            .filter(|name| !name.is_empty());
        let login_uid = std::fs::read_to_string("/proc/self/loginuid")
            .ok()
            .and_then(|text| text.trim().parse::<u32>().ok())
            .filter(|&login_uid| login_uid != u32::MAX);
        Actor {
            uid,
            user,
            sudo_user,
            login_uid,
        }
    }
}

/// The account name of `uid`, through the reentrant `getpwuid_r`.
fn account_name(uid: u32) -> Option<String> {
    let mut buffer: Vec<libc::c_char> = vec![0; 1024];
    loop {
        // SAFETY: `passwd` is plain data; all-zero is a valid (empty) value that getpwuid_r
        // overwrites.
        let mut entry: libc::passwd = unsafe { std::mem::zeroed() };
        let mut result: *mut libc::passwd = std::ptr::null_mut();
        // SAFETY: every pointer is valid for the duration of the call and `buffer.len()` is
        // the real size of the buffer the strings are written into.
        let code = unsafe {
            libc::getpwuid_r(
                uid,
                &raw mut entry,
                buffer.as_mut_ptr(),
                buffer.len(),
                &raw mut result,
            )
        };
        if code == libc::ERANGE && buffer.len() < 1 << 20 {
            let doubled = buffer.len() * 2;
            buffer.resize(doubled, 0);
            continue;
        }
        if code != 0 || result.is_null() || entry.pw_name.is_null() {
            return None;
        }
        // SAFETY: on success `pw_name` points to a NUL-terminated string inside `buffer`,
        // which is still alive here.
        let name = unsafe { CStr::from_ptr(entry.pw_name) };
        return Some(name.to_string_lossy().into_owned());
    }
}

#[cfg(test)]
mod tests {
    use super::{Actor, account_name};

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

    #[test]
    fn an_unknown_uid_has_no_name() {
        assert_eq!(account_name(0).as_deref(), Some("root"));
        assert_eq!(account_name(3_999_999_999), None);
    }
}
