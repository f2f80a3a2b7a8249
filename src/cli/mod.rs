//! Command line: argument parsing, subcommands, human and JSON output.

#[cfg_attr(
    not(test),
    expect(
        dead_code,
        reason = "`lab` is wired into the top-level command by the lead"
    )
)]
pub(crate) mod lab;

/// Entry point of the binary.
#[must_use]
pub fn main() -> std::process::ExitCode {
    std::process::ExitCode::SUCCESS
}
