//! The terminal consumer of a run's event stream: the text of [`Transcript`] printed as it
//! comes, under a progress bar on a terminal.

use std::io::{IsTerminal, Write};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::executor::event::Event;
use crate::ops::run::RunObserver;
use crate::plan::Plan;
use crate::render::events::{Detail, Format, Transcript};

/// The run as it happens on the terminal (or as JSON lines): the [`RunObserver`] of `opsgate
/// run`. Events arrive already recorded, on the recording thread.
pub(super) struct Live {
    format: Format,
    transcript: Transcript,
    progress: ProgressBar,
}

impl Live {
    /// Shows events in `format`, with `detail` for the human format.
    pub(super) fn new(format: Format, detail: Detail) -> Self {
        Self {
            format,
            transcript: Transcript::new(format, detail),
            progress: ProgressBar::hidden(),
        }
    }
}

impl RunObserver for Live {
    fn started(&mut self, plan: &Plan) {
        self.transcript.started(plan);
        let total = plan.hosts.iter().map(|host| host.steps.len() as u64).sum();
        self.progress = progress_bar(self.format, total);
    }

    fn event(&mut self, event: &Event) {
        let text = self.transcript.event(event);
        if matches!(event, Event::StepFinished { .. }) {
            self.progress.inc(1);
        }
        if !text.is_empty() {
            self.progress.suspend(|| {
                let mut stdout = std::io::stdout().lock();
                let _ = stdout.write_all(text.as_bytes());
                let _ = stdout.flush();
            });
        }
    }

    fn finished(&mut self) {
        self.progress.finish_and_clear();
        let _ = write!(std::io::stdout().lock(), "{}", self.transcript.finished());
    }
}

fn progress_bar(format: Format, total: u64) -> ProgressBar {
    if format == Format::Json || !std::io::stderr().is_terminal() || total < 2 {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
    if let Ok(style) =
        ProgressStyle::with_template("{spinner} [{elapsed}] {bar:30} {pos}/{len} steps")
    {
        bar.set_style(style);
    }
    bar.enable_steady_tick(std::time::Duration::from_millis(200));
    bar
}
