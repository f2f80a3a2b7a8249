//! Runbooks: the YAML file (`schema`), its validation (`validate`) and the model it becomes.
//!
//! This module owns everything about a runbook that can be known without an inventory, params or
//! hosts. It never renders templates for real and never touches the network.

pub mod discover;
pub mod model;
pub mod schema;
pub mod validate;
pub mod value;

pub use model::{Kind, Runbook, Step};
pub use validate::{load, parse};
