//! The text of the executor's event stream: one line per host per step and a recap table at the
//! end — or, with `--json`, one JSON object per event. The command line prints it live (with a
//! progress bar: `cli::live`); the service sends it to the client of a `run`, so both modes
//! print the same bytes.

use indexmap::IndexMap;
use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::diagnostic::{Paint, Style};
use crate::executor::event::{Event, HostOutcome, Phase, Status};
use crate::plan::Plan;

/// How events are shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    /// Lines, colours and a recap for people.
    Human(Style),
    /// One JSON object per line for programs.
    Json,
}

/// Per-host counts for the recap.
#[derive(Debug, Default)]
pub(crate) struct HostRecap {
    counts: BTreeMap<&'static str, usize>,
    outcome: Option<HostOutcome>,
}

/// Everything the run reported, summed up.
#[derive(Debug, Default)]
pub(crate) struct Recap {
    hosts: IndexMap<String, HostRecap>,
}

/// The text of a run's event stream in one format, without a terminal: what `Live` prints, and
/// what the service sends a client of `run` so that both print the same.
pub(crate) struct Transcript {
    format: Format,
    recap: Recap,
    width: usize,
}

impl Transcript {
    /// Renders events in `format`.
    pub(crate) fn new(format: Format) -> Self {
        Self {
            format,
            recap: Recap::default(),
            width: 4,
        }
    }

    /// The run passed the gate: its hosts, for the recap and the column width.
    pub(crate) fn started(&mut self, plan: &Plan) {
        self.recap = Recap {
            hosts: plan
                .hosts
                .iter()
                .map(|host| (host.host.name.to_string(), HostRecap::default()))
                .collect(),
        };
        self.width = plan
            .hosts
            .iter()
            .map(|host| host.host.name.as_str().len())
            .max()
            .unwrap_or(4);
    }

    /// One event as stdout shows it (empty for events the human format does not show).
    pub(crate) fn event(&mut self, event: &Event) -> String {
        self.recap.record(event);
        match self.format {
            Format::Json => serde_json::to_string(event)
                .map(|line| line + "\n")
                .unwrap_or_default(),
            Format::Human(style) => human(event, style, self.width),
        }
    }

    /// What stdout shows after the last event: the recap table, for people.
    pub(crate) fn finished(&self) -> String {
        match self.format {
            Format::Human(style) => self.recap.render(style),
            Format::Json => String::new(),
        }
    }
}

fn human(event: &Event, style: Style, width: usize) -> String {
    let mut out = String::new();
    match event {
        Event::RunStarted { hosts, steps } => {
            let _ = writeln!(
                out,
                "{} {hosts} host{}, {steps} step{} each",
                style.paint("run", Paint::Bold),
                plural(*hosts),
                plural(*steps)
            );
        }
        Event::StepStarted { .. } | Event::HostFinished { .. } | Event::RunFinished { .. } => {}
        Event::StepFinished {
            host,
            index,
            phase,
            name,
            report,
        } => {
            let paint = match report.status {
                Status::Ok => Paint::Green,
                Status::Changed => Paint::Yellow,
                Status::Skipped => Paint::Cyan,
                Status::Failed | Status::Unreachable => Paint::Red,
            };
            let label = if report.ignored {
                "failed (ignored)"
            } else {
                report.status.as_str()
            };
            let prefix = if *phase == Phase::OnFailure {
                "on_failure "
            } else {
                ""
            };
            let retries = if report.attempts > 1 {
                format!(", {} attempts", report.attempts)
            } else {
                String::new()
            };
            let _ = writeln!(
                out,
                "{} {host:<width$}  {prefix}{}. {name}  {}",
                style.paint(&format!("{label:<11}"), paint),
                index + 1,
                style.paint(
                    &format!("({:.2}s{retries})", report.duration.as_secs_f64()),
                    Paint::Dim
                )
            );
            if let Some(message) = &report.message {
                if matches!(
                    report.status,
                    Status::Failed | Status::Unreachable | Status::Changed
                ) || report.ignored
                {
                    let _ = writeln!(out, "            {message}");
                }
            }
            if report.status == Status::Failed {
                for (stream, text) in [("stderr", &report.stderr), ("stdout", &report.stdout)] {
                    let lines: Vec<&str> = text.lines().collect();
                    if lines.is_empty() {
                        continue;
                    }
                    let tail = &lines[lines.len().saturating_sub(10)..];
                    let _ = writeln!(
                        out,
                        "            {stream} (last {} of {} lines):",
                        tail.len(),
                        lines.len()
                    );
                    for line in tail {
                        let _ = writeln!(out, "            | {line}");
                    }
                }
            }
            if let Some(diff) = &report.diff {
                for line in diff.lines() {
                    let paint = match line.chars().next() {
                        Some('+') if !line.starts_with("+++") => Paint::Green,
                        Some('-') if !line.starts_with("---") => Paint::Red,
                        _ => Paint::Dim,
                    };
                    let _ = writeln!(out, "            {}", style.paint(line, paint));
                }
            }
        }
        Event::GateWaiting {
            host,
            run,
            step,
            name,
            approver_level,
            message,
        } => {
            let level = approver_level
                .map(|level| format!(" (level {level}+)"))
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "{} {host:<width$}  {step}. {name}: {message}; waiting for an approval{level}: \
                 opsgate approve run {run}",
                style.paint(&format!("{:<11}", "gate"), Paint::Yellow),
            );
        }
        Event::HostUnreachable { host, message } => {
            let _ = writeln!(
                out,
                "{} {host:<width$}  {}",
                style.paint(&format!("{:<11}", "unreachable"), Paint::Red),
                message.replace('\n', "\n            ")
            );
        }
        Event::BatchSkipped { hosts, reason } => {
            let _ = writeln!(
                out,
                "{} {}: {reason}",
                style.paint(&format!("{:<11}", "skipped"), Paint::Cyan),
                hosts.join(", ")
            );
        }
    }
    out
}

fn plural(count: usize) -> &'static str {
    if count == 1 { "" } else { "s" }
}

impl Recap {
    fn record(&mut self, event: &Event) {
        match event {
            Event::StepFinished { host, report, .. } => {
                *self
                    .hosts
                    .entry(host.clone())
                    .or_default()
                    .counts
                    .entry(report.status.as_str())
                    .or_default() += 1;
            }
            Event::HostFinished { host, outcome } => {
                self.hosts.entry(host.clone()).or_default().outcome = Some(*outcome);
            }
            Event::BatchSkipped { hosts, .. } => {
                for host in hosts {
                    self.hosts.entry(host.clone()).or_default().outcome =
                        Some(HostOutcome::Skipped);
                }
            }
            _ => {}
        }
    }

    /// The recap table.
    fn render(&self, style: Style) -> String {
        let width = self.hosts.keys().map(String::len).max().unwrap_or(4).max(4);
        let columns = ["ok", "changed", "skipped", "failed", "unreachable"];
        let mut out = format!(
            "\n{}\n{:<width$}",
            style.paint("RECAP", Paint::Bold),
            "host"
        );
        for column in columns {
            let _ = write!(out, "  {column:>w$}", w = column.len().max(3));
        }
        out.push_str("  outcome\n");
        for (host, recap) in &self.hosts {
            let _ = write!(out, "{host:<width$}");
            for column in columns {
                let _ = write!(
                    out,
                    "  {:>w$}",
                    recap.counts.get(column).copied().unwrap_or(0),
                    w = column.len().max(3)
                );
            }
            let (outcome, paint) = match recap.outcome {
                Some(HostOutcome::Ok) => ("ok", Paint::Green),
                Some(HostOutcome::Failed) => ("failed", Paint::Red),
                Some(HostOutcome::Unreachable) => ("unreachable", Paint::Red),
                Some(HostOutcome::Cancelled) => ("cancelled", Paint::Yellow),
                Some(HostOutcome::Skipped) | None => ("skipped", Paint::Cyan),
            };
            let _ = writeln!(out, "  {}", style.paint(outcome, paint));
        }
        out
    }
}
