//! `service`: placeholder until the action lands on this branch.

use super::{Context, Outcome};
use crate::runbook::model::Service;
use crate::transport::{Transport, TransportError};

pub(super) async fn run<T: Transport>(
    _context: &Context<'_, T>,
    _spec: &Service<String>,
) -> Result<Outcome, TransportError> {
    Ok(Outcome::failed("`service` is being written"))
}
