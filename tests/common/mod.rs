//! Shared test fixtures: [`TestLab`] (real local sshd hosts through `opsgate::lab`) and
//! [`Opsgate`] (runs the real binary in a clean environment).

pub mod lab;
pub mod opsgate;

pub use lab::TestLab;
pub use opsgate::Opsgate;
