//! `opsgate plan`: prints what a run would do and what the gate would decide, or saves it for
//! approval (`--save`); `plan show` prints a saved plan and its approvals.

use std::io::Write;

use super::args::{PlanArgs, PlanCommand};
use super::emit;
use super::params::plan_target;
use super::terminal::TerminalPrompter;
use crate::diagnostic::Style;
use crate::error::{Error, Exit};
use crate::ops::{self, Context};
use crate::render;

/// Prints the plan; nothing connects anywhere.
pub(super) fn run(
    args: &PlanArgs,
    context: Context<'_>,
    json: bool,
    style: Style,
    out: &mut dyn Write,
) -> Result<Exit, Error> {
    if let Some(PlanCommand::Show { plan }) = &args.command {
        return render::plan::show(&ops::plan::show(context, plan)?, json, out);
    }
    let options = ops::plan::PlanOptions {
        target: plan_target(&args.target, &context.caller.process)?,
        save: args.save,
    };
    let planned = ops::plan::plan(context, &options, &TerminalPrompter)?;
    let text = render::plan::planned_text(&planned, json, style);
    emit(out, &text)?;
    Ok(Exit::Ok)
}
