//! `service`: placeholder until the action lands on this branch.

use super::{Context, Outcome};
use crate::runbook::model::Service;
use crate::transport::{Transport, TransportError};

#[expect(clippy::unused_async, reason = "placeholder until the action lands")]
pub(super) async fn run<T: Transport>(
    _context: &Context<'_, T>,
    _spec: &Service<String>,
) -> Result<Outcome, TransportError> {
    Ok(Outcome::failed("`service` is being written"))
}
