//! The account the lab runs as: lab hosts log in as the person who started them.
//!
//! The name comes from the user database for the effective uid, never from `$USER`, which a
//! caller can set to anything.

use std::ffi::CStr;

use super::error::LabError;

/// The effective uid of this process.
pub(crate) fn effective_uid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

/// The login name of the effective uid.
pub(crate) fn account_name() -> Result<String, LabError> {
    let uid = effective_uid();
    let mut buffer = vec![0_u8; 4096];
    loop {
        // SAFETY: an all-zero passwd (null pointers, zero ids) is a valid value to overwrite.
        let mut entry: libc::passwd = unsafe { std::mem::zeroed() };
        let mut found: *mut libc::passwd = std::ptr::null_mut();
        // SAFETY: every pointer is valid for the duration of the call and the buffer length is
        // its real length; getpwuid_r writes the strings of `entry` into `buffer`.
        let code = unsafe {
            libc::getpwuid_r(
                uid,
                &raw mut entry,
                buffer.as_mut_ptr().cast(),
                buffer.len(),
                &raw mut found,
            )
        };
        if code == libc::ERANGE && buffer.len() < 1 << 20 {
            buffer.resize(buffer.len() * 4, 0);
            continue;
        }
        if code != 0 || found.is_null() || entry.pw_name.is_null() {
            return Err(LabError::UnknownAccount { uid });
        }
        // SAFETY: getpwuid_r succeeded, so pw_name points at a NUL-terminated string in `buffer`,
        // which is still alive here.
        let name = unsafe { CStr::from_ptr(entry.pw_name) };
        return Ok(name.to_string_lossy().into_owned());
    }
}

#[cfg(test)]
mod tests {
    use super::{account_name, effective_uid};

    #[test]
    fn account_name_matches_the_uid() {
        let name = account_name().expect("the test account has a passwd entry");
        assert!(!name.is_empty());
        if effective_uid() == 0 {
            assert_eq!(name, "root");
        }
    }
}
