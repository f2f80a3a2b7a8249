//! Small process helpers shared by the two ways a lab host runs (plain sshd, or a supervisor in
//! a mount namespace): signalling, reaping our own children, and pausing while polling.

use std::time::Duration;

/// Pause between two looks at a starting or stopping process.
const POLL_INTERVAL: Duration = Duration::from_millis(10);

/// Whether a stop had something to stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stopped {
    /// The host's processes were running and are now gone.
    Now,
    /// Nothing of the host was running (any more).
    Already,
}

/// Sends `signal` to `pid`. The caller has just checked that the pid is one of ours; a process
/// that exited in between makes this a no-op (ESRCH), which is what stopping wants anyway.
pub(crate) fn signal(pid: u32, signal: libc::c_int) {
    let Ok(raw_pid) = libc::pid_t::try_from(pid) else {
        return;
    };
    // Pid 0 and negative pids address process groups; never send those.
    if raw_pid <= 0 {
        return;
    }
    // SAFETY: kill has no memory preconditions.
    unsafe {
        libc::kill(raw_pid, signal);
    }
}

/// What [`reap`] found.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum ReapState {
    /// Our child, still running.
    Running,
    /// Collected now, or not our child (its parent collects it).
    Gone,
}

/// Collects the exit status when `pid` is a child of this process (the test suite starts labs
/// in-process), so it does not linger as a zombie. For any other pid this is a no-op.
pub(crate) fn reap(pid: u32) -> ReapState {
    let Ok(raw_pid) = libc::pid_t::try_from(pid) else {
        return ReapState::Gone;
    };
    if raw_pid <= 0 {
        return ReapState::Gone;
    }
    // SAFETY: a null status pointer is allowed; WNOHANG never blocks; for a pid that is not our
    // child waitpid only returns ECHILD.
    let result = unsafe { libc::waitpid(raw_pid, std::ptr::null_mut(), libc::WNOHANG) };
    if result == 0 {
        ReapState::Running
    } else {
        ReapState::Gone
    }
}

/// A short pause while polling a process that is starting or stopping.
#[expect(
    clippy::disallowed_methods,
    reason = "lab setup is synchronous std::process code (also used from test fixtures and Drop) \
              with no async runtime to yield to"
)]
pub(crate) fn pause() {
    std::thread::sleep(POLL_INTERVAL);
}
