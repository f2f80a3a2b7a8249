//! Shared test fixtures: [`TestLab`] (real local sshd hosts through `opsgate::lab`),
//! [`Opsgate`] (runs the real binary in a clean environment and checks what it did) with
//! [`snapshot!`](crate::snapshot) for its output, and [`TestPostgres`] (a throwaway PostgreSQL
//! cluster on loopback).

pub mod background;
pub mod lab;
pub mod opsgate;
pub mod postgres;

pub use background::BackgroundRun;
pub use lab::TestLab;
pub use opsgate::{Opsgate, Outcome, arg, repository};
pub use postgres::TestPostgres;

/// Held for writing while a test changes this machine's account database (`useradd`,
/// `groupadd`, `usermod`), and for reading by every isolated lab host for its lifetime. An
/// isolated host's `/` is an overlay whose lower layer is this machine's `/`: a change to the lower
/// layer while it is mounted is undefined for overlayfs, and in practice a `/etc/passwd.lock`
/// held here for a moment showed up inside a host, and its `useradd` failed on it.
/// (A hand-made lock, because a lab is handed between threads and std's read guards are not
/// `Send`.)
pub static HOST_ACCOUNTS: AccountsLock = AccountsLock {
    state: std::sync::Mutex::new(AccountsState {
        labs: 0,
        changing: false,
    }),
    changed: std::sync::Condvar::new(),
};

/// See [`HOST_ACCOUNTS`].
pub struct AccountsLock {
    state: std::sync::Mutex<AccountsState>,
    changed: std::sync::Condvar,
}

struct AccountsState {
    /// Isolated labs alive.
    labs: usize,
    /// A test is changing the accounts.
    changing: bool,
}

impl AccountsLock {
    fn wait_until(
        &self,
        ready: impl Fn(&AccountsState) -> bool,
    ) -> std::sync::MutexGuard<'_, AccountsState> {
        let state = self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        self.changed
            .wait_while(state, |state| !ready(state))
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Held by an isolated lab for its lifetime.
    pub fn lab(&'static self) -> LabHold {
        self.wait_until(|state| !state.changing).labs += 1;
        LabHold(self)
    }

    /// Runs `change` once no isolated lab is alive, keeping new ones from starting meanwhile.
    pub fn change<T>(&self, change: impl FnOnce() -> T) -> T {
        self.wait_until(|state| state.labs == 0 && !state.changing)
            .changing = true;
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(change));
        self.wait_until(|_| true).changing = false;
        self.changed.notify_all();
        result.unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    }
}

/// An isolated lab's hold on [`HOST_ACCOUNTS`]; released on drop.
pub struct LabHold(&'static AccountsLock);

impl Drop for LabHold {
    fn drop(&mut self) {
        self.0.wait_until(|_| true).labs -= 1;
        self.0.changed.notify_all();
    }
}

/// Blocks the test thread: integration tests drive separate processes and have no runtime.
#[expect(
    clippy::disallowed_methods,
    reason = "tests wait on other processes from plain threads"
)]
pub fn pause(duration: std::time::Duration) {
    std::thread::sleep(duration);
}

/// The names in directory `dir`, sorted; none when it does not exist.
#[must_use]
pub fn file_names(dir: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> = match std::fs::read_dir(dir) {
        Ok(entries) => entries
            .map(|entry| {
                entry
                    .expect("directory entry")
                    .file_name()
                    .to_string_lossy()
                    .into_owned()
            })
            .collect(),
        Err(_) => Vec::new(),
    };
    names.sort();
    names
}

/// An `insta` snapshot of opsgate output with the redactions of [`opsgate::FILTERS`]:
/// `snapshot!(outcome.stderr(), @"…")` inline, `snapshot!("name", outcome.stdout())` in
/// `snapshots/` beside the test. `INSTA_UPDATE=always` (or `cargo insta review`) rewrites them.
#[macro_export]
macro_rules! snapshot {
    ($value:expr, @$snapshot:literal) => {
        insta::with_settings!({ filters => $crate::common::opsgate::FILTERS.to_vec() }, {
            insta::assert_snapshot!($value, @$snapshot);
        })
    };
    ($name:literal, $value:expr) => {
        insta::with_settings!({
            filters => $crate::common::opsgate::FILTERS.to_vec(),
            prepend_module_to_snapshot => false,
            omit_expression => true,
        }, {
            insta::assert_snapshot!($name, $value);
        })
    };
}
