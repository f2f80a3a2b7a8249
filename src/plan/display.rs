//! The plan as an operator reads it before anything runs.

use std::fmt::Write;

use super::{Field, Plan};
use crate::diagnostic::{Paint, Style};
use crate::runbook::model::{
    Action, BackupSource, Content, Package, Presence, RestoreInto, Step, UpgradeScope, WaitTarget,
};

/// Renders the plan: header, params (secrets masked), batches, then every host's steps.
#[must_use]
pub fn render(plan: &Plan, style: Style) -> String {
    let runbook = &plan.runbook;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{} {} — {} (kind {}, min level {})",
        style.paint("plan", Paint::Bold),
        runbook.id,
        runbook.title,
        runbook.kind.as_str(),
        runbook.min_level
    );
    let _ = writeln!(
        out,
        "runbook: {}  digest {}",
        runbook.source.path.display(),
        &runbook.digest[..16]
    );
    let params: Vec<String> = plan
        .masked_params()
        .into_iter()
        .map(|(name, value)| format!("{name}={value}"))
        .collect();
    if !params.is_empty() {
        let _ = writeln!(out, "params: {}", params.join(" "));
    }
    let names: Vec<&str> = plan
        .hosts
        .iter()
        .map(|host| host.host.name.as_str())
        .collect();
    let _ = writeln!(
        out,
        "hosts: {} ({}) from `{}`, {} batch{}{}",
        names.len(),
        names.join(", "),
        plan.pattern,
        plan.batches.len(),
        if plan.batches.len() == 1 { "" } else { "es" },
        if plan.widened {
            ", widened beyond the runbook's targets"
        } else {
            ""
        }
    );
    for host in &plan.hosts {
        let _ = writeln!(
            out,
            "\n{} ({})",
            style.paint(host.host.name.as_str(), Paint::Bold),
            host.host.address
        );
        write_steps(&mut out, plan, &host.steps, "");
        if !host.on_failure.is_empty() {
            let _ = writeln!(out, "  on failure:");
            write_steps(&mut out, plan, &host.on_failure, "  ");
        }
    }
    out
}

fn write_steps(out: &mut String, plan: &Plan, steps: &[Step<Field>], indent: &str) {
    for (index, step) in steps.iter().enumerate() {
        let when = match &step.when {
            Some(Field::Ready(condition)) if condition.shown().trim() == "false" => {
                " (skipped: when is false)"
            }
            Some(Field::AtRunTime(_)) => " (when: decided at run time)",
            _ => "",
        };
        let _ = writeln!(out, "{indent}  {}. {}{when}", index + 1, step.name);
        let _ = writeln!(out, "{indent}       {}", plan.redact(&summary(step)));
    }
}

/// One line saying what the step will do on this host (secrets not yet masked: see
/// [`Plan::redact`]).
#[must_use]
pub fn summary(step: &Step<Field>) -> String {
    let show = |field: &Field| match field {
        Field::Ready(text) => text.shown().replace('\n', "⏎"),
        Field::AtRunTime(text) => format!("{} (at run time)", text.source.replace('\n', "⏎")),
    };
    match &step.action {
        Action::Command(command) => format!("command: {}", show(&command.text)),
        Action::Script(script) => {
            let args: Vec<String> = script.args.iter().map(show).collect();
            format!("script: {} {}", script.src.display(), args.join(" "))
        }
        Action::Copy(copy) | Action::Template(copy) => {
            let source = match &copy.content {
                Content::Bytes { src, bytes } => {
                    format!("{} ({} bytes)", src.display(), bytes.len())
                }
                Content::Text(Field::Ready(text)) => format!("{} bytes of text", text.text().len()),
                Content::Text(Field::AtRunTime(_)) => "text rendered at run time".to_owned(),
            };
            let mode = copy
                .attributes
                .mode
                .as_ref()
                .map(|mode| format!(" mode {}", show(mode)))
                .unwrap_or_default();
            format!(
                "{}: {source} → {}{mode}",
                step.action.keyword(),
                show(&copy.dest)
            )
        }
        Action::Fetch(fetch) => format!("fetch: {} → {}/", show(&fetch.src), show(&fetch.dest)),
        Action::File(file) => {
            format!(
                "file: {} is {}",
                show(&file.path),
                format!("{:?}", file.state).to_lowercase()
            )
        }
        Action::Assert(assert) => {
            let that: Vec<String> = assert.that.iter().map(show).collect();
            format!("assert: {}", that.join(" and "))
        }
        Action::Gate(gate) => format!(
            "gate: wait for an approval{}{}",
            gate.approver_level
                .map(|level| format!(" of level {level}+"))
                .unwrap_or_default(),
            gate.message
                .as_ref()
                .map(|message| format!(": {}", show(message)))
                .unwrap_or_default()
        ),
        Action::WaitFor(wait) => match &wait.target {
            WaitTarget::Port { port, host } => format!(
                "wait_for: port {} on {}",
                show(port),
                host.as_ref().map_or_else(|| "127.0.0.1".to_owned(), show)
            ),
            WaitTarget::Path(path) => format!("wait_for: path {}", show(path)),
            WaitTarget::Command(command) => format!("wait_for: command {}", show(command)),
        },
        Action::Backup(backup) => {
            let source = match &backup.source {
                BackupSource::Paths(paths) => paths.iter().map(show).collect::<Vec<_>>().join(", "),
                BackupSource::Dump(command) => format!("output of `{}`", show(command)),
            };
            let keep = backup.keep.as_ref().map_or_else(
                || " (keep all)".to_owned(),
                |keep| format!(" (keep {})", show(keep)),
            );
            format!("backup: {source} → {}/{keep}", show(&backup.store))
        }
        Action::Restore(restore) => {
            let into = match &restore.into {
                RestoreInto::Files { paths, target } => {
                    let paths = if paths.is_empty() {
                        "everything".to_owned()
                    } else {
                        paths.iter().map(show).collect::<Vec<_>>().join(", ")
                    };
                    let place = target.as_ref().map_or_else(
                        || "its original place".to_owned(),
                        |target| format!("under {}", show(target)),
                    );
                    format!("{paths} to {place}")
                }
                RestoreInto::Load(command) => format!("into `{}`", show(command)),
            };
            format!(
                "restore: {} from {}/, verified, {into}",
                show(&restore.from),
                show(&restore.store)
            )
        }
        Action::User(user) => {
            let state = match user.state {
                Presence::Present => "present",
                Presence::Absent => "absent",
            };
            let groups = if user.groups.is_empty() {
                String::new()
            } else {
                let groups: Vec<String> = user.groups.iter().map(show).collect();
                format!(", in {}", groups.join(", "))
            };
            format!("user: {} {state}{groups}", show(&user.name))
        }
        Action::Package(Package::Named { names, state }) => {
            let names: Vec<String> = names.iter().map(show).collect();
            let state = format!("{state:?}").to_lowercase();
            format!("package: {} {state}", names.join(", "))
        }
        Action::Package(Package::Upgrade(scope)) => {
            let scope = match scope {
                UpgradeScope::All => "every package with a newer version",
                UpgradeScope::Security => "packages with security updates",
            };
            format!("package: upgrade {scope}")
        }
        Action::Service(service) => {
            let mut wants = Vec::new();
            wants.extend(
                service
                    .state
                    .map(|state| format!("{state:?}").to_lowercase()),
            );
            wants.extend(
                service
                    .enabled
                    .as_ref()
                    .map(|enabled| format!("enabled {}", show(enabled))),
            );
            format!("service: {} {}", show(&service.name), wants.join(", "))
        }
        Action::Reboot(reboot) => format!(
            "reboot: wait up to {} for SSH and a new boot id",
            reboot
                .timeout
                .as_ref()
                .map_or_else(|| "10m".to_owned(), show)
        ),
    }
}
