//! `backups` as the command line prints it: a table, newest first.

use std::io::Write;

use super::history::{short_time, write_columns};
use crate::audit::BackupEntry;

/// The table of `backups`.
pub(crate) fn render(backups: &[BackupEntry], out: &mut dyn Write) -> std::io::Result<()> {
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
