//! Who may read which part of the history (SPEC §4.1): operators (and single-operator mode) read
//! all of it; an account the policy does not list reads only its own runs and backups.

use super::Context;
use crate::audit::{
    AuditStore, BackupEntry, BackupFilter, RunDetail, RunFilter, RunId, RunSummary,
};
use crate::error::Error;
use crate::gate::{Denial, Rule};

/// `history`: the runs `filter` selects, newest first, narrowed to the caller's own when the
/// caller may see no others.
pub fn runs(context: Context<'_>, filter: &RunFilter) -> Result<Vec<RunSummary>, Error> {
    let viewer = viewer(context)?;
    let mut filter = filter.clone();
    filter.operator = viewer.operator_filter(filter.operator.as_deref())?;
    Ok(AuditStore::open(&context.project.state_dir)?.runs(&filter)?)
}

/// `history show RUN`: one run in full, if the caller may see it.
pub fn show(context: Context<'_>, run: RunId) -> Result<RunDetail, Error> {
    let viewer = viewer(context)?;
    let detail = AuditStore::open(&context.project.state_dir)?.run(run)?;
    viewer.may_see(run, &detail.summary.operator)?;
    Ok(detail)
}

/// `backups`: the recorded backups `filter` selects, newest first, of the caller's own runs
/// when the caller may see no others.
pub fn backups(context: Context<'_>, filter: &BackupFilter) -> Result<Vec<BackupEntry>, Error> {
    let viewer = viewer(context)?;
    let mut filter = filter.clone();
    filter.operator = viewer.own().map(str::to_owned).or(filter.operator);
    Ok(AuditStore::open(&context.project.state_dir)?.backups(&filter)?)
}

/// How much of the history the caller may read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Viewer {
    /// All of it: an operator, or single-operator mode.
    Everything,
    /// Only the runs of this account, which the policy does not list.
    Own(String),
}

/// The caller's view of the history.
pub fn viewer(context: Context<'_>) -> Result<Viewer, Error> {
    let gatekeeper = context.gatekeeper()?;
    if gatekeeper.single_operator() || gatekeeper.identity.operator.level.is_some() {
        return Ok(Viewer::Everything);
    }
    Ok(Viewer::Own(gatekeeper.account().to_owned()))
}

impl Viewer {
    /// The operator filter a listing must use: `asked` for [`Viewer::Everything`], the
    /// caller's own account otherwise (asking for someone else's runs is denied).
    pub fn operator_filter(&self, asked: Option<&str>) -> Result<Option<String>, Denial> {
        match self {
            Viewer::Everything => Ok(asked.map(str::to_owned)),
            Viewer::Own(account) => match asked {
                Some(other) if other != account => {
                    Err(self.denial(&format!("the runs of `{other}`")))
                }
                _ => Ok(Some(account.clone())),
            },
        }
    }

    /// Refuses run `run` of `operator` to a caller who may only see their own.
    pub fn may_see(&self, run: impl std::fmt::Display, operator: &str) -> Result<(), Denial> {
        match self {
            Viewer::Own(account) if account != operator => Err(self.denial(&format!("run {run}"))),
            _ => Ok(()),
        }
    }

    /// The account whose records alone may be shown, if restricted.
    #[must_use]
    pub fn own(&self) -> Option<&str> {
        match self {
            Viewer::Everything => None,
            Viewer::Own(account) => Some(account),
        }
    }

    fn denial(&self, what: &str) -> Denial {
        let account = self.own().unwrap_or_default();
        Denial::new(
            Rule::NotAnOperator,
            format!(
                "account `{account}` is not an operator and may see only its own runs, not {what}"
            ),
            format!("`opsgate history` lists the runs of `{account}`"),
        )
    }
}
