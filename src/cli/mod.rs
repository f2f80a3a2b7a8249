//! Command line: argument parsing, subcommands, human and JSON output.

pub(crate) mod inventory;

/// Entry point of the binary.
#[must_use]
pub fn main() -> std::process::ExitCode {
    std::process::ExitCode::SUCCESS
}
