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
