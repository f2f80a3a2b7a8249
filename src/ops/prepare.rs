//! load → validate → plan: what `plan` and `run` share. Every problem of each stage is
//! reported at once, and nothing here contacts a host.

use std::sync::Arc;

use crate::diagnostic::{Diagnostic, Diagnostics};
use crate::error::Error;
use crate::inventory::Inventory;
use crate::plan::{self, ParamInput, ParamSource, Plan};
use crate::runbook;
use crate::secret::Secret;
use crate::template::Renderer;

use super::Context;

/// What to plan: the runbook and how to narrow, widen and parametrise it.
#[derive(Debug, Clone, Default)]
pub struct PlanTarget {
    /// A runbook path (contains `/` or ends in `.yaml`) or a catalog id.
    pub runbook: Option<String>,
    /// `-l PATTERN`.
    pub limit: Option<String>,
    /// `--widen PATTERN`.
    pub widen: Option<String>,
    /// Param values as the front end collected them (`--params-file`, `-p`), later ones win.
    pub params: Vec<ParamInput>,
}

/// Asks the operator for a secret param that is required and was not given.
pub trait Prompter {
    /// The value of secret param `param` of runbook `runbook`, or `None` when nobody can be
    /// asked (no terminal); the param is then reported missing like any other.
    fn secret(&self, runbook: &str, param: &str) -> Result<Option<Secret<String>>, Error>;
}

/// Never asks: for front ends without a person at a terminal.
pub struct NoPrompt;

impl Prompter for NoPrompt {
    fn secret(&self, _runbook: &str, _param: &str) -> Result<Option<Secret<String>>, Error> {
        Ok(None)
    }
}

/// Loads the runbook and inventory, resolves params and builds the plan for `operator` (the
/// gate's identity, `run.operator` in templates).
pub fn prepare(
    context: Context<'_>,
    target: &PlanTarget,
    prompter: &dyn Prompter,
    renderer: &Renderer,
    operator: &str,
) -> Result<Plan, Error> {
    let project = context.project;
    let Some(argument) = &target.runbook else {
        return Err(Diagnostic::error("no RUNBOOK given")
            .hint("name a runbook file or catalog id, e.g. `opsgate plan patch-debian`")
            .into());
    };
    let runbook_path = project.runbook_path(argument)?;
    let runbook_result = runbook::load(&runbook_path);
    let inventory_result = Inventory::load(&project.inventory).map_err(|mut diagnostics| {
        if !project.inventory.exists() {
            diagnostics = Diagnostic::error(format!(
                "inventory `{}` does not exist",
                project.inventory.display()
            ))
            .hint(
                "pass one with `-i PATH`, or start a lab: `opsgate lab up` prints an inventory \
                 path",
            )
            .into();
        }
        diagnostics
    });
    let ((runbook, runbook_warnings), (inventory, inventory_warnings)) =
        match (runbook_result, inventory_result) {
            (Ok(runbook), Ok(inventory)) => (runbook, inventory),
            (runbook, inventory) => {
                let mut diagnostics = Diagnostics::new();
                for result in [runbook.err(), inventory.err()].into_iter().flatten() {
                    diagnostics.extend(result);
                }
                return Err(diagnostics.into());
            }
        };
    context.reporter.warnings(&runbook_warnings);
    context.reporter.warnings(&inventory_warnings);
    let runbook = Arc::new(runbook);
    let mut inputs = target.params.clone();
    for spec in runbook
        .params
        .iter()
        .filter(|spec| spec.secret && spec.required)
    {
        if inputs.iter().any(|input| input.name == spec.name) {
            continue;
        }
        if let Some(value) = prompter.secret(&runbook.id, &spec.name)? {
            inputs.push(ParamInput {
                name: spec.name.clone(),
                value,
                source: ParamSource::Prompt,
            });
        }
    }
    let (params, param_warnings) = plan::resolve_params(&runbook, &inputs)?;
    context.reporter.warnings(&param_warnings);
    let plan = plan::build(
        plan::Request {
            runbook,
            inventory: &inventory,
            limit: target.limit.as_deref(),
            widen: target.widen.as_deref(),
            params,
            operator: operator.to_owned(),
        },
        renderer,
    )?;
    Ok(plan)
}
