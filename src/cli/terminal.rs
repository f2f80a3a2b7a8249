//! The terminal's side of [`Reporter`]: notices become lines on stderr, warnings diagnostics,
//! and the approval countdown one line rewritten in place on a terminal (every 5 seconds
//! otherwise, so logs stay readable). A secret param still missing is asked for at a no-echo
//! prompt ([`TerminalPrompter`]).

use std::io::{IsTerminal, Write};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::diagnostic::Style;
use crate::error::Error;
use crate::ops::Prompter;
use crate::render::notice_text;
use crate::report::{Notice, Reporter};
use crate::secret::Secret;

/// How often the countdown is printed when stderr is not a terminal.
const QUIET_COUNTDOWN: Duration = Duration::from_secs(5);

/// Reports on stderr.
pub(super) struct TerminalReporter {
    style: Style,
    terminal: bool,
    /// When the countdown was last printed (not a terminal).
    last_countdown: Mutex<Option<Instant>>,
}

impl TerminalReporter {
    /// A reporter writing in `style`.
    pub(super) fn new(style: Style) -> Self {
        Self {
            style,
            terminal: std::io::stderr().is_terminal(),
            last_countdown: Mutex::new(None),
        }
    }
}

impl Reporter for TerminalReporter {
    fn notice(&self, notice: Notice<'_>) {
        if let Notice::Countdown { run, left } = notice {
            self.countdown(run, left);
            return;
        }
        let Some(text) = notice_text(&notice, self.style, self.terminal) else {
            return;
        };
        let mut stderr = std::io::stderr().lock();
        let _ = stderr.write_all(text.as_bytes());
        let _ = stderr.flush();
    }
}

impl TerminalReporter {
    fn countdown(&self, run: crate::audit::RunId, left: Duration) {
        if !self.terminal {
            let mut last = self
                .last_countdown
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if last.is_some_and(|shown| shown.elapsed() < QUIET_COUNTDOWN) {
                return;
            }
            *last = Some(Instant::now());
        }
        // Rounded up, so the last line before the timeout does not read 0:00:00.
        let seconds = left.as_millis().div_ceil(1000);
        let text = format!(
            "waiting for approval of run {run}: {}:{:02}:{:02} left (Ctrl-C to give up)",
            seconds / 3600,
            seconds / 60 % 60,
            seconds % 60
        );
        let mut stderr = std::io::stderr().lock();
        if self.terminal {
            let _ = write!(stderr, "\r\x1b[2K{text}");
        } else {
            let _ = writeln!(stderr, "{text}");
        }
        let _ = stderr.flush();
    }
}

/// Asks at a no-echo prompt when stdin is a terminal; otherwise the param stays missing.
pub(super) struct TerminalPrompter;

impl Prompter for TerminalPrompter {
    fn secret(&self, runbook: &str, param: &str) -> Result<Option<Secret<String>>, Error> {
        if !std::io::stdin().is_terminal() {
            return Ok(None);
        }
        rpassword::prompt_password(format!("{runbook} (secret param `{param}`): "))
            .map(|value| Some(Secret::new(value)))
            .map_err(|source| Error::Terminal {
                action: "read a secret param at the prompt",
                source,
            })
    }
}
