//! The hash chain: pure functions, no I/O.
//!
//! Every event stores the hash of the event before it (`prev_hash`; 32 zero bytes for the first
//! event) and its own hash:
//!
//! ```text
//! hash = SHA-256( DOMAIN_TAG ‖ version:u32 ‖ prev_hash:32 bytes ‖ canonical envelope )
//! ```
//!
//! `DOMAIN_TAG` keeps these hashes distinct from any other SHA-256 opsgate computes (runbook
//! digests, output digests); `version` is the encoding version, stored on each row, so a future
//! encoding can coexist with old rows and both keep verifying. The envelope (see `Envelope`)
//! covers every stored column of the event except the chain fields themselves, so changing any
//! of `seq`, time, run, kind, actor or body changes the hash.
//!
//! What the chain proves: an event that was edited, removed from the middle, or inserted breaks
//! the chain at that point. What it cannot prove on its own: that no events were cut off the end,
//! or that the whole history was not recomputed from some point on. Checkpoints kept outside the
//! database close that gap (see `checkpoint`).

use std::fmt;

use sha2::{Digest, Sha256};

use crate::audit::actor::Actor;
use crate::audit::canonical::Encoder;

/// Separates audit-chain hashes from every other SHA-256 in opsgate.
pub const DOMAIN_TAG: &[u8] = b"opsgate.audit.entry";

/// The canonical encoding version written by this opsgate.
pub const FORMAT_VERSION: u32 = 1;

/// A SHA-256 value in the chain.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct ChainHash(pub [u8; 32]);

impl ChainHash {
    /// The `prev_hash` of the first event.
    pub const GENESIS: ChainHash = ChainHash([0; 32]);

    /// Reads a hash stored as a BLOB; `None` unless it is exactly 32 bytes.
    #[must_use]
    pub fn from_slice(bytes: &[u8]) -> Option<ChainHash> {
        <[u8; 32]>::try_from(bytes).ok().map(ChainHash)
    }

    /// Parses lower- or upper-case hex.
    #[must_use]
    pub fn from_hex(text: &str) -> Option<ChainHash> {
        hex::decode(text)
            .ok()
            .and_then(|bytes| ChainHash::from_slice(&bytes))
    }

    /// Lower-case hex.
    #[must_use]
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Serializes as lower-case hex (`#[serde(serialize_with = "ChainHash::serialize_hex")]`):
    /// how reports and checkpoints show a hash.
    pub fn serialize_hex<S: serde::Serializer>(
        hash: &ChainHash,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.collect_str(hash)
    }
}

impl fmt::Display for ChainHash {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.to_hex())
    }
}

impl fmt::Debug for ChainHash {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "ChainHash({})", self.to_hex())
    }
}

/// The hashed part of an event (format version 1).
///
/// **Do not reorder, rename or retype these fields, and do not change [`Envelope::encode`]**:
/// every stored hash depends on them. The encoding, in this order, with the types of the
/// `canonical` module:
///
/// | field | encoding |
/// |---|---|
/// | `seq` | u64 |
/// | `at_microsecond` | i64, microseconds since the Unix epoch, UTC |
/// | `run` | `option<i64>` |
/// | `kind` | str |
/// | `actor.uid` | u32 |
/// | `actor.user` | str |
/// | `actor.sudo_user` | `option<str>` |
/// | `actor.login_uid` | `option<u32>` |
/// | `body` | bytes (the record's canonical body, see `record`) |
#[derive(Debug, Clone, Copy)]
pub(crate) struct Envelope<'a> {
    pub(crate) seq: u64,
    pub(crate) at_microsecond: i64,
    pub(crate) run: Option<i64>,
    pub(crate) kind: &'a str,
    pub(crate) actor: &'a Actor,
    pub(crate) body: &'a [u8],
}

impl Envelope<'_> {
    fn encode(&self) -> Vec<u8> {
        let mut encoder = Encoder::new();
        encoder.u64(self.seq).i64(self.at_microsecond);
        encoder.option(self.run, |encoder, run| {
            encoder.i64(run);
        });
        encoder
            .str(self.kind)
            .u32(self.actor.uid)
            .str(&self.actor.user);
        encoder.option(self.actor.sudo_user.as_deref(), |encoder, name| {
            encoder.str(name);
        });
        encoder.option(self.actor.login_uid, |encoder, uid| {
            encoder.u32(uid);
        });
        encoder.bytes(self.body);
        encoder.finish()
    }

    /// The event's hash given the hash of the event before it (format version 1).
    pub(crate) fn hash(&self, prev_hash: &ChainHash) -> ChainHash {
        let mut hasher = Sha256::new();
        hasher.update(DOMAIN_TAG);
        hasher.update(FORMAT_VERSION.to_be_bytes());
        hasher.update(prev_hash.0);
        hasher.update(self.encode());
        ChainHash(hasher.finalize().into())
    }
}

#[cfg(test)]
mod tests {
    use super::{ChainHash, Envelope};
    use crate::audit::actor::Actor;

    fn envelope(actor: &Actor) -> Envelope<'_> {
        Envelope {
            seq: 1,
            at_microsecond: 1_700_000_000_000_000,
            run: Some(1),
            kind: "run_started",
            actor,
            body: &[],
        }
    }

    /// Pins one hash: if this fails, the chain encoding changed and every stored history would
    /// stop verifying. Introduce a new format version instead. (The value was also computed
    /// independently, in a few lines of Python, from the encoding documented above.)
    #[test]
    fn the_hash_of_an_envelope_never_changes() {
        let actor = Actor::alice();
        assert_eq!(
            envelope(&actor).hash(&ChainHash::GENESIS).to_hex(),
            "4b9c098b6a8015788a9f865ea03d78288f522fb8df87818b65123f3561eb5eeb"
        );
    }

    #[test]
    fn every_field_and_the_previous_hash_change_the_hash() {
        let actor = Actor::alice();
        let base = envelope(&actor).hash(&ChainHash::GENESIS);
        let other_actor = Actor {
            sudo_user: Some("bob".into()),
            ..actor.clone()
        };
        let variants = [
            Envelope {
                seq: 2,
                ..envelope(&actor)
            },
            Envelope {
                at_microsecond: 1,
                ..envelope(&actor)
            },
            Envelope {
                run: None,
                ..envelope(&actor)
            },
            Envelope {
                kind: "run_finished",
                ..envelope(&actor)
            },
            Envelope {
                body: &[0],
                ..envelope(&actor)
            },
            envelope(&other_actor),
        ];
        for variant in variants {
            assert_ne!(variant.hash(&ChainHash::GENESIS), base, "{variant:?}");
        }
        assert_ne!(envelope(&actor).hash(&ChainHash([1; 32])), base);
    }

    #[test]
    fn hashes_parse_back_from_hex_and_blobs() {
        let hash = ChainHash([0xab; 32]);
        assert_eq!(ChainHash::from_hex(&hash.to_hex()), Some(hash));
        assert_eq!(ChainHash::from_slice(&[0xab; 32]), Some(hash));
        assert_eq!(ChainHash::from_slice(&[0xab; 31]), None);
        assert_eq!(ChainHash::from_hex("zz"), None);
    }
}
