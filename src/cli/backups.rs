//! `opsgate backups`: the backups recorded in the audit history, newest first.
//!
//! Thin over [`crate::audit::backups`]. A backup that a later run's `keep` retention removed
//! stays listed, marked with that run, so the history answers "what did we have on Tuesday"
//! as well as "what can I restore now".

use std::io::Write;

use super::args::BackupsArgs;
use super::history::{short_time, write_columns, write_json};
use crate::audit::{AuditError, BackupEntry, BackupFilter};
use crate::error::Error;
use crate::ops::{self, Context};

/// Runs `backups` (SPEC §4.1: an account that is not an operator sees only its own runs').
pub(crate) fn run(
    args: &BackupsArgs,
    context: Context<'_>,
    json: bool,
    out: &mut dyn Write,
) -> Result<(), Error> {
    let filter = BackupFilter {
        host: args.host.clone(),
        runbook: args.runbook.clone(),
        operator: None,
        limit: (args.limit > 0).then_some(args.limit),
    };
    let backups = ops::history::backups(context, &filter)?;
    if json {
        write_json(out, &backups)?;
    } else {
        render(&backups, out).map_err(AuditError::Output)?;
    }
    Ok(())
}

fn render(backups: &[BackupEntry], out: &mut dyn Write) -> std::io::Result<()> {
    if backups.is_empty() {
        return writeln!(out, "no backups recorded match");
    }
    let header = [
        "WRITTEN", "HOST", "RUNBOOK", "RUN", "SIZE", "STATE", "ID", "PATH",
    ];
    let rows: Vec<[String; 8]> = backups
        .iter()
        .map(|backup| {
            [
                short_time(backup.at),
                backup.host.clone(),
                backup.runbook.clone(),
                backup.run.to_string(),
                human_size(backup.size),
                backup
                    .removed_by
                    .map_or_else(|| "kept".to_owned(), |run| format!("removed by run {run}")),
                backup.id.clone(),
                backup.path.clone(),
            ]
        })
        .collect();
    write_columns(header, &rows, out)
}

/// `512 B`, `4.0 KiB`, `12.3 MiB`, `1.2 GiB`.
fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = UNITS[0];
    for next in &UNITS[1..] {
        if value < 1024.0 {
            break;
        }
        value /= 1024.0;
        unit = next;
    }
    format!("{value:.1} {unit}")
}

#[cfg(test)]
mod tests {
    #[test]
    fn sizes_read_like_ls_h() {
        assert_eq!(super::human_size(512), "512 B");
        assert_eq!(super::human_size(4096), "4.0 KiB");
        assert_eq!(super::human_size(52_428_800), "50.0 MiB");
        assert_eq!(super::human_size(3 * 1024 * 1024 * 1024), "3.0 GiB");
    }
}
