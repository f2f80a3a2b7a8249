//! `opsgate history`: the runs in the audit store, newest first, and `history show RUN`.
//!
//! Thin over [`crate::audit`]: parse the filters, query the store, render a table (or JSON with
//! `--json`). Times are shown in UTC, like the times accepted by `--since` / `--until`.

use jiff::Timestamp;
use std::fmt::Write as _;
use std::io::Write;

use super::args::{HistoryArgs, HistoryCommand};
use crate::audit::{
    ApprovalTarget, AuditError, Event, Output, Record, RunDetail, RunFilter, RunSummary,
    StepHistory,
};
use crate::error::Error;
use crate::ops::{self, Context};

/// Runs `history`: every run for operators, only their own for an account the policy does not
/// list (SPEC §4.1; another account's run or `--operator` is denied, exit 3).
pub(crate) fn run(
    args: &HistoryArgs,
    context: Context<'_>,
    json: bool,
    out: &mut dyn Write,
) -> Result<(), Error> {
    match &args.command {
        Some(HistoryCommand::Show { run }) => {
            let detail = ops::history::show(context, *run)?;
            if json {
                write_json(out, &detail)
            } else {
                render_detail(&detail, out).map_err(AuditError::Output)
            }?;
        }
        None => {
            let filter = RunFilter {
                operator: args.operator.clone(),
                runbook: args.runbook.clone(),
                host: args.host.clone(),
                status: args.status,
                since: args.since,
                until: args.until,
                limit: (args.limit > 0).then_some(args.limit),
            };
            let runs = ops::history::runs(context, &filter)?;
            if json {
                write_json(out, &runs)
            } else {
                render_table(&runs, out).map_err(AuditError::Output)
            }?;
        }
    }
    Ok(())
}

/// One compact JSON document and a newline.
pub(crate) fn write_json<T: serde::Serialize>(
    out: &mut dyn Write,
    value: &T,
) -> Result<(), AuditError> {
    serde_json::to_writer(&mut *out, value).map_err(|error| AuditError::Output(error.into()))?;
    out.write_all(b"\n").map_err(AuditError::Output)
}

/// Why a `--since` / `--until` value is not a time. clap prints only the Display text, so the
/// jiff error is part of it rather than a source.
#[derive(Debug, thiserror::Error)]
pub(crate) enum TimeError {
    /// An age so large that now minus it is before the earliest timestamp.
    #[error("`{text}` reaches too far back: {reason}")]
    TooFarBack { text: String, reason: jiff::Error },
    /// None of the accepted forms.
    #[error(
        "`{0}` is not a time: use a date `2025-01-31`, an instant `2025-01-31T12:00:00Z`, or an age such as `2h` or `7d`"
    )]
    NotATime(String),
}

/// Parses `--since` / `--until`: an RFC 3339 instant, a civil date or date-time (UTC), or an
/// age (`90s`, `30m`, `2h`, `7d`, `2w`) counted back from now.
pub(crate) fn parse_time(text: &str) -> Result<Timestamp, TimeError> {
    parse_time_at(text, Timestamp::now())
}

fn parse_time_at(text: &str, now: Timestamp) -> Result<Timestamp, TimeError> {
    let text = text.trim();
    if let Some(age) = parse_age(text) {
        return now
            .checked_sub(jiff::SignedDuration::from_secs(age))
            .map_err(|reason| TimeError::TooFarBack {
                text: text.to_owned(),
                reason,
            });
    }
    if let Ok(timestamp) = text.parse::<Timestamp>() {
        return Ok(timestamp);
    }
    let utc = jiff::tz::TimeZone::UTC;
    if let Ok(datetime) = text.parse::<jiff::civil::DateTime>() {
        if let Ok(zoned) = datetime.to_zoned(utc.clone()) {
            return Ok(zoned.timestamp());
        }
    }
    if let Ok(date) = text.parse::<jiff::civil::Date>() {
        if let Ok(zoned) = date.to_zoned(utc) {
            return Ok(zoned.timestamp());
        }
    }
    Err(TimeError::NotATime(text.to_owned()))
}

/// Seconds in an age like `30m`; `None` when `text` is not one.
fn parse_age(text: &str) -> Option<i64> {
    let split = text.find(|character: char| !character.is_ascii_digit())?;
    let (number, unit) = text.split_at(split);
    let number: i64 = number.parse().ok()?;
    let unit_seconds = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 604_800,
        _ => return None,
    };
    number.checked_mul(unit_seconds)
}

/// `2025-01-02 03:04:05Z`.
pub(crate) fn short_time(timestamp: Timestamp) -> String {
    timestamp.strftime("%Y-%m-%d %H:%M:%SZ").to_string()
}

/// `850ms`, `12.3s`, `4m05s`, `1h02m`.
pub(crate) fn human_duration(milliseconds: u64) -> String {
    crate::report::human_duration(std::time::Duration::from_millis(milliseconds))
}

fn summary_duration(summary: &RunSummary) -> String {
    summary.duration().map_or_else(String::new, |duration| {
        human_duration(u64::try_from(duration.as_millis()).unwrap_or(0))
    })
}

fn render_table(runs: &[RunSummary], out: &mut dyn Write) -> std::io::Result<()> {
    if runs.is_empty() {
        return writeln!(out, "no runs recorded match");
    }
    let header = [
        "RUN",
        "REQUESTED",
        "OPERATOR",
        "RUNBOOK",
        "HOSTS",
        "MODE",
        "STATUS",
        "DURATION",
    ];
    let rows: Vec<[String; 8]> = runs
        .iter()
        .map(|run| {
            [
                run.id.to_string(),
                short_time(run.requested_at),
                run.operator.clone(),
                run.runbook.clone(),
                run.host_count.to_string(),
                if run.check { "check" } else { "run" }.to_owned(),
                run.status.to_string(),
                summary_duration(run),
            ]
        })
        .collect();
    write_columns(header, &rows, out)
}

/// A table: the header, then each row, columns padded to their widest cell.
pub(crate) fn write_columns<const N: usize>(
    header: [&str; N],
    rows: &[[String; N]],
    out: &mut dyn Write,
) -> std::io::Result<()> {
    let mut widths = header.map(str::len);
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let header = header.map(str::to_owned);
    for row in std::iter::once(&header).chain(rows) {
        let mut line = String::new();
        for (index, (cell, width)) in row.iter().zip(widths).enumerate() {
            if index + 1 == row.len() {
                line.push_str(cell);
            } else {
                let _ = write!(line, "{cell:<width$}  ");
            }
        }
        writeln!(out, "{}", line.trim_end())?;
    }
    Ok(())
}

fn target_text(target: &ApprovalTarget) -> String {
    match target {
        ApprovalTarget::Run => "the run".to_owned(),
        ApprovalTarget::Gate { step, name } => format!("gate step {step} `{name}`"),
        ApprovalTarget::Plan { plan } => format!("plan {plan}"),
    }
}

fn approval_line(event: &Event) -> Option<String> {
    let what = match event.record.as_ref()? {
        Record::GateDecision {
            outcome,
            rule,
            reason,
            level,
            required_level,
        } => {
            let mut text = format!("gate: {outcome}: {reason}");
            if let Some(rule) = rule {
                let _ = write!(text, " (rule {rule})");
            }
            if let Some(level) = level {
                let _ = write!(text, ", operator level {level}");
            }
            if let Some(required) = required_level {
                let _ = write!(text, ", needs level {required}");
            }
            text
        }
        Record::ApprovalRequested {
            target,
            approver_level,
            message,
        } => {
            format!(
                "approval of {} requested from level {approver_level}+: {message}",
                target_text(target)
            )
        }
        Record::ApprovalGranted {
            target,
            approver,
            approver_level,
            reason,
            signature,
        } => {
            let signed = if signature.is_some() { ", signed" } else { "" };
            let reason = reason
                .as_deref()
                .map(|reason| format!(": {reason}"))
                .unwrap_or_default();
            format!(
                "{} approved by {approver} (level {approver_level}{signed}){reason}",
                target_text(target)
            )
        }
        Record::ApprovalRejected {
            target,
            approver,
            approver_level,
            reason,
        } => {
            let reason = reason
                .as_deref()
                .map(|reason| format!(": {reason}"))
                .unwrap_or_default();
            format!(
                "{} rejected by {approver} (level {approver_level}){reason}",
                target_text(target)
            )
        }
        _ => return None,
    };
    Some(format!("{}  {what}", short_time(event.at)))
}

/// At most this many lines of each stream in `history show`.
const EXCERPT_LINES: usize = 5;
/// Longer lines are cut in `history show` (the JSON output has the whole excerpt).
const EXCERPT_WIDTH: usize = 160;

fn render_output(label: &str, output: &Output, out: &mut dyn Write) -> std::io::Result<()> {
    if output.length == 0 {
        return Ok(());
    }
    let lines: Vec<&str> = output.excerpt.lines().collect();
    writeln!(out, "       {label} ({} bytes):", output.length)?;
    for line in lines.iter().take(EXCERPT_LINES) {
        let cut: String = line.chars().take(EXCERPT_WIDTH).collect();
        let ellipsis = if cut.len() < line.len() { "…" } else { "" };
        writeln!(out, "         {cut}{ellipsis}")?;
    }
    if lines.len() > EXCERPT_LINES || output.is_truncated() {
        let more = lines.len().saturating_sub(EXCERPT_LINES);
        let stored = if output.is_truncated() {
            " (history keeps the first 64 KiB)"
        } else {
            ""
        };
        writeln!(
            out,
            "         … {more} more lines{stored}; sha256 {}",
            output.sha256
        )?;
    }
    Ok(())
}

fn render_step(step: &StepHistory, name_width: usize, out: &mut dyn Write) -> std::io::Result<()> {
    let Some(result) = &step.result else {
        return writeln!(
            out,
            "  {:>3}  {:<name_width$}  started, no result",
            step.step, step.name
        );
    };
    let rc = result.rc.map(|rc| format!("  rc {rc}")).unwrap_or_default();
    writeln!(
        out,
        "  {:>3}  {:<name_width$}  {:<11}  {:>7}{rc}",
        step.step,
        step.name,
        result.status.as_str(),
        human_duration(result.duration_ms),
    )?;
    render_output("stdout", &result.stdout, out)?;
    render_output("stderr", &result.stderr, out)
}

fn render_detail(detail: &RunDetail, out: &mut dyn Write) -> std::io::Result<()> {
    let summary = &detail.summary;
    writeln!(
        out,
        "run {}: {}, {}",
        summary.id, summary.runbook, summary.status
    )?;
    let actor = detail
        .requested_by
        .as_ref()
        .map_or_else(String::new, |actor| {
            let mut text = format!(" (uid {} {}", actor.uid, actor.user);
            if let Some(sudo_user) = &actor.sudo_user {
                let _ = write!(text, ", sudo from {sudo_user}");
            }
            if let Some(login_uid) = actor.login_uid {
                let _ = write!(text, ", login uid {login_uid}");
            }
            text.push(')');
            text
        });
    writeln!(
        out,
        "  requested  {} by {}{actor}",
        short_time(summary.requested_at),
        summary.operator
    )?;
    writeln!(
        out,
        "  runbook    {} (sha256 {})",
        summary.runbook, summary.runbook_sha256
    )?;
    let hosts: Vec<&str> = detail.hosts.iter().map(|host| host.host.as_str()).collect();
    writeln!(
        out,
        "  targets    {} → {} ({})",
        summary.pattern,
        hosts.join(", "),
        crate::plural::counted(summary.host_count, "host")
    )?;
    if !detail.params.is_empty() {
        let params: Vec<String> = detail
            .params
            .iter()
            .map(|(name, value)| format!("{name}={value}"))
            .collect();
        writeln!(out, "  params     {}", params.join(" "))?;
    }
    writeln!(
        out,
        "  mode       {}",
        if summary.check {
            "check (--check)"
        } else {
            "run"
        }
    )?;
    if let Some(started) = summary.started_at {
        writeln!(out, "  started    {}", short_time(started))?;
    }
    if let Some(finished) = summary.finished_at {
        writeln!(
            out,
            "  finished   {} after {}",
            short_time(finished),
            summary_duration(summary)
        )?;
    }
    if let Some(message) = &summary.message {
        writeln!(out, "  message    {message}")?;
    }
    let approvals: Vec<String> = detail.approvals.iter().filter_map(approval_line).collect();
    if !approvals.is_empty() {
        writeln!(out, "\napprovals")?;
        for line in approvals {
            writeln!(out, "  {line}")?;
        }
    }
    for host in &detail.hosts {
        writeln!(out, "\n{}", host.host)?;
        for message in &host.unreachable {
            writeln!(out, "  unreachable: {message}")?;
        }
        if host.steps.is_empty() && host.unreachable.is_empty() {
            writeln!(out, "  no step ran")?;
        }
        let name_width = host
            .steps
            .iter()
            .map(|step| step.name.chars().count())
            .max()
            .unwrap_or(0);
        for step in &host.steps {
            render_step(step, name_width, out)?;
        }
    }
    if !detail.hosts.is_empty() {
        writeln!(out, "\nrecap")?;
        let width = detail
            .hosts
            .iter()
            .map(|host| host.host.chars().count())
            .max()
            .unwrap_or(0);
        for host in &detail.hosts {
            let recap = host.recap;
            let mut line = format!(
                "  {:<width$}  ok={} changed={} skipped={} failed={} unreachable={}",
                host.host, recap.ok, recap.changed, recap.skipped, recap.failed, recap.unreachable
            );
            if recap.unfinished > 0 {
                let _ = write!(line, " unfinished={}", recap.unfinished);
            }
            writeln!(out, "{line}")?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use jiff::Timestamp;

    use super::{HistoryArgs, HistoryCommand, human_duration, parse_time_at, run};
    use crate::audit::{
        Actor, ApprovalTarget, AuditStore, GateOutcome, Output, Record, RunId, RunStatus,
        StepStatus,
    };
    use crate::cli::args::{Command, parse_command};

    fn parse(args: &[&str]) -> HistoryArgs {
        match parse_command(std::iter::once("history").chain(args.iter().copied())) {
            Ok(Command::History(args)) => args,
            other => panic!("`history {args:?}` parsed as {other:?}"),
        }
    }

    fn output(args: &[&str], state_dir: &std::path::Path, json: bool) -> String {
        let mut out = Vec::new();
        crate::cli::testing::with_context(state_dir, |context| {
            run(&parse(args), context, json, &mut out).expect("history runs");
        });
        String::from_utf8(out).expect("utf-8")
    }

    fn actor() -> Actor {
        Actor {
            uid: 1000,
            user: "alice".into(),
            sudo_user: Some("alice".into()),
            login_uid: None,
        }
    }

    fn record(
        store: &mut AuditStore,
        operator: &str,
        runbook: &str,
        hosts: &[&str],
        status: RunStatus,
    ) -> RunId {
        let actor = actor();
        let requested = Record::RunRequested {
            operator: operator.into(),
            runbook: runbook.into(),
            runbook_sha256: "ab".repeat(32),
            params: vec![
                ("env".into(), "staging".into()),
                ("db_pass".into(), "***".into()),
            ],
            pattern: "web".into(),
            hosts: hosts.iter().map(|&host| host.to_owned()).collect(),
            check: false,
        };
        let (run, lock) = store.begin_run(&actor, requested).expect("begin");
        store
            .append(
                run,
                &actor,
                &Record::GateDecision {
                    outcome: GateOutcome::NeedsApproval,
                    rule: Some("production".into()),
                    reason: "production needs an approval".into(),
                    level: Some(2),
                    required_level: Some(3),
                },
            )
            .expect("gate");
        store
            .append(
                run,
                &actor,
                &Record::ApprovalGranted {
                    target: ApprovalTarget::Run,
                    approver: "carol".into(),
                    approver_level: 4,
                    reason: Some("looks fine".into()),
                    signature: None,
                },
            )
            .expect("grant");
        store
            .append(run, &actor, &Record::RunStarted)
            .expect("start");
        for host in hosts {
            store
                .append(
                    run,
                    &actor,
                    &Record::StepStarted {
                        host: (*host).into(),
                        step: 1,
                        name: "pending upgrades".into(),
                    },
                )
                .expect("step");
            let stdout: String = (1..=8)
                .map(|line| format!("line {line}\n"))
                .collect::<Vec<_>>()
                .concat();
            store
                .append(
                    run,
                    &actor,
                    &Record::StepFinished {
                        host: (*host).into(),
                        step: 1,
                        name: "pending upgrades".into(),
                        status: StepStatus::Changed,
                        rc: Some(0),
                        changed: true,
                        duration_ms: 1500,
                        stdout: Output::capture(stdout.as_bytes()),
                        stderr: Output::capture(b"warning: slow mirror\n"),
                    },
                )
                .expect("step");
        }
        store
            .append(
                run,
                &actor,
                &Record::RunFinished {
                    status,
                    message: None,
                },
            )
            .expect("finish");
        drop(lock);
        run
    }

    #[test]
    fn the_listing_is_newest_first_and_filters() {
        let directory = tempfile::tempdir().expect("temp dir");
        let mut store = AuditStore::open(directory.path()).expect("open");
        let first = record(
            &mut store,
            "alice",
            "patch-debian",
            &["web1", "web2"],
            RunStatus::Ok,
        );
        let second = record(&mut store, "bob", "restart", &["db1"], RunStatus::Failed);
        let third = record(&mut store, "alice", "restart", &["web1"], RunStatus::Ok);
        drop(store);
        let state = directory.path();

        let table = output(&[], state, false);
        let lines: Vec<&str> = table.lines().collect();
        assert!(lines[0].starts_with("RUN  REQUESTED "), "{table}");
        assert!(lines[1].starts_with(&format!("{third} ")), "{table}");
        assert!(lines[3].starts_with(&format!("{first} ")), "{table}");
        assert!(
            lines[2].contains("bob") && lines[2].contains("failed"),
            "{table}"
        );

        let ids = |args: &[&str]| -> Vec<i64> {
            let json: serde_json::Value =
                serde_json::from_str(&output(args, state, true)).expect("json");
            json.as_array()
                .expect("array")
                .iter()
                .map(|run| run["id"].as_i64().expect("id"))
                .collect()
        };
        assert_eq!(ids(&[]), [third.get(), second.get(), first.get()]);
        assert_eq!(ids(&["--operator", "alice"]), [third.get(), first.get()]);
        assert_eq!(ids(&["--runbook", "restart"]), [third.get(), second.get()]);
        assert_eq!(ids(&["--host", "web1"]), [third.get(), first.get()]);
        assert_eq!(ids(&["--status", "failed"]), [second.get()]);
        assert_eq!(ids(&["--limit", "1"]), [third.get()]);
        assert_eq!(ids(&["--since", "1h"]).len(), 3);
        assert_eq!(ids(&["--until", "1h"]), Vec::<i64>::new());
        assert_eq!(ids(&["--since", "2999-01-01"]), Vec::<i64>::new());
        assert_eq!(
            output(&["--operator", "nobody"], state, false),
            "no runs recorded match\n"
        );
    }

    #[test]
    fn show_gives_approvals_steps_outputs_and_recap() {
        let directory = tempfile::tempdir().expect("temp dir");
        let mut store = AuditStore::open(directory.path()).expect("open");
        let run_id = record(
            &mut store,
            "alice",
            "patch-debian",
            &["web1", "web2"],
            RunStatus::Ok,
        );
        drop(store);
        let text = output(&["show", &run_id.to_string()], directory.path(), false);
        for expected in [
            &format!("run {run_id}: patch-debian, ok") as &str,
            "by alice (uid 1000 alice, sudo from alice)",
            "params     env=staging db_pass=***",
            "targets    web → web1, web2 (2 hosts)",
            "gate: needs_approval: production needs an approval (rule production), operator level 2, needs level 3",
            "the run approved by carol (level 4): looks fine",
            "    1  pending upgrades  changed         1.5s  rc 0",
            "       stdout (56 bytes):",
            "         line 5\n         … 3 more lines; sha256 ",
            "       stderr (21 bytes):\n         warning: slow mirror",
            "  web2  ok=0 changed=1 skipped=0 failed=0 unreachable=0",
        ] {
            assert!(text.contains(expected), "missing {expected:?} in\n{text}");
        }
        assert!(!text.contains("line 6"), "{text}");

        let json: serde_json::Value = serde_json::from_str(&output(
            &["show", &run_id.to_string()],
            directory.path(),
            true,
        ))
        .expect("json");
        assert_eq!(json["summary"]["status"], "ok");
        assert_eq!(
            json["hosts"][1]["steps"][0]["result"]["stdout"]["length"],
            56
        );
        assert_eq!(json["approvals"].as_array().expect("approvals").len(), 2);

        let mut out = Vec::new();
        let missing = parse(&["show", "999"]);
        crate::cli::testing::with_context(directory.path(), |context| {
            let error = run(&missing, context, false, &mut out).expect_err("unknown run");
            assert_eq!(error.to_string(), "run 999 does not exist");
        });
    }

    #[test]
    fn show_parses_its_run_and_rejects_filters() {
        assert!(matches!(
            parse(&["show", "#12"]).command,
            Some(HistoryCommand::Show { run }) if run == RunId::new(12)
        ));
        assert!(parse_command(["history", "--status", "done"]).is_err());
        assert!(parse_command(["history", "--since", "yesterday-ish"]).is_err());
    }

    #[test]
    fn times_parse_as_instants_dates_and_ages() {
        let now: Timestamp = "2025-03-10T12:00:00Z".parse().expect("instant");
        let parse = |text: &str| {
            parse_time_at(text, now)
                .map(|time| time.to_string())
                .map_err(|error| error.to_string())
        };
        assert_eq!(
            parse("2025-01-31T10:00:00+02:00").as_deref(),
            Ok("2025-01-31T08:00:00Z")
        );
        assert_eq!(parse("2025-01-31").as_deref(), Ok("2025-01-31T00:00:00Z"));
        assert_eq!(
            parse("2025-01-31 06:30").as_deref(),
            Ok("2025-01-31T06:30:00Z")
        );
        assert_eq!(parse("2h").as_deref(), Ok("2025-03-10T10:00:00Z"));
        assert_eq!(parse("7d").as_deref(), Ok("2025-03-03T12:00:00Z"));
        assert!(parse("soon").is_err());
        assert!(parse("5y").is_err());
    }

    #[test]
    fn durations_read_like_a_human_wrote_them() {
        assert_eq!(human_duration(850), "850ms");
        assert_eq!(human_duration(12_345), "12.3s");
        assert_eq!(human_duration(245_000), "4m05s");
        assert_eq!(human_duration(3_720_000), "1h02m");
    }
}
