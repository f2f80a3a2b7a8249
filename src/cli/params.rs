//! Param values as the operator gives them: `--params-file` first, then `-p` (later wins).
//! Files named here are read by the command line, with the operator's own rights, and only
//! their contents go on to [`crate::ops`] (SPEC §4.6: the service never opens a path a client
//! names).

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use super::args::Target;
use crate::diagnostic::{Diagnostic, read_source};
use crate::error::Error;
use crate::gate::{Denial, ProcessIdentity, Rule};
use crate::ops::PlanTarget;
use crate::plan::{ParamInput, ParamSource};
use crate::runbook;
use crate::secret::Secret;

/// The plain [`PlanTarget`] of `plan`/`run` arguments, reading every file they name.
pub(super) fn plan_target(target: &Target, caller: &ProcessIdentity) -> Result<PlanTarget, Error> {
    let mut params = Vec::new();
    if let Some(path) = &target.params_file {
        params.extend(params_file(path, caller)?);
    }
    for raw in &target.params {
        let Some((name, value)) = raw.split_once('=') else {
            return Err(Diagnostic::error(format!("`-p {raw}` is not NAME=VALUE"))
                .hint("write `-p keep=7`, or `-p db_pass=@FILE` to read a file")
                .into());
        };
        let input = match value.strip_prefix('@') {
            Some(file) => {
                operator_owns(Path::new(file), caller)?;
                let text = std::fs::read_to_string(file).map_err(|error| {
                    Error::from(Diagnostic::error(format!(
                        "param `{name}`: cannot read `{file}`: {error}"
                    )))
                })?;
                ParamInput {
                    name: name.to_owned(),
                    value: Secret::new(crate::actions::trim_newline(&text).to_owned()),
                    source: ParamSource::FileReference,
                }
            }
            None => ParamInput {
                name: name.to_owned(),
                value: Secret::new(value.to_owned()),
                source: ParamSource::CommandLine,
            },
        };
        params.push(input);
    }
    Ok(PlanTarget {
        runbook: target.runbook.clone(),
        limit: target.limit.clone(),
        widen: target.widen.clone(),
        params,
    })
}

/// Reads `--params-file`: a YAML mapping of names to scalars, refused unless only its owner can
/// read it, because it is where secrets belong.
fn params_file(path: &Path, caller: &ProcessIdentity) -> Result<Vec<ParamInput>, Error> {
    let metadata = std::fs::metadata(path).map_err(|error| {
        Error::from(Diagnostic::error(format!(
            "cannot read params file `{}`: {error}",
            path.display()
        )))
    })?;
    operator_owns(path, caller)?;
    let mode = metadata.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(Diagnostic::error(format!(
            "params file `{}` has mode {mode:04o}; it may hold secrets",
            path.display()
        ))
        .hint(format!("make it private: chmod 600 {}", path.display()))
        .into());
    }
    let file = read_source(path)?;
    // The file holds secrets: an error names the place, never quotes the line.
    let values: indexmap::IndexMap<String, runbook::schema::Scalar> =
        serde_saphyr::from_str(&file.text).map_err(|error| {
            let place = error
                .location()
                .map(|location| format!(" at line {}", location.line()))
                .unwrap_or_default();
            Error::from(
                Diagnostic::error(format!(
                    "params file `{}` is not a mapping of param names to values{place}",
                    path.display()
                ))
                .hint("write one `name: value` per line"),
            )
        })?;
    Ok(values
        .into_iter()
        .map(|(name, value)| ParamInput {
            name,
            value: Secret::new(value.to_text()),
            source: ParamSource::ParamsFile,
        })
        .collect())
}

/// Under a sudo identity opsgate reads files with the service account's rights: a file named
/// for a param must belong to the operator, or `-p x=@/path/to/the/service/key` would hand the
/// operator what only the service account may read (SPEC §4.6).
fn operator_owns(path: &Path, caller: &ProcessIdentity) -> Result<(), Error> {
    if !crate::ops::trust::acts_for_sudo_user(caller) {
        return Ok(());
    }
    let operator = caller.sudo_user.as_deref().unwrap_or_default();
    let owner =
        std::fs::metadata(path).map(|metadata| std::os::unix::fs::MetadataExt::uid(&metadata));
    let expected = crate::os_account::uid_of(operator);
    match (owner, expected) {
        (Ok(owner), Some(expected)) if owner == expected => Ok(()),
        _ => Err(Denial::new(
            Rule::UntrustedPath,
            format!(
                "under sudo, `{}` must be a file `{operator}` owns",
                path.display()
            ),
            "opsgate reads it with the service account's rights; use a file of your own, or the \
             no-echo prompt",
        )
        .into()),
    }
}
