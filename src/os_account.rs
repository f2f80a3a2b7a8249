//! The operating system's facts about who runs this process: uids, the account name from the
//! user database, `SUDO_USER` and the kernel's login uid.
//!
//! One home for them, because identity is security-relevant: the gate derives the operator from
//! these facts, the audit store records them on every event, and the lab logs in as the account.
//! None of them comes from a flag or from `$USER`, which a caller could set to anything.

use std::ffi::CStr;

/// The real uid of this process.
#[must_use]
pub fn real_uid() -> u32 {
    // SAFETY: getuid has no preconditions and cannot fail.
    unsafe { libc::getuid() }
}

/// The effective uid of this process.
#[must_use]
pub fn effective_uid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

/// `SUDO_USER` as sudo set it, when not empty. The only place opsgate reads it; whether to
/// trust it is the gate's decision (SPEC §4.1).
#[must_use]
pub fn sudo_user() -> Option<String> {
    std::env::var_os("SUDO_USER")
        .map(|value| value.to_string_lossy().into_owned())
        .filter(|value| !value.is_empty())
}

/// The kernel's audit login uid (`/proc/self/loginuid`): who logged in, across `su` and `sudo`.
/// `None` outside a login session (the kernel then reports `(uid_t)-1`).
#[must_use]
pub fn login_uid() -> Option<u32> {
    std::fs::read_to_string("/proc/self/loginuid")
        .ok()
        .and_then(|text| text.trim().parse::<u32>().ok())
        .filter(|uid| *uid != u32::MAX)
}

/// The account name of `uid` through the C library, so accounts from LDAP or SSSD resolve too.
#[must_use]
pub fn account_name(uid: u32) -> Option<String> {
    lookup_passwd(
        // SAFETY: every pointer is valid for the duration of the call and the buffer length is
        // its real length; getpwuid_r writes the strings of `entry` into `buffer`.
        |entry, buffer, found| unsafe {
            libc::getpwuid_r(uid, entry, buffer.as_mut_ptr().cast(), buffer.len(), found)
        },
        |entry| {
            if entry.pw_name.is_null() {
                return None;
            }
            // SAFETY: getpwuid_r succeeded, so pw_name points at a NUL-terminated string in the
            // buffer, which `lookup_passwd` keeps alive while this runs.
            let name = unsafe { CStr::from_ptr(entry.pw_name) };
            Some(name.to_string_lossy().into_owned())
        },
    )
}

/// The uid of the account called `name`, through the C library.
#[must_use]
pub fn uid_of(name: &str) -> Option<u32> {
    let name = std::ffi::CString::new(name).ok()?;
    lookup_passwd(
        // SAFETY: every pointer is valid for the duration of the call, `name` is NUL-terminated
        // and the buffer length is its real length.
        |entry, buffer, found| unsafe {
            libc::getpwnam_r(
                name.as_ptr(),
                entry,
                buffer.as_mut_ptr().cast(),
                buffer.len(),
                found,
            )
        },
        |entry| Some(entry.pw_uid),
    )
}

/// Runs a reentrant passwd lookup (`getpwuid_r`, `getpwnam_r`: `call` gets the entry to fill,
/// the string buffer and where to say whether an entry was found) with a buffer that grows on
/// `ERANGE` up to 1 MiB, then reads the entry found while its buffer is alive.
fn lookup_passwd<T>(
    mut call: impl FnMut(*mut libc::passwd, &mut [u8], *mut *mut libc::passwd) -> libc::c_int,
    read: impl FnOnce(&libc::passwd) -> Option<T>,
) -> Option<T> {
    let mut buffer = vec![0_u8; 4096];
    loop {
        // SAFETY: an all-zero passwd (null pointers, zero ids) is a valid value to overwrite.
        let mut entry: libc::passwd = unsafe { std::mem::zeroed() };
        let mut found: *mut libc::passwd = std::ptr::null_mut();
        let code = call(&raw mut entry, &mut buffer, &raw mut found);
        if code == libc::ERANGE && buffer.len() < 1 << 20 {
            buffer.resize(buffer.len() * 4, 0);
            continue;
        }
        if code != 0 || found.is_null() {
            return None;
        }
        return read(&entry);
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_current_account_resolves() {
        let uid = super::effective_uid();
        let name = super::account_name(uid).expect("the test account has a passwd entry");
        let id = std::process::Command::new("id")
            .arg("-un")
            .output()
            .expect("id");
        assert_eq!(name, String::from_utf8_lossy(&id.stdout).trim());
    }

    #[test]
    fn names_resolve_to_uids() {
        assert_eq!(super::uid_of("root"), Some(0));
        assert_eq!(super::uid_of("no-such-account-opsgate"), None);
    }

    #[test]
    fn an_unknown_uid_has_no_name() {
        assert_eq!(super::account_name(0).as_deref(), Some("root"));
        assert_eq!(super::account_name(3_999_999_999), None);
    }
}
