//! Signed approvals (SPEC §4.2, §4.6): with `signed_approvals: true` in the policy, an approval
//! counts only with an SSH signature (`ssh-keygen -Y sign`, namespace `opsgate`) that verifies
//! against the approver's `key:` in the policy, so write access to the state directory is not
//! enough to forge one.
//!
//! The approver signs as themself, where their key or agent is (`opsgate approve … --sign KEY`
//! prints a signed approval), and hands the document to the service account
//! (`… | sudo -u opsgate opsgate approve --signed -`), so the agent never crosses sudo. The
//! signed text is a canonical payload rebuilt from the recorded event's own fields, so every
//! consumer (the waiting run, the gate watcher, the catalog) verifies it again.
//!
//! Payload, version 1 (one field per line, in this order; `reason` empty when none):
//! ```text
//! opsgate approval v1
//! approver: alice
//! decision: grant
//! subject: runbook patch-debian 3f5a…   |  run 42  |  run 42 gate-step 3  |  plan 0123456789abcdef
//! reason: checked the diff
//! ```

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::audit::{ApprovalTarget, RunId};
use crate::gate::Policy;

/// Why an approval could not be signed, read or verified.
#[derive(Debug, thiserror::Error)]
pub enum SignatureError {
    /// The document is not one `approve … --sign` prints.
    #[error("not a signed opsgate approval")]
    NotADocument,
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
    /// `ssh-keygen -Y verify` refused: the signature is not the approver's.
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
            SignatureError::SignRefused { .. } => vec![
                "give your SSH private key (or the public key of a key in your agent) with \
                 `--sign KEY`"
                    .to_owned(),
            ],
            SignatureError::NoKey { .. } | SignatureError::DoesNotVerify { .. } => vec![
                "sign with the key registered for you under `operators:` in the policy".to_owned(),
            ],
            SignatureError::KeyEncoding { .. }
            | SignatureError::Scratch { .. }
            | SignatureError::Spawn(_) => Vec::new(),
        }
    }
}

/// What an approval is about, as signed.
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
        /// The run.
        run: RunId,
        /// The gate step number, for a gate approval.
        gate_step: Option<u32>,
    },
    /// A saved plan.
    Plan {
        /// The plan id.
        id: String,
    },
}

impl Subject {
    /// The subject of an approval of `target` in `run`.
    #[must_use]
    pub fn of_run(run: RunId, target: &ApprovalTarget) -> Subject {
        match target {
            ApprovalTarget::Gate { step, .. } => Subject::Run {
                run,
                gate_step: Some(*step),
            },
            ApprovalTarget::Plan { plan } => Subject::Plan { id: plan.clone() },
            ApprovalTarget::Run => Subject::Run {
                run,
                gate_step: None,
            },
        }
    }

    fn text(&self) -> String {
        match self {
            Subject::Runbook { id, digest } => format!("runbook {id} {digest}"),
            Subject::Run {
                run,
                gate_step: None,
            } => format!("run {run}"),
            Subject::Run {
                run,
                gate_step: Some(step),
            } => format!("run {run} gate-step {step}"),
            Subject::Plan { id } => format!("plan {id}"),
        }
    }

    fn parse(text: &str) -> Option<Subject> {
        let words: Vec<&str> = text.split(' ').collect();
        match words.as_slice() {
            ["runbook", id, digest] => Some(Subject::Runbook {
                id: (*id).to_owned(),
                digest: (*digest).to_owned(),
            }),
            ["run", run] => Some(Subject::Run {
                run: run.parse().ok()?,
                gate_step: None,
            }),
            ["run", run, "gate-step", step] => Some(Subject::Run {
                run: run.parse().ok()?,
                gate_step: Some(step.parse().ok()?),
            }),
            ["plan", id] => Some(Subject::Plan {
                id: (*id).to_owned(),
            }),
            _ => None,
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
    /// Who approves.
    pub approver: String,
    /// Grant or reject.
    pub verdict: Verdict,
    /// What.
    pub subject: Subject,
    /// Why (empty lines and line breaks are not allowed in a reason).
    pub reason: Option<String>,
}

impl Approval {
    /// The canonical text that is signed.
    #[must_use]
    pub fn payload(&self) -> String {
        format!(
            "opsgate approval v1\napprover: {}\ndecision: {}\nsubject: {}\nreason: {}\n",
            self.approver,
            match self.verdict {
                Verdict::Grant => "grant",
                Verdict::Reject => "reject",
            },
            self.subject.text(),
            self.reason
                .as_deref()
                .unwrap_or_default()
                .replace('\n', " ")
        )
    }

    fn parse(payload: &str) -> Option<Approval> {
        let mut lines = payload.lines();
        if lines.next()? != "opsgate approval v1" {
            return None;
        }
        let approver = lines.next()?.strip_prefix("approver: ")?.to_owned();
        let verdict = match lines.next()?.strip_prefix("decision: ")? {
            "grant" => Verdict::Grant,
            "reject" => Verdict::Reject,
            _ => return None,
        };
        let subject = Subject::parse(lines.next()?.strip_prefix("subject: ")?)?;
        let reason = lines.next()?.strip_prefix("reason:")?.trim().to_owned();
        Some(Approval {
            approver,
            verdict,
            subject,
            reason: (!reason.is_empty()).then_some(reason),
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

/// Reads a signed approval document: the approval and its armored signature.
pub fn parse_document(document: &str) -> Result<(Approval, String), SignatureError> {
    let body = document
        .strip_prefix(BEGIN)
        .ok_or(SignatureError::NotADocument)?;
    let (payload, signature) = body.split_once(END).ok_or(SignatureError::NotADocument)?;
    let approval = Approval::parse(payload).ok_or(SignatureError::NotADocument)?;
    if approval.payload() != payload || !signature.contains("BEGIN SSH SIGNATURE") {
        return Err(SignatureError::NotADocument);
    }
    Ok((approval, signature.to_owned()))
}

/// The approval a recorded event states, and its signature if it carries one; `None` for any
/// other event.
#[must_use]
pub fn recorded(event: &crate::audit::Event) -> Option<(Approval, Option<&str>)> {
    let (approver, verdict, subject, reason, signature) = match event.record.as_ref()? {
        crate::audit::Record::RunbookApproved {
            runbook,
            digest,
            approver,
            signature,
            ..
        } => (
            approver,
            Verdict::Grant,
            Subject::Runbook {
                id: runbook.clone(),
                digest: digest.clone(),
            },
            None,
            signature,
        ),
        crate::audit::Record::ApprovalGranted {
            target,
            approver,
            reason,
            signature,
            ..
        } => {
            let subject = match (event.run, target) {
                (_, ApprovalTarget::Plan { plan }) => Subject::Plan { id: plan.clone() },
                (Some(run), target) => Subject::of_run(run, target),
                (None, _) => return None,
            };
            (approver, Verdict::Grant, subject, reason.clone(), signature)
        }
        // Rejections carry no signature: refusing needs no proof, it only stops a run.
        _ => return None,
    };
    let approval = Approval {
        approver: approver.clone(),
        verdict,
        subject,
        reason,
    };
    Some((approval, signature.as_deref()))
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
    ssh_keygen(
        &[
            "-Y",
            "verify",
            "-f",
            &allowed.display().to_string(),
            "-I",
            approver,
            "-n",
            "opsgate",
            "-s",
            &signature_path.display().to_string(),
        ],
        &approval.payload(),
    )?
    .output(|stderr| SignatureError::DoesNotVerify { stderr })
    .map(|_| ())
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
    use super::{Approval, Subject, Verdict};
    use crate::audit::RunId;

    #[test]
    fn payloads_round_trip() {
        for subject in [
            Subject::Runbook {
                id: "patch".into(),
                digest: "ab12".into(),
            },
            Subject::Run {
                run: RunId::new(42),
                gate_step: Some(3),
            },
            Subject::Run {
                run: RunId::new(7),
                gate_step: None,
            },
            Subject::Plan {
                id: "0123456789abcdef".into(),
            },
        ] {
            let approval = Approval {
                approver: "alice".into(),
                verdict: Verdict::Reject,
                subject,
                reason: Some("not now".into()),
            };
            assert_eq!(Approval::parse(&approval.payload()), Some(approval));
        }
    }
}
