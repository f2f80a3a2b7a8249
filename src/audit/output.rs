//! A step's stdout or stderr as the history keeps it: a bounded excerpt plus proof of the rest.

use serde::Serialize;
use sha2::{Digest, Sha256};

/// How many bytes of each stream the history keeps.
pub const OUTPUT_EXCERPT_BYTES: usize = 64 * 1024;

/// One output stream of a step. The excerpt is bounded so that a chatty command cannot bloat the
/// history, while `length` and `sha256` still pin down the full stream: anyone holding the full
/// output (for example a log shipped elsewhere) can prove it is the one the step produced.
///
/// Secrets: the caller masks registered secret values (`***`) before capturing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Output {
    /// The first [`OUTPUT_EXCERPT_BYTES`] bytes of the stream, as UTF-8 with invalid sequences
    /// replaced by U+FFFD (a multi-byte character cut by the limit is dropped whole).
    pub excerpt: String,
    /// Length of the full stream in bytes.
    pub length: u64,
    /// SHA-256 of the full stream, lower-case hex.
    pub sha256: String,
}

impl Output {
    /// Captures a stream: excerpt, full length and digest.
    #[must_use]
    pub fn capture(bytes: &[u8]) -> Output {
        let mut kept = &bytes[..bytes.len().min(OUTPUT_EXCERPT_BYTES)];
        if kept.len() < bytes.len() {
            // Do not end on half a character: a cut sequence would show as U+FFFD although the
            // stream itself was valid.
            if let Err(error) = std::str::from_utf8(kept) {
                if error.error_len().is_none() {
                    kept = &kept[..error.valid_up_to()];
                }
            }
        }
        Output {
            excerpt: String::from_utf8_lossy(kept).into_owned(),
            length: bytes.len() as u64,
            sha256: hex::encode(Sha256::digest(bytes)),
        }
    }

    /// An empty stream (what a skipped step or an unreachable host produced).
    #[must_use]
    pub fn empty() -> Output {
        Output::capture(&[])
    }

    /// Whether the excerpt holds less than the whole stream.
    #[must_use]
    pub fn is_truncated(&self) -> bool {
        self.length > OUTPUT_EXCERPT_BYTES as u64
    }
}

#[cfg(test)]
mod tests {
    use super::{OUTPUT_EXCERPT_BYTES, Output};

    #[test]
    fn small_outputs_are_kept_whole() {
        let output = Output::capture(b"3 packages\n");
        assert_eq!(output.excerpt, "3 packages\n");
        assert_eq!(output.length, 11);
        assert!(!output.is_truncated());
        assert_eq!(
            Output::empty().sha256,
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn large_outputs_are_capped_at_64_kib_with_full_length_and_digest() {
        let bytes: Vec<u8> = (0..200_000u32)
            .map(|index| b'a' + (index % 26) as u8)
            .collect();
        let output = Output::capture(&bytes);
        assert_eq!(output.excerpt.len(), OUTPUT_EXCERPT_BYTES);
        assert_eq!(output.excerpt.as_bytes(), &bytes[..OUTPUT_EXCERPT_BYTES]);
        assert_eq!(output.length, 200_000);
        assert_eq!(
            output.sha256,
            hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&bytes))
        );
        assert!(output.is_truncated());
    }

    #[test]
    fn a_character_cut_by_the_cap_is_dropped_and_invalid_bytes_are_replaced() {
        let mut bytes = vec![b'x'; OUTPUT_EXCERPT_BYTES - 1];
        bytes.extend_from_slice("é and more".as_bytes());
        let output = Output::capture(&bytes);
        assert_eq!(output.excerpt.len(), OUTPUT_EXCERPT_BYTES - 1);
        assert!(!output.excerpt.contains('\u{fffd}'));

        let output = Output::capture(b"ok \xff\xfe done");
        assert_eq!(output.excerpt, "ok \u{fffd}\u{fffd} done");
        assert_eq!(output.length, 10);
    }
}
