//! `package`: placeholder until the action lands on this branch.

use super::{Context, Outcome};
use crate::runbook::model::Package;
use crate::transport::{Transport, TransportError};

pub(super) async fn run<T: Transport>(
    _context: &Context<'_, T>,
    _spec: &Package<String>,
) -> Result<Outcome, TransportError> {
    Ok(Outcome::failed("`package` is being written"))
}
