//! `opsgate lab up|status|down`: throwaway local SSH hosts to try runbooks against.
//!
//! Thin: parses the arguments, calls [`crate::lab`], writes human output to the writer it is
//! given (stdout); warnings (hosts that share this machine's filesystem) come back to the
//! caller, which renders them on stderr. Who may run a lab (SPEC §4.6: not the service account,
//! not under a `SUDO_USER` identity) is decided by the caller before [`run`].

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use super::args::{LabArgs, LabCommand};
use crate::diagnostic::Diagnostic;
use crate::lab::{self, HostState, Isolation, Lab, LabError, LabOptions};

/// Runs `opsgate lab …`, writing human output to `out`. Returns the warnings to show on stderr.
pub(crate) fn run(args: &LabArgs, out: &mut dyn Write) -> Result<Vec<Diagnostic>, LabError> {
    match &args.command {
        LabCommand::Up { hosts, dir } => up(*hosts, dir, out),
        LabCommand::Status { dir } => status(dir, out).map(|()| Vec::new()),
        LabCommand::Down { dir } => down(dir, out).map(|()| Vec::new()),
    }
}

/// The warning for a lab whose hosts share this machine's filesystem; none for isolated hosts.
fn isolation_warnings(lab: &Lab) -> Vec<Diagnostic> {
    match &lab.isolation {
        Isolation::Overlay => Vec::new(),
        Isolation::Shared { reason } => {
            // The reason last: it may end with a long mount error.
            let mut warning = Diagnostic::warning(format!(
                "lab hosts share this machine's filesystem (only `lab_root` is per host, and \
                 `reboot` fails on them): {reason}"
            ));
            for hint in reason.hints() {
                warning = warning.hint(hint);
            }
            vec![warning]
        }
    }
}

fn up(hosts: usize, dir: &Path, out: &mut dyn Write) -> Result<Vec<Diagnostic>, LabError> {
    let lab = lab::up(&LabOptions {
        dir: dir.to_owned(),
        hosts,
    })?;
    let mut write = || -> io::Result<()> {
        writeln!(
            out,
            "started {} lab hosts as `{}` in {}",
            lab.hosts.len(),
            lab.user,
            lab.dir.display()
        )?;
        for host in &lab.hosts {
            writeln!(
                out,
                "  {:<6} {}:{:<5}  pid {:<7}  lab_root {}",
                host.name,
                host.address,
                host.port,
                host.pid,
                host.lab_root.display()
            )?;
        }
        writeln!(out)?;
        match lab.isolation {
            Isolation::Overlay => writeln!(
                out,
                "files:    each host has its own overlay of / (changes in {}/hosts/labN/overlay/upper)",
                lab.dir.display()
            )?,
            Isolation::Shared { .. } => writeln!(
                out,
                "files:    hosts share this machine's filesystem; lab_root is per host"
            )?,
        }
        writeln!(out, "log in:   ssh -F {} lab1", lab.ssh_config().display())?;
        writeln!(
            out,
            "try:      opsgate run runbooks/health-check.yaml -i {}",
            lab.inventory.display()
        )?;
        writeln!(
            out,
            "stop:     opsgate lab down --dir {}",
            lab.dir.display()
        )?;
        writeln!(out, "{}", lab.inventory.display())
    };
    write().map_err(output_error)?;
    Ok(isolation_warnings(&lab))
}

fn status(dir: &Path, out: &mut dyn Write) -> Result<(), LabError> {
    let status = lab::status(dir)?;
    let mut write = || -> io::Result<()> {
        writeln!(
            out,
            "lab in {}: {} of {} running",
            status.dir.display(),
            status.running(),
            crate::plural::counted(status.hosts.len(), "host")
        )?;
        for host in &status.hosts {
            let state = match host.state {
                HostState::Running => "up",
                HostState::Stopped => "down",
            };
            let files = if host.host.is_isolated() {
                "isolated"
            } else {
                "shared"
            };
            writeln!(
                out,
                "  {:<6} {:<4}  {}:{:<5}  pid {:<7}  {files}",
                host.host.name, state, host.host.address, host.host.port, host.host.pid
            )?;
        }
        writeln!(out, "inventory: {}", status.inventory.display())
    };
    write().map_err(output_error)
}

fn down(dir: &Path, out: &mut dyn Write) -> Result<(), LabError> {
    let before = lab::status(dir)?;
    lab::down(dir)?;
    writeln!(
        out,
        "stopped {} lab hosts and removed the lab in {}",
        before.running(),
        before.dir.display()
    )
    .map_err(output_error)
}

/// Output errors (a closed pipe) are reported like any other I/O failure.
fn output_error(source: io::Error) -> LabError {
    LabError::Io {
        action: "write to",
        path: PathBuf::from("standard output"),
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::{LabArgs, LabCommand, run};
    use crate::cli::args::{Command, parse_command};

    fn parse(arguments: &[&str]) -> LabArgs {
        match parse_command(std::iter::once("lab").chain(arguments.iter().copied())) {
            Ok(Command::Lab(args)) => args,
            other => panic!("`lab {arguments:?}` parsed as {other:?}"),
        }
    }

    #[test]
    fn up_defaults_to_three_hosts_in_the_project_lab_directory() {
        match parse(&["up"]).command {
            LabCommand::Up { hosts, dir } => {
                assert_eq!(hosts, 3);
                assert_eq!(dir, std::path::Path::new(".opsgate/lab"));
            }
            other => panic!("parsed as {other:?}"),
        }
        assert!(
            matches!(parse(&["down", "--dir", "/x"]).command, LabCommand::Down { dir } if dir.as_os_str() == "/x")
        );
    }

    fn run_lab(arguments: &[&str]) -> Result<String, crate::lab::LabError> {
        let parsed = parse(arguments);
        let mut out = Vec::new();
        let warnings = run(&parsed, &mut out)?;
        // Only `up` warns, and a lab started without root always does (hosts share the
        // filesystem); as root it depends on whether this machine can mount the overlay.
        if !matches!(parsed.command, LabCommand::Up { .. }) {
            assert!(warnings.is_empty(), "{warnings:?}");
        } else if crate::os_account::effective_uid() != 0 {
            assert_eq!(warnings.len(), 1, "{warnings:?}");
        }
        Ok(String::from_utf8(out).expect("utf-8 output"))
    }

    #[test]
    fn up_status_down_report_the_lab_and_end_with_the_inventory_path() {
        let temp = tempfile::tempdir().expect("temp dir");
        let dir = temp.path().join("lab");
        let dir_text = dir.to_str().expect("utf-8 temp path");

        let up = run_lab(&["up", "--hosts", "2", "--dir", dir_text]).expect("lab up");
        let inventory = dir.canonicalize().expect("lab dir").join("inventory.yaml");
        assert_eq!(
            up.lines().last(),
            Some(inventory.to_str().expect("utf-8")),
            "{up}"
        );
        assert!(
            up.contains("opsgate run runbooks/health-check.yaml -i "),
            "{up}"
        );
        assert!(up.contains("ssh -F ") && up.contains("lab2 "), "{up}");

        let status = run_lab(&["status", "--dir", dir_text]).expect("lab status");
        assert!(status.contains(": 2 of 2 hosts running"), "{status}");
        assert_eq!(
            status.lines().filter(|line| line.contains(" up ")).count(),
            2,
            "{status}"
        );

        let down = run_lab(&["down", "--dir", dir_text]).expect("lab down");
        assert!(down.starts_with("stopped 2 lab hosts"), "{down}");
        assert!(!inventory.exists());
        let error = run_lab(&["status", "--dir", dir_text]).expect_err("no lab any more");
        assert!(
            matches!(error, crate::lab::LabError::NoLab { .. }),
            "{error:?}"
        );
    }
}
