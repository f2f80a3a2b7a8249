//! apk (Alpine): the same interface as apt.
//!
//! Installed packages come from `apk info -v` (`name-version-rN` per line). A simulation is the
//! command with `-s`, which prints the steps it would take:
//!
//! ```text
//! (1/3) Installing libcurl (8.5.0-r0)
//! (2/3) Upgrading musl (1.2.4-r1 -> 1.2.4-r2)
//! (3/3) Purging curl (8.5.0-r0)
//! ```
//!
//! Alpine's index does not mark security fixes, so `upgrade: security` is refused before any of
//! this runs.

use super::{Change, Installed, Operation, Simulation, quoted_names};
use crate::runbook::model::UpgradeScope;

/// Every installed package as `name-version-rN`.
pub(super) const QUERY: &str = "LC_ALL=C apk info -v 2>/dev/null";

/// Seconds apk waits for another process's database lock (`--wait`).
const WAIT: &str = "--wait 60";

/// Splits `musl-1.2.4-r2` into `musl` and `1.2.4-r2`.
fn split_name_version(text: &str) -> Option<(&str, &str)> {
    let (rest, release) = text.rsplit_once('-')?;
    let digits = release.strip_prefix('r')?;
    if digits.is_empty() || !digits.bytes().all(|byte| byte.is_ascii_digit()) {
        return None;
    }
    let (name, _) = rest.rsplit_once('-')?;
    Some((name, &text[name.len() + 1..]))
}

pub(super) fn parse_installed(text: &str) -> Installed {
    let mut installed = Installed::default();
    for line in text.lines() {
        if let Some((name, version)) = split_name_version(line.trim()) {
            installed.add(name, version);
        }
    }
    installed
}

pub(super) fn refresh_script() -> String {
    format!("export LC_ALL=C; apk update -q {WAIT}")
}

/// `apk` arguments for an operation, with `options` (`-s`, `--wait 60`) after the applet.
fn command(operation: &Operation, options: &str) -> String {
    match operation {
        Operation::Install(list) => format!("apk add {options} {}", quoted_names(list)),
        // `add -u` installs what is missing and upgrades what is there.
        Operation::Latest(list) | Operation::UpgradeOnly(list) => {
            format!("apk add {options} -u {}", quoted_names(list))
        }
        Operation::Remove(list) => format!("apk del {options} {}", quoted_names(list)),
        Operation::Upgrade(UpgradeScope::All | UpgradeScope::Security) => {
            format!("apk upgrade {options}")
        }
    }
}

pub(super) fn simulate_script(operation: &Operation) -> String {
    format!("export LC_ALL=C; {}", command(operation, "-s"))
}

pub(super) fn apply_script(operation: &Operation) -> String {
    format!("export LC_ALL=C; {}", command(operation, WAIT))
}

/// The changes in apk's `(n/m) Verb name (version)` lines.
pub(super) fn parse_steps(transcript: &str) -> Vec<Change> {
    transcript
        .lines()
        .filter_map(|line| {
            let line = line.trim();
            let rest = line.strip_prefix('(')?;
            let (counter, rest) = rest.split_once(") ")?;
            if !counter.contains('/') {
                return None;
            }
            let mut words = rest.splitn(3, ' ');
            let (verb, name, versions) = (words.next()?, words.next()?, words.next()?);
            let versions = versions.strip_prefix('(')?.strip_suffix(')')?;
            let (old, new) = match versions.split_once(" -> ") {
                Some((old, new)) => (Some(old.to_owned()), Some(new.to_owned())),
                None => (None, Some(versions.to_owned())),
            };
            let (from, to) = match verb {
                "Installing" => (None, new),
                "Upgrading" | "Downgrading" | "Replacing" | "Reinstalling" => {
                    (old.or_else(|| new.clone()), new)
                }
                "Purging" | "Deleting" | "Removing" => (new, None),
                _ => return None,
            };
            Some(Change {
                name: name.to_owned(),
                from,
                to,
            })
        })
        .collect()
}

/// Reads a simulation: its steps, the names apk does not know, or a failure.
pub(super) fn parse_simulation(rc: Option<i32>, stdout: &str, stderr: &str) -> Simulation {
    let unknown = unknown_names(&format!("{stdout}\n{stderr}"));
    if !unknown.is_empty() {
        return Simulation::Unknown(unknown);
    }
    if rc == Some(0) {
        Simulation::Pending(parse_steps(stdout))
    } else {
        Simulation::Failed
    }
}

/// Names in `  nosuch (no such package):` lines under "ERROR: unable to select packages:".
fn unknown_names(text: &str) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for line in text.lines() {
        if let Some(name) = line.trim().strip_suffix(" (no such package):") {
            let name = name.to_owned();
            if !names.contains(&name) {
                names.push(name);
            }
        }
    }
    names
}

/// apk's message when another process holds its database lock past `--wait`.
pub(super) fn lock_held(stderr: &str) -> bool {
    stderr.contains("Unable to lock database")
}

#[cfg(test)]
mod tests {
    use super::{parse_installed, parse_simulation, parse_steps, split_name_version};
    use crate::actions::package::{Change, Simulation};

    #[test]
    fn names_and_versions_split_at_the_version() {
        assert_eq!(
            split_name_version("musl-1.2.4-r2"),
            Some(("musl", "1.2.4-r2"))
        );
        assert_eq!(
            split_name_version("py3-foo-bar-0.1_rc1-r10"),
            Some(("py3-foo-bar", "0.1_rc1-r10"))
        );
        assert_eq!(split_name_version("WARNING: something"), None);
        let installed = parse_installed("musl-1.2.4-r2\nbusybox-1.36.1-r15\n");
        assert_eq!(installed.version("busybox").as_deref(), Some("1.36.1-r15"));
    }

    #[test]
    fn simulated_steps_are_changes() {
        let transcript = "\
(1/4) Installing libcurl (8.5.0-r0)
(2/4) Upgrading musl (1.2.4-r1 -> 1.2.4-r2)
(3/4) Purging curl (8.5.0-r0)
(4/4) Downgrading zlib (1.3-r1 -> 1.2-r0)
OK: 10 MiB in 17 packages
";
        assert_eq!(
            parse_simulation(Some(0), transcript, ""),
            Simulation::Pending(vec![
                Change::new("libcurl", None, Some("8.5.0-r0")),
                Change::new("musl", Some("1.2.4-r1"), Some("1.2.4-r2")),
                Change::new("curl", Some("8.5.0-r0"), None),
                Change::new("zlib", Some("1.3-r1"), Some("1.2-r0")),
            ])
        );
        assert_eq!(parse_steps("OK: 10 MiB in 17 packages\n"), vec![]);
    }

    #[test]
    fn unknown_packages_are_named() {
        let stderr = "ERROR: unable to select packages:\n  nosuch (no such package):\n    required by: world[nosuch]\n";
        assert_eq!(
            parse_simulation(Some(1), "", stderr),
            Simulation::Unknown(vec!["nosuch".into()])
        );
        assert_eq!(
            parse_simulation(Some(1), "", "ERROR: boom\n"),
            Simulation::Failed
        );
    }
}
