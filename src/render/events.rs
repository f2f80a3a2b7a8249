//! The text of the executor's event stream: one line per host per step (with its output excerpt
//! under `--verbose`), a header per batch of a rolling run and a recap table at the end — or,
//! with `--json`, one JSON object per event. The command line prints it live (with a progress
//! bar: `cli::live`); the service sends it to the client of a `run`, so both modes print the
//! same bytes.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use indexmap::IndexMap;

use crate::diagnostic::{Paint, Style};
use crate::executor::event::{Event, HostOutcome, Phase, Status, StepReport};
use crate::plan::Plan;
use crate::plural::counted;

/// How events are shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    /// Lines, colours and a recap for people.
    Human(Style),
    /// One JSON object per line for programs.
    Json,
}

/// How much of each step the human output shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Detail {
    /// One line per step; output only for failures.
    Normal,
    /// `--verbose`: every step's output excerpt as it finishes.
    Verbose,
}

/// Lines of a stream shown in an excerpt: the last ones, where errors and results usually are.
const EXCERPT_LINES: usize = 10;

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
    detail: Detail,
    recap: Recap,
    width: usize,
    batches: Batches,
}

impl Transcript {
    /// Renders events in `format`, with `detail` for the human format.
    pub(crate) fn new(format: Format, detail: Detail) -> Self {
        Self {
            format,
            detail,
            recap: Recap::default(),
            width: 4,
            batches: Batches::default(),
        }
    }

    /// The run passed the gate: its hosts, for the recap, the column width and batch headers.
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
        self.batches = Batches::new(plan);
    }

    /// One event as stdout shows it (empty for events the human format does not show).
    pub(crate) fn event(&mut self, event: &Event) -> String {
        self.recap.record(event);
        match self.format {
            Format::Json => serde_json::to_string(event)
                .map(|line| line + "\n")
                .unwrap_or_default(),
            Format::Human(style) => {
                let header = self.batches.header(event, style).unwrap_or_default();
                header + &human(event, style, self.width, self.detail)
            }
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

/// The batches of a rolling run, to announce each as its first host starts.
#[derive(Debug, Default)]
struct Batches {
    /// Each batch's hosts, in plan order.
    hosts: Vec<Vec<String>>,
    /// The batch of each host.
    of_host: BTreeMap<String, usize>,
    /// The latest batch announced (or skipped).
    current: Option<usize>,
}

impl Batches {
    fn new(plan: &Plan) -> Self {
        let hosts: Vec<Vec<String>> = plan
            .batches
            .iter()
            .map(|batch| {
                batch
                    .iter()
                    .map(|index| plan.hosts[*index].host.name.to_string())
                    .collect()
            })
            .collect();
        let of_host = hosts
            .iter()
            .enumerate()
            .flat_map(|(batch, hosts)| hosts.iter().map(move |host| (host.clone(), batch)))
            .collect();
        Self {
            hosts,
            of_host,
            current: None,
        }
    }

    /// The header to print before `event` when it is the first of a new batch, in a run of more
    /// than one. A skipped batch has its own line, so it only moves the count on.
    fn header(&mut self, event: &Event, style: Style) -> Option<String> {
        if self.hosts.len() < 2 {
            return None;
        }
        let host = match event {
            Event::StepStarted { host, .. }
            | Event::StepFinished { host, .. }
            | Event::GateWaiting { host, .. }
            | Event::HostUnreachable { host, .. }
            | Event::HostFinished { host, .. } => host,
            Event::BatchSkipped { hosts, .. } => {
                let batch = hosts.first().and_then(|host| self.of_host.get(host));
                self.current = batch.copied().max(self.current);
                return None;
            }
            Event::RunStarted { .. } | Event::RunFinished { .. } => return None,
        };
        let batch = *self.of_host.get(host)?;
        if self.current.is_some_and(|current| current >= batch) {
            return None;
        }
        self.current = Some(batch);
        Some(format!(
            "{} {}/{}: {}\n",
            style.paint("batch", Paint::Bold),
            batch + 1,
            self.hosts.len(),
            self.hosts[batch].join(", ")
        ))
    }
}

fn human(event: &Event, style: Style, width: usize, detail: Detail) -> String {
    let mut out = String::new();
    match event {
        Event::RunStarted { hosts, steps } => {
            let _ = writeln!(
                out,
                "{} {}, {} each",
                style.paint("run", Paint::Bold),
                counted(*hosts, "host"),
                counted(*steps, "step")
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
            // Why a step was skipped is as much the operator's business as why it failed.
            if let Some(message) = &report.message {
                if matches!(
                    report.status,
                    Status::Failed | Status::Unreachable | Status::Changed | Status::Skipped
                ) || report.ignored
                {
                    let _ = writeln!(out, "            {message}");
                }
            }
            if report.status == Status::Failed || detail == Detail::Verbose {
                excerpt(&mut out, report);
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

/// The last lines of the step's stderr and stdout, each under a line saying how much is shown.
fn excerpt(out: &mut String, report: &StepReport) {
    for (stream, text) in [("stderr", &report.stderr), ("stdout", &report.stdout)] {
        let lines: Vec<&str> = text.lines().collect();
        if lines.is_empty() {
            continue;
        }
        let tail = &lines[lines.len().saturating_sub(EXCERPT_LINES)..];
        let _ = if tail.len() == lines.len() {
            writeln!(out, "            {stream}:")
        } else {
            writeln!(
                out,
                "            {stream} (last {} of {}):",
                tail.len(),
                counted(lines.len(), "line")
            )
        };
        for line in tail {
            let _ = writeln!(out, "            | {line}");
        }
    }
}

impl Recap {
    fn record(&mut self, event: &Event) {
        match event {
            // No step runs on an unreachable host, so no step counts it: the host does.
            Event::HostUnreachable { host, .. } => {
                *self
                    .hosts
                    .entry(host.clone())
                    .or_default()
                    .counts
                    .entry(Status::Unreachable.as_str())
                    .or_default() += 1;
            }
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

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::time::Duration;

    use super::{Batches, Detail, Recap, human};
    use crate::diagnostic::Style;
    use crate::executor::event::{Event, HostOutcome, Phase, Status, StepReport};

    fn report(status: Status, message: Option<&str>, stdout: &str) -> StepReport {
        StepReport {
            status,
            rc: Some(0),
            changed: false,
            duration: Duration::from_millis(10),
            stdout: stdout.to_owned(),
            stderr: String::new(),
            message: message.map(str::to_owned),
            diff: None,
            ignored: false,
            attempts: 1,
            backup: None,
        }
    }

    fn finished(host: &str, report: StepReport) -> Event {
        Event::StepFinished {
            host: host.to_owned(),
            index: 0,
            phase: Phase::Main,
            name: "look".to_owned(),
            report,
        }
    }

    #[test]
    fn skipped_steps_say_why() {
        let text = human(
            &finished("web1", report(Status::Skipped, Some("`when` is false"), "")),
            Style::Plain,
            4,
            Detail::Normal,
        );
        assert!(text.contains("skipped     web1  1. look"), "{text}");
        assert!(text.contains("\n            `when` is false\n"), "{text}");
    }

    #[test]
    fn verbose_shows_the_output_of_steps_that_did_not_fail() {
        let event = finished("web1", report(Status::Ok, None, "up 3 days\nload 0.1\n"));
        let normal = human(&event, Style::Plain, 4, Detail::Normal);
        assert!(!normal.contains("up 3 days"), "{normal}");
        let verbose = human(&event, Style::Plain, 4, Detail::Verbose);
        assert!(
            verbose.ends_with(
                "            stdout:\n            | up 3 days\n            | load 0.1\n"
            ),
            "{verbose}"
        );
        let long = (1..=12).fold(String::new(), |text, line| text + &format!("line {line}\n"));
        let verbose = human(
            &finished("web1", report(Status::Ok, None, &long)),
            Style::Plain,
            4,
            Detail::Verbose,
        );
        assert!(
            verbose.contains("stdout (last 10 of 12 lines):"),
            "{verbose}"
        );
        assert!(!verbose.contains("| line 2\n"), "{verbose}");
    }

    #[test]
    fn the_run_header_counts_in_agreement() {
        let text = human(
            &Event::RunStarted { hosts: 1, steps: 1 },
            Style::Plain,
            4,
            Detail::Normal,
        );
        assert_eq!(text, "run 1 host, 1 step each\n");
    }

    #[test]
    fn each_batch_is_announced_once_when_its_first_host_starts() {
        let hosts = vec![
            vec!["web1".to_owned()],
            vec!["web2".to_owned(), "web3".to_owned()],
        ];
        let of_host: BTreeMap<String, usize> = [("web1", 0), ("web2", 1), ("web3", 1)]
            .map(|(host, batch)| (host.to_owned(), batch))
            .into();
        let mut batches = Batches {
            hosts,
            of_host,
            current: None,
        };
        let started = |host: &str| Event::StepStarted {
            host: host.to_owned(),
            index: 0,
            phase: Phase::Main,
            name: "look".to_owned(),
        };
        let headers: Vec<Option<String>> = [
            started("web1"),
            finished("web1", report(Status::Ok, None, "")),
            started("web2"),
            started("web3"),
            Event::HostUnreachable {
                host: "web3".to_owned(),
                message: "refused".to_owned(),
            },
        ]
        .iter()
        .map(|event| batches.header(event, Style::Plain))
        .collect();
        assert_eq!(
            headers,
            [
                Some("batch 1/2: web1\n".to_owned()),
                None,
                Some("batch 2/2: web2, web3\n".to_owned()),
                None,
                None,
            ]
        );
        let mut single = Batches {
            hosts: vec![vec!["web1".to_owned()]],
            of_host: [("web1".to_owned(), 0)].into(),
            current: None,
        };
        assert_eq!(single.header(&started("web1"), Style::Plain), None);
    }

    #[test]
    fn the_recap_counts_unreachable_hosts() {
        let mut recap = Recap::default();
        recap.record(&finished("web1", report(Status::Ok, None, "")));
        recap.record(&Event::HostUnreachable {
            host: "web2".to_owned(),
            message: "connection refused".to_owned(),
        });
        recap.record(&Event::HostFinished {
            host: "web2".to_owned(),
            outcome: HostOutcome::Unreachable,
        });
        let table = recap.render(Style::Plain);
        let web2 = table
            .lines()
            .find(|line| line.starts_with("web2"))
            .expect("a web2 row");
        let cells: Vec<&str> = web2.split_whitespace().collect();
        assert_eq!(
            cells,
            ["web2", "0", "0", "0", "0", "1", "unreachable"],
            "{table}"
        );
    }
}
