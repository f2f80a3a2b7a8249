//! What an event says: one [`Record`] variant per event kind, and its canonical body encoding.
//!
//! The event's kind is stored beside the body (a `kind` column, also covered by the hash), and
//! each kind has its own body layout. Adding a kind therefore needs no change to old rows and no
//! migration: old bodies keep their bytes and their meaning, and an older opsgate that meets a
//! kind it does not know still verifies the chain (the hash covers raw bytes) and shows the
//! event as unknown.
//!
//! # Secrets
//!
//! The store is never handed a secret. Callers mask secret parameters and values registered by
//! `secret: true` steps as `***` before they build a record (params, messages and outputs
//! alike); once appended, an event can never be removed, so a leaked secret would stay forever.
//!
//! # Body layouts (format version 1)
//!
//! Types are those of the `canonical` module. **Do not reorder, rename or retype a field, and
//! never reuse a kind name**: the bytes of every stored event depend on this table. A change of
//! meaning needs a new kind (or a new format version in `chain`).
//!
//! | kind | fields, in order |
//! |---|---|
//! | `run_requested` | `operator str, runbook str, runbook_sha256 str, params list<(name str, value str)>, pattern str, hosts list<str>, check bool` |
//! | `run_started` | (none) |
//! | `step_started` | `host str, step u32, name str` |
//! | `step_finished` | `host str, step u32, name str, status str, rc option<i32>, changed bool, duration_ms u64, stdout output, stderr output` |
//! | `host_unreachable` | `host str, message str` |
//! | `run_finished` | `status str, message option<str>` |
//! | `gate_decision` | `outcome str, rule option<str>, reason str, level option<u8>, required_level option<u8>` |
//! | `approval_requested` | `target, approver_level u8, message str` |
//! | `approval_granted` | `target, approver str, approver_level u8, reason option<str>, signature option<str>` |
//! | `approval_rejected` | `target, approver str, approver_level u8, reason option<str>` |
//! | `runbook_approved` | `runbook str, path str, digest str, min_level u8, approver str, approver_level u8, signature option<str>` |
//! | `backup_created` | `host str, step u32, id str, store str, path str, size u64, sha256 str, removed list<str>` |
//!
//! `output` is excerpt str, length u64, sha256 str. `target` is a str tag then its fields:
//! `run` (none), `gate` (step u32, name str), `plan` (plan str).

use std::fmt;

use serde::Serialize;

use crate::audit::canonical::{DecodeError, Decoder, Encoder};
use crate::audit::output::Output;
use crate::audit::run::RunStatus;

/// The result of one step on one host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StepStatus {
    /// Ran (or was already in the wanted state) and changed nothing.
    Ok,
    /// Ran and changed the host.
    Changed,
    /// Not run (`when` was false, or a later batch after too many failures).
    Skipped,
    /// Ran and failed (including a timeout).
    Failed,
    /// The host could not be reached for this step.
    Unreachable,
}

impl StepStatus {
    /// Every status, in recap order.
    pub const ALL: [StepStatus; 5] = [
        StepStatus::Ok,
        StepStatus::Changed,
        StepStatus::Skipped,
        StepStatus::Failed,
        StepStatus::Unreachable,
    ];

    /// The stable name used in the canonical encoding and JSON output.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            StepStatus::Ok => "ok",
            StepStatus::Changed => "changed",
            StepStatus::Skipped => "skipped",
            StepStatus::Failed => "failed",
            StepStatus::Unreachable => "unreachable",
        }
    }

    fn parse(text: &str) -> Result<Self, DecodeError> {
        StepStatus::ALL
            .into_iter()
            .find(|status| status.as_str() == text)
            .ok_or_else(|| DecodeError(format!("unknown step status `{text}`")))
    }
}

impl fmt::Display for StepStatus {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.as_str())
    }
}

/// What the gate decided about a run (`gate_decision` events).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum GateOutcome {
    /// The run may start.
    Allow,
    /// The run waits for an approval.
    NeedsApproval,
    /// The run is refused.
    Deny,
    /// A level-5 operator skipped the approvals with `--break-glass --reason`.
    BreakGlass,
}

impl GateOutcome {
    const ALL: [GateOutcome; 4] = [
        GateOutcome::Allow,
        GateOutcome::NeedsApproval,
        GateOutcome::Deny,
        GateOutcome::BreakGlass,
    ];

    /// The stable name used in the canonical encoding and JSON output.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            GateOutcome::Allow => "allow",
            GateOutcome::NeedsApproval => "needs_approval",
            GateOutcome::Deny => "deny",
            GateOutcome::BreakGlass => "break_glass",
        }
    }

    fn parse(text: &str) -> Result<Self, DecodeError> {
        GateOutcome::ALL
            .into_iter()
            .find(|outcome| outcome.as_str() == text)
            .ok_or_else(|| DecodeError(format!("unknown gate outcome `{text}`")))
    }
}

impl fmt::Display for GateOutcome {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.as_str())
    }
}

/// What an approval is about.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ApprovalTarget {
    /// The run as a whole (a pending run).
    Run,
    /// A `gate` step of the run; one approval releases every host waiting at it.
    Gate {
        /// 1-based index of the step in the runbook.
        step: u32,
        /// The step's name.
        name: String,
    },
    /// A saved plan (`approve plan`); such events belong to no run.
    Plan {
        /// The plan id.
        plan: String,
    },
}

/// One audit event's content. The caller masks secrets before building one (see module docs).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Record {
    /// An operator asked for a run; appended by [`AuditStore::begin_run`] before anything else.
    ///
    /// [`AuditStore::begin_run`]: crate::audit::AuditStore::begin_run
    RunRequested {
        /// The identity the gate acts for (the `SUDO_USER` or the OS account).
        operator: String,
        /// Runbook id.
        runbook: String,
        /// SHA-256 of the runbook file's bytes, lower-case hex.
        runbook_sha256: String,
        /// Parameters in declaration order, secrets already masked as `***`.
        params: Vec<(String, String)>,
        /// The host pattern the hosts were resolved from.
        pattern: String,
        /// The resolved hosts, in inventory order.
        hosts: Vec<String>,
        /// `--check`: report what would change, change nothing.
        check: bool,
    },
    /// The gate let the run through and the first host is about to be contacted.
    RunStarted,
    /// A step is about to run on a host (durable before the command is sent).
    StepStarted {
        /// Host name.
        host: String,
        /// 1-based index of the step in the runbook.
        step: u32,
        /// The step's name.
        name: String,
    },
    /// A step ended on a host.
    StepFinished {
        /// Host name.
        host: String,
        /// 1-based index of the step in the runbook.
        step: u32,
        /// The step's name.
        name: String,
        /// The result.
        status: StepStatus,
        /// Exit code; none after a timeout, for an unreachable host, or for an action that runs
        /// no single command.
        rc: Option<i32>,
        /// Whether the step changed the host.
        changed: bool,
        /// Wall-clock duration.
        duration_ms: u64,
        /// Standard output, masked by the caller.
        stdout: Output,
        /// Standard error, masked by the caller.
        stderr: Output,
    },
    /// A host could not be reached (connect failed or the connection dropped).
    HostUnreachable {
        /// Host name.
        host: String,
        /// What the transport reported.
        message: String,
    },
    /// The run ended; the status is final (never `running` or `pending`).
    RunFinished {
        /// Final status.
        status: RunStatus,
        /// Why, for anything but `ok` (for `interrupted`: what is known of each host).
        message: Option<String>,
    },
    /// What the gate decided before any host was contacted.
    GateDecision {
        /// The decision.
        outcome: GateOutcome,
        /// The policy rule that decided (for a denial or a required approval).
        rule: Option<String>,
        /// Human explanation, as shown to the operator.
        reason: String,
        /// The operator's SFIA level (1..=5); none in single-operator mode.
        level: Option<u8>,
        /// The level an approver (or the operator) would need.
        required_level: Option<u8>,
    },
    /// The run (or a gate step) waits for an approver.
    ApprovalRequested {
        /// What needs approving.
        target: ApprovalTarget,
        /// The lowest SFIA level that may approve.
        approver_level: u8,
        /// What the approver is asked (a gate's rendered message, the plan summary…).
        message: String,
    },
    /// An approver released the run, a gate step or a plan.
    ApprovalGranted {
        /// What was approved.
        target: ApprovalTarget,
        /// The approver's identity.
        approver: String,
        /// The approver's SFIA level.
        approver_level: u8,
        /// Free text the approver gave.
        reason: Option<String>,
        /// Armored `ssh-keygen -Y sign` signature when the policy requires signed approvals.
        signature: Option<String>,
    },
    /// An approver refused the run, a gate step or a plan.
    ApprovalRejected {
        /// What was refused.
        target: ApprovalTarget,
        /// The approver's identity.
        approver: String,
        /// The approver's SFIA level.
        approver_level: u8,
        /// Why.
        reason: Option<String>,
    },
    /// A `backup` step wrote a backup (appended right after its `step_finished`).
    BackupCreated {
        /// Host name.
        host: String,
        /// 1-based index of the step in the runbook.
        step: u32,
        /// The backup id (file name without extension).
        id: String,
        /// The store directory on the host.
        store: String,
        /// The backup file on the host.
        path: String,
        /// Size in bytes.
        size: u64,
        /// SHA-256 of the file, as in its manifest.
        sha256: String,
        /// Ids of older backups that `keep` removed in the same step.
        removed: Vec<String>,
    },
    /// A runbook's digest entered the catalog (belongs to no run).
    RunbookApproved {
        /// Runbook id.
        runbook: String,
        /// Path of the runbook file, relative to the catalog directory.
        path: String,
        /// The catalog digest (runbook bytes plus every local `src` file), lower-case hex.
        digest: String,
        /// The runbook's `min_level`.
        min_level: u8,
        /// The approver's identity.
        approver: String,
        /// The approver's SFIA level.
        approver_level: u8,
        /// Armored `ssh-keygen -Y sign` signature when the policy requires signed approvals.
        signature: Option<String>,
    },
}

impl Record {
    /// The kind name stored beside the body; stable forever.
    #[must_use]
    pub fn kind(&self) -> &'static str {
        match self {
            Record::RunRequested { .. } => "run_requested",
            Record::RunStarted => "run_started",
            Record::StepStarted { .. } => "step_started",
            Record::StepFinished { .. } => "step_finished",
            Record::HostUnreachable { .. } => "host_unreachable",
            Record::RunFinished { .. } => "run_finished",
            Record::GateDecision { .. } => "gate_decision",
            Record::ApprovalRequested { .. } => "approval_requested",
            Record::ApprovalGranted { .. } => "approval_granted",
            Record::ApprovalRejected { .. } => "approval_rejected",
            Record::RunbookApproved { .. } => "runbook_approved",
            Record::BackupCreated { .. } => "backup_created",
        }
    }

    /// Whether the record belongs to a run's lifecycle (and so needs a run id), as opposed to
    /// catalog and plan events that may stand alone.
    pub(crate) fn needs_run(&self) -> bool {
        match self {
            Record::RunRequested { .. }
            | Record::RunStarted
            | Record::StepStarted { .. }
            | Record::StepFinished { .. }
            | Record::HostUnreachable { .. }
            | Record::RunFinished { .. }
            | Record::GateDecision { .. }
            | Record::ApprovalRequested { .. }
            | Record::BackupCreated { .. } => true,
            Record::ApprovalGranted { target, .. } | Record::ApprovalRejected { target, .. } => {
                !matches!(target, ApprovalTarget::Plan { .. })
            }
            Record::RunbookApproved { .. } => false,
        }
    }

    /// The canonical body (layouts in the module docs).
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut encoder = Encoder::new();
        match self {
            Record::RunRequested {
                operator,
                runbook,
                runbook_sha256,
                params,
                pattern,
                hosts,
                check,
            } => {
                encoder.str(operator).str(runbook).str(runbook_sha256);
                encoder.list(params, |encoder, (name, value)| {
                    encoder.str(name).str(value);
                });
                encoder.str(pattern);
                encoder.list(hosts, |encoder, host| {
                    encoder.str(host);
                });
                encoder.bool(*check);
            }
            Record::RunStarted => {}
            Record::StepStarted { host, step, name } => {
                encoder.str(host).u32(*step).str(name);
            }
            Record::StepFinished {
                host,
                step,
                name,
                status,
                rc,
                changed,
                duration_ms,
                stdout,
                stderr,
            } => {
                encoder.str(host).u32(*step).str(name).str(status.as_str());
                encoder.option(*rc, |encoder, rc| {
                    encoder.i32(rc);
                });
                encoder.bool(*changed).u64(*duration_ms);
                encode_output(&mut encoder, stdout);
                encode_output(&mut encoder, stderr);
            }
            Record::HostUnreachable { host, message } => {
                encoder.str(host).str(message);
            }
            Record::RunFinished { status, message } => {
                encoder.str(status.as_str());
                encode_optional_str(&mut encoder, message.as_deref());
            }
            Record::GateDecision {
                outcome,
                rule,
                reason,
                level,
                required_level,
            } => {
                encoder.str(outcome.as_str());
                encode_optional_str(&mut encoder, rule.as_deref());
                encoder.str(reason);
                encode_optional_u8(&mut encoder, *level);
                encode_optional_u8(&mut encoder, *required_level);
            }
            Record::ApprovalRequested {
                target,
                approver_level,
                message,
            } => {
                encode_target(&mut encoder, target);
                encoder.u8(*approver_level).str(message);
            }
            Record::ApprovalGranted {
                target,
                approver,
                approver_level,
                reason,
                signature,
            } => {
                encode_target(&mut encoder, target);
                encoder.str(approver).u8(*approver_level);
                encode_optional_str(&mut encoder, reason.as_deref());
                encode_optional_str(&mut encoder, signature.as_deref());
            }
            Record::ApprovalRejected {
                target,
                approver,
                approver_level,
                reason,
            } => {
                encode_target(&mut encoder, target);
                encoder.str(approver).u8(*approver_level);
                encode_optional_str(&mut encoder, reason.as_deref());
            }
            Record::RunbookApproved {
                runbook,
                path,
                digest,
                min_level,
                approver,
                approver_level,
                signature,
            } => {
                encoder.str(runbook).str(path).str(digest).u8(*min_level);
                encoder.str(approver).u8(*approver_level);
                encode_optional_str(&mut encoder, signature.as_deref());
            }
            Record::BackupCreated {
                host,
                step,
                id,
                store,
                path,
                size,
                sha256,
                removed,
            } => {
                encoder.str(host).u32(*step).str(id).str(store).str(path);
                encoder.u64(*size).str(sha256);
                encoder.list(removed, |encoder, id| {
                    encoder.str(id);
                });
            }
        }
        encoder.finish()
    }

    /// Reads a body back. `Ok(None)` for a kind this opsgate does not know (written by a newer
    /// version); an error when a known kind's body does not parse.
    pub(crate) fn decode(kind: &str, body: &[u8]) -> Result<Option<Record>, DecodeError> {
        let mut decoder = Decoder::new(body);
        let record = match kind {
            "run_requested" => Record::RunRequested {
                operator: decoder.str()?,
                runbook: decoder.str()?,
                runbook_sha256: decoder.str()?,
                params: decoder.list(|decoder| Ok((decoder.str()?, decoder.str()?)))?,
                pattern: decoder.str()?,
                hosts: decoder.list(Decoder::str)?,
                check: decoder.bool()?,
            },
            "run_started" => Record::RunStarted,
            "step_started" => Record::StepStarted {
                host: decoder.str()?,
                step: decoder.u32()?,
                name: decoder.str()?,
            },
            "step_finished" => Record::StepFinished {
                host: decoder.str()?,
                step: decoder.u32()?,
                name: decoder.str()?,
                status: StepStatus::parse(&decoder.str()?)?,
                rc: decoder.option(Decoder::i32)?,
                changed: decoder.bool()?,
                duration_ms: decoder.u64()?,
                stdout: decode_output(&mut decoder)?,
                stderr: decode_output(&mut decoder)?,
            },
            "host_unreachable" => Record::HostUnreachable {
                host: decoder.str()?,
                message: decoder.str()?,
            },
            "run_finished" => {
                let status = decoder.str()?;
                let status = status
                    .parse::<RunStatus>()
                    .map_err(|_| DecodeError(format!("unknown run status `{status}`")))?;
                Record::RunFinished {
                    status,
                    message: decoder.option(Decoder::str)?,
                }
            }
            "gate_decision" => Record::GateDecision {
                outcome: GateOutcome::parse(&decoder.str()?)?,
                rule: decoder.option(Decoder::str)?,
                reason: decoder.str()?,
                level: decoder.option(Decoder::u8)?,
                required_level: decoder.option(Decoder::u8)?,
            },
            "approval_requested" => Record::ApprovalRequested {
                target: decode_target(&mut decoder)?,
                approver_level: decoder.u8()?,
                message: decoder.str()?,
            },
            "approval_granted" => Record::ApprovalGranted {
                target: decode_target(&mut decoder)?,
                approver: decoder.str()?,
                approver_level: decoder.u8()?,
                reason: decoder.option(Decoder::str)?,
                signature: decoder.option(Decoder::str)?,
            },
            "approval_rejected" => Record::ApprovalRejected {
                target: decode_target(&mut decoder)?,
                approver: decoder.str()?,
                approver_level: decoder.u8()?,
                reason: decoder.option(Decoder::str)?,
            },
            "runbook_approved" => Record::RunbookApproved {
                runbook: decoder.str()?,
                path: decoder.str()?,
                digest: decoder.str()?,
                min_level: decoder.u8()?,
                approver: decoder.str()?,
                approver_level: decoder.u8()?,
                signature: decoder.option(Decoder::str)?,
            },
            "backup_created" => Record::BackupCreated {
                host: decoder.str()?,
                step: decoder.u32()?,
                id: decoder.str()?,
                store: decoder.str()?,
                path: decoder.str()?,
                size: decoder.u64()?,
                sha256: decoder.str()?,
                removed: decoder.list(Decoder::str)?,
            },
            _ => return Ok(None),
        };
        decoder.finish()?;
        Ok(Some(record))
    }
}

fn encode_optional_str(encoder: &mut Encoder, value: Option<&str>) {
    encoder.option(value, |encoder, value| {
        encoder.str(value);
    });
}

fn encode_optional_u8(encoder: &mut Encoder, value: Option<u8>) {
    encoder.option(value, |encoder, value| {
        encoder.u8(value);
    });
}

fn encode_output(encoder: &mut Encoder, output: &Output) {
    encoder
        .str(&output.excerpt)
        .u64(output.length)
        .str(&output.sha256);
}

fn decode_output(decoder: &mut Decoder<'_>) -> Result<Output, DecodeError> {
    Ok(Output {
        excerpt: decoder.str()?,
        length: decoder.u64()?,
        sha256: decoder.str()?,
    })
}

fn encode_target(encoder: &mut Encoder, target: &ApprovalTarget) {
    match target {
        ApprovalTarget::Run => {
            encoder.str("run");
        }
        ApprovalTarget::Gate { step, name } => {
            encoder.str("gate").u32(*step).str(name);
        }
        ApprovalTarget::Plan { plan } => {
            encoder.str("plan").str(plan);
        }
    }
}

fn decode_target(decoder: &mut Decoder<'_>) -> Result<ApprovalTarget, DecodeError> {
    match decoder.str()?.as_str() {
        "run" => Ok(ApprovalTarget::Run),
        "gate" => Ok(ApprovalTarget::Gate {
            step: decoder.u32()?,
            name: decoder.str()?,
        }),
        "plan" => Ok(ApprovalTarget::Plan {
            plan: decoder.str()?,
        }),
        other => Err(DecodeError(format!("unknown approval target `{other}`"))),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::{ApprovalTarget, GateOutcome, Record, StepStatus};
    use crate::audit::output::Output;
    use crate::audit::run::RunStatus;

    /// One record of every kind, for round-trip and store tests.
    pub(crate) fn every_kind() -> Vec<Record> {
        vec![
            Record::RunRequested {
                operator: "alice".into(),
                runbook: "patch-debian".into(),
                runbook_sha256: "ab".repeat(32),
                params: vec![
                    ("keep".into(), "7".into()),
                    ("db_pass".into(), "***".into()),
                ],
                pattern: "web".into(),
                hosts: vec!["web1".into(), "web2".into()],
                check: true,
            },
            Record::RunStarted,
            Record::StepStarted {
                host: "web1".into(),
                step: 1,
                name: "snapshot /etc".into(),
            },
            Record::StepFinished {
                host: "web1".into(),
                step: 1,
                name: "snapshot /etc".into(),
                status: StepStatus::Changed,
                rc: Some(-1),
                changed: true,
                duration_ms: 1234,
                stdout: Output::capture(b"done\n"),
                stderr: Output::empty(),
            },
            Record::HostUnreachable {
                host: "web2".into(),
                message: "connection refused".into(),
            },
            Record::GateDecision {
                outcome: GateOutcome::NeedsApproval,
                rule: Some("production".into()),
                reason: "production needs an L3 approval".into(),
                level: Some(2),
                required_level: None,
            },
            Record::ApprovalRequested {
                target: ApprovalTarget::Gate {
                    step: 3,
                    name: "operator confirms".into(),
                },
                approver_level: 3,
                message: "3 packages on web1".into(),
            },
            Record::ApprovalGranted {
                target: ApprovalTarget::Run,
                approver: "carol".into(),
                approver_level: 4,
                reason: None,
                signature: Some("-----BEGIN SSH SIGNATURE-----".into()),
            },
            Record::ApprovalRejected {
                target: ApprovalTarget::Plan {
                    plan: "p-17".into(),
                },
                approver: "carol".into(),
                approver_level: 4,
                reason: Some("not tonight".into()),
            },
            Record::RunbookApproved {
                runbook: "patch-debian".into(),
                path: "patch-debian.yaml".into(),
                digest: "cd".repeat(32),
                min_level: 2,
                approver: "alice".into(),
                approver_level: 5,
                signature: None,
            },
            Record::BackupCreated {
                host: "web1".into(),
                step: 1,
                id: "patch-debian-web1-20261124T120000Z".into(),
                store: "/var/backups/opsgate".into(),
                path: "/var/backups/opsgate/patch-debian-web1-20261124T120000Z.tar.zst".into(),
                size: 4096,
                sha256: "ef".repeat(32),
                removed: vec!["patch-debian-web1-20261101T120000Z".into()],
            },
            Record::RunFinished {
                status: RunStatus::Failed,
                message: Some("web2 failed".into()),
            },
        ]
    }

    #[test]
    fn every_kind_round_trips_through_its_canonical_body() {
        for record in every_kind() {
            let body = record.encode();
            assert_eq!(
                Record::decode(record.kind(), &body),
                Ok(Some(record.clone()))
            );
        }
    }

    #[test]
    fn unknown_kinds_are_not_an_error_but_broken_bodies_are() {
        assert_eq!(Record::decode("maintenance_window", b"anything"), Ok(None));
        let mut body = Record::RunStarted.encode();
        body.push(0);
        assert!(Record::decode("run_started", &body).is_err());
        assert!(Record::decode("step_started", &[0, 0]).is_err());
    }

    /// Pins the exact bytes of one body: if this fails, the encoding changed and every stored
    /// history would stop verifying. Add a kind or a format version instead.
    #[test]
    fn the_encoding_of_a_body_never_changes() {
        let record = Record::RunFinished {
            status: RunStatus::Ok,
            message: Some("x".into()),
        };
        assert_eq!(
            hex::encode(record.encode()),
            "00000000000000026f6b01000000000000000178"
        );
    }

    #[test]
    fn records_serialize_with_their_kind() {
        let json = serde_json::to_value(Record::RunStarted).expect("records serialize");
        assert_eq!(json, serde_json::json!({ "kind": "run_started" }));
        let json = serde_json::to_value(&every_kind()[6]).expect("records serialize");
        assert_eq!(
            json["target"],
            serde_json::json!({"type": "gate", "step": 3, "name": "operator confirms"})
        );
    }
}
