//! Saved plans (SPEC §4.5): `plan … --save` stores the rendered plan under an id, an approver
//! reviews it with `plan show` and approves it with `approve plan`, and `run --plan` executes
//! exactly that plan — once, by its author, within the policy's `plan_ttl` (24 hours by
//! default) — or refuses it as drifted.
//!
//! A saved plan is a JSON file `plans/<id>.json` in the state directory (which belongs to the
//! service account in production); the id is the first 16 hex digits of the SHA-256 of the
//! file's bytes, so an edited file no longer matches its id and is refused. It records the
//! `RUNBOOK` argument, `-l`, `--widen`, the runbook's catalog digest, the inventory's and the
//! policy's digests, every param (secrets as `***` with a salted HMAC-SHA-256), the hosts and
//! every rendered step. `run --plan` plans again from the same inputs (asking for the secrets
//! again) and refuses when anything differs.
//!
//! Decisions where the spec is silent: the plan's approval (a detached `approval_granted` event
//! of target `plan`) stands in for the run approval the gate may ask for, if the approver is
//! allowed to give that one (level and two-person rule, under the current policy); it is copied
//! into the run's history as the run's approval, naming the plan. "Runs once" is enforced by a
//! `plans/<id>.ran` file created exclusively before the run starts. `plan_ttl` is read from the
//! policy in force when the plan is approved or run. A drifted plan is a denial (exit 3); a secret that does not
//! match is invalid input (exit 2).
//!
//! The drift fingerprint of the rendered steps is [`Plan::rendered_digest`], computed from the
//! plan itself (every rendered field of every step on every host, secrets masked), so it does not
//! move when an output format changes. Format version 2; a version-1 file (which kept the
//! `--json` rendering instead) is refused with a hint to save it again — plans live a day.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use hmac::{Hmac, Mac as _};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use super::{Param, Plan};
use crate::audit::{AuditError, AuditStore, Record};
use crate::gate::{Denial, Level, Policy, Rule, may_approve};
use crate::secret::Secret;

/// The format version written by [`save`].
pub const FORMAT_VERSION: u32 = 2;

/// The directory of saved plans inside the state directory.
const PLANS: &str = "plans";

/// How long an approved plan may be run after it was saved: the policy's `plan_ttl`, 24 hours
/// without one.
#[must_use]
pub fn plan_ttl(policy: Option<&Policy>) -> Duration {
    policy.map_or(Duration::from_secs(24 * 3600), Policy::plan_ttl)
}

/// `24h`, `30m`, `90s`, for messages.
#[must_use]
pub fn ttl_text(ttl: Duration) -> String {
    let seconds = ttl.as_secs();
    if seconds % 3600 == 0 {
        format!("{}h", seconds / 3600)
    } else if seconds % 60 == 0 {
        format!("{}m", seconds / 60)
    } else {
        format!("{seconds}s")
    }
}

/// Why a saved plan cannot be saved, read, approved or run.
#[derive(Debug, thiserror::Error)]
pub enum SavedPlanError {
    /// The argument is not shaped like a plan id.
    #[error("`{id}` is not a plan id (16 hex digits, as `plan --save` prints)")]
    NotAnId {
        /// What was given.
        id: String,
    },
    /// There is no such plan file.
    #[error("no saved plan `{id}` (`{}`)", path.display())]
    Missing {
        /// The plan id.
        id: String,
        /// Where it was looked for.
        path: PathBuf,
        /// Why it could not be read.
        #[source]
        source: std::io::Error,
    },
    /// The file's bytes no longer hash to its id.
    #[error("saved plan `{id}` was altered: its bytes no longer hash to its id")]
    Altered {
        /// The plan id.
        id: String,
    },
    /// The file is not a saved plan this version reads.
    #[error("saved plan `{id}` cannot be read")]
    Unreadable {
        /// The plan id.
        id: String,
        /// What the JSON decoder said.
        #[source]
        source: serde_json::Error,
    },
    /// The file was written by an older opsgate.
    #[error(
        "saved plan `{id}` has format version {version}; this opsgate reads version {FORMAT_VERSION}"
    )]
    OldFormat {
        /// The plan id.
        id: String,
        /// Its version.
        version: u32,
    },
    /// The plan could not be encoded.
    #[error("cannot encode the plan")]
    Encode(#[source] serde_json::Error),
    /// A plan file could not be written.
    #[error("cannot write `{}`", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// No random salt could be drawn for a secret's HMAC.
    #[error("cannot draw a random salt for secret param `{name}`")]
    Random {
        /// The param.
        name: String,
        /// What the OS said.
        #[source]
        source: getrandom::Error,
    },
    /// The audit store could not be read for the plan's approvals.
    #[error("cannot read the approvals of plan `{id}`")]
    Audit {
        /// The plan id.
        id: String,
        /// What the store said.
        #[source]
        source: AuditError,
    },
    /// The plan may not run or be approved (author, age, drift, used, unapproved).
    #[error(transparent)]
    Denied(#[from] Denial),
    /// A secret given again for `run --plan` is not the one the plan was saved with.
    #[error("secret param `{name}` is not the value plan {id} was saved with")]
    SecretMismatch {
        /// The plan id.
        id: String,
        /// The param.
        name: String,
    },
}

impl SavedPlanError {
    /// Ways forward, as `hint:` lines.
    #[must_use]
    pub fn hints(&self) -> Vec<String> {
        match self {
            SavedPlanError::NotAnId { .. } | SavedPlanError::Missing { .. } => {
                vec!["`opsgate plan RUNBOOK --save` saves one and prints its id".to_owned()]
            }
            SavedPlanError::Altered { .. } | SavedPlanError::OldFormat { .. } => {
                vec!["save the plan again and have it approved again".to_owned()]
            }
            SavedPlanError::Denied(denial) => denial.hints(),
            SavedPlanError::SecretMismatch { name, .. } => {
                vec![format!("give the same value again, e.g. `-p {name}=@FILE`")]
            }
            SavedPlanError::Audit { source, .. } => source.hints(),
            SavedPlanError::Unreadable { .. }
            | SavedPlanError::Encode(_)
            | SavedPlanError::Write { .. }
            | SavedPlanError::Random { .. } => Vec::new(),
        }
    }
}

/// A secret param: never stored, only a salted HMAC to recognise it again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecretCheck {
    /// The param's name.
    pub name: String,
    /// Random key, hex.
    pub salt: String,
    /// HMAC-SHA-256(salt, value), hex.
    pub hmac: String,
}

/// What drift is judged on: everything that decides what the run does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fingerprint {
    /// The runbook id.
    pub runbook_id: String,
    /// The runbook's catalog digest (its bytes and every local `src` file).
    pub runbook_digest: String,
    /// The inventory's digest.
    pub inventory_digest: String,
    /// The policy file's digest, or `None` without one.
    pub policy_digest: Option<String>,
    /// Params in declaration order, secrets as `***`.
    pub params: Vec<(String, String)>,
    /// The resolved hosts.
    pub hosts: Vec<String>,
    /// [`Plan::rendered_digest`]: every rendered step on every host, secrets masked.
    pub rendered_sha256: String,
}

impl Fingerprint {
    /// The drift fingerprint of `plan` under the policy digest `policy_digest`.
    #[must_use]
    pub fn of(plan: &Plan, policy_digest: Option<String>) -> Fingerprint {
        Fingerprint {
            runbook_id: plan.runbook.id.clone(),
            runbook_digest: plan.runbook.digest.clone(),
            inventory_digest: plan.inventory_digest.clone(),
            policy_digest,
            params: plan.masked_params(),
            hosts: plan.host_names(),
            rendered_sha256: plan.rendered_digest(),
        }
    }

    /// What differs between `self` (then) and `now`, as the drift message names it.
    #[must_use]
    pub fn drift(&self, now: &Fingerprint) -> Vec<&'static str> {
        [
            (
                "the runbook",
                now.runbook_id != self.runbook_id || now.runbook_digest != self.runbook_digest,
            ),
            (
                "the inventory",
                now.inventory_digest != self.inventory_digest,
            ),
            ("the policy", now.policy_digest != self.policy_digest),
            ("the params", now.params != self.params),
            ("the hosts", now.hosts != self.hosts),
            (
                "the rendered steps",
                now.rendered_sha256 != self.rendered_sha256,
            ),
        ]
        .into_iter()
        .filter_map(|(what, changed)| changed.then_some(what))
        .collect()
    }
}

/// A saved plan file.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SavedPlan {
    /// Format version.
    pub version: u32,
    /// Who saved it (the gate identity); only they may run it.
    pub author: String,
    /// When it was saved (RFC 3339).
    pub created_at: String,
    /// The `RUNBOOK` argument as given.
    pub runbook: String,
    /// `-l`.
    pub limit: Option<String>,
    /// `--widen`.
    pub widen: Option<String>,
    /// The plan as a human reads it (`plan` output, plain).
    pub display: String,
    /// What drift is judged on.
    pub fingerprint: Fingerprint,
    /// Secret params.
    pub secrets: Vec<SecretCheck>,
}

/// Only the version, read first so that an old file gets a clear refusal.
#[derive(Deserialize)]
struct VersionOnly {
    version: u32,
}

impl SavedPlan {
    /// A saved plan of `plan` by `author`, planned from `runbook` (the argument as given), `-l`
    /// and `--widen`.
    pub fn new(
        plan: &Plan,
        author: &str,
        (runbook, limit, widen): (&str, Option<&str>, Option<&str>),
        policy: Option<&Policy>,
    ) -> Result<SavedPlan, SavedPlanError> {
        Ok(SavedPlan {
            version: FORMAT_VERSION,
            author: author.to_owned(),
            created_at: crate::audit::query::format_timestamp(Timestamp::now()),
            runbook: runbook.to_owned(),
            limit: limit.map(str::to_owned),
            widen: widen.map(str::to_owned),
            display: super::display(plan, crate::diagnostic::Style::Plain),
            fingerprint: Fingerprint::of(plan, policy.map(Policy::digest)),
            secrets: secret_checks(plan)?,
        })
    }

    /// When it was saved.
    #[must_use]
    pub fn created(&self) -> Option<Timestamp> {
        self.created_at.parse().ok()
    }

    /// Whether it is past `ttl`.
    #[must_use]
    pub fn expired(&self, ttl: Duration) -> bool {
        let ttl = jiff::SignedDuration::try_from(ttl).unwrap_or(jiff::SignedDuration::MAX);
        self.created()
            .and_then(|created| created.checked_add(ttl).ok())
            .is_none_or(|deadline| Timestamp::now() > deadline)
    }

    /// Refuses an expired plan (rule `plan-expired`); `again` says who saves it again.
    pub fn check_age(&self, id: &str, policy: Option<&Policy>, again: &str) -> Result<(), Denial> {
        let ttl = plan_ttl(policy);
        if !self.expired(ttl) {
            return Ok(());
        }
        Err(Denial {
            rule: Rule::PlanExpired,
            reason: format!(
                "plan {id} was saved at {} and may no longer run (plans run within {} of being \
                 saved)",
                self.created_at,
                ttl_text(ttl)
            ),
            would_allow: again.to_owned(),
        })
    }

    /// The non-secret params to plan it again with, as `name=value` for
    /// [`crate::plan::ParamInput`]s; the secrets must be given again.
    #[must_use]
    pub fn public_params(&self) -> Vec<(String, String)> {
        self.fingerprint
            .params
            .iter()
            .filter(|(name, _)| !self.secrets.iter().any(|check| check.name == *name))
            .cloned()
            .collect()
    }

    /// Refuses to run it (planned again as `plan`) unless `caller` is its author, it is within
    /// its `plan_ttl`, nothing drifted and every secret is the one it was saved with.
    pub fn check_for_run(
        &self,
        id: &str,
        plan: &Plan,
        caller: &str,
        policy: Option<&Policy>,
    ) -> Result<(), SavedPlanError> {
        if caller != self.author {
            return Err(Denial {
                rule: Rule::PlanAuthor,
                reason: format!(
                    "plan {id} was saved by `{}`; only its author may run it",
                    self.author
                ),
                would_allow: "save your own plan with `opsgate plan … --save`".to_owned(),
            }
            .into());
        }
        self.check_age(id, policy, "save it again and have it approved again")?;
        let drifted = self
            .fingerprint
            .drift(&Fingerprint::of(plan, policy.map(Policy::digest)));
        if !drifted.is_empty() {
            return Err(Denial {
                rule: Rule::PlanDrifted,
                reason: format!(
                    "plan {id} has drifted: {} changed since it was saved",
                    drifted.join(", ")
                ),
                would_allow: "nothing ran; save the plan again and have it approved again"
                    .to_owned(),
            }
            .into());
        }
        for check in &self.secrets {
            let value = plan
                .params
                .iter()
                .find(|(name, _)| *name == check.name)
                .map(|(_, value)| Secret::new(value.expose().to_text()));
            if !value.is_some_and(|value| secret_matches(check, &value)) {
                return Err(SavedPlanError::SecretMismatch {
                    id: id.to_owned(),
                    name: check.name.clone(),
                });
            }
        }
        Ok(())
    }
}

/// The secret params of `plan` as salted HMACs.
fn secret_checks(plan: &Plan) -> Result<Vec<SecretCheck>, SavedPlanError> {
    let mut checks = Vec::new();
    for (name, value) in &plan.params {
        let Param::Secret(value) = value else {
            continue;
        };
        let value = Secret::new(value.expose().to_text());
        let mut salt = [0_u8; 32];
        getrandom::getrandom(&mut salt).map_err(|source| SavedPlanError::Random {
            name: name.clone(),
            source,
        })?;
        checks.push(SecretCheck {
            name: name.clone(),
            hmac: hex::encode(hmac_sha256(&salt, value.expose().as_bytes())),
            salt: hex::encode(salt),
        });
    }
    Ok(checks)
}

/// Whether `value` is the secret `check` was made from (compared in constant time).
fn secret_matches(check: &SecretCheck, value: &Secret<String>) -> bool {
    let (Ok(salt), Ok(expected)) = (hex::decode(&check.salt), hex::decode(&check.hmac)) else {
        return false;
    };
    keyed(&salt)
        .chain_update(value.expose().as_bytes())
        .verify_slice(&expected)
        .is_ok()
}

/// Writes the plan into the state directory; returns its id.
pub fn save(state_dir: &Path, plan: &SavedPlan) -> Result<String, SavedPlanError> {
    let bytes = serde_json::to_vec_pretty(plan).map_err(SavedPlanError::Encode)?;
    let id = plan_id(&bytes);
    let directory = state_dir.join(PLANS);
    let write_error = |path: &Path| {
        let path = path.to_path_buf();
        move |source| SavedPlanError::Write { path, source }
    };
    std::fs::DirBuilder::new()
        .recursive(true)
        .create(&directory)
        .map_err(write_error(&directory))?;
    let path = directory.join(format!("{id}.json"));
    let temporary = directory.join(format!(".{id}.json.tmp"));
    std::fs::write(&temporary, &bytes).map_err(write_error(&temporary))?;
    std::fs::rename(&temporary, &path).map_err(write_error(&path))?;
    Ok(id)
}

/// Reads plan `id`, refusing a file whose bytes no longer hash to its id.
pub fn load(state_dir: &Path, id: &str) -> Result<SavedPlan, SavedPlanError> {
    let bytes = read(state_dir, id)?;
    let unreadable = |source| SavedPlanError::Unreadable {
        id: id.to_owned(),
        source,
    };
    let VersionOnly { version } = serde_json::from_slice(&bytes).map_err(unreadable)?;
    if version != FORMAT_VERSION {
        return Err(SavedPlanError::OldFormat {
            id: id.to_owned(),
            version,
        });
    }
    serde_json::from_slice(&bytes).map_err(unreadable)
}

/// Marks plan `id` as run; refuses (rule `plan-used`) when it already was. Atomic: of two runs
/// of one plan, exactly one gets past this.
pub fn mark_ran(state_dir: &Path, id: &str) -> Result<(), SavedPlanError> {
    let path = state_dir.join(PLANS).join(format!("{id}.ran"));
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)
    {
        Ok(mut file) => {
            // Who claimed it, for whoever looks at the file; the claim is its existence.
            let _ = writeln!(file, "{}", std::process::id());
            Ok(())
        }
        Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => Err(Denial {
            rule: Rule::PlanUsed,
            reason: format!("plan {id} has already run"),
            would_allow: "an approved plan runs once; save a new one".to_owned(),
        }
        .into()),
        Err(source) => Err(SavedPlanError::Write { path, source }),
    }
}

/// The SHA-256 (hex) of saved plan `id`'s file: what a signed plan approval names (the id is
/// only its first 16 digits, too short to bind a signature to).
pub fn digest(state_dir: &Path, id: &str) -> Result<String, SavedPlanError> {
    read(state_dir, id).map(|bytes| hex::encode(Sha256::digest(bytes)))
}

/// The bytes of saved plan `id`, refusing a file whose bytes no longer hash to its id.
fn read(state_dir: &Path, id: &str) -> Result<Vec<u8>, SavedPlanError> {
    if id.len() != 16 || !id.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(SavedPlanError::NotAnId { id: id.to_owned() });
    }
    let path = state_dir.join(PLANS).join(format!("{id}.json"));
    let bytes = std::fs::read(&path).map_err(|source| SavedPlanError::Missing {
        id: id.to_owned(),
        path: path.clone(),
        source,
    })?;
    if plan_id(&bytes) != id {
        return Err(SavedPlanError::Altered { id: id.to_owned() });
    }
    Ok(bytes)
}

fn plan_id(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))[..16].to_owned()
}

/// HMAC-SHA-256 keyed with `key`.
fn keyed(key: &[u8]) -> Hmac<Sha256> {
    // HMAC takes keys of any length; `new_from_slice` cannot fail for it.
    <Hmac<Sha256> as hmac::Mac>::new_from_slice(key).expect("HMAC accepts keys of any length")
}

fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    keyed(key)
        .chain_update(message)
        .finalize()
        .into_bytes()
        .into()
}

/// The latest answer to a saved plan: who approved it, at which level.
#[derive(Debug, Clone)]
pub struct PlanApproval {
    /// The plan id.
    pub plan: String,
    /// The approver's account.
    pub approver: String,
    /// The approver's level when approving.
    pub level: u8,
    /// The plan's author.
    author: String,
    /// The approval's SSH signature, if signed.
    signature: Option<String>,
    /// The approval as this store binds it (store id, plan digest): what the signature must
    /// be of.
    statement: Option<crate::approval::signed::Approval>,
}

impl PlanApproval {
    /// The plan's approval, refusing a plan nobody approved (or whose latest answer is a
    /// rejection; rule `plan-unapproved`).
    pub fn of(
        store: &AuditStore,
        saved: &SavedPlan,
        id: &str,
    ) -> Result<PlanApproval, SavedPlanError> {
        let events = store
            .plan_approvals(id)
            .map_err(|source| SavedPlanError::Audit {
                id: id.to_owned(),
                source,
            })?;
        let last = events.last();
        match last.and_then(|event| event.record.clone()) {
            Some(Record::ApprovalGranted {
                approver,
                approver_level,
                signature,
                ..
            }) => Ok(PlanApproval {
                plan: id.to_owned(),
                statement: last
                    .map(|event| crate::approval::signed::recorded(store, event))
                    .transpose()
                    .map_err(|source| SavedPlanError::Audit {
                        id: id.to_owned(),
                        source,
                    })?
                    .flatten()
                    .map(|(statement, _)| statement),
                approver,
                level: approver_level,
                author: saved.author.clone(),
                signature,
            }),
            _ => Err(Denial {
                rule: Rule::PlanUnapproved,
                reason: format!("plan {id} is not approved"),
                would_allow: format!(
                    "another operator reviews it with `opsgate plan show {id}` and approves it \
                     with `opsgate approve plan {id}`"
                ),
            }
            .into()),
        }
    }

    /// Whether this approval may stand in for a run approval that needs level `by`, under the
    /// current policy (the approver still an operator of that level, and not the author).
    #[must_use]
    pub fn admissible(&self, policy: Option<&Policy>, by: Level) -> bool {
        policy.is_some_and(|policy| {
            let signed_if_needed = !policy.signed_approvals()
                || self
                    .signature
                    .as_deref()
                    .zip(self.statement.as_ref())
                    .is_some_and(|(signature, statement)| {
                        crate::approval::signed::verify(policy, statement, signature).is_ok()
                    });
            signed_if_needed
                && policy
                    .operator(&self.approver)
                    .is_some_and(|operator| may_approve(operator, &self.author, by).is_ok())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::hmac_sha256;

    #[test]
    fn hmac_matches_rfc_4231_test_case_2() {
        let mac = hmac_sha256(b"Jefe", b"what do ya want for nothing?");
        assert_eq!(
            hex::encode(mac),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
