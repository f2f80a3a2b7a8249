//! `opsgate validate [PATH…]`: every error in every file at once, or one summary line per file.

use std::fmt::Write as _;
use std::io::Write;
use std::path::PathBuf;

use super::args::ValidateArgs;
use super::{emit, warn};
use crate::diagnostic::{Diagnostic, Diagnostics, Style, read_source};
use crate::error::{Error, Exit};
use crate::inventory::Inventory;
use crate::project::Project;
use crate::runbook::{self, Runbook};

/// Validates the named files, or the whole project (catalog + inventory) when none is named.
pub(super) fn run(
    args: &ValidateArgs,
    project: &Project,
    style: Style,
    out: &mut dyn Write,
) -> Result<Exit, Error> {
    let paths: Vec<PathBuf> = if args.paths.is_empty() {
        let mut paths = project.catalog();
        if project.inventory.exists() {
            paths.push(project.inventory.clone());
        }
        if paths.is_empty() {
            return Err(Diagnostic::error("nothing to validate")
                .hint(format!(
                    "name files, or run where `{}` or `{}` exist",
                    project.runbooks.display(),
                    project.inventory.display()
                ))
                .into());
        }
        paths
    } else {
        args.paths.clone()
    };
    let mut errors = Diagnostics::new();
    let mut inventory = None;
    let mut runbooks = Vec::new();
    let mut summary = String::new();
    for path in &paths {
        let file = match read_source(path) {
            Ok(file) => file,
            Err(diagnostic) => {
                errors.push(diagnostic);
                continue;
            }
        };
        if is_runbook(&file.text) {
            match runbook::parse(&file) {
                Ok((runbook, warnings)) => {
                    warn(&warnings, style);
                    let _ = writeln!(
                        summary,
                        "ok  {}  runbook `{}` ({}, {} steps, {} params)",
                        path.display(),
                        runbook.id,
                        runbook.kind.as_str(),
                        runbook.steps.len(),
                        runbook.params.len()
                    );
                    runbooks.push(runbook);
                }
                Err(diagnostics) => errors.extend(diagnostics),
            }
        } else {
            match Inventory::parse(file) {
                Ok((loaded, warnings)) => {
                    warn(&warnings, style);
                    let _ = writeln!(
                        summary,
                        "ok  {}  inventory ({} hosts, {} groups)",
                        path.display(),
                        loaded.hosts().len(),
                        loaded.group_names().count()
                    );
                    inventory = Some(loaded);
                }
                Err(diagnostics) => errors.extend(diagnostics),
            }
        }
    }
    // Targets name inventory groups and hosts: check them against the inventory named, or the
    // project's when it loads.
    let inventory = inventory.or_else(|| {
        Inventory::load(&project.inventory)
            .ok()
            .map(|(inventory, _)| inventory)
    });
    if let Some(inventory) = &inventory {
        for runbook in &runbooks {
            check_targets(runbook, inventory, &mut errors);
        }
    }
    if errors.has_errors() {
        return Err(errors.into());
    }
    emit(out, &summary)?;
    Ok(Exit::Ok)
}

fn check_targets(runbook: &Runbook, inventory: &Inventory, errors: &mut Diagnostics) {
    let (pattern, span) = &runbook.targets;
    if let Err(error) = inventory.select(pattern) {
        let mut diagnostic = Diagnostic::error(format!(
            "runbook `{}` targets `{pattern}`: {error}",
            runbook.id
        ))
        .at(&runbook.source, *span);
        diagnostic.hints = error.hints();
        diagnostic.hints.push(format!(
            "checked against inventory `{}`",
            inventory.source().path.display()
        ));
        errors.push(diagnostic);
    }
}

/// A runbook has a top-level `runbook:` key; anything else is taken for an inventory.
fn is_runbook(text: &str) -> bool {
    text.lines().any(|line| line.starts_with("runbook:"))
}
