//! `history` and `history show RUN` as the command line prints them: a table of runs (or JSON),
//! one run in full. Times are shown in UTC, like the times accepted by `--since` / `--until`.

use std::fmt::Write as _;
use std::io::Write;

use jiff::Timestamp;

use crate::audit::{
    ApprovalTarget, AuditError, Event, Output, Record, RunDetail, RunSummary, StepHistory,
};
use crate::error::Error;

/// Lists `runs` (what [`crate::ops::history::runs`] found), as a table or a JSON array.
pub(crate) fn list(runs: &[RunSummary], json: bool, out: &mut dyn Write) -> Result<(), Error> {
    if json {
        write_json(out, &runs)
    } else {
        render_table(runs, out).map_err(AuditError::Output)
    }?;
    Ok(())
}

/// Shows one run in full (what [`crate::ops::history::show`] found).
pub(crate) fn show(detail: &RunDetail, json: bool, out: &mut dyn Write) -> Result<(), Error> {
    if json {
        write_json(out, detail)
    } else {
        render_detail(detail, out).map_err(AuditError::Output)
    }?;
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
