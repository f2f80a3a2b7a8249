//! `plan`: what a run would do, judged by the gate but recorded nowhere; `plan --save` for
//! review and approval (SPEC §4.4–§4.5); `plan show` of a saved plan.

use jiff::Timestamp;

use super::{Context, PlanTarget, Prompter, RunFlags, prepare::prepare, run_request};
use crate::approval::{CatalogApprovals, catalog_approvals};
use crate::audit::{AuditStore, Record};
use crate::error::Error;
use crate::gate::{Decision, decide};
use crate::plan::Plan;
use crate::plan::saved::{self, ReviewedPlan, SavedPlan};
use crate::template::Renderer;

/// What `plan` is asked.
#[derive(Debug, Clone, Default)]
pub struct PlanOptions {
    /// What to plan.
    pub target: PlanTarget,
    /// Save it for approval (operators only).
    pub save: bool,
}

/// A plan, what the gate would decide for a plain `run` of it, and where it was saved.
#[derive(Debug)]
pub struct Planned {
    /// The plan.
    pub plan: Plan,
    /// The gate's preview; `None` in single-operator mode, where no gate applies.
    pub decision: Option<Decision>,
    /// The saved plan's id and file, with `--save`.
    pub saved: Option<(String, SavedPlan)>,
}

/// Plans, previews the gate and, with `save`, stores the plan; nothing connects anywhere.
pub fn plan(
    context: Context<'_>,
    options: &PlanOptions,
    prompter: &dyn Prompter,
) -> Result<Planned, Error> {
    let gatekeeper = context.gatekeeper()?;
    if options.save {
        gatekeeper.require_operator("save plans for approval")?;
    }
    let plan = prepare(
        context,
        &options.target,
        prompter,
        &Renderer::new(),
        gatekeeper.account(),
    )?;
    let decision = if gatekeeper.single_operator() {
        None
    } else {
        let request = run_request(
            &plan,
            &preview_approvals(context, &gatekeeper),
            RunFlags::default(),
        );
        Some(decide(
            gatekeeper.policy.as_ref(),
            &gatekeeper.identity,
            &request,
        ))
    };
    let saved = if options.save {
        let target = &options.target;
        let saved = SavedPlan::new(
            &plan,
            gatekeeper.account(),
            (
                target.runbook.as_deref().unwrap_or_default(),
                target.limit.as_deref(),
                target.widen.as_deref(),
            ),
            gatekeeper.policy.as_ref(),
            &context.project.state_dir,
        )?;
        let id = saved::save(&context.project.state_dir, &saved)?;
        Some((id, saved))
    } else {
        None
    };
    Ok(Planned {
        plan,
        decision,
        saved,
    })
}

/// The catalog approvals the gate preview judges by. `plan` is ungated: a project that never
/// recorded anything has none (the state directory is not created just to find that out), and
/// an account that cannot open the store (it belongs to the service account) gets its plan with
/// the preview of a draft.
fn preview_approvals(context: Context<'_>, gatekeeper: &super::Gatekeeper) -> CatalogApprovals {
    if !context.project.state_dir.join("audit.db").exists() {
        return CatalogApprovals::new();
    }
    AuditStore::open(&context.project.state_dir)
        .ok()
        .and_then(|store| catalog_approvals(&store, gatekeeper.policy.as_ref()).ok())
        .unwrap_or_default()
}

/// One answer to a saved plan.
#[derive(Debug, Clone)]
pub struct PlanAnswer {
    /// When.
    pub at: Timestamp,
    /// Who.
    pub approver: String,
    /// At which level.
    pub approver_level: u8,
    /// Approved (`None`) or rejected with this reason (`Some`, possibly empty).
    pub rejected: Option<Option<String>>,
}

/// A saved plan and its answers, oldest first.
#[derive(Debug)]
pub struct ShownPlan {
    /// The plan id.
    pub id: String,
    /// The file as a reviewer sees it: no salts or HMACs of secret params.
    pub saved: ReviewedPlan,
    /// Approvals and rejections.
    pub answers: Vec<PlanAnswer>,
}

/// `plan show PLAN`: the saved plan, who saved it when, and its approvals.
pub fn show(context: Context<'_>, id: &str) -> Result<ShownPlan, Error> {
    let state_dir = &context.project.state_dir;
    let saved = saved::load(state_dir, id)?;
    let mut answers = Vec::new();
    if state_dir.join("audit.db").exists() {
        let store = AuditStore::open(state_dir)?;
        for event in store.plan_approvals(id)? {
            let answer = match event.record {
                Some(Record::ApprovalGranted {
                    approver,
                    approver_level,
                    ..
                }) => (approver, approver_level, None),
                Some(Record::ApprovalRejected {
                    approver,
                    approver_level,
                    reason,
                    ..
                }) => (approver, approver_level, Some(reason)),
                _ => continue,
            };
            answers.push(PlanAnswer {
                at: event.at,
                approver: answer.0,
                approver_level: answer.1,
                rejected: answer.2,
            });
        }
    }
    Ok(ShownPlan {
        id: id.to_owned(),
        saved: saved.into(),
        answers,
    })
}
