//! One host's run: connect, run its steps in order, `on_failure` after a failure, disconnect.
//!
//! The host's mutable state (registered results, facts, secrets learned from `secret` steps) is
//! owned by this task alone; other hosts never see it.

use std::collections::BTreeSet;
use std::time::Instant;

use serde_json::{Value, json};
use tokio::sync::watch;

use super::event::{Event, HostOutcome, Phase, Status, StepReport};
use super::gate::{GateAnswer, GateMode};
use super::reboot::Reboot;
use super::resolved::{self, Resolved, Settings, StepError, ignore_errors_at_plan_time};
use super::{Cancel, Shared, facts};
use crate::actions::{self, Context, Outcome, RunMode};
use crate::plan::{self, Field, Rendered, redact};
use crate::runbook::model::{Action, Step, Text};
use crate::secret::Secret;
use crate::template;
use crate::transport::{Connection, SshTarget, TransportError};

/// Runs every step of host `index` and reports how the host ended.
pub(super) async fn run(
    shared: &Shared,
    index: usize,
    cancel: watch::Receiver<Cancel>,
) -> HostOutcome {
    let host_plan = &shared.plan.hosts[index];
    let name = host_plan.host.name.to_string();
    if *cancel.borrow() != Cancel::Running {
        let _ = shared
            .events
            .send(Event::HostFinished {
                host: name,
                outcome: HostOutcome::Cancelled,
            })
            .await;
        return HostOutcome::Cancelled;
    }
    let connection = match Connection::connect(
        &host_plan.target,
        &shared.options.control_dir,
        shared.options.connect_timeout,
    )
    .await
    {
        Ok(connection) => connection,
        Err(error) => {
            let mut message = error.to_string();
            for hint in error.hints() {
                message.push_str("\nhint: ");
                message.push_str(&hint);
            }
            let _ = shared
                .events
                .send(Event::HostUnreachable {
                    host: name.clone(),
                    message,
                })
                .await;
            let _ = shared
                .events
                .send(Event::HostFinished {
                    host: name,
                    outcome: HostOutcome::Unreachable,
                })
                .await;
            return HostOutcome::Unreachable;
        }
    };
    let mut context = shared.plan.template_context(host_plan);
    context["run"]["id"] = Value::String(shared.options.run_id.clone());
    let mut runner = HostRunner {
        shared,
        host: &name,
        target: &host_plan.target,
        connection,
        context,
        secrets: shared.plan.secrets.clone(),
        cancel,
        facts_gathered: false,
        unrun_by_check: BTreeSet::new(),
    };
    let outcome = runner
        .run_all(&host_plan.steps, &host_plan.on_failure)
        .await;
    let _ = runner.connection.close().await;
    let _ = shared
        .events
        .send(Event::HostFinished {
            host: name,
            outcome,
        })
        .await;
    outcome
}

struct HostRunner<'a> {
    shared: &'a Shared,
    host: &'a str,
    /// How to reach the host, for a `reboot` step's new connection.
    target: &'a SshTarget,
    /// Owned, because a `reboot` step replaces it with a new one.
    connection: Connection,
    /// Plan-time context plus `run.id`, `facts` and registered results as they appear.
    context: Value,
    /// Values never shown: secret params and what `secret: true` steps registered.
    secrets: Vec<Secret<String>>,
    cancel: watch::Receiver<Cancel>,
    facts_gathered: bool,
    /// Under `--check`: names registered by steps that `--check` did not run.
    unrun_by_check: BTreeSet<String>,
}

/// How one step ended, for the host's control flow.
enum Flow {
    Continue,
    Failed,
    Unreachable,
    Cancelled,
}

impl HostRunner<'_> {
    async fn run_all(&mut self, steps: &[Step<Field>], on_failure: &[Step<Field>]) -> HostOutcome {
        match self.run_list(steps, Phase::Main, 0).await {
            (Flow::Continue, _) => HostOutcome::Ok,
            (Flow::Cancelled, _) => HostOutcome::Cancelled,
            (Flow::Unreachable, _) => HostOutcome::Unreachable,
            (Flow::Failed, failed_at) => {
                // Steps that never ran register as skipped, so `on_failure` can test them.
                for step in &steps[failed_at + 1..] {
                    self.register(step, &skipped_result());
                }
                let _ = self
                    .run_list(on_failure, Phase::OnFailure, steps.len())
                    .await;
                HostOutcome::Failed
            }
        }
    }

    /// Runs a list until a step stops the host; returns why it stopped and where. Step numbers
    /// (for gates) start after `offset`.
    async fn run_list(
        &mut self,
        steps: &[Step<Field>],
        phase: Phase,
        offset: usize,
    ) -> (Flow, usize) {
        for (index, step) in steps.iter().enumerate() {
            if *self.cancel.borrow() != Cancel::Running {
                return (Flow::Cancelled, index);
            }
            let started = Event::StepStarted {
                host: self.host.to_owned(),
                index,
                phase,
                name: step.name.clone(),
            };
            if self.shared.events.announce(started).await.is_err() {
                // Nothing runs that could not be recorded.
                return (Flow::Failed, index);
            }
            let number = u32::try_from(offset + index + 1).unwrap_or(u32::MAX);
            let report = self.run_step(step, number).await;
            let flow = match report.status {
                Status::Failed if !report.ignored => Flow::Failed,
                Status::Unreachable => Flow::Unreachable,
                _ => Flow::Continue,
            };
            let finished = Event::StepFinished {
                host: self.host.to_owned(),
                index,
                phase,
                name: step.name.clone(),
                report,
            };
            let _ = self.shared.events.send(finished).await;
            if !matches!(flow, Flow::Continue) {
                return (flow, index);
            }
        }
        (Flow::Continue, steps.len())
    }

    async fn run_step(&mut self, step: &Step<Field>, number: u32) -> StepReport {
        let started = Instant::now();
        let checking = self.shared.options.mode == RunMode::Check && !step.check_mode;
        let unrun = if checking {
            self.depends_on_unrun(step)
        } else {
            None
        };
        let mut ignore = ignore_errors_at_plan_time(step);
        let (outcome, attempts) = if let Some(name) = &unrun {
            let message = format!("check mode: depends on `{name}`, which --check did not run");
            (Outcome::skipped(message), 0)
        } else {
            match self.resolve(step).await {
                Err(error) => (Outcome::failed(error.to_string()), 0),
                Ok(None) => (Outcome::skipped("`when` is false"), 0),
                Ok(Some(resolved)) if matches!(resolved.step.action, Action::Gate(_)) => {
                    (self.pass_gate(number, &resolved.step, checking).await, 1)
                }
                Ok(Some(resolved)) if matches!(resolved.step.action, Action::Reboot(_)) => {
                    (self.reboot(&resolved.step, &resolved.settings).await, 1)
                }
                Ok(Some(resolved)) => {
                    ignore = resolved.settings.ignore_errors;
                    match self.attempt(step, &resolved).await {
                        Ok(result) => {
                            if checking && result.0.status == Status::Skipped {
                                self.unrun_by_check.extend(step.register.clone());
                            }
                            result
                        }
                        Err(error) => (transport_failure(&error), 1),
                    }
                }
            }
        };
        if unrun.is_some() {
            self.unrun_by_check.extend(step.register.clone());
        }
        let ignored = outcome.status == Status::Failed && ignore;
        let result = result_json(&outcome);
        if step.secret {
            for field in ["stdout", "stderr"] {
                if let Some(text) = result[field].as_str() {
                    // Whole and line by line: a later `stdout_lines.[0]` must not show either.
                    let pieces = std::iter::once(text).chain(text.lines());
                    self.secrets.extend(
                        pieces
                            .filter(|piece| !piece.trim().is_empty())
                            .map(|piece| Secret::new(piece.to_owned())),
                    );
                }
            }
        }
        self.register(step, &result);
        StepReport {
            status: outcome.status,
            rc: outcome.rc,
            changed: outcome.status == Status::Changed,
            duration: started.elapsed(),
            stdout: self.redact(&String::from_utf8_lossy(&outcome.stdout)),
            stderr: self.redact(&String::from_utf8_lossy(&outcome.stderr)),
            message: outcome.message.map(|message| self.redact(&message)),
            diff: outcome.diff.map(|diff| self.redact(&diff)),
            ignored,
            attempts,
            backup: outcome.backup.map(Box::new),
        }
    }

    /// Reboots the host and carries on over a new connection (see [`super::reboot`]).
    async fn reboot(&mut self, step: &Step<String>, settings: &Settings) -> Outcome {
        let reboot = Reboot {
            target: self.target,
            control_dir: &self.shared.options.control_dir,
            connect_timeout: self.shared.options.connect_timeout,
            timeout: settings.reboot_timeout,
            become_user: self.become_user(step, settings),
            mode: self.mode(step),
        };
        match reboot.run(&self.connection, self.cancel.clone()).await {
            Err(error) => transport_failure(&error),
            Ok(rebooted) => {
                if let Some(fresh) = rebooted.connection {
                    let old = std::mem::replace(&mut self.connection, fresh);
                    // The old master lost its host; closing it only reaps what is left.
                    let _ = old.close().await;
                }
                if let (Some(boot_id), true) = (rebooted.boot_id, self.facts_gathered) {
                    self.context["facts"]["boot_id"] = Value::String(boot_id);
                }
                rebooted.outcome
            }
        }
    }

    /// `sudo -n -u USER` for the step: its own `become`, else the runbook's.
    fn become_user(&self, step: &Step<String>, settings: &Settings) -> Option<String> {
        let become_root = settings
            .become_root
            .unwrap_or(self.shared.plan.runbook.become_root);
        become_root.then(|| {
            step.become_user
                .clone()
                .unwrap_or_else(|| "root".to_owned())
        })
    }

    /// Apply or check for the step: `check_mode: true` runs it even under `--check`.
    fn mode(&self, step: &Step<String>) -> RunMode {
        if step.check_mode {
            RunMode::Apply
        } else {
            self.shared.options.mode
        }
    }

    /// Waits at a `gate` step until the CLI hands over an approval or a rejection, the
    /// approval timeout passes, or Ctrl-C.
    async fn pass_gate(&mut self, number: u32, step: &Step<String>, checking: bool) -> Outcome {
        let Action::Gate(gate) = &step.action else {
            return Outcome::failed("internal error: not a gate step".to_owned());
        };
        let gates = &self.shared.options.gates;
        if checking {
            return Outcome::skipped("check mode: a real run waits here for an approval");
        }
        if let GateMode::Open(reason) = &gates.mode {
            return Outcome {
                status: Status::Ok,
                message: Some(format!("gate passed without an approval: {reason}")),
                ..Outcome::failed(String::new())
            };
        }
        let waiting = Event::GateWaiting {
            host: self.host.to_owned(),
            run: self.shared.options.run_id.clone(),
            step: number,
            name: step.name.clone(),
            approver_level: gate.approver_level,
            message: self.redact(gate.message.as_deref().unwrap_or(&step.name)),
        };
        if self.shared.events.announce(waiting).await.is_err() {
            return Outcome::failed("the approval request could not be recorded".to_owned());
        }
        let mut answers = gates.answers.clone();
        let deadline = tokio::time::sleep(gates.timeout);
        tokio::pin!(deadline);
        loop {
            let answer = answers.borrow_and_update().get(&number).cloned();
            match answer {
                Some(GateAnswer::Granted { approver }) => {
                    return Outcome {
                        status: Status::Ok,
                        message: Some(format!("approved by `{approver}`")),
                        ..Outcome::failed(String::new())
                    };
                }
                Some(GateAnswer::Rejected { approver, reason }) => {
                    let reason = reason
                        .map(|reason| format!(": {reason}"))
                        .unwrap_or_default();
                    return Outcome::failed(format!("rejected by `{approver}`{reason}"));
                }
                None => {}
            }
            tokio::select! {
                changed = answers.changed() => {
                    if changed.is_err() {
                        return Outcome::failed(
                            "no approval can arrive any more (the approval watcher stopped)".to_owned(),
                        );
                    }
                }
                () = &mut deadline => {
                    return Outcome::failed(format!(
                        "no approval within {}s",
                        gates.timeout.as_secs()
                    ));
                }
                _ = self.cancel.changed() => {
                    if *self.cancel.borrow() != Cancel::Running {
                        return Outcome::skipped("cancelled while waiting for an approval");
                    }
                }
            }
        }
    }

    /// Under `--check`, the first registered name this step reads whose step did not run
    /// because of `--check`: its result would be a guess, so this step is skipped too.
    fn depends_on_unrun(&self, step: &Step<Field>) -> Option<String> {
        step.fields().into_iter().find_map(|field| match field {
            Field::AtRunTime(text) => template::references(&text.source)
                .ok()?
                .into_iter()
                .find_map(|reference| {
                    let root = reference.path.first()?;
                    self.unrun_by_check.contains(root).then(|| root.clone())
                }),
            Field::Ready(_) => None,
        })
    }

    /// Renders what the plan deferred and types the step's settings. `Ok(None)` when `when` is
    /// false.
    async fn resolve(&mut self, step: &Step<Field>) -> Result<Option<Resolved>, StepError> {
        if let Some(when) = &step.when {
            let when = self.render(when).await?;
            if !resolved::condition(&when, "when")? {
                return Ok(None);
            }
        }
        // `changed_when` and `failed_when` judge the step's own result, which does not exist
        // yet: `apply_conditions` renders them from the planned step after the action.
        let mut now = step.clone();
        now.changed_when = None;
        now.failed_when = None;
        let mut fields = Vec::new();
        for field in now.fields() {
            fields.push(self.render(field).await?);
        }
        let mut rendered = fields.into_iter();
        let typed = now
            .try_map(&mut |_| rendered.next().ok_or(()))
            .map_err(|()| StepError::FieldsChanged)?;
        Resolved::new(&typed).map(Some)
    }

    /// Gathers `facts.*` once per host, the first time a template reads them.
    async fn gather_facts_for(&mut self, text: &Text) -> Result<(), StepError> {
        let reads_facts = template::references(&text.source).is_ok_and(|references| {
            references
                .iter()
                .any(|reference| reference.path.first().is_some_and(|root| root == "facts"))
        });
        if reads_facts {
            self.ensure_facts().await?;
        }
        Ok(())
    }

    /// Gathers `facts.*` unless this host already has them.
    async fn ensure_facts(&mut self) -> Result<(), StepError> {
        if !self.facts_gathered {
            self.context["facts"] = facts::gather(&self.connection)
                .await
                .map_err(StepError::Facts)?;
            self.facts_gathered = true;
        }
        Ok(())
    }

    /// Renders and types a field on this host's current context.
    async fn render(&mut self, field: &Field) -> Result<Rendered, StepError> {
        let text = match field {
            Field::Ready(rendered) => return Ok(rendered.clone()),
            Field::AtRunTime(text) => text,
        };
        self.gather_facts_for(text).await?;
        plan::render_text(&self.shared.renderer, text, &self.context, &self.secrets)
            .map_err(|error| StepError::Render(self.redact(&error.to_string())))
    }

    /// Runs the action with retries, then applies `changed_when` / `failed_when`.
    async fn attempt(
        &mut self,
        planned: &Step<Field>,
        resolved: &Resolved,
    ) -> Result<(Outcome, u32), TransportError> {
        let Resolved {
            step,
            values,
            settings,
        } = resolved;
        let become_user = self.become_user(step, settings);
        let mode = self.mode(step);
        let action = match actions::Ready::new(&step.action, &values.action) {
            Ok(action) => action,
            Err(mistyped) => return Ok((Outcome::failed(mistyped.to_string()), 0)),
        };
        if matches!(step.action, Action::Package(_)) {
            // The package manager is a fact: gathered once, whether or not a template asked.
            if let Err(error) = self.ensure_facts().await {
                return Ok((Outcome::failed(error.to_string()), 0));
            }
        }
        let mut attempts = 0;
        loop {
            attempts += 1;
            let context = Context {
                transport: &self.connection,
                secrets: &self.secrets,
                facts: &self.context["facts"],
                host: self.host,
                runbook: &self.shared.plan.runbook.id,
                mode,
                diff: self.shared.options.diff,
                become_user: become_user.clone(),
                env: step.env.clone(),
                timeout: settings.timeout,
            };
            let mut outcome = self.run_killable(&context, &action).await?;
            if let Err(error) = self.apply_conditions(planned, &mut outcome).await {
                outcome = Outcome {
                    message: Some(error.to_string()),
                    status: Status::Failed,
                    ..outcome
                };
            }
            if outcome.status != Status::Failed
                || attempts > settings.retries
                || *self.cancel.borrow() != Cancel::Running
            {
                return Ok((outcome, attempts));
            }
            // The first Ctrl-C ends the wait: no new attempt starts after it.
            let mut cancel = self.cancel.clone();
            tokio::select! {
                () = tokio::time::sleep(settings.retry_delay) => {}
                _ = cancel.changed() => return Ok((outcome, attempts)),
            }
        }
    }

    /// Runs the action; a second Ctrl-C meanwhile kills its remote process group.
    async fn run_killable<T>(
        &self,
        context: &Context<'_, T>,
        action: &actions::Ready<'_>,
    ) -> Result<Outcome, TransportError>
    where
        T: crate::transport::Transport,
    {
        let action = actions::run(context, action);
        tokio::pin!(action);
        let mut cancel = self.cancel.clone();
        let mut killed = false;
        loop {
            tokio::select! {
                result = &mut action => return result,
                changed = cancel.changed(), if !killed => {
                    if changed.is_err() {
                        killed = true;
                    } else if *cancel.borrow() == Cancel::Kill {
                        killed = true;
                        self.connection.kill_running().await;
                    }
                }
            }
        }
    }

    /// `changed_when` and `failed_when` see this step's result under its `register` name.
    async fn apply_conditions(
        &mut self,
        step: &Step<Field>,
        outcome: &mut Outcome,
    ) -> Result<(), StepError> {
        if outcome.status == Status::Skipped
            || (step.changed_when.is_none() && step.failed_when.is_none())
        {
            return Ok(());
        }
        for field in [&step.changed_when, &step.failed_when]
            .into_iter()
            .flatten()
        {
            if let Field::AtRunTime(text) = field {
                self.gather_facts_for(text).await?;
            }
        }
        let mut context = self.context.clone();
        if let Some(name) = &step.register {
            context[name] = result_json(outcome);
        }
        // A condition the plan already rendered is a typed value, never template code again.
        let condition = |field: &Field, name: &'static str| -> Result<bool, StepError> {
            match field {
                Field::Ready(rendered) => resolved::condition(rendered, name),
                Field::AtRunTime(text) => self
                    .shared
                    .renderer
                    .condition(&text.source, &context)
                    .map_err(|error| StepError::Render(self.redact(&error.to_string()))),
            }
        };
        if let Some(field) = &step.failed_when {
            let failed = condition(field, "failed_when")?;
            outcome.status = if failed {
                Status::Failed
            } else if outcome.status == Status::Failed && outcome.rc.is_some() {
                // Only a command that exited can be judged a success: a timeout, a kill or an
                // action error (no exit code) stays failed whatever `failed_when` says.
                Status::Changed
            } else {
                outcome.status
            };
            if !failed && outcome.status != Status::Failed {
                outcome.message = None;
            } else if outcome.message.is_none() {
                outcome.message = Some("failed_when is true".to_owned());
            }
        }
        if let Some(field) = &step.changed_when {
            let changed = condition(field, "changed_when")?;
            if outcome.status != Status::Failed {
                outcome.status = if changed { Status::Changed } else { Status::Ok };
            }
        }
        Ok(())
    }

    fn register(&mut self, step: &Step<Field>, result: &Value) {
        if let Some(name) = &step.register {
            let mut result = result.clone();
            // `validate` lets templates read `x.packages` on a `package` step's result, so it is
            // there (empty) even when the step was skipped or never reached.
            if matches!(step.action, Action::Package(_)) && result.get("packages").is_none() {
                result["packages"] = json!([]);
            }
            self.context[name] = result;
        }
    }

    fn redact(&self, text: &str) -> String {
        redact(text, &self.secrets)
    }
}

/// A step the connection failed under: `unreachable` when the host is gone, else `failed`.
fn transport_failure(error: &TransportError) -> Outcome {
    let mut outcome = Outcome::failed(error.to_string());
    if error.is_unreachable() {
        outcome.status = Status::Unreachable;
    }
    outcome
}

/// A step's registered value (SPEC §2): `rc` is null when nothing ran or it timed out.
fn result_json(outcome: &Outcome) -> Value {
    let stdout = String::from_utf8_lossy(&outcome.stdout);
    let stdout = actions::trim_newline(&stdout);
    let stderr = String::from_utf8_lossy(&outcome.stderr);
    let mut result = json!({
        "rc": outcome.rc,
        "stdout": stdout,
        "stderr": actions::trim_newline(&stderr),
        "stdout_lines": stdout.lines().collect::<Vec<_>>(),
        "changed": outcome.status == Status::Changed,
        "status": outcome.status.as_str(),
    });
    if let Value::Object(fields) = &mut result {
        for (name, value) in &outcome.extra {
            fields.insert(name.clone(), value.clone());
        }
    }
    result
}

fn skipped_result() -> Value {
    json!({ "rc": null, "stdout": "", "stderr": "", "stdout_lines": [], "changed": false, "status": "skipped" })
}
