//! The account the lab runs as: lab hosts log in as the person who started them.
//!
//! The name comes from the user database for the effective uid, never from `$USER`, which a
//! caller can set to anything.

use crate::os_account;

use super::error::LabError;

/// The effective uid of this process.
pub(crate) fn effective_uid() -> u32 {
    os_account::effective_uid()
}

/// The login name of the effective uid.
pub(crate) fn account_name() -> Result<String, LabError> {
    let uid = effective_uid();
    os_account::account_name(uid).ok_or(LabError::UnknownAccount { uid })
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
