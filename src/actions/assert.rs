//! `assert`: every condition was rendered to `true`/`false` on the host's context already.

use super::Outcome;
use crate::runbook::model::Assert;

/// Fails with the message (or the first false condition) unless every condition is true.
pub(super) fn run(assert: &Assert<String>, that: &[bool]) -> Outcome {
    match that.iter().position(|condition| !condition) {
        None => Outcome::ok(format!(
            "{} condition{} true",
            assert.that.len(),
            if assert.that.len() == 1 { "" } else { "s" }
        )),
        Some(index) => Outcome::failed(assert.message.clone().unwrap_or_else(|| {
            format!("assertion {} of {} is false", index + 1, assert.that.len())
        })),
    }
}
