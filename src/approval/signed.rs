//! Signed approvals (SPEC §4.2, §4.6): with `signed_approvals: true` in the policy, an approval
//! counts only with an SSH signature (`ssh-keygen -Y sign`, namespace `opsgate`) that verifies
//! against the approver's `key:` in the policy, so write access to the state directory is not
//! enough to forge one.
//!
//! # What is signed: the statement
//!
//! The signature covers a canonical statement that binds the approval to one object in one
//! store, so it cannot be replayed anywhere else: another store (the store id differs), another
//! run that happens to have the same number, or the same run with its runbook, params, hosts or
//! requester altered (the `run_requested` event hash differs). Every consumer (the waiting run,
//! the gate watcher, the catalog, `audit verify`) rebuilds the statement from *its own* store —
//! its id, the run's `run_requested` hash recomputed from the stored row, the saved plan's
//! digest — and the recorded event's fields, and verifies the signature against that.
//!
//! Statement, version 2 (one field per line, in this order, each line ending in `\n`; `reason`
//! empty when none, line breaks in it become spaces). **Do not reorder, rename or reword these
//! lines**: every signature ever made depends on them; a change is a new version.
//! ```text
//! opsgate approval v2
//! store: 0123456789abcdef0123456789abcdef             (the store id, 32 hex digits)
//! approver: alice
//! decision: grant                                      (or `reject`)
//! subject: run 42 request <run_requested hash, 64 hex> [gate-step 3]
//!          | plan <plan id> <SHA-256 of the saved plan file, 64 hex>
//!          | runbook <id> <catalog digest>
//! reason: checked the diff
//! ```
//! Version 1 (before store binding) named only `run 42`, `plan ID` or the runbook: such
//! signatures are refused with [`SignatureError::OldFormat`]; the approver approves again.
//!
//! # How an approver signs
//!
//! The statement names the store id and event hashes, which only the store's owner can read.
//! Where the approver cannot read the store (the service account owns it), they get the
//! statement through it, sign it as themself where their key or agent is, and hand the document
//! back, so the key never crosses accounts:
//! ```text
//! sudo -u opsgate opsgate approve run 42 --prepare > statement     # checks, prints the statement
//! opsgate approve --sign ~/.ssh/id_ed25519 --statement statement > signed
//! sudo -u opsgate opsgate approve --signed signed
//! ```
//! Where they can read the store, `approve run 42 --sign KEY` does the first two at once.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::audit::{ApprovalTarget, AuditError, AuditStore, ChainHash, RunId, StoreId};
use crate::gate::Policy;

/// The first line of a statement: domain tag and format version.
const STATEMENT_TAG: &str = "opsgate approval v2";

/// The first line of a version-1 payload, refused since statements name the store.
const OLD_TAG: &str = "opsgate approval v1";

/// Why an approval could not be signed, read or verified.
#[derive(Debug, thiserror::Error)]
pub enum SignatureError {
    /// The document is not one `approve … --sign` prints.
    #[error("not a signed opsgate approval")]
    NotADocument,
    /// The text is not a statement `approve … --prepare` prints.
    #[error("not an opsgate approval statement")]
    NotAStatement,
    /// Signed in the format from before approvals named their store and event hash.
    #[error(
        "the approval was signed in the old format (v1), which does not name the store and the \
         approved request"
    )]
    OldFormat,
    /// The policy registers no key for the approver.
    #[error("operator `{approver}` has no registered `key`")]
    NoKey {
        /// The approver.
        approver: String,
    },
    /// The registered key could not be written for `ssh-keygen`.
    #[error("the registered key of `{approver}` cannot be written")]
    KeyEncoding {
        /// The approver.
        approver: String,
        /// What the key library said.
        #[source]
        source: ssh_key::Error,
    },
    /// The scratch files of a verification could not be written.
    #[error("cannot write `{}` for ssh-keygen", path.display())]
    Scratch {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// `ssh-keygen` could not be started or talked to.
    #[error("cannot run ssh-keygen")]
    Spawn(#[source] std::io::Error),
    /// `ssh-keygen -Y sign` refused.
    #[error("ssh-keygen cannot sign with `{}`: {stderr}", key.display())]
    SignRefused {
        /// The key given with `--sign`.
        key: PathBuf,
        /// What ssh-keygen said.
        stderr: String,
    },
    /// `ssh-keygen -Y verify` refused: the signature is not the approver's, or not of this
    /// statement (another store, another request).
    #[error("the signature does not verify: {stderr}")]
    DoesNotVerify {
        /// What ssh-keygen said.
        stderr: String,
    },
}

impl SignatureError {
    /// Ways forward, as `hint:` lines.
    #[must_use]
    pub fn hints(&self) -> Vec<String> {
        match self {
            SignatureError::NotADocument => {
                vec!["make one with `opsgate approve … --sign KEY` as the approver".to_owned()]
            }
            SignatureError::NotAStatement => vec![
                "get the statement with `opsgate approve run ID --prepare` (through the service \
                 account) and sign it unchanged"
                    .to_owned(),
            ],
            SignatureError::OldFormat => vec![
                "approve again: `opsgate approve run ID --prepare`, then `approve --sign KEY \
                 --statement FILE`"
                    .to_owned(),
            ],
            SignatureError::SignRefused { .. } => vec![
                "give your SSH private key (or the public key of a key in your agent) with \
                 `--sign KEY`"
                    .to_owned(),
            ],
            SignatureError::NoKey { .. } | SignatureError::DoesNotVerify { .. } => vec![
                "sign with the key registered for you under `operators:` in the policy, the \
                 statement of this store's request (`approve … --prepare`)"
                    .to_owned(),
            ],
            SignatureError::KeyEncoding { .. }
            | SignatureError::Scratch { .. }
            | SignatureError::Spawn(_) => Vec::new(),
        }
    }
}

/// What an approval is about, as signed: always pinned by a hash or digest, never by a number
/// or name alone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Subject {
    /// A runbook's catalog digest.
    Runbook {
        /// Runbook id.
        id: String,
        /// Catalog digest.
        digest: String,
    },
    /// A run, or one of its gate steps.
    Run {
        /// The run number (for the reader; the request hash is what binds).
        run: RunId,
        /// The hash of the run's `run_requested` event, which covers the runbook digest, the
        /// params digest, the hosts and the requester.
        request: ChainHash,
        /// The gate step number, for a gate approval.
        gate_step: Option<u32>,
    },
    /// A saved plan.
    Plan {
        /// The plan id.
        id: String,
        /// The SHA-256 of the saved plan file ([`crate::plan::saved::digest`]).
        digest: String,
    },
}

impl Subject {
    fn text(&self) -> String {
        match self {
            Subject::Runbook { id, digest } => format!("runbook {id} {digest}"),
            Subject::Run {
                run,
                request,
                gate_step: None,
            } => format!("run {run} request {request}"),
            Subject::Run {
                run,
                request,
                gate_step: Some(step),
            } => format!("run {run} request {request} gate-step {step}"),
            Subject::Plan { id, digest } => format!("plan {id} {digest}"),
        }
    }

    fn parse(text: &str) -> Option<Subject> {
        let words: Vec<&str> = text.split(' ').collect();
        let request =
            |hash: &str| ChainHash::from_hex(hash).filter(|parsed| parsed.to_hex() == hash);
        match words.as_slice() {
            ["runbook", id, digest] => Some(Subject::Runbook {
                id: (*id).to_owned(),
                digest: (*digest).to_owned(),
            }),
            ["run", run, "request", hash] => Some(Subject::Run {
                run: run.parse().ok()?,
                request: request(hash)?,
                gate_step: None,
            }),
            ["run", run, "request", hash, "gate-step", step] => Some(Subject::Run {
                run: run.parse().ok()?,
                request: request(hash)?,
                gate_step: Some(step.parse().ok()?),
            }),
            ["plan", id, digest] => Some(Subject::Plan {
                id: (*id).to_owned(),
                digest: (*digest).to_owned(),
            }),
            _ => None,
        }
    }

    /// The version-1 subject text, only to recognise old signatures.
    fn old_text(&self) -> String {
        match self {
            Subject::Runbook { id, digest } => format!("runbook {id} {digest}"),
            Subject::Run {
                run,
                gate_step: None,
                ..
            } => format!("run {run}"),
            Subject::Run {
                run,
                gate_step: Some(step),
                ..
            } => format!("run {run} gate-step {step}"),
            Subject::Plan { id, .. } => format!("plan {id}"),
        }
    }
}

/// Grant or reject.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Approve.
    Grant,
    /// Refuse.
    Reject,
}

/// An approval as signed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Approval {
    /// The store it is valid in.
    pub store: StoreId,
    /// Who approves.
    pub approver: String,
    /// Grant or reject.
    pub verdict: Verdict,
    /// What.
    pub subject: Subject,
    /// Why (line breaks become spaces).
    pub reason: Option<String>,
}

impl Approval {
    /// The approval of `target` (of `run`, for a run or gate step) by `approver`, as `store`
    /// binds it: its id, the run's `run_requested` hash recomputed from the stored row, or the
    /// saved plan's digest. `None` for a run target without a run.
    ///
    /// A run without a `run_requested` event, or a plan whose file is gone or altered, binds to
    /// a value no statement names (all-zero hash, empty digest), so no signature matches it.
    pub fn in_store(
        store: &AuditStore,
        run: Option<RunId>,
        target: &ApprovalTarget,
        approver: &str,
        verdict: Verdict,
        reason: Option<String>,
    ) -> Result<Option<Approval>, AuditError> {
        let subject = match (target, run) {
            (ApprovalTarget::Plan { plan }, _) => Subject::Plan {
                id: plan.clone(),
                digest: crate::plan::saved::digest(&store.state_dir, plan).unwrap_or_default(),
            },
            (target, Some(run)) => Subject::Run {
                run,
                request: store.request_hash(run)?.unwrap_or(ChainHash::GENESIS),
                gate_step: match target {
                    ApprovalTarget::Gate { step, .. } => Some(*step),
                    _ => None,
                },
            },
            (_, None) => return Ok(None),
        };
        Ok(Some(Approval {
            store: store.store_id()?,
            approver: approver.to_owned(),
            verdict,
            subject,
            reason,
        }))
    }

    /// The grant of `target` (the run or one of its gate steps) of `run` by `approver`, as
    /// `store` binds it (see [`Approval::in_store`]).
    pub fn grant_in_run(
        store: &AuditStore,
        run: RunId,
        target: &ApprovalTarget,
        approver: &str,
        reason: Option<String>,
    ) -> Result<Approval, AuditError> {
        Ok(Approval {
            store: store.store_id()?,
            approver: approver.to_owned(),
            verdict: Verdict::Grant,
            subject: Subject::Run {
                run,
                request: store.request_hash(run)?.unwrap_or(ChainHash::GENESIS),
                gate_step: match target {
                    ApprovalTarget::Gate { step, .. } => Some(*step),
                    ApprovalTarget::Run | ApprovalTarget::Plan { .. } => None,
                },
            },
            reason,
        })
    }

    /// The catalog approval of `digest` of runbook `id` by `approver` in `store`.
    pub fn of_runbook(
        store: &AuditStore,
        id: &str,
        digest: &str,
        approver: &str,
    ) -> Result<Approval, AuditError> {
        Ok(Approval {
            store: store.store_id()?,
            approver: approver.to_owned(),
            verdict: Verdict::Grant,
            subject: Subject::Runbook {
                id: id.to_owned(),
                digest: digest.to_owned(),
            },
            reason: None,
        })
    }

    fn verdict_text(&self) -> &'static str {
        match self.verdict {
            Verdict::Grant => "grant",
            Verdict::Reject => "reject",
        }
    }

    fn reason_text(&self) -> String {
        self.reason
            .as_deref()
            .unwrap_or_default()
            .replace(['\n', '\r'], " ")
    }

    /// The canonical statement that is signed (format in the module docs).
    #[must_use]
    pub fn payload(&self) -> String {
        format!(
            "{STATEMENT_TAG}\nstore: {}\napprover: {}\ndecision: {}\nsubject: {}\nreason: {}\n",
            self.store,
            self.approver,
            self.verdict_text(),
            self.subject.text(),
            self.reason_text()
        )
    }

    /// What a version-1 signature of this approval signed: only to tell an old signature from
    /// a wrong one.
    fn old_payload(&self) -> String {
        format!(
            "{OLD_TAG}\napprover: {}\ndecision: {}\nsubject: {}\nreason: {}\n",
            self.approver,
            self.verdict_text(),
            self.subject.old_text(),
            self.reason_text()
        )
    }

    /// Reads a statement; it must be exactly what [`Approval::payload`] writes.
    pub fn parse(payload: &str) -> Result<Approval, SignatureError> {
        if payload.starts_with(OLD_TAG) {
            return Err(SignatureError::OldFormat);
        }
        let approval = Self::parse_fields(payload).ok_or(SignatureError::NotAStatement)?;
        if approval.payload() != payload {
            return Err(SignatureError::NotAStatement);
        }
        Ok(approval)
    }

    fn parse_fields(payload: &str) -> Option<Approval> {
        let mut lines = payload.lines();
        if lines.next()? != STATEMENT_TAG {
            return None;
        }
        let store = lines.next()?.strip_prefix("store: ")?.parse().ok()?;
        let approver = lines.next()?.strip_prefix("approver: ")?.to_owned();
        let verdict = match lines.next()?.strip_prefix("decision: ")? {
            "grant" => Verdict::Grant,
            "reject" => Verdict::Reject,
            _ => return None,
        };
        let subject = Subject::parse(lines.next()?.strip_prefix("subject: ")?)?;
        let reason = lines.next()?.strip_prefix("reason:")?.trim().to_owned();
        Some(Approval {
            store,
            approver,
            verdict,
            subject,
            reason: (!reason.is_empty()).then_some(reason),
        })
    }

    /// Why `self` (what a signed document approves) is not `here` (what this store would
    /// approve), in words; `None` when they are the same.
    #[must_use]
    pub fn mismatch(&self, here: &Approval) -> Option<String> {
        if self == here {
            return None;
        }
        if self.store != here.store {
            return Some(format!(
                "it was signed for store {}, and this is store {}",
                self.store, here.store
            ));
        }
        Some(match (&self.subject, &here.subject) {
            (
                Subject::Run {
                    run,
                    request: signed,
                    ..
                },
                Subject::Run { request: now, .. },
            ) if signed != now => format!(
                "it approves another request of run {run} (request {}…, this store's is {}…): \
                 the runbook, params, hosts or requester differ",
                &signed.to_hex()[..12],
                &now.to_hex()[..12]
            ),
            (Subject::Plan { id, .. }, Subject::Plan { .. }) => {
                format!("plan {id} is not the plan that was signed")
            }
            _ => format!(
                "it says `{}`, the store says `{}`",
                self.payload().replace('\n', "; "),
                here.payload().replace('\n', "; ")
            ),
        })
    }
}

const BEGIN: &str = "-----BEGIN OPSGATE APPROVAL-----\n";
const END: &str = "-----END OPSGATE APPROVAL-----\n";

/// Signs `approval` with the private key (or the agent's key for the public key) at `key`;
/// returns the document to hand to `approve --signed -`.
pub fn sign(approval: &Approval, key: &Path) -> Result<String, SignatureError> {
    let payload = approval.payload();
    let signature = ssh_keygen(
        &[
            "-Y",
            "sign",
            "-n",
            "opsgate",
            "-f",
            &key.display().to_string(),
        ],
        &payload,
    )?
    .output(|stderr| SignatureError::SignRefused {
        key: key.to_path_buf(),
        stderr,
    })?;
    Ok(format!("{BEGIN}{payload}{END}{signature}"))
}

/// Reads a signed approval document: the approval and its armored signature. A document
/// signed in the old format (v1) is refused with [`SignatureError::OldFormat`].
pub fn parse_document(document: &str) -> Result<(Approval, String), SignatureError> {
    let body = document
        .strip_prefix(BEGIN)
        .ok_or(SignatureError::NotADocument)?;
    let (payload, signature) = body.split_once(END).ok_or(SignatureError::NotADocument)?;
    let approval = Approval::parse(payload).map_err(|error| match error {
        SignatureError::OldFormat => SignatureError::OldFormat,
        _ => SignatureError::NotADocument,
    })?;
    if !signature.contains("BEGIN SSH SIGNATURE") {
        return Err(SignatureError::NotADocument);
    }
    Ok((approval, signature.to_owned()))
}

/// Signs a statement `approve … --prepare` printed, unchanged, with `key`; returns the document
/// to hand to `approve --signed`.
pub fn sign_statement(statement: &str, key: &Path) -> Result<String, SignatureError> {
    sign(&Approval::parse(statement)?, key)
}

/// The approval a recorded event states, as `store` binds it (see [`Approval::in_store`]), and
/// its signature if it carries one; `None` for any other event. Rejections are not returned:
/// they carry no signature, since refusing needs no proof, it only stops a run.
pub fn recorded<'a>(
    store: &AuditStore,
    event: &'a crate::audit::Event,
) -> Result<Option<(Approval, Option<&'a str>)>, AuditError> {
    Ok(match event.record.as_ref() {
        Some(crate::audit::Record::RunbookApproved {
            runbook,
            digest,
            approver,
            signature,
            ..
        }) => Some((
            Approval::of_runbook(store, runbook, digest, approver)?,
            signature.as_deref(),
        )),
        Some(crate::audit::Record::ApprovalGranted {
            target,
            approver,
            reason,
            signature,
            ..
        }) => Approval::in_store(
            store,
            event.run,
            target,
            approver,
            Verdict::Grant,
            reason.clone(),
        )?
        .map(|approval| (approval, signature.as_deref())),
        _ => None,
    })
}

/// Whether `signature` is `approval`'s, made by the key `policy` registers for its approver.
pub fn verify(policy: &Policy, approval: &Approval, signature: &str) -> Result<(), SignatureError> {
    let approver = &approval.approver;
    let key = policy
        .operator(approver)
        .and_then(|operator| operator.key.as_ref())
        .ok_or_else(|| SignatureError::NoKey {
            approver: approver.clone(),
        })?;
    let key = key
        .to_openssh()
        .map_err(|source| SignatureError::KeyEncoding {
            approver: approver.clone(),
            source,
        })?;
    let directory = tempfile::tempdir().map_err(|source| SignatureError::Scratch {
        path: std::env::temp_dir(),
        source,
    })?;
    let allowed = directory.path().join("allowed_signers");
    let signature_path = directory.path().join("approval.sig");
    for (path, text) in [
        (
            &allowed,
            format!(
                "{approver} namespaces=\"opsgate\" {key}
"
            ),
        ),
        (&signature_path, signature.to_owned()),
    ] {
        std::fs::write(path, text).map_err(|source| SignatureError::Scratch {
            path: path.clone(),
            source,
        })?;
    }
    let allowed = allowed.display().to_string();
    let signature_path = signature_path.display().to_string();
    let verify_args = [
        "-Y",
        "verify",
        "-f",
        &allowed,
        "-I",
        approver,
        "-n",
        "opsgate",
        "-s",
        &signature_path,
    ];
    let verified = ssh_keygen(&verify_args, &approval.payload())?
        .output(|stderr| SignatureError::DoesNotVerify { stderr });
    match verified {
        Ok(_) => Ok(()),
        Err(refused) => {
            // Signed before statements named the store? Say so, so the approver knows to
            // approve again rather than suspect their key. A v1 signature never counts.
            let old = ssh_keygen(&verify_args, &approval.old_payload())?;
            Err(match old {
                Keygen::Succeeded(_) => SignatureError::OldFormat,
                Keygen::Refused(_) => refused,
            })
        }
    }
}

/// Runs `ssh-keygen ARGS` with `input` on stdin: its stdout when it succeeds, its stderr when it
/// refuses; an error when it cannot be run at all.
fn ssh_keygen(args: &[&str], input: &str) -> Result<Keygen, SignatureError> {
    let mut child = Command::new("ssh-keygen")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(SignatureError::Spawn)?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(input.as_bytes())
            .map_err(SignatureError::Spawn)?;
    }
    let output = child.wait_with_output().map_err(SignatureError::Spawn)?;
    Ok(if output.status.success() {
        Keygen::Succeeded(String::from_utf8_lossy(&output.stdout).into_owned())
    } else {
        Keygen::Refused(String::from_utf8_lossy(&output.stderr).trim().to_owned())
    })
}

/// How a run of `ssh-keygen` that started ended.
enum Keygen {
    /// Exit 0, with its stdout.
    Succeeded(String),
    /// It refused, with its stderr.
    Refused(String),
}

impl Keygen {
    /// Its stdout, or `refused` made from its stderr.
    fn output(
        self,
        refused: impl FnOnce(String) -> SignatureError,
    ) -> Result<String, SignatureError> {
        match self {
            Keygen::Succeeded(stdout) => Ok(stdout),
            Keygen::Refused(stderr) => Err(refused(stderr)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{Approval, SignatureError, Subject, Verdict};
    use crate::audit::{ChainHash, RunId, StoreId};

    const STORE: StoreId = StoreId::from_bytes([0xab; 16]);

    fn run_approval(request: ChainHash) -> Approval {
        Approval {
            store: STORE,
            approver: "alice".into(),
            verdict: Verdict::Grant,
            subject: Subject::Run {
                run: RunId::new(178),
                request,
                gate_step: None,
            },
            reason: Some("checked\nthe diff".into()),
        }
    }

    /// Pins the statement byte for byte: every signature ever made depends on it. If this
    /// fails, the format changed; make a new version instead.
    #[test]
    fn the_statement_of_each_subject_never_changes() {
        let hash = ChainHash([0x01; 32]);
        let mut approval = run_approval(hash);
        assert_eq!(
            approval.payload().as_bytes(),
            b"opsgate approval v2\n\
              store: abababababababababababababababab\n\
              approver: alice\n\
              decision: grant\n\
              subject: run 178 request \
              0101010101010101010101010101010101010101010101010101010101010101\n\
              reason: checked the diff\n"
        );
        let cases = [
            (
                Subject::Run {
                    run: RunId::new(7),
                    request: hash,
                    gate_step: Some(3),
                },
                "subject: run 7 request \
                 0101010101010101010101010101010101010101010101010101010101010101 gate-step 3\n",
            ),
            (
                Subject::Plan {
                    id: "0123456789abcdef".into(),
                    digest: "ff".repeat(32),
                },
                "subject: plan 0123456789abcdef \
                 ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff\n",
            ),
            (
                Subject::Runbook {
                    id: "patch".into(),
                    digest: "ab12".into(),
                },
                "subject: runbook patch ab12\n",
            ),
        ];
        approval.verdict = Verdict::Reject;
        approval.reason = None;
        for (subject, line) in cases {
            approval.subject = subject;
            assert_eq!(
                approval.payload(),
                format!(
                    "opsgate approval v2\nstore: abababababababababababababababab\n\
                     approver: alice\ndecision: reject\n{line}reason: \n"
                )
            );
        }
    }

    #[test]
    fn statements_round_trip_and_nothing_else_parses() {
        let approval = Approval {
            reason: Some("checked the diff".into()),
            ..run_approval(ChainHash([0x02; 32]))
        };
        assert_eq!(
            Approval::parse(&approval.payload()).ok(),
            Some(approval.clone())
        );
        let payload = approval.payload();
        for altered in [
            payload.replace("v2", "v3"),
            payload.replace("store: ab", "store: AB"),
            payload.replace("request 02", "request 2"),
            payload.replace("reason: checked", "reason:  checked"),
            payload.replace("approver", "signer"),
            format!("{payload}extra: line\n"),
        ] {
            assert!(
                matches!(
                    Approval::parse(&altered),
                    Err(SignatureError::NotAStatement)
                ),
                "{altered}"
            );
        }
    }

    #[test]
    fn an_old_format_payload_is_refused_as_such() {
        let old = "opsgate approval v1\napprover: alice\ndecision: grant\nsubject: run 178\n\
                   reason: \n";
        assert!(matches!(
            Approval::parse(old),
            Err(SignatureError::OldFormat)
        ));
        let document = format!(
            "-----BEGIN OPSGATE APPROVAL-----\n{old}-----END OPSGATE APPROVAL-----\n\
             -----BEGIN SSH SIGNATURE-----\n"
        );
        assert!(matches!(
            super::parse_document(&document),
            Err(SignatureError::OldFormat)
        ));
        assert_eq!(
            run_approval(ChainHash([0; 32])).old_payload(),
            "opsgate approval v1\napprover: alice\ndecision: grant\nsubject: run 178\n\
             reason: checked the diff\n"
        );
    }

    #[test]
    fn a_mismatch_names_the_store_or_the_request() {
        let signed = run_approval(ChainHash([0x01; 32]));
        assert_eq!(signed.mismatch(&signed.clone()), None);
        let other_store = Approval {
            store: StoreId::from_bytes([0xcd; 16]),
            ..signed.clone()
        };
        let text = signed.mismatch(&other_store).expect("mismatch");
        assert!(text.contains("signed for store abab"), "{text}");
        let other_request = run_approval(ChainHash([0x02; 32]));
        let text = signed.mismatch(&other_request).expect("mismatch");
        assert!(
            text.contains("another request of run 178") && text.contains("params"),
            "{text}"
        );
    }
}
