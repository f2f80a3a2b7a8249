//! Finding runbooks on disk: `opsgate validate DIR` checks every runbook under a directory.
//!
//! Reads directory listings and nothing else; whether a file is a runbook is decided from its
//! text ([`is_runbook`]) by the caller, which reads it anyway.

use std::path::{Path, PathBuf};

use crate::diagnostic::{Diagnostic, Diagnostics};
use crate::project::is_yaml;

/// Every `*.yaml` / `*.yml` file under `dir`, recursively, sorted by path. Hidden entries
/// (`.git`, `.opsgate` with its lab inventory and state) are not entered. A directory that
/// cannot be read becomes an error in the returned diagnostics; the walk goes on with the rest.
#[must_use]
pub fn yaml_files_under(dir: &Path) -> (Vec<PathBuf>, Diagnostics) {
    let mut files = Vec::new();
    let mut errors = Diagnostics::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(error) => {
                errors.push(
                    Diagnostic::error(format!(
                        "cannot read directory `{}`: {error}",
                        dir.display()
                    ))
                    .hint("check the path and that the directory is readable"),
                );
                continue;
            }
        };
        for entry in entries.filter_map(Result::ok) {
            if entry.file_name().to_string_lossy().starts_with('.') {
                continue;
            }
            let path = entry.path();
            // `metadata` follows symlinks, so a linked directory of runbooks is walked too.
            match std::fs::metadata(&path) {
                Ok(metadata) if metadata.is_dir() => pending.push(path),
                Ok(metadata) if metadata.is_file() && is_yaml(&path) => files.push(path),
                _ => {}
            }
        }
    }
    files.sort();
    (files, errors)
}

/// A runbook has a top-level `runbook:` key; anything else is not one (an inventory, a policy).
#[must_use]
pub fn is_runbook(text: &str) -> bool {
    text.lines().any(|line| line.starts_with("runbook:"))
}

#[cfg(test)]
mod tests {
    use super::{is_runbook, yaml_files_under};

    #[test]
    fn yaml_files_are_found_recursively_sorted_and_hidden_entries_skipped() {
        let temp = tempfile::tempdir().expect("temp dir");
        let root = temp.path();
        for file in [
            "b.yaml",
            "a.yml",
            "notes.txt",
            "deep/er/c.YAML",
            ".opsgate/lab/inventory.yaml",
            "deep/.hidden.yaml",
        ] {
            let path = root.join(file);
            std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
            std::fs::write(&path, "runbook: x\n").expect("write");
        }
        let (files, errors) = yaml_files_under(root);
        assert!(!errors.has_errors());
        let relative: Vec<String> = files
            .iter()
            .map(|path| {
                path.strip_prefix(root)
                    .expect("under root")
                    .display()
                    .to_string()
            })
            .collect();
        assert_eq!(relative, ["a.yml", "b.yaml", "deep/er/c.YAML"]);
    }

    #[test]
    fn a_missing_directory_is_an_error_not_an_empty_list() {
        let (files, errors) = yaml_files_under(std::path::Path::new("/nonexistent/opsgate"));
        assert!(files.is_empty());
        assert!(errors.has_errors());
    }

    #[test]
    fn runbooks_are_told_by_their_top_level_key() {
        assert!(is_runbook("# comment\nrunbook: deploy\nsteps: []\n"));
        assert!(!is_runbook("hosts:\n  web1: {}\n"));
        assert!(!is_runbook("steps:\n  - runbook: nested\n"));
    }
}
