//! dnf (yum where dnf is missing): the same interface as apt.
//!
//! Installed packages come from `rpm -qa`, versions as `[epoch:]version-release`, the way dnf's
//! transaction table prints them. A simulation is the real command with `--assumeno`: dnf
//! resolves the transaction, prints its table and stops. The table lists each package under a
//! section heading (`Installing:`, `Upgrading:`, `Removing:` …) as `name arch version repository
//! size`; a name too long for its column wraps the rest onto the next line. The table shows only
//! the new version of an upgrade, so the old one comes from the installed snapshot.

use super::{Change, Index, Installed, Operation, Simulation, quoted_names};
use crate::runbook::model::UpgradeScope;

/// Every installed package as `name<TAB>[epoch:]version-release`.
pub(super) const QUERY: &str =
    "LC_ALL=C rpm -qa --qf '%{NAME}\\t%|EPOCH?{%{EPOCH}:}:{}|%{VERSION}-%{RELEASE}\\n'";

/// dnf if it is there, else yum (the `pkg_manager` fact says `dnf` for both).
const DNF: &str =
    "export LC_ALL=C; if command -v dnf >/dev/null 2>&1; then dnf=dnf; else dnf=yum; fi; ";

pub(super) fn parse_installed(text: &str) -> Installed {
    let mut installed = Installed::default();
    for line in text.lines() {
        if let Some((name, version)) = line.split_once('\t') {
            // rpm's public keys are pseudo-packages, not software.
            if name != "gpg-pubkey" && !version.is_empty() {
                installed.add(name, version);
            }
        }
    }
    installed
}

pub(super) fn refresh_script() -> String {
    format!("{DNF}\"$dnf\" -q makecache --refresh")
}

/// The dnf commands (arguments after `dnf -y` or `dnf --assumeno`) an operation needs.
fn commands(operation: &Operation, installed: &Installed) -> Vec<String> {
    match operation {
        Operation::Install(list) => vec![format!("install -- {}", quoted_names(list))],
        // `dnf install` leaves an installed package alone; `dnf upgrade` ignores a missing one.
        Operation::Latest(list) => {
            let (present, missing): (Vec<&String>, Vec<&String>) =
                list.iter().partition(|name| installed.contains(name));
            let mut commands = Vec::new();
            if !missing.is_empty() {
                commands.push(format!("install -- {}", quoted_names(&missing)));
            }
            if !present.is_empty() {
                commands.push(format!("upgrade -- {}", quoted_names(&present)));
            }
            commands
        }
        Operation::Remove(list) => vec![format!("remove -- {}", quoted_names(list))],
        Operation::Upgrade(UpgradeScope::All) => vec!["upgrade".to_owned()],
        Operation::Upgrade(UpgradeScope::Security) => vec!["upgrade --security".to_owned()],
        Operation::UpgradeOnly(list) => {
            vec![format!("upgrade -- {}", quoted_names(list))]
        }
    }
}

/// Each command with `--assumeno`: dnf resolves, prints the table and stops. It exits 1 after
/// "Operation aborted", so the exit code says nothing and the transcript is read instead.
/// `--assumeno` answers the transaction prompt; under `--check` ([`Index::Private`]),
/// `--cacheonly` also keeps dnf from refreshing expired metadata on the host.
pub(super) fn simulate_script(
    operation: &Operation,
    installed: &Installed,
    index: Index,
) -> String {
    let cache = match index {
        Index::Host => "",
        Index::Private => " --cacheonly",
    };
    let runs: Vec<String> = commands(operation, installed)
        .into_iter()
        .map(|arguments| format!("\"$dnf\" --assumeno{cache} {arguments}"))
        .collect();
    format!("{DNF}{}; exit 0", runs.join("; "))
}

pub(super) fn apply_script(operation: &Operation, installed: &Installed) -> String {
    let runs: Vec<String> = commands(operation, installed)
        .into_iter()
        .map(|arguments| format!("\"$dnf\" -y {arguments}"))
        .collect();
    format!("{DNF}{}", runs.join(" && "))
}

/// Which table section a heading opens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Section {
    Install,
    Update,
    Remove,
    /// Skipped, obsoleted or anything else that does not change what is installed by name.
    Other,
}

fn section(heading: &str) -> Section {
    let heading = heading.trim_end_matches(':');
    if heading.starts_with("Installing") {
        Section::Install
    } else if heading.starts_with("Upgrading")
        || heading.starts_with("Downgrading")
        || heading.starts_with("Reinstalling")
    {
        Section::Update
    } else if heading.starts_with("Removing") {
        Section::Remove
    } else {
        Section::Other
    }
}

/// The changes in dnf's transaction tables (several commands' tables may follow each other).
pub(super) fn parse_transaction(transcript: &str, installed: &Installed) -> Vec<Change> {
    let mut changes: Vec<Change> = Vec::new();
    let mut current = Section::Other;
    let mut wrapped: Option<String> = None;
    for line in transcript.lines() {
        if line.trim().is_empty() {
            current = Section::Other;
            continue;
        }
        if !line.starts_with(' ') {
            current = if line.trim_end().ends_with(':') {
                section(line.trim())
            } else {
                Section::Other
            };
            wrapped = None;
            continue;
        }
        if current == Section::Other {
            continue;
        }
        let words: Vec<&str> = line.split_whitespace().collect();
        if words.first() == Some(&"replacing") {
            continue;
        }
        // A long name alone on its line; the rest of the row follows.
        if words.len() == 1 {
            wrapped = Some(words[0].to_owned());
            continue;
        }
        let (name, row) = match wrapped.take() {
            Some(name) => (name, &words[..]),
            None => (words[0].to_owned(), &words[1..]),
        };
        // `arch version repository size unit`.
        let Some(version) = row.get(1) else {
            continue;
        };
        let version = (*version).to_owned();
        let change = match current {
            Section::Install => Change {
                name,
                from: None,
                to: Some(version),
            },
            Section::Update => Change {
                from: installed.version(&name),
                name,
                to: Some(version),
            },
            Section::Remove => Change {
                name,
                from: Some(version),
                to: None,
            },
            Section::Other => continue,
        };
        if !changes.contains(&change) {
            changes.push(change);
        }
    }
    changes
}

/// Reads a simulation: the table's changes, the names dnf does not know, or a failure.
pub(super) fn parse_simulation(
    rc: Option<i32>,
    stdout: &str,
    stderr: &str,
    installed: &Installed,
) -> Simulation {
    let both = format!("{stdout}\n{stderr}");
    let unknown = unknown_names(&both);
    if !unknown.is_empty() {
        return Simulation::Unknown(unknown);
    }
    // `--assumeno` ends every transaction with "Operation aborted" and exit code 1, so success
    // is a resolved transaction and no other error.
    let resolved = [
        "Operation aborted",
        "Nothing to do",
        "Dependencies resolved",
        "Transaction Summary",
    ]
    .iter()
    .any(|marker| both.contains(marker));
    let errors = both
        .lines()
        .any(|line| line.starts_with("Error:") && !line.contains("aborted"));
    if !resolved || errors || rc.is_none() {
        return Simulation::Failed;
    }
    Simulation::Pending(parse_transaction(stdout, installed))
}

/// Names in "No match for argument: X" (dnf 4, and dnf 5 after "Failed to resolve the
/// transaction:").
fn unknown_names(text: &str) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for line in text.lines() {
        if let Some((_, name)) = line.split_once("No match for argument: ") {
            let name = name.trim().to_owned();
            if !names.contains(&name) {
                names.push(name);
            }
        }
    }
    names
}

#[cfg(test)]
mod tests {
    use super::{
        apply_script, parse_installed, parse_simulation, parse_transaction, simulate_script,
    };
    use crate::actions::package::{Change, Index, Installed, Operation, Simulation};

    /// dnf 4's table for an upgrade that pulls in a dependency (the layout of Fedora 39).
    const UPGRADE: &str = "\
Last metadata expiration check: 0:01:02 ago on Tue 24 Nov 2026 09:00:00 UTC.
Dependencies resolved.
================================================================================
 Package                      Arch     Version              Repository     Size
================================================================================
Upgrading:
 bash                         x86_64   5.2.26-1.fc39        updates       1.8 M
 opsgate-fixture-hello        noarch   2.0-1                local         8.0 k
Installing dependencies:
 libnew                       x86_64   1:3.1-2.fc39         updates        40 k
Removing dependent packages:
 oldtool                      x86_64   0.9-1.fc39           @fedora        12 k
Installing weak dependencies:
 python3-very-long-package-name-that-wraps-the-column
                              noarch   1.0-1.fc39           fedora         10 k

Transaction Summary
================================================================================
Install  2 Packages
Upgrade  2 Packages
Remove   1 Package

Total download size: 1.9 M
Operation aborted.
";

    fn host() -> Installed {
        parse_installed(
            "bash\t5.2.21-1.fc39\nopsgate-fixture-hello\t1.0-1\ngpg-pubkey\tabc-def\noldtool\t0.9-1.fc39\n",
        )
    }

    #[test]
    fn the_transaction_table_gives_every_change() {
        assert_eq!(
            parse_transaction(UPGRADE, &host()),
            [
                Change::new("bash", Some("5.2.21-1.fc39"), Some("5.2.26-1.fc39")),
                Change::new("opsgate-fixture-hello", Some("1.0-1"), Some("2.0-1")),
                Change::new("libnew", None, Some("1:3.1-2.fc39")),
                Change::new("oldtool", Some("0.9-1.fc39"), None),
                Change::new(
                    "python3-very-long-package-name-that-wraps-the-column",
                    None,
                    Some("1.0-1.fc39")
                ),
            ]
        );
    }

    #[test]
    fn dnf5_replacing_lines_are_not_packages() {
        let transcript = "Transaction Summary:\nUpgrading:\n hello x86_64 2.0-1 local 1.0 KiB\n   replacing hello x86_64 1.0-1 local 1.0 KiB\n\n";
        assert_eq!(
            parse_transaction(transcript, &host()),
            [Change::new("hello", None, Some("2.0-1"))]
        );
    }

    #[test]
    fn simulations_are_read_from_the_transcript_not_the_exit_code() {
        assert_eq!(
            parse_simulation(Some(1), UPGRADE, "", &host()),
            Simulation::Pending(parse_transaction(UPGRADE, &host()))
        );
        assert_eq!(
            parse_simulation(
                Some(0),
                "Dependencies resolved.\nNothing to do.\nComplete!\n",
                "",
                &host()
            ),
            Simulation::Pending(vec![])
        );
        assert_eq!(
            parse_simulation(
                Some(1),
                "",
                "No match for argument: nosuch\nError: Unable to find a match: nosuch\n",
                &host()
            ),
            Simulation::Unknown(vec!["nosuch".into()])
        );
        assert_eq!(
            parse_simulation(
                Some(1),
                "",
                "Error: Failed to download metadata for repo 'x'\n",
                &host()
            ),
            Simulation::Failed
        );
        assert!(!parse_installed("gpg-pubkey\t1-2\n").contains("gpg-pubkey"));
    }

    #[test]
    fn latest_installs_what_is_missing_and_upgrades_the_rest() {
        let script = simulate_script(
            &Operation::Latest(vec!["bash".into(), "curl".into()]),
            &host(),
            Index::Host,
        );
        assert!(script.contains("--assumeno install -- curl"), "{script}");
        assert!(script.contains("--assumeno upgrade -- bash"), "{script}");
        let check = simulate_script(
            &Operation::Latest(vec!["curl".into()]),
            &host(),
            Index::Private,
        );
        assert!(
            check.contains("--assumeno --cacheonly install -- curl"),
            "{check}"
        );
        let apply = apply_script(&Operation::Latest(vec!["curl".into()]), &host());
        assert!(apply.ends_with("\"$dnf\" -y install -- curl"), "{apply}");
    }
}
