//! The store id (SPEC §4.6): 16 random bytes drawn from the OS when a store is created (or first
//! opened after the upgrade that introduced it), kept in the `store_identity` table, never
//! changed. Signed approvals name it, so an approval signed for one store does not count in
//! another; it is not a secret, only unique.

use std::fmt;
use std::str::FromStr;

/// A store's random, permanent identity; shown as 32 lower-case hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct StoreId([u8; 16]);

impl StoreId {
    /// A fresh id from the OS random source.
    pub fn random() -> Result<StoreId, getrandom::Error> {
        let mut bytes = [0; 16];
        getrandom::getrandom(&mut bytes)?;
        Ok(StoreId(bytes))
    }

    /// The id with these bytes (tests, fixtures).
    #[must_use]
    pub const fn from_bytes(bytes: [u8; 16]) -> StoreId {
        StoreId(bytes)
    }
}

impl fmt::Display for StoreId {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for StoreId {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "StoreId({self})")
    }
}

/// Why text is not a store id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{text}` is not a store id (32 lower-case hex digits)")]
pub struct ParseStoreIdError {
    /// The text given.
    pub text: String,
}

impl FromStr for StoreId {
    type Err = ParseStoreIdError;

    fn from_str(text: &str) -> Result<StoreId, ParseStoreIdError> {
        // Lower case only: the id is signed as text, so one id must have one spelling.
        let error = || ParseStoreIdError {
            text: text.to_owned(),
        };
        if text.bytes().any(|byte| byte.is_ascii_uppercase()) {
            return Err(error());
        }
        let bytes = hex::decode(text).map_err(|_| error())?;
        <[u8; 16]>::try_from(bytes)
            .map(StoreId)
            .map_err(|_| error())
    }
}

#[cfg(test)]
mod tests {
    use super::StoreId;

    #[test]
    fn ids_are_random_and_read_back_in_one_spelling_only() {
        let id = StoreId::random().expect("OS random source");
        assert_ne!(id, StoreId::random().expect("OS random source"));
        assert_eq!(id.to_string().parse::<StoreId>(), Ok(id));
        assert_eq!(id.to_string().len(), 32);
        assert!(id.to_string().to_uppercase().parse::<StoreId>().is_err());
        assert!("abc".parse::<StoreId>().is_err());
    }
}
