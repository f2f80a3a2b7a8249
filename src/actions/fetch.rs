//! `fetch`: copy a remote file to `dest/<host>/<name>` on the control machine, checksum verified.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::{Context, Outcome, RunMode, quote};
use crate::runbook::model::Fetch;
use crate::transport::{Transport, TransportError};

/// Reads the remote file and its checksum in one command, verifies, writes locally via a temp
/// file + rename; `ok` when the local copy is already identical.
pub(super) async fn run<T: Transport>(
    context: &Context<'_, T>,
    fetch: &Fetch<String>,
) -> Result<Outcome, TransportError> {
    let Some(name) = Path::new(&fetch.src).file_name() else {
        return Ok(Outcome::failed(format!(
            "`{}` does not name a file",
            fetch.src
        )));
    };
    let local: PathBuf = Path::new(&fetch.dest).join(context.host).join(name);
    // Checksum first, on its own line, then the bytes: one round trip, and the checksum is of
    // exactly the bytes that were sent.
    let script = format!(
        "p={}; sha256sum -- \"$p\" | cut -d' ' -f1 && cat -- \"$p\"",
        quote(&fetch.src)
    );
    let output = context.shell(script).await?;
    if !output.success() && context.mode == RunMode::Check {
        // Under --check the step that would create it may not have run.
        return Ok(Outcome::skipped(format!(
            "check mode: cannot read `{}` yet; would fetch it",
            fetch.src
        )));
    }
    if !output.success() {
        return Ok(Outcome::failed_with(
            format!("cannot read `{}`: {}", fetch.src, output.failure()),
            &output,
        ));
    }
    let Some(newline) = output.stdout.iter().position(|byte| *byte == b'\n') else {
        return Ok(Outcome::failed("unexpected answer reading the remote file"));
    };
    let expected = String::from_utf8_lossy(&output.stdout[..newline])
        .trim()
        .to_owned();
    let bytes = &output.stdout[newline + 1..];
    let actual = hex::encode(Sha256::digest(bytes));
    if actual != expected {
        return Ok(Outcome::failed(format!(
            "checksum mismatch fetching `{}`: remote {expected}, received {actual}",
            fetch.src
        )));
    }
    if std::fs::read(&local).is_ok_and(|current| current == bytes) {
        return Ok(Outcome::ok(format!("{} is up to date", local.display())));
    }
    if context.mode == RunMode::Check {
        return Ok(Outcome::changed(format!("would write {}", local.display())));
    }
    if let Err(error) = write_atomically(&local, bytes) {
        return Ok(Outcome::failed(format!(
            "cannot write `{}`: {error}",
            local.display()
        )));
    }
    Ok(Outcome::changed(format!(
        "{} ({} bytes)",
        local.display(),
        bytes.len()
    )))
}

fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let directory = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(directory)?;
    let mut temp = tempfile::NamedTempFile::new_in(directory)?;
    std::io::Write::write_all(&mut temp, bytes)?;
    temp.as_file().sync_all()?;
    temp.persist(path).map_err(|error| error.error)?;
    Ok(())
}
