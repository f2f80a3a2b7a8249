//! `opsgate validate [PATH…]`: every error in every file at once, or one summary line per file.
//! A directory stands for every runbook under it ([`runbook::discover`]).

use std::fmt::Write as _;
use std::io::Write;
use std::path::PathBuf;

use super::args::ValidateArgs;
use super::{emit, warn};
use crate::diagnostic::{Diagnostic, Diagnostics, Style, read_source};
use crate::error::{Error, Exit};
use crate::inventory::Inventory;
use crate::plural::counted;
use crate::project::Project;
use crate::runbook::{self, Runbook, discover};

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
    let mut files = Vec::new();
    for path in paths {
        if path.is_dir() {
            let (found, unreadable) = discover::yaml_files_under(&path);
            errors.extend(unreadable);
            let before = files.len();
            for file in found {
                match read_source(&file) {
                    // Under a directory only runbooks are validated: inventories and policies
                    // there are named on their own.
                    Ok(source) if !discover::is_runbook(&source.text) => {}
                    read => files.push((file, read)),
                }
            }
            if files.len() == before {
                errors.push(
                    Diagnostic::error(format!("no runbooks under `{}`", path.display())).hint(
                        "a runbook is a `*.yaml` or `*.yml` file with a top-level `runbook:` key",
                    ),
                );
            }
        } else {
            let read = read_source(&path);
            files.push((path, read));
        }
    }
    let mut inventory = None;
    let mut runbooks = Vec::new();
    let mut summary = String::new();
    for (path, read) in files {
        let file = match read {
            Ok(file) => file,
            Err(diagnostic) => {
                errors.push(diagnostic);
                continue;
            }
        };
        if discover::is_runbook(&file.text) {
            match runbook::parse(&file) {
                Ok((runbook, warnings)) => {
                    warn(&warnings, style);
                    let _ = writeln!(
                        summary,
                        "ok  {}  runbook `{}` ({}, {}, {})",
                        path.display(),
                        runbook.id,
                        runbook.kind.as_str(),
                        counted(runbook.steps.len(), "step"),
                        counted(runbook.params.len(), "param")
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
                        "ok  {}  inventory ({}, {})",
                        path.display(),
                        counted(loaded.hosts().len(), "host"),
                        counted(loaded.group_names().count(), "group")
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
