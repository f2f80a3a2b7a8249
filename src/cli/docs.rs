//! `opsgate completions SHELL` and `opsgate man`: documents generated from the clap definitions
//! in [`super::args`], so they describe exactly the command line that parses.

use std::io::Write;

use clap::CommandFactory;

use super::args::{Cli, Shell};
use crate::error::Error;

/// Writes the completion script for `shell`.
pub(super) fn completions(shell: Shell, out: &mut dyn Write) -> Result<(), Error> {
    let generator = match shell {
        Shell::Bash => clap_complete::Shell::Bash,
        Shell::Zsh => clap_complete::Shell::Zsh,
        Shell::Fish => clap_complete::Shell::Fish,
    };
    let mut script = Vec::new();
    clap_complete::generate(generator, &mut Cli::command(), "opsgate", &mut script);
    super::emit(out, &String::from_utf8_lossy(&script))
}

/// Writes the man page, `opsgate(1)`, in roff.
pub(super) fn man(out: &mut dyn Write) -> Result<(), Error> {
    let mut page = Vec::new();
    clap_mangen::Man::new(Cli::command())
        .render(&mut page)
        .map_err(|source| Error::Terminal {
            action: "render the man page",
            source,
        })?;
    super::emit(out, &String::from_utf8_lossy(&page))
}

#[cfg(test)]
mod tests {
    use super::{Shell, completions, man};

    #[test]
    fn every_shell_gets_a_script_naming_the_subcommands() {
        for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
            let mut out = Vec::new();
            completions(shell, &mut out).expect("generated");
            let script = String::from_utf8(out).expect("utf-8");
            for subcommand in ["validate", "plan", "run", "history", "completions"] {
                assert!(script.contains(subcommand), "{shell:?}: {subcommand}");
            }
        }
    }

    #[test]
    fn the_man_page_is_roff_for_section_one() {
        let mut out = Vec::new();
        man(&mut out).expect("rendered");
        let page = String::from_utf8(out).expect("utf-8");
        assert!(
            page.starts_with(".ie") || page.contains(".TH opsgate 1"),
            "{page}"
        );
        assert!(page.contains(".TH opsgate 1"), "{page}");
    }
}
