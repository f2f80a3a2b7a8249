//! The per-run OS lock that tells a live run from a dead one.
//!
//! A live run holds an exclusive `flock` on `<state dir>/runs/<id>.lock` for as long as its
//! process works on it. The kernel drops the lock when the process dies, however it dies
//! (SIGKILL, OOM killer, power loss), so "status is live but the lock is free" means exactly
//! "the process that owned this run is gone": the store then records the run as `interrupted`.
//!
//! Details that matter:
//! - `flock` locks belong to an open file description, so a second open of the same file in
//!   the same process conflicts with the first, like another process would. A stale-run sweep in
//!   the same process as the run therefore sees the run as alive.
//! - The file is opened close-on-exec, so child processes (ssh multiplexers, scripts) never
//!   inherit the lock and cannot keep a dead run looking alive.
//! - The holder writes its pid into the file (information only; the lock is the truth).
//! - `flock` is reliable on local filesystems; a state directory on NFS is not supported.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use crate::audit::run::RunId;

/// The lock directory inside the state directory.
pub(crate) const LOCK_DIRECTORY: &str = "runs";

/// Path of the lock file of `run`.
pub(crate) fn lock_path(state_dir: &Path, run: RunId) -> PathBuf {
    state_dir.join(LOCK_DIRECTORY).join(format!("{run}.lock"))
}

/// Proof that this process owns a live run. Dropping it releases the lock and removes the lock
/// file; append the run's `run_finished` event first, or the next command that opens the store
/// records the run as `interrupted`.
#[derive(Debug)]
#[must_use = "dropping the lock lets the next opsgate command mark the run interrupted"]
pub struct RunLock {
    run: RunId,
    path: PathBuf,
    // Closing this descriptor is what releases the flock.
    file: File,
}

impl RunLock {
    /// The run this lock keeps alive.
    #[must_use]
    pub fn run(&self) -> RunId {
        self.run
    }

    /// The lock file.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Tries to take the lock of `run` without waiting: `Ok(None)` when another open file
    /// description holds it.
    pub(crate) fn try_acquire(state_dir: &Path, run: RunId) -> io::Result<Option<RunLock>> {
        let path = lock_path(state_dir, run);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&path)?;
        // SAFETY: the descriptor is valid for the lifetime of `file`; flock has no memory effects.
        let code = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if code != 0 {
            let error = io::Error::last_os_error();
            return if error.raw_os_error() == Some(libc::EWOULDBLOCK) {
                Ok(None)
            } else {
                Err(error)
            };
        }
        Ok(Some(RunLock { run, path, file }))
    }

    /// The pid the previous holder wrote, if any (read before this holder overwrites it).
    pub(crate) fn previous_holder(&mut self) -> Option<u32> {
        let mut text = String::new();
        self.file.rewind().ok()?;
        self.file.read_to_string(&mut text).ok()?;
        text.trim().parse().ok()
    }

    /// Records this process as the holder (information for whoever finds the lock later).
    pub(crate) fn write_holder(&mut self) -> io::Result<()> {
        self.file.set_len(0)?;
        self.file.rewind()?;
        writeln!(self.file, "{}", std::process::id())
    }
}

impl Drop for RunLock {
    fn drop(&mut self) {
        // Unlink before the descriptor closes: whoever opens the path afterwards gets a fresh
        // file, and by then the run is either finished in the database or really abandoned.
        // A failed removal only leaves an unlocked file behind, which means the same thing.
        let _ = std::fs::remove_file(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::RunLock;
    use crate::audit::run::RunId;

    #[test]
    fn a_held_lock_is_refused_to_a_second_open_even_in_the_same_process() {
        let directory = tempfile::tempdir().expect("temp dir");
        std::fs::create_dir(directory.path().join("runs")).expect("runs dir");
        let run = RunId::new(7);
        let mut first = RunLock::try_acquire(directory.path(), run)
            .expect("lock")
            .expect("lock is free");
        first.write_holder().expect("write pid");
        assert!(
            RunLock::try_acquire(directory.path(), run)
                .expect("lock")
                .is_none()
        );
        let path = first.path().to_path_buf();
        assert!(path.exists());
        drop(first);
        assert!(!path.exists(), "dropping the lock removes its file");
        let mut again = RunLock::try_acquire(directory.path(), run)
            .expect("lock")
            .expect("lock is free");
        assert_eq!(
            again.previous_holder(),
            None,
            "a fresh file has no holder yet"
        );
    }
}
