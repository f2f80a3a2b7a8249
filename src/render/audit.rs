//! `audit verify` and `audit checkpoint` as the command line prints them. A broken history is
//! the answer of `verify`, not an error: [`Verdict::Broken`], exit 4.

use std::io::Write;

use crate::audit::{Checkpoint, CheckpointFinding};
use crate::error::Exit;
use crate::ops::audit::{SignatureCheck, Verification};

/// How an `audit` command ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// The command did its job; for `verify`, the history is intact. Exit 0.
    Success,
    /// `verify` found the history altered, truncated, rewritten, or a checkpoint signature
    /// that does not verify. Exit 4.
    Broken,
}

impl Verdict {
    /// The process exit code (SPEC §6: 4 for a failed audit verification).
    pub(crate) fn exit(self) -> Exit {
        match self {
            Verdict::Success => Exit::Ok,
            Verdict::Broken => Exit::Rejected,
        }
    }
}

fn finding_text(checkpoint: &Checkpoint, finding: CheckpointFinding, events: u64) -> String {
    match finding {
        CheckpointFinding::Matches => "matches".to_owned(),
        CheckpointFinding::Truncated => format!(
            "the store holds {}: events {} to {} were cut off",
            crate::plural::counted(events, "event"),
            events + 1,
            checkpoint.events
        ),
        CheckpointFinding::Rewritten => format!(
            "event {} no longer has the checkpoint's hash: the history up to it was rewritten",
            checkpoint.events
        ),
    }
}

/// The report of `audit verify`, for people.
pub(crate) fn render_verify(
    verification: &Verification,
    verdict: Verdict,
    out: &mut dyn Write,
) -> std::io::Result<()> {
    let report = &verification.report;
    match verdict {
        Verdict::Success => writeln!(out, "audit history intact")?,
        Verdict::Broken => writeln!(out, "audit verification failed")?,
    }
    writeln!(out, "  events  {}", report.events)?;
    writeln!(out, "  head    {}", report.head)?;
    match verification.store_id {
        Some(id) => writeln!(out, "  store   {id}")?,
        None => writeln!(
            out,
            "  store   NO VALID STORE ID (its identity table was altered)"
        )?,
    }
    if let Some(chain_break) = &report.chain_break {
        writeln!(out, "  broken  {chain_break}")?;
    }
    for (check, signer) in report.checkpoints.iter().zip(&verification.signatures) {
        let signature = match signer {
            SignatureCheck::NotChecked if check.checkpoint.signature.is_some() => {
                ", signature not checked (no --allowed-signers)".to_owned()
            }
            SignatureCheck::NotChecked => ", unsigned".to_owned(),
            SignatureCheck::Signed(principal) => format!(", signed by {principal}"),
            SignatureCheck::Invalid(error) => format!(", SIGNATURE INVALID: {error}"),
        };
        writeln!(
            out,
            "  checkpoint of {} ({}): {}{signature}",
            check.checkpoint.at,
            crate::plural::counted(check.checkpoint.events, "event"),
            finding_text(&check.checkpoint, check.finding, report.events)
        )?;
    }
    for problem in &report.index_problems {
        writeln!(out, "  index   {problem}")?;
    }
    for unproven in &verification.unproven {
        writeln!(
            out,
            "  approval at seq {} by `{}` {}",
            unproven.seq, unproven.approver, unproven.problem
        )?;
    }
    Ok(())
}

/// The report of `audit verify --json`.
pub(crate) fn verify_json(verification: &Verification, verdict: Verdict) -> serde_json::Value {
    let report = &verification.report;
    let checkpoints: Vec<serde_json::Value> = report
        .checkpoints
        .iter()
        .zip(&verification.signatures)
        .map(|(check, signer)| {
            let (signer, signature_error) = match signer {
                SignatureCheck::NotChecked => (None, None),
                SignatureCheck::Signed(principal) => (Some(principal.clone()), None),
                SignatureCheck::Invalid(error) => (None, Some(error.clone())),
            };
            serde_json::json!({
                "events": check.checkpoint.events,
                "head": check.checkpoint.head.to_hex(),
                "at": check.checkpoint.at,
                "signed": check.checkpoint.signature.is_some(),
                "signer": signer,
                "signature_error": signature_error,
                "finding": check.finding,
            })
        })
        .collect();
    serde_json::json!({
        "intact": verdict == Verdict::Success,
        "store_id": verification.store_id.map(|id| id.to_string()),
        "events": report.events,
        "head": report.head.to_hex(),
        "chain_break": report.chain_break,
        "checkpoints": checkpoints,
        "index_problems": report.index_problems,
        "unproven_approvals": verification.unproven.iter().map(|unproven| format!(
            "at seq {} by `{}` {}", unproven.seq, unproven.approver, unproven.problem
        )).collect::<Vec<_>>(),
    })
}
