//! The planning stage: runbook + inventory + params → a [`Plan`], before any connection.
//!
//! [`build`] is pure: it resolves the target hosts, converts `-p` values to their declared types,
//! and renders every field of every step for every host. A field that reads `facts.*`, a
//! registered result or `run.id` cannot be known yet; it is checked (its names exist, its syntax
//! is valid — [`crate::runbook::validate`] did that) and kept as [`Field::AtRunTime`] for the
//! executor to render on that host. Everything else is [`Field::Ready`]: the text the plan shows
//! is the text the host will run.
//!
//! The plan is what the user sees (`opsgate plan`), what the gate judges, what the audit records
//! and what the executor runs; nothing downstream reads the runbook file or the inventory again.

mod display;
mod params;
mod rendered;
pub mod saved;

use std::collections::BTreeSet;
use std::sync::Arc;

use serde_json::{Map, Value, json};
use sha2::Digest as _;
use thiserror::Error;

pub use display::{render as display, summary as step_summary};
pub use params::{Param, ParamInput, ParamSource, Params, resolve as resolve_params};
pub use rendered::Rendered;

use crate::diagnostic::{Diagnostic, Diagnostics};
use crate::inventory::{GroupName, Host, Inventory};
use crate::runbook::Runbook;
use crate::runbook::model::{Step, Text};
use crate::runbook::value::ValueError;
use crate::secret::{MASK, Secret};
use crate::template::{self, Renderer, TemplateError};
use crate::transport::SshTarget;

/// A field of a planned step.
#[derive(Debug, Clone, PartialEq)]
pub enum Field {
    /// Rendered and typed at plan time: exactly what will run.
    Ready(Rendered),
    /// Needs facts, registered results or the run id: rendered on the host when the step runs.
    AtRunTime(Text),
}

/// What the caller asks to plan.
#[derive(Debug)]
pub struct Request<'a> {
    /// The validated runbook.
    pub runbook: Arc<Runbook>,
    /// The inventory.
    pub inventory: &'a Inventory,
    /// `-l PATTERN`: narrows the runbook's `targets`.
    pub limit: Option<&'a str>,
    /// `--widen PATTERN`: adds hosts outside `targets` (a gated privilege).
    pub widen: Option<&'a str>,
    /// Param values, already typed by [`resolve_params`].
    pub params: Params,
    /// The operator the run is for, as `run.operator`.
    pub operator: String,
}

/// A fully rendered plan.
#[derive(Debug)]
pub struct Plan {
    /// The runbook it was built from.
    pub runbook: Arc<Runbook>,
    /// Param values in declaration order.
    pub params: Params,
    /// Values that must never be shown or stored (secret params), for redaction.
    pub secrets: Vec<Secret<String>>,
    /// The host pattern the run targets, as the user would read it.
    pub pattern: String,
    /// Whether `--widen` added hosts outside the runbook's `targets`.
    pub widened: bool,
    /// Hosts in inventory order, each with its rendered steps.
    pub hosts: Vec<HostPlan>,
    /// Rolling batches: indexes into `hosts`.
    pub batches: Vec<Vec<usize>>,
    /// Failed hosts tolerated before later batches are skipped.
    pub max_failures: usize,
    /// SHA-256 of the inventory file.
    pub inventory_digest: String,
}

/// One host's part of the plan.
#[derive(Debug)]
pub struct HostPlan {
    /// The inventory host.
    pub host: Host,
    /// How to reach it, jump hosts resolved.
    pub target: SshTarget,
    /// Template context known at plan time, without the params: `host`, `vars`,
    /// `run.operator`. [`Plan::template_context`] adds the params, so a plan holds a secret
    /// param's value only in [`Plan::params`], where it is a [`Secret`].
    pub context: Value,
    /// Rendered steps.
    pub steps: Vec<Step<Field>>,
    /// Rendered `on_failure` steps.
    pub on_failure: Vec<Step<Field>>,
}

impl Plan {
    /// Params in declaration order as text, secret ones as [`MASK`]: what the plan display,
    /// JSON output, saved plans and the audit record show.
    #[must_use]
    pub fn masked_params(&self) -> Vec<(String, String)> {
        self.params
            .iter()
            .map(|(name, value)| (name.clone(), value.masked_text()))
            .collect()
    }

    /// The hosts' names, in plan order.
    #[must_use]
    pub fn host_names(&self) -> Vec<String> {
        self.hosts
            .iter()
            .map(|host| host.host.name.to_string())
            .collect()
    }

    /// SHA-256 of every rendered step (and `on_failure` step) on every host, with its
    /// connection target, secrets masked: what a saved plan's drift check compares. Built from
    /// the plan's own typed values (their `Debug` form, which holds no map of unstable order),
    /// not from any output format, so changing `plan --json` or the display moves nothing.
    #[must_use]
    pub fn rendered_digest(&self) -> String {
        let mut hasher = sha2::Sha256::new();
        for host in &self.hosts {
            let steps = format!(
                "{}\n{:?}\n{:?}\n{:?}\n",
                host.host.name, host.target, host.steps, host.on_failure
            );
            sha2::Digest::update(&mut hasher, self.redact(&steps).as_bytes());
            sha2::Digest::update(&mut hasher, b"\0");
        }
        hex::encode(sha2::Digest::finalize(hasher))
    }

    /// The value with every secret replaced by [`MASK`].
    #[must_use]
    pub fn redact(&self, text: &str) -> String {
        redact(text, &self.secrets)
    }

    /// The whole template context of `host`: its plan-time context plus the params, secret ones
    /// exposed. For rendering only; never show it.
    #[must_use]
    pub fn template_context(&self, host: &HostPlan) -> Value {
        with_params(&host.context, &self.params)
    }
}

/// `context` with `params` added, secret ones exposed: the context templates are rendered on.
fn with_params(context: &Value, params: &Params) -> Value {
    let params: Map<String, Value> = params
        .iter()
        .map(|(name, value)| (name.clone(), value.expose().to_json()))
        .collect();
    let mut context = context.clone();
    context["params"] = Value::Object(params);
    context
}

/// Replaces every occurrence of each secret in `text` by [`MASK`]: the value itself, and the
/// shell-quoted form a `command` template renders it as (`'pa'\''ss'` does not contain `pa'ss`).
#[must_use]
pub fn redact(text: &str, secrets: &[Secret<String>]) -> String {
    let mut text = text.to_owned();
    for secret in secrets.iter().map(Secret::expose) {
        if secret.is_empty() {
            continue;
        }
        let quoted = crate::quote::shell_quote(secret);
        if quoted != *secret {
            text = text.replace(&quoted, MASK);
        }
        text = text.replace(secret.as_str(), MASK);
    }
    text
}

/// Builds the plan, or every reason it cannot be built.
pub fn build(request: Request<'_>, renderer: &Renderer) -> Result<Plan, Diagnostics> {
    let runbook = Arc::clone(&request.runbook);
    let file = &runbook.source;
    let (targets, targets_span) = &runbook.targets;
    let select = |pattern: &str| {
        request.inventory.select(pattern).map_err(|error| {
            let mut diagnostic = Diagnostic::error(format!("host pattern `{pattern}`: {error}"));
            diagnostic.hints = error.hints();
            diagnostic
        })
    };
    let in_targets = select(targets).map_err(|diagnostic| diagnostic.at(file, *targets_span))?;
    let mut selected = in_targets.clone();
    let mut pattern = targets.clone();
    if let Some(limit) = request.limit {
        let limited: BTreeSet<&str> = select(limit)?
            .iter()
            .map(|host| host.name.as_str())
            .collect();
        selected.retain(|host| limited.contains(host.name.as_str()));
        pattern = format!("{targets} & {limit}");
    }
    let mut widened = false;
    if let Some(widen) = request.widen {
        let extra = select(widen)?;
        // Widening means reaching a host outside the runbook's `targets`, whatever `-l` chose.
        widened = extra
            .iter()
            .any(|host| !in_targets.iter().any(|target| target.name == host.name));
        let wanted: BTreeSet<&str> = selected
            .iter()
            .chain(&extra)
            .map(|host| host.name.as_str())
            .collect();
        selected = request
            .inventory
            .hosts()
            .iter()
            .filter(|host| wanted.contains(host.name.as_str()))
            .collect();
        pattern = format!("{pattern} + {widen}");
    }
    if selected.is_empty() {
        return Err(Diagnostic::error(format!("pattern `{pattern}` selects no host"))
            .hint("`-l` narrows the runbook's `targets`; list the hosts with `opsgate inventory list`")
            .into());
    }

    let secrets: Vec<Secret<String>> = request
        .params
        .iter()
        .filter_map(|(_, value)| match value {
            Param::Secret(secret) => Some(secret.clone().map(|value| value.to_text())),
            Param::Public(_) => None,
        })
        .collect();

    let mut diagnostics = Diagnostics::new();
    let mut hosts = Vec::new();
    for host in selected {
        let public = json!({
            "host": {
                "name": host.name.as_str(),
                "address": host.address,
                "groups": host.groups.iter().map(GroupName::as_str).collect::<Vec<_>>(),
                "environment": host.environment,
            },
            "vars": host.vars,
            "run": { "operator": request.operator },
        });
        let context = with_params(&public, &request.params);
        let mut render = |text: &Text| -> Result<Field, Diagnostic> {
            render_field(renderer, text, &context, &secrets).map_err(|error| {
                let message = redact(&error.to_string(), &secrets);
                Diagnostic::error(format!("host `{}`: {message}", host.name)).at(file, text.span)
            })
        };
        let mut plan_steps = |steps: &[Step<Text>]| -> Vec<Step<Field>> {
            steps
                .iter()
                .filter_map(|step| match step.try_map(&mut render) {
                    Ok(mut step) => {
                        step.name = render_name(renderer, &step.name, &context, &secrets);
                        Some(step)
                    }
                    Err(diagnostic) => {
                        diagnostics.push(diagnostic);
                        None
                    }
                })
                .collect()
        };
        let steps = plan_steps(&runbook.steps);
        let on_failure = plan_steps(&runbook.on_failure);
        hosts.push(HostPlan {
            host: host.clone(),
            target: ssh_target(request.inventory, host, 0),
            context: public,
            steps,
            on_failure,
        });
    }
    if diagnostics.has_errors() {
        return Err(diagnostics);
    }

    let total = hosts.len();
    let batch = runbook.rolling.batch.of(total).clamp(1, total);
    let batches = (0..total)
        .collect::<Vec<_>>()
        .chunks(batch)
        .map(<[usize]>::to_vec)
        .collect();
    Ok(Plan {
        max_failures: runbook.rolling.max_failures.of(total),
        params: request.params,
        secrets,
        pattern,
        widened,
        hosts,
        batches,
        inventory_digest: request.inventory.digest(),
        runbook,
    })
}

/// Why a field could not be rendered: its template failed, or what it rendered to is not a value
/// of the field's type (`timeout: "{{ params.wait }}"` rendering to `soon`).
#[derive(Debug, Error)]
pub enum FieldError {
    /// The template itself failed: a missing variable, a bad filter.
    #[error(transparent)]
    Template(#[from] TemplateError),
    /// The rendered text is not a valid value of the field.
    #[error(transparent)]
    Value(#[from] ValueError),
}

/// Renders a field's template and parses the result as the field's type: the one place both
/// plan time and run time turn a template into a typed value. `secrets` are masked when the
/// result is shown.
pub fn render_text(
    renderer: &Renderer,
    text: &Text,
    context: &Value,
    secrets: &[Secret<String>],
) -> Result<Rendered, FieldError> {
    let output = renderer.render(text.mode, &text.source, context)?;
    let value = text.kind.parse(&output)?;
    Ok(Rendered::new(output, value, secrets))
}

/// Renders a field now when it only reads plan-time values, else defers it. A literal is typed
/// here too (validation has checked it parses), so the executor gets every ready field typed.
fn render_field(
    renderer: &Renderer,
    text: &Text,
    context: &Value,
    secrets: &[Secret<String>],
) -> Result<Field, FieldError> {
    if !template::is_template(&text.source) {
        let value = text.kind.parse(&text.source)?;
        return Ok(Field::Ready(Rendered::new(
            text.source.clone(),
            value,
            secrets,
        )));
    }
    let references = template::references(&text.source)?;
    if references
        .iter()
        .any(|reference| !is_plan_time(&reference.path))
    {
        return Ok(Field::AtRunTime(text.clone()));
    }
    render_text(renderer, text, context, secrets).map(Field::Ready)
}

/// A step's name with this host's plan-time values filled in (`restart {{host.name}}` →
/// `restart web1`), secrets masked, so the plan, the live output and the history name the step
/// as it runs on this host. A name that reads run-time values (facts, registered results) or
/// does not render stays as written: a name is a label, never a reason to refuse a plan.
fn render_name(
    renderer: &Renderer,
    name: &str,
    context: &Value,
    secrets: &[Secret<String>],
) -> String {
    if !template::is_template(name) {
        return name.to_owned();
    }
    let plan_time = template::references(name).is_ok_and(|references| {
        references
            .iter()
            .all(|reference| is_plan_time(&reference.path))
    });
    if !plan_time {
        return name.to_owned();
    }
    renderer
        .render(template::Mode::Data, name, context)
        .map_or_else(|_| name.to_owned(), |rendered| redact(&rendered, secrets))
}

/// Whether a template path can be rendered before any host is contacted.
fn is_plan_time(path: &[String]) -> bool {
    match path.first().map(String::as_str) {
        Some("params" | "host" | "vars" | "this" | "@index" | "@key" | "@first" | "@last") => true,
        Some("run") => path.get(1).is_some_and(|field| field == "operator"),
        _ => false,
    }
}

/// Jump chains longer than this are cut: the inventory rejects a host jumping through itself,
/// and real chains are one or two hops.
const MAX_JUMPS: usize = 8;

/// The connection settings of `host`, with its `jump` host resolved recursively.
fn ssh_target(inventory: &Inventory, host: &Host, depth: usize) -> SshTarget {
    let jump = host
        .jump
        .as_ref()
        .filter(|_| depth < MAX_JUMPS)
        .and_then(|name| inventory.host(name.as_str()))
        .map(|jump| Box::new(ssh_target(inventory, jump, depth + 1)));
    SshTarget {
        host: host.name.to_string(),
        address: host.address.clone(),
        port: host.port,
        user: host.user.clone(),
        identity_file: host.identity_file.clone(),
        known_hosts: host.known_hosts.clone(),
        ssh_config: host.ssh_config.clone(),
        host_key: host.host_key.clone(),
        ssh_options: host.ssh_options.clone(),
        jump,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::{Field, Param, Params, Plan, Request};
    use crate::diagnostic::{Diagnostics, SourceFile};
    use crate::inventory::Inventory;
    use crate::runbook::model::{Action, Command, ParamValue};
    use crate::secret::{MASK, Secret};
    use crate::template::Renderer;

    const PASSWORD: &str = "hunter2-s3cret";

    /// A plan whose command, data field and condition all read the secret param `password`.
    fn plan_with_a_secret(password: &str) -> Plan {
        build_with_a_secret(
            "  - name: login\n    command: mysql -p{{params.password}}\n    failed_when: \"{{#if (eq params.password 'x')}}true{{else}}false{{/if}}\"\n  - copy: { content: \"pw={{params.password}}\\n\", dest: /etc/db.conf }\n",
            password,
        )
        .expect("plan builds")
    }

    /// Plans `steps` on one host with the secret param `password`.
    fn build_with_a_secret(steps: &str, password: &str) -> Result<Plan, Diagnostics> {
        let runbook = SourceFile::new(
            "db.yaml",
            format!(
                "runbook: db\nkind: maintenance\ntargets: db\nparams:\n  password: {{ type: string, secret: true }}\nsteps:\n{steps}"
            ),
        );
        let (runbook, _) = crate::runbook::parse(&runbook).expect("valid runbook");
        let inventory = SourceFile::new(
            "hosts.yaml",
            "hosts:\n  db1: { address: 10.0.0.5 }\ngroups:\n  db: { hosts: [db1] }\n",
        );
        let (inventory, _) = Inventory::parse(inventory).expect("valid inventory");
        let params: Params = vec![(
            "password".into(),
            Param::Secret(Secret::new(ParamValue::Text(password.into()))),
        )];
        super::build(
            Request {
                runbook: Arc::new(runbook),
                inventory: &inventory,
                limit: None,
                widen: None,
                params,
                operator: "alice".into(),
            },
            &Renderer::new(),
        )
    }

    #[test]
    fn debug_of_a_plan_never_shows_a_secret_param() {
        let plan = plan_with_a_secret(PASSWORD);
        for text in [format!("{plan:?}"), format!("{plan:#?}")] {
            assert!(!text.contains(PASSWORD), "{text}");
            assert!(text.contains(&format!("mysql -p{MASK}")), "{text}");
        }
        // What the host gets is still the value itself.
        let host = &plan.hosts[0];
        let Action::Command(Command {
            text: Field::Ready(command),
            ..
        }) = &host.steps[0].action
        else {
            panic!("the command is rendered at plan time");
        };
        assert_eq!(command.text(), format!("mysql -p{PASSWORD}"));
        assert_eq!(plan.template_context(host)["params"]["password"], PASSWORD);
    }

    #[test]
    fn a_plan_error_that_quotes_a_rendered_secret_masks_it() {
        let error = build_with_a_secret(
            "  - command: sleep 1\n    timeout: \"{{params.password}}\"\n",
            PASSWORD,
        )
        .map(drop)
        .expect_err("the password is not a duration");
        let text = format!("{error:?}");
        assert!(!text.contains(PASSWORD), "{text}");
        assert!(
            text.contains(&format!("`{MASK}` is not a duration")),
            "{text}"
        );
    }

    #[test]
    fn the_drift_digest_does_not_depend_on_a_secret_value() {
        // `Debug` escapes a quote or a backslash, so masking the formatted text afterwards
        // missed a secret holding one, and it reached the digest a saved plan stores.
        let digests: Vec<String> = [PASSWORD, "pa\"ss", "back\\slash"]
            .into_iter()
            .map(|password| plan_with_a_secret(password).rendered_digest())
            .collect();
        assert_eq!(digests[0], digests[1]);
        assert_eq!(digests[0], digests[2]);
    }

    #[test]
    fn step_names_render_plan_time_values_and_keep_the_rest_as_written() {
        let renderer = crate::template::Renderer::new();
        let context = serde_json::json!({
            "host": { "name": "web1" },
            "params": { "who": "ops", "token": "hush" },
        });
        let secrets = vec![crate::secret::Secret::new("hush".to_owned())];
        let name = |text: &str| super::render_name(&renderer, text, &context, &secrets);
        assert_eq!(name("plain name"), "plain name");
        assert_eq!(
            name("greet {{host.name}} as {{params.who}}"),
            "greet web1 as ops"
        );
        assert_eq!(name("with {{params.token}}"), "with ***");
        assert_eq!(name("on {{facts.os_family}}"), "on {{facts.os_family}}");
        assert_eq!(name("broken {{#if}}"), "broken {{#if}}");
        assert_eq!(name("missing {{params.nope}}"), "missing {{params.nope}}");
    }

    #[test]
    fn secrets_are_masked_raw_and_shell_quoted() {
        let secrets = vec![crate::secret::Secret::new("pa'ss word".to_owned())];
        let rendered = format!(
            "mysql -p{} && echo pa'ss word",
            crate::quote::shell_quote("pa'ss word")
        );
        assert_eq!(
            super::redact(&rendered, &secrets),
            "mysql -p*** && echo ***"
        );
    }
}
