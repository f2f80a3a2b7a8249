//! apt over dpkg: the first-class backend.
//!
//! Installed packages come from `dpkg-query -W` (`${binary:Package}` names a foreign-architecture
//! package `libc6:i386`, as apt's transcripts do). A simulation is `apt-get -s`, whose transcript
//! has one line per package action:
//!
//! ```text
//! Inst hello [1.0-1] (2.0-1 Debian:12.5/stable [amd64])      upgrade 1.0-1 → 2.0-1
//! Inst libfoo (3.1 Debian-Security:12/stable-security [all])  new install
//! Remv bar [0.9]                                              removal (`Purg` for a purge)
//! ```
//!
//! The part in parentheses is the candidate version, then its release (`label:version/archive`,
//! several joined by `, `) and architecture; `upgrade: security` keeps the upgrades whose release
//! mentions "security". Every command runs with `LC_ALL=C`, since apt translates its messages.

use super::{Change, Index, Installed, Operation, Simulation, quoted_names};
use crate::runbook::model::UpgradeScope;

/// The native architecture on the first line, then every package with files on disk: status
/// letters, name and version, tab-separated.
pub(super) const QUERY: &str = "dpkg --print-architecture; \
     LC_ALL=C dpkg-query -W -f='${db:Status-Abbrev}\\t${binary:Package}\\t${Version}\\n'";

/// Environment for every apt command: untranslated messages, no questions (debconf,
/// needrestart, apt-listchanges).
const ENVIRONMENT: &str = "export LC_ALL=C DEBIAN_FRONTEND=noninteractive NEEDRESTART_MODE=a \
                           APT_LISTCHANGES_FRONTEND=none; ";

/// dpkg's own lock wait (apt ≥ 1.9.11; older versions ignore the option), before opsgate's.
const LOCK_TIMEOUT: &str = "-o DPkg::Lock::Timeout=60";

/// `dpkg-query`'s `${binary:Package}` qualifies a `Multi-Arch: same` package with its
/// architecture even when it is the native one (`libssl3:amd64`), while runbooks and apt's
/// transcripts name it `libssl3`: the native qualifier is dropped so the names meet.
pub(super) fn parse_installed(text: &str) -> Installed {
    let mut installed = Installed::default();
    let mut lines = text.lines().peekable();
    // The architecture line is the one without a tab.
    let native = match lines.peek() {
        Some(first) if !first.contains('\t') && !first.trim().is_empty() => {
            let arch = format!(":{}", first.trim());
            lines.next();
            arch
        }
        _ => String::new(),
    };
    for line in lines {
        let mut fields = line.split('\t');
        let (Some(status), Some(name), Some(version)) =
            (fields.next(), fields.next(), fields.next())
        else {
            continue;
        };
        if version.is_empty() {
            continue;
        }
        let name = if native.is_empty() {
            name
        } else {
            name.strip_suffix(native.as_str()).unwrap_or(name)
        };
        // Second letter: `i` installed, `W`/`t` installed with triggers pending; `U`, `F`, `H`
        // have files on disk but are unfinished (a failed upgrade); `n` and `c` (config files
        // only) are not installed.
        match status.as_bytes().get(1) {
            Some(b'i' | b'W' | b't') => installed.add(name, version),
            Some(b'U') => installed.add_unfinished(name, version, "unpacked"),
            Some(b'F') => installed.add_unfinished(name, version, "half-configured"),
            Some(b'H') => installed.add_unfinished(name, version, "half-installed"),
            _ => {}
        }
    }
    installed
}

pub(super) fn refresh_script() -> String {
    format!("{ENVIRONMENT}apt-get -q {LOCK_TIMEOUT} update")
}

/// The `apt-get` arguments after the options: `install -- a b`, `upgrade --with-new-pkgs`.
fn arguments(operation: &Operation) -> String {
    match operation {
        Operation::Install(list) | Operation::Latest(list) => {
            format!("install -- {}", quoted_names(list))
        }
        // Security upgrades of installed packages only: never a new package, never a removal
        // (apt aborts rather than remove), as `upgrade` would not either.
        Operation::UpgradeOnly(list) => format!(
            "install --only-upgrade --no-remove -- {}",
            quoted_names(list)
        ),
        Operation::Remove(list) => format!("remove -- {}", quoted_names(list)),
        // `--with-new-pkgs` lets an upgrade pull in new dependencies (a new kernel ABI
        // package), as `apt upgrade` does, and still never removes anything. Security
        // upgrades are narrowed to `UpgradeOnly` before they get here.
        Operation::Upgrade(UpgradeScope::All | UpgradeScope::Security) => {
            "upgrade --with-new-pkgs".to_owned()
        }
    }
}

/// Options that point apt at the private copy of the package lists in `$lists`, keep its binary
/// caches (`/var/cache/apt/*.bin`) off the disk, and send its logs (even a simulation writes the
/// planner's `eipp.log.xz`) into that throwaway directory too.
const PRIVATE_LISTS: &str = "-o Dir::State::Lists=\"$lists\" -o Dir::Cache::pkgcache= \
                             -o Dir::Cache::srcpkgcache= -o Dir::Log=\"$lists\"";

/// `apt-get -s`: takes no lock, changes nothing.
///
/// With [`Index::Private`] (`--check`), the simulation first refreshes a throwaway copy of the
/// package lists, so it reports from a fresh index and still leaves the host's lists — and
/// everything else on the host — as they were; the copy is removed when the command ends. That
/// refresh runs without the `APT::Update::*-Invoke` hooks of `/etc/apt/apt.conf.d` (appstream,
/// command-not-found, cache cleaners), which would change the host.
pub(super) fn simulate_script(operation: &Operation, index: Index) -> String {
    let arguments = arguments(operation);
    match index {
        Index::Host => {
            format!("{ENVIRONMENT}apt-get -s -q -o Debug::NoLocking=1 {arguments}")
        }
        Index::Private => format!(
            "{ENVIRONMENT}lists=$(mktemp -d) || exit 100; trap 'rm -rf -- \"$lists\"' EXIT; \
             cp -a /var/lib/apt/lists/. \"$lists\"/ 2>/dev/null; rm -f -- \"$lists/lock\"; \
             mkdir -p -- \"$lists/partial\"; \
             printf '#clear APT::Update::Pre-Invoke;\\n#clear APT::Update::Post-Invoke;\\n\
             #clear APT::Update::Post-Invoke-Success;\\n' > \"$lists/no-hooks.conf\"; \
             apt-get -q -c \"$lists/no-hooks.conf\" -o Debug::NoLocking=1 -o APT::Sandbox::User=root \
             {PRIVATE_LISTS} update \
             >/dev/null || {{ echo 'refreshing a private copy of the package index failed' >&2; exit 100; }}; \
             apt-get -s -q -o Debug::NoLocking=1 {PRIVATE_LISTS} {arguments}"
        ),
    }
}

pub(super) fn apply_script(operation: &Operation) -> String {
    let command = format!(
        "apt-get -y -q {LOCK_TIMEOUT} -o Dpkg::Options::=--force-confdef \
         -o Dpkg::Options::=--force-confold {}",
        arguments(operation)
    );
    match operation {
        // `apt-get install` marks what it names as manually installed; a security upgrade of a
        // library must not turn it into something `autoremove` keeps forever.
        Operation::UpgradeOnly(list) => format!(
            "{ENVIRONMENT}auto=$(apt-mark showauto -- {names} 2>/dev/null || true); {command}; \
             rc=$?; if [ -n \"$auto\" ]; then apt-mark auto -- $auto >/dev/null; fi; exit $rc",
            names = quoted_names(list)
        ),
        _ => format!("{ENVIRONMENT}{command}"),
    }
}

/// One `Inst`/`Remv`/`Purg` line of a simulation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Action {
    /// The change it would make.
    pub(super) change: Change,
    /// The candidate's release text (`Debian-Security:12/stable-security`), empty for a removal.
    pub(super) release: String,
}

/// Parses a simulation transcript's action lines, in order.
pub(super) fn parse_actions(transcript: &str) -> Vec<Action> {
    transcript.lines().filter_map(parse_action).collect()
}

fn parse_action(line: &str) -> Option<Action> {
    let (kind, rest) = line.split_once(' ')?;
    if !matches!(kind, "Inst" | "Remv" | "Purg") {
        return None;
    }
    let (name, rest) = rest.split_once(' ').unwrap_or((rest, ""));
    let rest = rest.trim_start();
    // `[old]`, present when the package is installed now.
    let (current, rest) = match rest.strip_prefix('[') {
        Some(bracketed) => {
            let (version, rest) = bracketed.split_once(']')?;
            (Some(version.to_owned()), rest.trim_start())
        }
        None => (None, rest),
    };
    if kind != "Inst" {
        return Some(Action {
            change: Change {
                name: name.to_owned(),
                from: current,
                to: None,
            },
            release: String::new(),
        });
    }
    // `(new release [arch])`, possibly followed by `[]` or `[dependency ]` annotations.
    let candidate = rest.strip_prefix('(')?;
    let candidate = &candidate[..candidate.find(')')?];
    let (version, release) = candidate.split_once(' ').unwrap_or((candidate, ""));
    let release = match release.rfind(" [") {
        Some(end) => &release[..end],
        None if release.starts_with('[') => "",
        None => release,
    };
    Some(Action {
        change: Change {
            name: name.to_owned(),
            from: current,
            to: Some(version.to_owned()),
        },
        release: release.to_owned(),
    })
}

/// Names of the pending *upgrades* whose candidate comes from a security origin or archive.
pub(super) fn security_upgrades(transcript: &str) -> Vec<String> {
    parse_actions(transcript)
        .into_iter()
        .filter(|action| {
            action.change.from.is_some()
                && action.change.to.is_some()
                && action.release.to_ascii_lowercase().contains("security")
        })
        .map(|action| action.change.name)
        .collect()
}

/// Reads a simulation: its changes, the names apt does not know, or a failure.
pub(super) fn parse_simulation(rc: Option<i32>, stdout: &str, stderr: &str) -> Simulation {
    if rc == Some(0) {
        return Simulation::Pending(
            parse_actions(stdout)
                .into_iter()
                .map(|action| action.change)
                .collect(),
        );
    }
    let unknown = unknown_names(stderr);
    if unknown.is_empty() {
        Simulation::Failed
    } else {
        Simulation::Unknown(unknown)
    }
}

/// Names in apt's "no such package" errors, in order.
fn unknown_names(stderr: &str) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for line in stderr.lines() {
        let Some(message) = line.strip_prefix("E: ") else {
            continue;
        };
        let name = if let Some(name) = message.strip_prefix("Unable to locate package ") {
            Some(name.trim())
        } else if let Some(rest) = message.strip_prefix("Package '") {
            rest.strip_suffix("' has no installation candidate")
        } else if let Some(rest) = message
            .strip_prefix("Couldn't find any package by glob '")
            .or_else(|| message.strip_prefix("Couldn't find any package by regex '"))
        {
            rest.strip_suffix('\'')
        } else {
            None
        };
        if let Some(name) = name.filter(|name| !names.iter().any(|known| known == name)) {
            names.push(name.to_owned());
        }
    }
    names
}

/// apt's messages for a lock another process holds (dpkg's frontend lock, the lists lock).
pub(super) fn lock_held(stderr: &str) -> bool {
    stderr.lines().any(|line| {
        line.starts_with("E: Could not get lock")
            || line.starts_with("E: Unable to acquire the dpkg frontend lock")
            || line.starts_with("E: Unable to lock directory")
            || line.starts_with("E: Unable to lock the administration directory")
    })
}

#[cfg(test)]
mod tests {
    use super::{
        Action, apply_script, parse_actions, parse_installed, parse_simulation, security_upgrades,
        simulate_script,
    };
    use crate::actions::package::{Change, Index, Operation, Simulation};
    use crate::runbook::model::UpgradeScope;

    /// Lines as apt 2.6 prints them for `apt-get -s upgrade` on Debian 12 (captured).
    const UPGRADE: &str = "\
NOTE: This is only a simulation!
      apt-get needs root privileges for real execution.
Reading package lists...
Building dependency tree...
Reading state information...
Calculating upgrade...
The following packages will be upgraded:
  bash libgcrypt20 liblzma5
3 upgraded, 0 newly installed, 0 to remove and 0 not upgraded.
Inst base-files [12.4+deb12u11] (12.4+deb12u15 Debian:12.15/oldstable [amd64])
Conf base-files (12.4+deb12u15 Debian:12.15/oldstable [amd64])
Inst bash [5.2.15-2+b8] (5.2.15-2+b13 Debian:12.15/oldstable [amd64])
Inst libgcrypt20-dev [1.10.1-3] (1.10.1-3+deb12u1 Debian:12.15/oldstable, Debian-Security:12/oldstable-security [amd64]) []
Inst libgcrypt20 [1.10.1-3] (1.10.1-3+deb12u1 Debian:12.15/oldstable, Debian-Security:12/oldstable-security [amd64])
Conf libgcrypt20 (1.10.1-3+deb12u1 Debian:12.15/oldstable, Debian-Security:12/oldstable-security [amd64])
Inst liblzma5 [5.4.1-1] (5.4.1-1+deb12u2 Debian-Security:12/oldstable-security [amd64])
Inst libcap2 [1:2.66-4+deb12u2+b2] (1:2.66-4+deb12u3+b1 Debian:12.15/oldstable [amd64]) []
Inst linux-image-6.1.0-20-amd64 (6.1.85-1 Debian-Security:12/stable-security [amd64])
Inst libc6:i386 [2.36-9+deb12u3] (2.36-9+deb12u4 Debian:12.5/stable [i386])
Inst opsgate-fixture-hello [1.0-1] (2.0-1 opsgate-test:opsgate [all])
Inst flat-repo-package (1.0-1 localhost [all])
Conf flat-repo-package (1.0-1 localhost [all])
";

    #[test]
    fn inst_lines_are_upgrades_or_new_installs_with_their_release() {
        let actions = parse_actions(UPGRADE);
        assert_eq!(actions.len(), 10);
        assert_eq!(
            actions[0],
            Action {
                change: Change::new("base-files", Some("12.4+deb12u11"), Some("12.4+deb12u15")),
                release: "Debian:12.15/oldstable".to_owned(),
            }
        );
        assert_eq!(
            actions[2].release,
            "Debian:12.15/oldstable, Debian-Security:12/oldstable-security"
        );
        assert_eq!(
            actions[5].change,
            Change::new(
                "libcap2",
                Some("1:2.66-4+deb12u2+b2"),
                Some("1:2.66-4+deb12u3+b1")
            )
        );
        assert_eq!(
            actions[6].change,
            Change::new("linux-image-6.1.0-20-amd64", None, Some("6.1.85-1"))
        );
        assert_eq!(actions[7].change.name, "libc6:i386");
        assert_eq!(
            actions[8].change,
            Change::new("opsgate-fixture-hello", Some("1.0-1"), Some("2.0-1"))
        );
        assert_eq!(actions[9].release, "localhost");
    }

    #[test]
    fn remv_and_purg_lines_are_removals() {
        let actions = parse_actions(
            "Remv software-properties-common [0.99.30-4.1~deb12u1]\nPurg sed [4.9-1]\nRemv odd\n",
        );
        let changes: Vec<Change> = actions.into_iter().map(|action| action.change).collect();
        assert_eq!(
            changes,
            [
                Change::new(
                    "software-properties-common",
                    Some("0.99.30-4.1~deb12u1"),
                    None
                ),
                Change::new("sed", Some("4.9-1"), None),
                Change::new("odd", None, None),
            ]
        );
    }

    #[test]
    fn security_upgrades_come_from_a_security_release() {
        // New installs (a new kernel ABI package) are dependencies, not upgrades to select.
        assert_eq!(
            security_upgrades(UPGRADE),
            ["libgcrypt20-dev", "libgcrypt20", "liblzma5"]
        );
        assert!(
            security_upgrades("Inst hello [1] (2 Ubuntu:22.04/jammy-updates [amd64])\n").is_empty()
        );
        assert_eq!(
            security_upgrades("Inst hello [1] (2 Ubuntu:22.04/jammy-security [amd64])\n"),
            ["hello"]
        );
    }

    #[test]
    fn a_failed_simulation_names_the_unknown_packages() {
        let stderr = "E: Unable to locate package nosuch\nE: Package 'virtual-thing' has no installation candidate\nE: Unable to locate package nosuch\n";
        assert_eq!(
            parse_simulation(Some(100), "Reading package lists...\n", stderr),
            Simulation::Unknown(vec!["nosuch".into(), "virtual-thing".into()])
        );
        assert_eq!(
            parse_simulation(
                Some(100),
                "",
                "E: Couldn't find any package by glob 'x.y'\n"
            ),
            Simulation::Unknown(vec!["x.y".into()])
        );
        assert_eq!(
            parse_simulation(Some(100), "", "E: Broken packages\n"),
            Simulation::Failed
        );
        assert_eq!(
            parse_simulation(
                Some(0),
                "Reading package lists...\n0 upgraded, 0 newly installed\n",
                ""
            ),
            Simulation::Pending(vec![])
        );
    }

    #[test]
    fn installed_packages_are_read_from_dpkg_query() {
        let installed = parse_installed(
            "amd64\nii \tbash\t5.2.15-2+b8\nrc \told-thing\t1.0\nii \tlibc6:i386\t2.36-9\n\
             ii \tlibssl3:amd64\t3.0.17-1\niU \thalf\t1.0\niW \ttriggered\t2.0\nun \tnever\t\n",
        );
        assert_eq!(installed.version("bash").as_deref(), Some("5.2.15-2+b8"));
        assert!(installed.contains("libc6:i386"));
        // A Multi-Arch: same package of the native architecture goes by its plain name.
        assert!(installed.contains("libssl3"));
        assert!(!installed.contains("libssl3:amd64"));
        assert!(installed.contains("triggered"));
        assert!(!installed.contains("old-thing"));
        assert!(!installed.contains("half"));
        assert_eq!(installed.version("half").as_deref(), Some("1.0 (unpacked)"));
        assert!(!installed.contains("never"));
    }

    #[test]
    fn scripts_quote_names_and_never_ask() {
        let simulate = simulate_script(&Operation::Install(vec!["it's".into()]), Index::Host);
        assert!(simulate.contains("apt-get -s"), "{simulate}");
        assert!(simulate.ends_with("install -- 'it'\\''s'"), "{simulate}");
        let apply = apply_script(&Operation::Upgrade(UpgradeScope::All));
        assert!(apply.contains("DEBIAN_FRONTEND=noninteractive"), "{apply}");
        assert!(apply.contains("--force-confold"), "{apply}");
        assert!(apply.ends_with("upgrade --with-new-pkgs"), "{apply}");
        let security = apply_script(&Operation::UpgradeOnly(vec!["libssl3".into()]));
        assert!(
            security.contains("apt-mark showauto -- libssl3"),
            "{security}"
        );
        assert!(
            security.contains("install --only-upgrade --no-remove -- libssl3"),
            "{security}"
        );
    }
}
