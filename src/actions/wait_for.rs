//! `wait_for`: poll a port, path or command on the host until it answers or time runs out.

use std::time::{Duration, Instant};

use super::{Context, Outcome, RunMode, quote};
use crate::runbook::model::{WaitFor, WaitTarget};
use crate::transport::{Transport, TransportError};

const POLL_INTERVAL: Duration = Duration::from_millis(500);

/// Polls until the target answers; read-only, so it runs under `--check` too.
pub(super) async fn run<T: Transport>(
    context: &Context<'_, T>,
    wait: &WaitFor<String>,
    timeout: Duration,
) -> Result<Outcome, TransportError> {
    let (probe, what) = match &wait.target {
        WaitTarget::Port { port, host } => {
            let host = host.as_deref().unwrap_or("127.0.0.1");
            // nc where installed; otherwise bash's /dev/tcp, which every Debian host has. Host and
            // port reach bash as positional parameters, never as shell text.
            let script = format!(
                "if command -v nc >/dev/null 2>&1; then nc -z -w 2 -- {h} {p}; \
                 else timeout 2 bash -c 'exec 3<>\"/dev/tcp/$1/$2\"' opsgate-probe {h} {p}; fi",
                h = quote(host),
                p = quote(port),
            );
            (script, format!("port {port} on {host}"))
        }
        WaitTarget::Path(path) => (format!("test -e {}", quote(path)), format!("path `{path}`")),
        WaitTarget::Command(command) => (command.clone(), format!("`{command}`")),
    };
    let started = Instant::now();
    let mut attempts = 0u32;
    loop {
        attempts += 1;
        if context.shell(probe.clone()).await?.success() {
            return Ok(Outcome::ok(format!(
                "{what} answered after {:.1}s",
                started.elapsed().as_secs_f64()
            )));
        }
        // Under --check the steps that would make it answer did not run: one probe is enough.
        if context.mode == RunMode::Check {
            return Ok(Outcome::skipped(format!(
                "check mode: {what} does not answer yet; would wait up to {}s",
                timeout.as_secs()
            )));
        }
        if started.elapsed() + POLL_INTERVAL > timeout {
            return Ok(Outcome::failed(format!(
                "{what} did not answer within {}s ({})",
                timeout.as_secs(),
                crate::plural::counted(attempts, "attempt")
            )));
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}
