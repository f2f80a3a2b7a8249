//! `plan` and `plan show` as the command line prints them, as text or JSON.

use std::fmt::Write as _;
use std::io::Write;

use super::emit;
use crate::diagnostic::Style;
use crate::error::{Error, Exit};
use crate::gate::Decision;
use crate::ops::plan::{Planned, ShownPlan};
use crate::plan::{self, Field, Plan};
use crate::runbook::model::{Action, Step};

/// What `plan` prints: the plan and the gate's decision, or the id of the plan it saved.
pub(crate) fn planned_text(planned: &Planned, json: bool, style: Style) -> String {
    let plan = &planned.plan;
    let decision = planned.decision.as_ref();
    match (&planned.saved, json) {
        (Some((id, saved)), true) => format!(
            "{}\n",
            serde_json::json!({ "plan": id, "author": saved.author })
        ),
        (Some((id, _)), false) => format!(
            "{}{}\nsaved plan {id}; an approver reviews it with `opsgate plan show {id}` and \
             approves it with `opsgate approve plan {id}`; then run it with `opsgate run \
             --plan {id}` (once, within the policy's `plan_ttl`, default 24h)\n",
            plan::display(plan, style),
            decision.map(decision_text).unwrap_or_default()
        ),
        (None, true) => {
            let mut value = plan_json(plan);
            if let Some(decision) = decision {
                value["gate"] = decision_json(decision);
            }
            format!("{value}\n")
        }
        (None, false) => {
            let mut text = plan::display(plan, style);
            if let Some(decision) = decision {
                text.push_str(&decision_text(decision));
            }
            text
        }
    }
}

/// `plan show PLAN`: the saved plan, who saved it when, and its approvals (what
/// [`crate::ops::plan::show`] found).
pub(crate) fn show(shown: &ShownPlan, json: bool, out: &mut dyn Write) -> Result<Exit, Error> {
    let id = &shown.id;
    let saved = &shown.saved;
    let answers: Vec<(String, String)> = shown
        .answers
        .iter()
        .map(|answer| {
            let what = match &answer.rejected {
                None => format!(
                    "approved by {} (L{})",
                    answer.approver, answer.approver_level
                ),
                Some(reason) => format!(
                    "rejected by {} (L{}){}",
                    answer.approver,
                    answer.approver_level,
                    reason
                        .as_deref()
                        .map(|reason| format!(": {reason}"))
                        .unwrap_or_default()
                ),
            };
            (what, crate::audit::query::format_timestamp(answer.at))
        })
        .collect();
    if json {
        let value = serde_json::json!({
            "plan": id,
            "saved": saved,
            "approvals": answers.iter().map(|(what, at)| serde_json::json!({"what": what, "at": at})).collect::<Vec<_>>(),
        });
        emit(out, &format!("{value}\n"))?;
        return Ok(Exit::Ok);
    }
    let mut text = format!(
        "plan {id}: runbook `{}` saved by {} at {}\n  runbook digest    {}\n  inventory digest  {}\n  policy digest     {}\n\n{}",
        saved.fingerprint.runbook_id,
        saved.author,
        saved.created_at,
        saved.fingerprint.runbook_digest,
        saved.fingerprint.inventory_digest,
        saved.fingerprint.policy_digest.as_deref().unwrap_or("none"),
        saved.display
    );
    if answers.is_empty() {
        text.push_str("\nnot approved yet\n");
    }
    for (what, at) in answers {
        let _ = writeln!(text, "\n{at}  {what}");
    }
    emit(out, &text)?;
    Ok(Exit::Ok)
}

fn decision_text(decision: &Decision) -> String {
    match decision {
        Decision::Allow { .. } => "\ngate: `run` would be allowed\n".to_owned(),
        Decision::NeedsApproval { by, reason, .. } => format!(
            "\ngate: `run` would wait for an approval by another operator of level {}+: {reason}\n",
            by.get()
        ),
        Decision::Deny(denial) => format!(
            "\ngate: `run` would be denied: {denial}\nhint: {}\n",
            denial.would_allow
        ),
    }
}

fn decision_json(decision: &Decision) -> serde_json::Value {
    match decision {
        Decision::Allow { notes } => serde_json::json!({ "decision": "allow", "notes": notes }),
        Decision::NeedsApproval { by, reason, notes } => serde_json::json!({
            "decision": "needs_approval", "approver_level": by.get(), "reason": reason,
            "notes": notes,
        }),
        Decision::Deny(denial) => serde_json::json!({
            "decision": "deny", "rule": denial.rule.as_str(), "reason": denial.reason,
            "would_allow": denial.would_allow,
        }),
    }
}

/// One planned step on one host (secrets masked): its name, action, the line the text plan
/// shows, and for `command`/`shell` steps the command as it will run — or its template, when it
/// can only be rendered on the host at run time.
fn step_json(plan: &Plan, step: &Step<Field>) -> serde_json::Value {
    let mut value = serde_json::json!({
        "name": plan.redact(&step.name),
        "action": step.action.keyword(),
        "summary": plan.redact(&plan::step_summary(step)),
    });
    if let Action::Command(command) = &step.action {
        let (text, rendered_at) = match &command.text {
            Field::Ready(text) => (text.shown(), "plan"),
            Field::AtRunTime(text) => (text.source.as_str(), "run"),
        };
        value["command"] = plan.redact(text).into();
        value["rendered_at"] = rendered_at.into();
    }
    value
}

/// The plan as one JSON object (secrets masked).
pub(crate) fn plan_json(plan: &Plan) -> serde_json::Value {
    let hosts: Vec<serde_json::Value> = plan
        .hosts
        .iter()
        .map(|host| {
            serde_json::json!({
                "host": host.host.name.as_str(),
                "address": host.host.address,
                "steps": host.steps.iter().map(|step| step_json(plan, step)).collect::<Vec<_>>(),
                "on_failure": host.on_failure.iter().map(|step| step_json(plan, step)).collect::<Vec<_>>(),
            })
        })
        .collect();
    serde_json::json!({
        "runbook": plan.runbook.id,
        "digest": plan.runbook.digest,
        "kind": plan.runbook.kind.as_str(),
        "pattern": plan.pattern,
        // Unlike `Plan::masked_params`, values keep their JSON type (ints stay numbers).
        "params": plan.params.iter().map(|(name, value)| (name.clone(), value.masked_json()))
            .collect::<serde_json::Map<_, _>>(),
        "batches": plan.batches.iter().map(|batch| batch.iter().map(|index| plan.hosts[*index].host.name.as_str()).collect::<Vec<_>>()).collect::<Vec<_>>(),
        "hosts": hosts,
    })
}
