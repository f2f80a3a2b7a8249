//! Saved plans (SPEC §4.5): `plan … --save` stores the rendered plan under an id, an approver
//! reviews it with `plan show` and approves it with `approve plan`, and `run --plan` executes
//! exactly that plan — once, by its author, within the policy's `plan_ttl` (24 hours by
//! default) — or refuses it as drifted.
//!
//! A saved plan is a JSON file `plans/<id>.json` in the state directory (which belongs to the
//! service account in production); the id is the first 16 hex digits of the SHA-256 of the
//! file's bytes, so an edited file no longer matches its id and is refused. It records the
//! `RUNBOOK` argument, `-l`, `--widen`, the runbook's catalog digest, the inventory's and the
//! policy's digests, every param (secrets as `***` with a salted HMAC-SHA-256 keyed by the state
//! directory's plan key, see below), the hosts and every rendered step. `run --plan` plans again from the same inputs (asking for the secrets
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
//!
//! Secret params: a plan file holds, per secret, a random salt and
//! HMAC-SHA-256(plan key, salt ‖ name ‖ 0 ‖ value). The plan key is 32 random bytes in
//! `plan.key` in the state directory, created 0600 the first time a secret is saved and refused
//! unless it is a regular 0600 file of the account running opsgate (opened without following a
//! symlink). A plan file alone (a copy, a backup, `plan show`) is therefore not enough to test
//! guesses of a secret offline; `plan show` prints neither salts nor HMACs anyway (a reviewer
//! sees a [`ReviewedPlan`]: secret params by name). Format version 3; version 2 files, whose
//! HMACs were keyed by the salt alone, are refused with a hint to save the plan again.

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
pub const FORMAT_VERSION: u32 = 3;

/// The directory of saved plans inside the state directory.
const PLANS: &str = "plans";

/// The file of the plan key inside the state directory.
const PLAN_KEY: &str = "plan.key";

/// Length of the plan key in bytes.
const PLAN_KEY_LEN: usize = 32;

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
    /// The plan key could not be read or created.
    #[error("plan key `{}` cannot be used", path.display())]
    KeyIo {
        /// The key file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The plan key is not a regular 0600 file of 32 bytes owned by the account running opsgate.
    #[error("plan key `{}` is not a private file of this account ({problem})", path.display())]
    KeyUnsafe {
        /// The key file.
        path: PathBuf,
        /// What is wrong with it.
        problem: &'static str,
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
            SavedPlanError::Altered { .. } => {
                vec!["save the plan again and have it approved again".to_owned()]
            }
            SavedPlanError::OldFormat { .. } => vec![
                "save the plan again (`opsgate plan … --save`) and have it approved again: \
                 older plans check secret params with an HMAC that is not keyed by the state \
                 directory"
                    .to_owned(),
            ],
            SavedPlanError::KeyUnsafe { .. } => vec![
                "remove it (saved plans with secret params must then be saved again); opsgate \
                 creates a new one with mode 0600"
                    .to_owned(),
            ],
            SavedPlanError::Denied(denial) => denial.hints(),
            SavedPlanError::SecretMismatch { name, .. } => {
                vec![format!("give the same value again, e.g. `-p {name}=@FILE`")]
            }
            SavedPlanError::Audit { source, .. } => source.hints(),
            SavedPlanError::Unreadable { .. }
            | SavedPlanError::Encode(_)
            | SavedPlanError::Write { .. }
            | SavedPlanError::KeyIo { .. }
            | SavedPlanError::Random { .. } => Vec::new(),
        }
    }
}

/// A secret param: never stored, only a keyed, salted HMAC to recognise it again. Never shown:
/// `plan show` gets a [`ReviewedPlan`].
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecretCheck {
    /// The param's name.
    pub name: String,
    /// Random salt, hex.
    salt: String,
    /// HMAC-SHA-256(plan key, salt ‖ name ‖ 0 ‖ value), hex.
    hmac: String,
}

impl std::fmt::Debug for SecretCheck {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("SecretCheck")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
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

/// A saved plan as a reviewer sees it (`plan show`, text and `--json`): everything but the
/// secret checks, of which only the param names are shown.
#[derive(Debug, Clone, Serialize)]
pub struct ReviewedPlan {
    /// Format version.
    pub version: u32,
    /// Who saved it.
    pub author: String,
    /// When it was saved (RFC 3339).
    pub created_at: String,
    /// The `RUNBOOK` argument as given.
    pub runbook: String,
    /// `-l`.
    pub limit: Option<String>,
    /// `--widen`.
    pub widen: Option<String>,
    /// The plan as a human reads it.
    pub display: String,
    /// What drift is judged on (secret params as `***`).
    pub fingerprint: Fingerprint,
    /// The names of the secret params, which `run --plan` asks for again.
    pub secret_params: Vec<String>,
}

impl From<SavedPlan> for ReviewedPlan {
    fn from(saved: SavedPlan) -> ReviewedPlan {
        ReviewedPlan {
            version: saved.version,
            author: saved.author,
            created_at: saved.created_at,
            runbook: saved.runbook,
            limit: saved.limit,
            widen: saved.widen,
            display: saved.display,
            fingerprint: saved.fingerprint,
            secret_params: saved.secrets.into_iter().map(|check| check.name).collect(),
        }
    }
}

/// Only the version, read first so that an old file gets a clear refusal.
#[derive(Deserialize)]
struct VersionOnly {
    version: u32,
}

impl SavedPlan {
    /// A saved plan of `plan` by `author`, planned from `runbook` (the argument as given), `-l`
    /// and `--widen`; secrets are checked with the plan key of `state_dir`, created if needed.
    pub fn new(
        plan: &Plan,
        author: &str,
        (runbook, limit, widen): (&str, Option<&str>, Option<&str>),
        policy: Option<&Policy>,
        state_dir: &Path,
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
            secrets: secret_checks(plan, state_dir)?,
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
    /// its `plan_ttl`, nothing drifted and every secret is the one it was saved with (checked
    /// with the plan key of `state_dir`).
    pub fn check_for_run(
        &self,
        id: &str,
        plan: &Plan,
        caller: &str,
        policy: Option<&Policy>,
        state_dir: &Path,
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
        let key = if self.secrets.is_empty() {
            None
        } else {
            Some(plan_key(state_dir)?)
        };
        for check in &self.secrets {
            let value = plan
                .params
                .iter()
                .find(|(name, _)| *name == check.name)
                .map(|(_, value)| Secret::new(value.expose().to_text()));
            let matches = key
                .as_ref()
                .zip(value)
                .is_some_and(|(key, value)| secret_matches(key, check, &value));
            if !matches {
                return Err(SavedPlanError::SecretMismatch {
                    id: id.to_owned(),
                    name: check.name.clone(),
                });
            }
        }
        Ok(())
    }
}

/// The secret params of `plan` as keyed, salted HMACs.
fn secret_checks(plan: &Plan, state_dir: &Path) -> Result<Vec<SecretCheck>, SavedPlanError> {
    let mut checks = Vec::new();
    let mut key = None;
    for (name, value) in &plan.params {
        let Param::Secret(value) = value else {
            continue;
        };
        let key = match &mut key {
            Some(key) => &*key,
            None => &*key.insert(plan_key(state_dir)?),
        };
        let value = Secret::new(value.expose().to_text());
        let mut salt = [0_u8; 32];
        getrandom::getrandom(&mut salt).map_err(|source| SavedPlanError::Random {
            name: name.clone(),
            source,
        })?;
        checks.push(SecretCheck {
            name: name.clone(),
            hmac: hex::encode(secret_mac(key, &salt, name, &value).finalize().into_bytes()),
            salt: hex::encode(salt),
        });
    }
    Ok(checks)
}

/// Whether `value` is the secret `check` was made from (compared in constant time).
fn secret_matches(key: &PlanKey, check: &SecretCheck, value: &Secret<String>) -> bool {
    let (Ok(salt), Ok(expected)) = (hex::decode(&check.salt), hex::decode(&check.hmac)) else {
        return false;
    };
    secret_mac(key, &salt, &check.name, value)
        .verify_slice(&expected)
        .is_ok()
}

/// HMAC(plan key, salt ‖ name ‖ 0 ‖ value), not yet finalized.
fn secret_mac(key: &PlanKey, salt: &[u8], name: &str, value: &Secret<String>) -> Hmac<Sha256> {
    keyed(key.0.expose())
        .chain_update(salt)
        .chain_update(name.as_bytes())
        .chain_update([0])
        .chain_update(value.expose().as_bytes())
}

/// The state directory's plan key.
struct PlanKey(Secret<[u8; PLAN_KEY_LEN]>);

/// Reads the plan key of `state_dir`, creating it (0600, exclusively) the first time. A key that
/// is a symlink, not a regular file, not owned by this account, readable by others or of the
/// wrong length is refused rather than trusted or replaced.
fn plan_key(state_dir: &Path) -> Result<PlanKey, SavedPlanError> {
    use std::io::Read as _;
    use std::os::unix::fs::{MetadataExt as _, OpenOptionsExt as _};

    let path = state_dir.join(PLAN_KEY);
    let io_error = |path: &Path| {
        let path = path.to_path_buf();
        move |source| SavedPlanError::KeyIo { path, source }
    };
    let open = || {
        std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_NOCTTY | libc::O_NONBLOCK)
            .open(&path)
    };
    let mut file = match open() {
        Ok(file) => file,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            create_plan_key(state_dir, &path)?;
            open().map_err(io_error(&path))?
        }
        Err(error) if error.raw_os_error() == Some(libc::ELOOP) => {
            return Err(SavedPlanError::KeyUnsafe {
                path,
                problem: "a symlink",
            });
        }
        Err(source) => return Err(SavedPlanError::KeyIo { path, source }),
    };
    let metadata = file.metadata().map_err(io_error(&path))?;
    let problem = if !metadata.is_file() {
        Some("not a regular file")
    } else if metadata.uid() != crate::os_account::effective_uid() {
        Some("owned by another account")
    } else if metadata.mode() & 0o077 != 0 {
        Some("readable or writable by others")
    } else if metadata.len() != PLAN_KEY_LEN as u64 {
        Some("not 32 bytes long")
    } else {
        None
    };
    if let Some(problem) = problem {
        return Err(SavedPlanError::KeyUnsafe { path, problem });
    }
    let mut key = [0_u8; PLAN_KEY_LEN];
    file.read_exact(&mut key).map_err(io_error(&path))?;
    Ok(PlanKey(Secret::new(key)))
}

/// Writes a new random key to a private temp file and links it into place, so that a reader
/// never sees a partial key and of two concurrent creators one wins and both use its key.
fn create_plan_key(state_dir: &Path, path: &Path) -> Result<(), SavedPlanError> {
    use std::os::unix::fs::OpenOptionsExt as _;

    let io_error = |path: &Path| {
        let path = path.to_path_buf();
        move |source| SavedPlanError::KeyIo { path, source }
    };
    let mut key = [0_u8; PLAN_KEY_LEN];
    getrandom::getrandom(&mut key).map_err(|source| SavedPlanError::Random {
        name: PLAN_KEY.to_owned(),
        source,
    })?;
    std::fs::DirBuilder::new()
        .recursive(true)
        .create(state_dir)
        .map_err(io_error(state_dir))?;
    let temporary = state_dir.join(format!(".{PLAN_KEY}.{}.tmp", std::process::id()));
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&temporary)
        .map_err(io_error(&temporary))?;
    let written = file.write_all(&key).and_then(|()| file.sync_all());
    let linked = written.and_then(|()| match std::fs::hard_link(&temporary, path) {
        Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        other => other,
    });
    let _ = std::fs::remove_file(&temporary);
    linked.map_err(io_error(path))
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

#[cfg(test)]
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
        let audit_error = |source| SavedPlanError::Audit {
            id: id.to_owned(),
            source,
        };
        // Every answer's row must hold in the hash chain: an altered row counts for nothing,
        // and since it may have been a later rejection, no earlier approval counts either.
        let events = store.plan_approvals(id).map_err(audit_error)?;
        let mut intact = true;
        for event in &events {
            intact &= crate::approval::chained(store, event).map_err(audit_error)?;
        }
        if !intact {
            return Err(Denial {
                rule: Rule::PlanUnapproved,
                reason: format!(
                    "an answer to plan {id} does not hold in the audit hash chain, so none counts"
                ),
                would_allow: "`opsgate audit verify` names the altered event; restore the store \
                              from a backup, or save the plan again and have it approved again"
                    .to_owned(),
            }
            .into());
        }
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
    use std::os::unix::fs::PermissionsExt as _;

    use hmac::Mac as _;

    use super::{SavedPlanError, SecretCheck, hmac_sha256, plan_key, secret_mac, secret_matches};
    use crate::secret::Secret;

    fn check(state_dir: &std::path::Path, value: &str) -> SecretCheck {
        let key = plan_key(state_dir).expect("plan key");
        let salt = [7_u8; 32];
        let value = Secret::new(value.to_owned());
        SecretCheck {
            name: "token".to_owned(),
            salt: hex::encode(salt),
            hmac: hex::encode(
                secret_mac(&key, &salt, "token", &value)
                    .finalize()
                    .into_bytes(),
            ),
        }
    }

    #[test]
    fn the_plan_key_is_created_private_once_and_reused() {
        let state = tempfile::tempdir().expect("state dir");
        let check = check(state.path(), "s3cret");
        let path = state.path().join("plan.key");
        let mode = std::fs::metadata(&path).expect("key").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let key = plan_key(state.path()).expect("reused");
        assert!(secret_matches(
            &key,
            &check,
            &Secret::new("s3cret".to_owned())
        ));
        assert!(!secret_matches(
            &key,
            &check,
            &Secret::new("guess".to_owned())
        ));
        // Another state directory's key (an attacker holding only the plan file) cannot test
        // guesses: even the right value does not match.
        let other = tempfile::tempdir().expect("other state dir");
        let other_key = plan_key(other.path()).expect("other key");
        assert!(!secret_matches(
            &other_key,
            &check,
            &Secret::new("s3cret".to_owned())
        ));
        // Nor does the pre-v3 scheme (the salt as the key).
        let unkeyed = hmac_sha256(&[7_u8; 32], b"s3cret");
        assert_ne!(hex::encode(unkeyed), check.hmac);
    }

    #[test]
    fn a_plan_key_that_is_a_symlink_or_readable_by_others_is_refused() {
        let state = tempfile::tempdir().expect("state dir");
        let elsewhere = state.path().join("elsewhere");
        std::fs::write(&elsewhere, [0_u8; 32]).expect("target");
        std::fs::set_permissions(&elsewhere, std::fs::Permissions::from_mode(0o600))
            .expect("chmod");
        std::os::unix::fs::symlink(&elsewhere, state.path().join("plan.key")).expect("symlink");
        assert!(matches!(
            plan_key(state.path()),
            Err(SavedPlanError::KeyUnsafe {
                problem: "a symlink",
                ..
            })
        ));
        std::fs::remove_file(state.path().join("plan.key")).expect("unlink");
        std::fs::rename(&elsewhere, state.path().join("plan.key")).expect("move");
        std::fs::set_permissions(
            state.path().join("plan.key"),
            std::fs::Permissions::from_mode(0o644),
        )
        .expect("chmod");
        assert!(matches!(
            plan_key(state.path()),
            Err(SavedPlanError::KeyUnsafe {
                problem: "readable or writable by others",
                ..
            })
        ));
    }

    #[test]
    fn a_reviewed_plan_shows_secret_names_only() {
        let state = tempfile::tempdir().expect("state dir");
        let check = check(state.path(), "s3cret");
        let json = serde_json::to_string(&check).expect("file form");
        assert!(json.contains("hmac"), "the file keeps the check: {json}");
        let debug = format!("{check:?}");
        assert!(
            !debug.contains(&check.hmac) && !debug.contains(&check.salt),
            "{debug}"
        );
    }

    #[test]
    fn hmac_matches_rfc_4231_test_case_2() {
        let mac = hmac_sha256(b"Jefe", b"what do ya want for nothing?");
        assert_eq!(
            hex::encode(mac),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
