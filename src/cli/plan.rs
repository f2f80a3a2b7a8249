//! `opsgate plan`, and the preparation `run` shares with it: load → validate → plan.

use std::fmt::Write as _;
use std::io::{IsTerminal, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;

use super::args::{PlanArgs, PlanCommand, Target};
use super::saved::{self, SavedPlan};
use super::{audit_error, emit, warn};
use crate::audit::AuditStore;
use crate::diagnostic::{Diagnostic, Diagnostics, Style, read_source};
use crate::error::{Error, Exit};
use crate::gate::{Decision, decide};
use crate::inventory::Inventory;
use crate::plan::{self, ParamInput, ParamSource, Plan};
use crate::project::Project;
use crate::runbook;
use crate::template::Renderer;

/// Prints the plan; nothing connects anywhere.
pub(super) fn run(
    args: &PlanArgs,
    project: &Project,
    json: bool,
    style: Style,
    out: &mut dyn Write,
) -> Result<Exit, Error> {
    if let Some(PlanCommand::Show { plan }) = &args.command {
        return show(plan, project, json, style, out);
    }
    let renderer = Renderer::new();
    let gatekeeper = super::gate::Gatekeeper::load(project, style)?;
    if args.save {
        gatekeeper.require_operator("save plans for approval")?;
    }
    let plan = prepare(
        &args.target,
        project,
        &renderer,
        style,
        gatekeeper.account(),
    )?;
    let decision = gate_preview(&gatekeeper, project, &plan);
    if args.save {
        let saved = SavedPlan {
            version: 1,
            author: gatekeeper.account().to_owned(),
            created_at: crate::audit::query::format_timestamp(jiff::Timestamp::now()),
            runbook: args.target.runbook.clone().unwrap_or_default(),
            limit: args.target.limit.clone(),
            widen: args.target.widen.clone(),
            display: plan::display(&plan, Style::Plain),
            fingerprint: saved::fingerprint(
                &plan,
                gatekeeper.policy.as_ref().map(crate::gate::Policy::digest),
                plan_json(&plan),
            ),
            secrets: saved::secret_checks(&plan)?,
        };
        let id = saved::save(&project.state_dir, &saved)?;
        let text = if json {
            format!(
                "{}\n",
                serde_json::json!({ "plan": id, "author": saved.author })
            )
        } else {
            format!(
                "{}{}\nsaved plan {id}; an approver reviews it with `opsgate plan show {id}` and \
                 approves it with `opsgate approve plan {id}`; then run it with `opsgate run \
                 --plan {id}` (once, within the policy's `plan_ttl`, default 24h)\n",
                plan::display(&plan, style),
                decision.as_ref().map(decision_text).unwrap_or_default()
            )
        };
        emit(out, &text)?;
        return Ok(Exit::Ok);
    }
    if json {
        let mut value = plan_json(&plan);
        if let Some(decision) = &decision {
            value["gate"] = decision_json(decision);
        }
        emit(out, &format!("{value}\n"))?;
    } else {
        let mut text = plan::display(&plan, style);
        if let Some(decision) = &decision {
            text.push_str(&decision_text(decision));
        }
        emit(out, &text)?;
    }
    Ok(Exit::Ok)
}

/// `plan show PLAN`: the saved plan, who saved it when, and its approvals.
fn show(
    id: &str,
    project: &Project,
    json: bool,
    style: Style,
    out: &mut dyn Write,
) -> Result<Exit, Error> {
    let _ = style;
    let saved = saved::load(&project.state_dir, id)?;
    let approvals: Vec<(String, String)> = if project.state_dir.join("audit.db").exists() {
        let store = AuditStore::open(&project.state_dir).map_err(|error| audit_error(&error))?;
        store
            .plan_approvals(id)
            .map_err(|error| audit_error(&error))?
            .into_iter()
            .filter_map(|event| match event.record {
                Some(crate::audit::Record::ApprovalGranted {
                    approver,
                    approver_level,
                    ..
                }) => Some((
                    format!("approved by {approver} (L{approver_level})"),
                    crate::audit::query::format_timestamp(event.at),
                )),
                Some(crate::audit::Record::ApprovalRejected {
                    approver,
                    approver_level,
                    reason,
                    ..
                }) => Some((
                    format!(
                        "rejected by {approver} (L{approver_level}){}",
                        reason
                            .map(|reason| format!(": {reason}"))
                            .unwrap_or_default()
                    ),
                    crate::audit::query::format_timestamp(event.at),
                )),
                _ => None,
            })
            .collect()
    } else {
        Vec::new()
    };
    if json {
        let value = serde_json::json!({
            "plan": id,
            "saved": saved,
            "approvals": approvals.iter().map(|(what, at)| serde_json::json!({"what": what, "at": at})).collect::<Vec<_>>(),
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
    if approvals.is_empty() {
        text.push_str("\nnot approved yet\n");
    }
    for (what, at) in approvals {
        let _ = writeln!(text, "\n{at}  {what}");
    }
    emit(out, &text)?;
    Ok(Exit::Ok)
}

/// What the gate would decide for a plain `run` of this plan (SPEC §4.4), judged like `run`
/// does but recorded nowhere; `None` in single-operator mode, where no gate applies.
fn gate_preview(
    gatekeeper: &super::gate::Gatekeeper,
    project: &Project,
    plan: &Plan,
) -> Option<Decision> {
    if gatekeeper.single_operator() {
        return None;
    }
    // A project that never recorded anything has no catalog approvals; `plan` does not create
    // the state directory just to find that out.
    // `plan` is ungated: an account that cannot open the store (it belongs to the service
    // account) still gets its plan, only without the preview.
    let approvals = if project.state_dir.join("audit.db").exists() {
        let store = AuditStore::open(&project.state_dir).ok()?;
        super::gate::catalog_approvals(&store, gatekeeper.policy.as_ref()).ok()?
    } else {
        std::collections::HashMap::new()
    };
    let flags = super::gate::RunFlags {
        check: false,
        break_glass: false,
        reason: None,
    };
    let request = super::gate::run_request(plan, &approvals, flags);
    Some(decide(
        gatekeeper.policy.as_ref(),
        &gatekeeper.identity,
        &request,
    ))
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

/// Loads the runbook and inventory, resolves params and builds the plan, reporting every
/// problem of each stage at once. Nothing here contacts a host. `operator` is the gate's
/// identity (`run.operator` in templates).
pub(super) fn prepare(
    target: &Target,
    project: &Project,
    renderer: &Renderer,
    style: Style,
    operator: &str,
) -> Result<Plan, Error> {
    let Some(argument) = &target.runbook else {
        return Err(Diagnostic::error("no RUNBOOK given")
            .hint("name a runbook file or catalog id, e.g. `opsgate plan patch-debian`")
            .into());
    };
    let runbook_path = project.runbook_path(argument)?;
    let runbook_result = runbook::load(&runbook_path);
    let inventory_result = Inventory::load(&project.inventory).map_err(|mut diagnostics| {
        if !project.inventory.exists() {
            diagnostics = Diagnostic::error(format!("inventory `{}` does not exist", project.inventory.display()))
                .hint("pass one with `-i PATH`, or start a lab: `opsgate lab up` prints an inventory path")
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
    warn(&runbook_warnings, style);
    warn(&inventory_warnings, style);
    let runbook = Arc::new(runbook);
    let inputs = param_inputs(target, &runbook)?;
    let (params, param_warnings) = plan::resolve_params(&runbook, &inputs)?;
    warn(&param_warnings, style);
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

/// Collects param values: `--params-file` first, then `-p` (later wins), then a no-echo prompt
/// for required secrets still missing when a terminal is attached.
fn param_inputs(target: &Target, runbook: &runbook::Runbook) -> Result<Vec<ParamInput>, Error> {
    let mut inputs = Vec::new();
    if let Some(path) = &target.params_file {
        inputs.extend(params_file(path)?);
    }
    for raw in &target.params {
        let Some((name, value)) = raw.split_once('=') else {
            return Err(Diagnostic::error(format!("`-p {raw}` is not NAME=VALUE"))
                .hint("write `-p keep=7`, or `-p db_pass=@FILE` to read a file")
                .into());
        };
        let input = match value.strip_prefix('@') {
            Some(file) => {
                operator_owns(Path::new(file))?;
                let text = std::fs::read_to_string(file).map_err(|error| {
                    Error::from(Diagnostic::error(format!(
                        "param `{name}`: cannot read `{file}`: {error}"
                    )))
                })?;
                ParamInput {
                    name: name.to_owned(),
                    value: crate::actions::trim_newline(&text).to_owned(),
                    source: ParamSource::FileReference,
                }
            }
            None => ParamInput {
                name: name.to_owned(),
                value: value.to_owned(),
                source: ParamSource::CommandLine,
            },
        };
        inputs.push(input);
    }
    if std::io::stdin().is_terminal() {
        for spec in runbook
            .params
            .iter()
            .filter(|spec| spec.secret && spec.required)
        {
            if inputs.iter().any(|input| input.name == spec.name) {
                continue;
            }
            let value = rpassword::prompt_password(format!(
                "{} (secret param `{}`): ",
                runbook.id, spec.name
            ))
            .map_err(|error| {
                Error::environment(
                    format!("cannot read secret param `{}`: {error}", spec.name),
                    vec![],
                )
            })?;
            inputs.push(ParamInput {
                name: spec.name.clone(),
                value,
                source: ParamSource::Prompt,
            });
        }
    }
    Ok(inputs)
}

/// Reads `--params-file`: a YAML mapping of names to scalars, refused unless only its owner can
/// read it, because it is where secrets belong.
fn params_file(path: &Path) -> Result<Vec<ParamInput>, Error> {
    let metadata = std::fs::metadata(path).map_err(|error| {
        Error::from(Diagnostic::error(format!(
            "cannot read params file `{}`: {error}",
            path.display()
        )))
    })?;
    operator_owns(path)?;
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
            value: value.to_text(),
            source: ParamSource::ParamsFile,
        })
        .collect())
}

/// Under a sudo identity opsgate reads files with the service account's rights: a file named
/// for a param must belong to the operator, or `-p x=@/path/to/the/service/key` would hand the
/// operator what only the service account may read (SPEC §4.6).
fn operator_owns(path: &Path) -> Result<(), Error> {
    let Ok(process) = crate::gate::ProcessIdentity::current() else {
        return Ok(());
    };
    if !super::trust::acts_for_sudo_user(&process) {
        return Ok(());
    }
    let operator = process.sudo_user.as_deref().unwrap_or_default();
    let owner =
        std::fs::metadata(path).map(|metadata| std::os::unix::fs::MetadataExt::uid(&metadata));
    let expected = crate::os_account::uid_of(operator);
    match (owner, expected) {
        (Ok(owner), Some(expected)) if owner == expected => Ok(()),
        _ => Err(Error::Denied {
            message: format!("under sudo, `{}` must be a file `{operator}` owns", path.display()),
            hints: vec!["opsgate reads it with the service account's rights; use a file of your own, or the no-echo prompt".to_owned()],
        }),
    }
}

/// The plan as one JSON object (secrets masked).
pub(super) fn plan_json(plan: &Plan) -> serde_json::Value {
    let hosts: Vec<serde_json::Value> = plan
        .hosts
        .iter()
        .map(|host| {
            serde_json::json!({
                "host": host.host.name.as_str(),
                "address": host.host.address,
                "steps": host.steps.iter().map(|step| plan.redact(&step.name)).collect::<Vec<_>>(),
            })
        })
        .collect();
    serde_json::json!({
        "runbook": plan.runbook.id,
        "digest": plan.runbook.digest,
        "kind": plan.runbook.kind.as_str(),
        "pattern": plan.pattern,
        // Unlike `Plan::masked_params`, values keep their JSON type (ints stay numbers).
        "params": plan.params.iter().map(|(name, value)| {
            let secret = plan.runbook.param(name).is_some_and(|spec| spec.secret);
            (name.clone(), if secret { "***".into() } else { value.to_json() })
        }).collect::<serde_json::Map<_, _>>(),
        "batches": plan.batches.iter().map(|batch| batch.iter().map(|index| plan.hosts[*index].host.name.as_str()).collect::<Vec<_>>()).collect::<Vec<_>>(),
        "hosts": hosts,
    })
}
