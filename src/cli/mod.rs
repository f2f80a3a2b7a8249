//! Command line: argument parsing, subcommands, human and JSON output.

// Wired into the top-level command by the lead; until then only the tests call them.
#[cfg_attr(
    not(test),
    expect(dead_code, reason = "not yet wired into the top-level command")
)]
pub(crate) mod audit;
#[cfg_attr(
    not(test),
    expect(dead_code, reason = "not yet wired into the top-level command")
)]
pub(crate) mod history;

/// Entry point of the binary.
#[must_use]
pub fn main() -> std::process::ExitCode {
    std::process::ExitCode::SUCCESS
}
