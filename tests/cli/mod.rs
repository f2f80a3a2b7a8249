//! The command line itself: generated documents (completions, man page), directory validation,
//! live run output, exit codes and wording.

use std::io::Write;
use std::process::{Command, Stdio};

use crate::common::Opsgate;

fn stdout(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn bash_completions_name_the_subcommands() {
    let output = Opsgate::new().args(["completions", "bash"]).output();
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let script = stdout(&output);
    assert!(script.contains("complete -F"), "{script}");
    for subcommand in ["validate", "plan", "run", "history", "inventory", "man"] {
        assert!(
            script.contains(subcommand),
            "{subcommand} missing:\n{script}"
        );
    }
    for shell in ["zsh", "fish"] {
        let output = Opsgate::new().args(["completions", shell]).output();
        assert_eq!(
            output.status.code(),
            Some(0),
            "{shell}: {}",
            stderr(&output)
        );
        assert!(stdout(&output).contains("validate"), "{shell}");
    }
    let output = Opsgate::new().args(["completions", "tcsh"]).output();
    assert_eq!(
        output.status.code(),
        Some(2),
        "an unknown shell is a usage error"
    );
}

#[test]
fn man_prints_a_roff_page_that_man_accepts() {
    let output = Opsgate::new().arg("man").output();
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let page = stdout(&output);
    assert!(page.contains(".TH opsgate 1"), "{page}");
    assert!(page.contains("completions"), "{page}");
    let Ok(mut man) = Command::new("man")
        .args(["-l", "-"])
        .env("MANPAGER", "cat")
        .env("PAGER", "cat")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    else {
        // No `man` on this machine: the `.TH` header above is the check.
        return;
    };
    man.stdin
        .take()
        .expect("stdin was piped")
        .write_all(page.as_bytes())
        .expect("feeding man");
    let formatted = man.wait_with_output().expect("man ran");
    assert!(
        formatted.status.success(),
        "man -l - refused the page: {}",
        stderr(&formatted)
    );
    assert!(
        stdout(&formatted).contains("opsgate"),
        "{}",
        stdout(&formatted)
    );
}
