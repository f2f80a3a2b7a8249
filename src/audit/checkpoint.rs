//! Checkpoints: the chain's length and head hash, written down outside the database.
//!
//! The hash chain shows any event altered, removed or inserted *before* the last event, but by
//! itself it cannot show that the last events were cut off, or that someone with write access
//! recomputed every hash after an edit. A checkpoint pins the history as it was: "there were
//! `N` events and event `N` had hash `H`". `audit verify --checkpoint FILE` then detects
//!
//! - **truncation**: the store holds fewer than `N` events;
//! - **a rewritten history**: event `N` no longer has hash `H` (whatever was changed before it,
//!   however carefully the chain was recomputed).
//!
//! # Signing
//!
//! A checkpoint is only as trustworthy as the place it is kept. Signed with `--key` (through
//! `ssh-keygen -Y sign`, namespace [`SIGNATURE_NAMESPACE`], with a key or ssh-agent identity
//! of an auditor, never the service account's), it can be kept anywhere — even next to the
//! database — because whoever can rewrite the database still cannot produce a matching
//! signature; `--allowed-signers FILE` (the auditors' public keys, `ssh-keygen` format) checks
//! it. Unsigned checkpoints protect only as long as their file is out of the attacker's reach
//! (another machine, a ticket, paper). SSH signatures were chosen over an HMAC key because
//! checking one needs only public keys, so the verifier cannot forge checkpoints, and operators
//! already hold SSH keys (the same mechanism signs approvals).
//!
//! Not protected: events appended after the last checkpoint (take checkpoints often, e.g. after
//! each run or from cron), and well-formed events appended by someone who can write the
//! database (appending is what opsgate itself does; the service-account deployment is what
//! keeps others from writing).
//!
//! # Format (version 1)
//!
//! ```text
//! opsgate audit checkpoint v1
//! events 1234
//! head 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08
//! at 2025-01-02T03:04:05.123456Z
//! -----BEGIN SSH SIGNATURE-----
//! …
//! -----END SSH SIGNATURE-----
//! ```
//!
//! The signed payload is the first four lines, each ending in `\n`. The signature block is
//! optional. A file may hold many checkpoints one after the other (`audit checkpoint --append`);
//! blank lines and lines starting with `#` between them are ignored.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use serde::Serialize;

use crate::audit::chain::ChainHash;
use crate::audit::error::AuditError;
use crate::audit::query::format_timestamp;
use crate::audit::store::{AuditStore, InStore};

/// The `ssh-keygen -Y` namespace of checkpoint signatures (distinct from approvals', so one
/// kind of signature can never be replayed as the other).
pub const SIGNATURE_NAMESPACE: &str = "opsgate-audit-checkpoint";

const FIRST_LINE: &str = "opsgate audit checkpoint v1";
const SIGNATURE_BEGIN: &str = "-----BEGIN SSH SIGNATURE-----";
const SIGNATURE_END: &str = "-----END SSH SIGNATURE-----";

/// The chain's length and head at one moment, optionally signed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Checkpoint {
    /// How many events the history held (the head's `seq`).
    pub events: u64,
    /// Hash of event `events` (all zeros for an empty history).
    #[serde(serialize_with = "ChainHash::serialize_hex")]
    pub head: ChainHash,
    /// When the checkpoint was taken (RFC 3339, UTC).
    pub at: String,
    /// Armored SSH signature over [`Checkpoint::payload`].
    pub signature: Option<String>,
}

impl Checkpoint {
    /// The signed text: the four header lines.
    #[must_use]
    pub fn payload(&self) -> String {
        format!(
            "{FIRST_LINE}\nevents {}\nhead {}\nat {}\n",
            self.events, self.head, self.at
        )
    }

    /// The checkpoint as written to a file or printed.
    #[must_use]
    pub fn render(&self) -> String {
        let mut text = self.payload();
        if let Some(signature) = &self.signature {
            text.push_str(signature.trim_end());
            text.push('\n');
        }
        text
    }

    /// Signs the payload with `key` (a private key file, or a public key whose private half is
    /// in the ssh-agent) through `ssh-keygen -Y sign`.
    pub fn sign(&mut self, key: &Path) -> Result<(), AuditError> {
        let output = run_ssh_keygen(
            "sign",
            Command::new("ssh-keygen")
                .args(["-q", "-Y", "sign", "-n", SIGNATURE_NAMESPACE, "-f"])
                .arg(key),
            self.payload().as_bytes(),
        )?;
        let signature = String::from_utf8_lossy(&output).trim().to_owned();
        if !signature.starts_with(SIGNATURE_BEGIN) {
            return Err(AuditError::SshKeygen {
                operation: "sign",
                message: "no signature on its output".into(),
            });
        }
        self.signature = Some(signature);
        Ok(())
    }

    /// Checks the signature against an allowed-signers file; returns the signer's principal.
    /// An unsigned checkpoint is an error here: the caller asked for signatures.
    pub fn verify_signature(&self, allowed_signers: &Path) -> Result<String, AuditError> {
        let Some(signature) = &self.signature else {
            return Err(AuditError::SshKeygen {
                operation: "verify",
                message: format!(
                    "the checkpoint of {} is not signed",
                    crate::plural::counted(self.events, "event")
                ),
            });
        };
        let mut signature_file =
            tempfile::NamedTempFile::new().map_err(|source| AuditError::Write {
                path: std::env::temp_dir(),
                source,
            })?;
        writeln!(signature_file, "{}", signature.trim_end()).map_err(|source| {
            AuditError::Write {
                path: signature_file.path().to_path_buf(),
                source,
            }
        })?;
        let principals = run_ssh_keygen(
            "find-principals",
            Command::new("ssh-keygen")
                .args(["-Y", "find-principals", "-f"])
                .arg(allowed_signers)
                .arg("-s")
                .arg(signature_file.path()),
            &[],
        )?;
        let principals = String::from_utf8_lossy(&principals);
        let Some(principal) = principals
            .lines()
            .map(str::trim)
            .find(|line| !line.is_empty())
        else {
            return Err(AuditError::SshKeygen {
                operation: "find-principals",
                message: "the signing key is not in the allowed signers".into(),
            });
        };
        run_ssh_keygen(
            "verify",
            Command::new("ssh-keygen")
                .args(["-Y", "verify", "-n", SIGNATURE_NAMESPACE, "-f"])
                .arg(allowed_signers)
                .arg("-I")
                .arg(principal)
                .arg("-s")
                .arg(signature_file.path()),
            self.payload().as_bytes(),
        )?;
        Ok(principal.to_owned())
    }

    /// Reads every checkpoint of a file's text (`path` names it in errors).
    pub fn parse_all(path: &Path, text: &str) -> Result<Vec<Checkpoint>, AuditError> {
        let error = |line: usize, reason: String| AuditError::CheckpointFormat {
            path: path.to_path_buf(),
            line: line + 1,
            reason,
        };
        let lines: Vec<&str> = text.lines().collect();
        let mut checkpoints = Vec::new();
        let mut index = 0;
        while index < lines.len() {
            let line = lines[index].trim_end();
            if line.is_empty() || line.starts_with('#') {
                index += 1;
                continue;
            }
            if line != FIRST_LINE {
                return Err(error(
                    index,
                    format!("expected `{FIRST_LINE}`, found `{line}`"),
                ));
            }
            let field = |offset: usize, key: &str| -> Result<&str, AuditError> {
                let number = index + offset;
                lines
                    .get(number)
                    .and_then(|line| line.trim_end().strip_prefix(key))
                    .and_then(|rest| rest.strip_prefix(' '))
                    .ok_or_else(|| error(number, format!("expected `{key} …`")))
            };
            let events = field(1, "events")?;
            let events = events
                .parse::<u64>()
                .map_err(|_| error(index + 1, format!("`{events}` is not a count")))?;
            let head = field(2, "head")?;
            let head = ChainHash::from_hex(head)
                .ok_or_else(|| error(index + 2, format!("`{head}` is not a SHA-256 in hex")))?;
            let at = field(3, "at")?.to_owned();
            index += 4;
            let mut signature = None;
            if lines.get(index).map(|line| line.trim_end()) == Some(SIGNATURE_BEGIN) {
                let start = index;
                while lines.get(index).map(|line| line.trim_end()) != Some(SIGNATURE_END) {
                    if index >= lines.len() {
                        return Err(error(start, format!("signature without `{SIGNATURE_END}`")));
                    }
                    index += 1;
                }
                index += 1;
                signature = Some(lines[start..index].join("\n"));
            }
            checkpoints.push(Checkpoint {
                events,
                head,
                at,
                signature,
            });
        }
        if checkpoints.is_empty() {
            return Err(error(0, "no checkpoint in the file".into()));
        }
        Ok(checkpoints)
    }
}

impl AuditStore {
    /// An (unsigned) checkpoint of the history as it is now.
    pub fn checkpoint(&self) -> Result<Checkpoint, AuditError> {
        let head = self
            .connection
            .query_row(
                "SELECT seq, hash FROM entry ORDER BY seq DESC LIMIT 1",
                [],
                |row| Ok((row.get::<_, i64>(0)?, row.get::<_, Vec<u8>>(1)?)),
            )
            .map(Some)
            .or_else(|error| match error {
                rusqlite::Error::QueryReturnedNoRows => Ok(None),
                error => Err(error),
            })
            .in_store(&self.path)?;
        let (events, head) = match head {
            None => (0, ChainHash::GENESIS),
            Some((seq, hash)) => (
                seq as u64,
                ChainHash::from_slice(&hash).ok_or_else(|| AuditError::Undecodable {
                    seq: seq as u64,
                    kind: "hash".into(),
                    reason: format!(
                        "{} bytes instead of 32; run `opsgate audit verify`",
                        hash.len()
                    ),
                })?,
            ),
        };
        Ok(Checkpoint {
            events,
            head,
            at: format_timestamp(jiff::Timestamp::now()),
            signature: None,
        })
    }
}

fn run_ssh_keygen(
    operation: &'static str,
    command: &mut Command,
    input: &[u8],
) -> Result<Vec<u8>, AuditError> {
    let failed = |message: String| AuditError::SshKeygen { operation, message };
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|error| failed(format!("cannot start `ssh-keygen`: {error}")))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(input)
            .map_err(|error| failed(format!("cannot write its input: {error}")))?;
    }
    let output = child
        .wait_with_output()
        .map_err(|error| failed(error.to_string()))?;
    if output.status.success() {
        Ok(output.stdout)
    } else {
        let stderr = String::from_utf8_lossy(&output.stderr);
        Err(failed(stderr.trim().to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::process::Command;

    use super::Checkpoint;
    use crate::audit::chain::ChainHash;

    fn checkpoint(events: u64) -> Checkpoint {
        Checkpoint {
            events,
            head: ChainHash([7; 32]),
            at: "2025-01-02T03:04:05.000000Z".into(),
            signature: None,
        }
    }

    #[test]
    fn checkpoints_parse_back_one_after_another() {
        let mut second = checkpoint(9);
        second.signature =
            Some("-----BEGIN SSH SIGNATURE-----\nAAAA\n-----END SSH SIGNATURE-----".into());
        let text = format!(
            "# kept by the auditor\n{}\n{}",
            checkpoint(3).render(),
            second.render()
        );
        let parsed = Checkpoint::parse_all(Path::new("cp"), &text).expect("parses");
        assert_eq!(parsed, vec![checkpoint(3), second]);
    }

    #[test]
    fn malformed_checkpoints_name_the_line() {
        let text = checkpoint(3).render().replace("events 3", "events three");
        let error = Checkpoint::parse_all(Path::new("cp"), &text).expect_err("bad count");
        assert_eq!(
            error.to_string(),
            "checkpoint `cp` line 2: `three` is not a count"
        );
        assert!(Checkpoint::parse_all(Path::new("cp"), "").is_err());
        let cut = "opsgate audit checkpoint v1\nevents 1\n";
        assert!(Checkpoint::parse_all(Path::new("cp"), cut).is_err());
    }

    #[test]
    fn a_signed_checkpoint_verifies_and_an_edited_one_does_not() {
        let directory = tempfile::tempdir().expect("temp dir");
        let key = directory.path().join("auditor");
        let status = Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-C", "auditor", "-f"])
            .arg(&key)
            .status()
            .expect("ssh-keygen runs");
        assert!(status.success());
        let public = std::fs::read_to_string(key.with_extension("pub")).expect("public key");
        let allowed = directory.path().join("allowed_signers");
        std::fs::write(&allowed, format!("auditor@example {public}")).expect("allowed signers");

        let mut signed = checkpoint(5);
        signed.sign(&key).expect("signs");
        let parsed = Checkpoint::parse_all(Path::new("cp"), &signed.render()).expect("parses");
        assert_eq!(
            parsed[0].verify_signature(&allowed).expect("verifies"),
            "auditor@example"
        );

        let mut forged = parsed[0].clone();
        forged.events = 4;
        assert!(
            forged.verify_signature(&allowed).is_err(),
            "a changed count breaks the signature"
        );
        assert!(
            checkpoint(5).verify_signature(&allowed).is_err(),
            "unsigned is refused"
        );

        let stranger = directory.path().join("stranger");
        let status = Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-f"])
            .arg(&stranger)
            .status()
            .expect("ssh-keygen runs");
        assert!(status.success());
        let mut foreign = checkpoint(5);
        foreign.sign(&stranger).expect("signs");
        assert!(
            foreign.verify_signature(&allowed).is_err(),
            "unknown signers are refused"
        );
    }
}
