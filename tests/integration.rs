//! The single integration test binary: every suite runs the real `opsgate` code against real
//! OpenSSH servers and real files. Suites are modules below; shared fixtures live in `common`.

// `pub` so that fixtures a given suite does not use yet are not reported as dead code.
pub mod common;

mod audit;
mod cli;
mod gate;
mod lab;
mod plan;
mod run;
mod service;
mod validate;
