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

use std::io::Write as _;
use std::path::{Path, PathBuf};

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use super::args::Target;
use super::gate::Gatekeeper;
use crate::audit::{AuditStore, Record};
use crate::error::Error;
use crate::plan::Plan;

/// How long an approved plan may be run after it was saved: the policy's `plan_ttl`, 24 hours
/// without one.
pub(super) fn plan_ttl(policy: Option<&crate::gate::Policy>) -> std::time::Duration {
    policy.map_or(
        std::time::Duration::from_secs(24 * 3600),
        crate::gate::Policy::plan_ttl,
    )
}

/// Whether a plan saved at `created_at` is past `ttl`.
pub(super) fn expired(saved: &SavedPlan, ttl: std::time::Duration) -> bool {
    let ttl = jiff::SignedDuration::try_from(ttl).unwrap_or(jiff::SignedDuration::MAX);
    saved
        .created()
        .and_then(|created| created.checked_add(ttl).ok())
        .is_none_or(|deadline| Timestamp::now() > deadline)
}

/// `24h`, `30m`, `90s`, for messages.
pub(super) fn ttl_text(ttl: std::time::Duration) -> String {
    let seconds = ttl.as_secs();
    if seconds % 3600 == 0 {
        format!("{}h", seconds / 3600)
    } else if seconds % 60 == 0 {
        format!("{}m", seconds / 60)
    } else {
        format!("{seconds}s")
    }
}

/// The directory of saved plans inside the state directory.
const PLANS: &str = "plans";

/// A secret param: never stored, only a salted HMAC to recognise it again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct SecretCheck {
    /// The param's name.
    pub(super) name: String,
    /// Random key, hex.
    pub(super) salt: String,
    /// HMAC-SHA-256(salt, value), hex.
    pub(super) hmac: String,
}

/// What drift is judged on: everything that decides what the run does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct Fingerprint {
    /// The runbook id.
    pub(super) runbook_id: String,
    /// The runbook's catalog digest (its bytes and every local `src` file).
    pub(super) runbook_digest: String,
    /// The inventory's digest.
    pub(super) inventory_digest: String,
    /// The policy file's digest, or `None` without one.
    pub(super) policy_digest: Option<String>,
    /// Params in declaration order, secrets as `***`.
    pub(super) params: Vec<(String, String)>,
    /// The resolved hosts.
    pub(super) hosts: Vec<String>,
    /// The plan as `plan --json` prints it (every rendered step per host, secrets masked).
    pub(super) rendered: serde_json::Value,
}

/// A saved plan file.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct SavedPlan {
    /// Format version.
    pub(super) version: u32,
    /// Who saved it (the gate identity); only they may run it.
    pub(super) author: String,
    /// When it was saved (RFC 3339).
    pub(super) created_at: String,
    /// The `RUNBOOK` argument as given.
    pub(super) runbook: String,
    /// `-l`.
    pub(super) limit: Option<String>,
    /// `--widen`.
    pub(super) widen: Option<String>,
    /// The plan as a human reads it (`plan` output, plain).
    pub(super) display: String,
    /// What drift is judged on.
    pub(super) fingerprint: Fingerprint,
    /// Secret params.
    pub(super) secrets: Vec<SecretCheck>,
}

impl SavedPlan {
    /// When it was saved.
    pub(super) fn created(&self) -> Option<Timestamp> {
        self.created_at.parse().ok()
    }
}

/// The drift fingerprint of `plan` under the policy digest `policy_digest`.
pub(super) fn fingerprint(
    plan: &Plan,
    policy_digest: Option<String>,
    rendered: serde_json::Value,
) -> Fingerprint {
    Fingerprint {
        runbook_id: plan.runbook.id.clone(),
        runbook_digest: plan.runbook.digest.clone(),
        inventory_digest: plan.inventory_digest.clone(),
        policy_digest,
        params: plan.masked_params(),
        hosts: plan
            .hosts
            .iter()
            .map(|host| host.host.name.to_string())
            .collect(),
        rendered,
    }
}

/// The secret params of `plan` as salted HMACs.
pub(super) fn secret_checks(plan: &Plan) -> Result<Vec<SecretCheck>, Error> {
    let mut checks = Vec::new();
    for (name, value) in &plan.params {
        if !plan.runbook.param(name).is_some_and(|spec| spec.secret) {
            continue;
        }
        let salt = random_bytes()?;
        checks.push(SecretCheck {
            name: name.clone(),
            hmac: hex::encode(hmac_sha256(&salt, value.to_text().as_bytes())),
            salt: hex::encode(salt),
        });
    }
    Ok(checks)
}

/// Whether `value` is the secret `check` was made from.
pub(super) fn secret_matches(check: &SecretCheck, value: &str) -> bool {
    hex::decode(&check.salt)
        .is_ok_and(|salt| hex::encode(hmac_sha256(&salt, value.as_bytes())) == check.hmac)
}

/// Writes the plan into the state directory; returns its id.
pub(super) fn save(state_dir: &Path, plan: &SavedPlan) -> Result<String, Error> {
    let bytes = serde_json::to_vec_pretty(plan)
        .map_err(|error| Error::environment(format!("cannot encode the plan: {error}"), vec![]))?;
    let id = plan_id(&bytes);
    let directory = state_dir.join(PLANS);
    std::fs::DirBuilder::new()
        .recursive(true)
        .create(&directory)
        .map_err(|error| write_error(&directory, &error))?;
    let path = directory.join(format!("{id}.json"));
    let temporary = directory.join(format!(".{id}.json.tmp"));
    std::fs::write(&temporary, &bytes).map_err(|error| write_error(&temporary, &error))?;
    std::fs::rename(&temporary, &path).map_err(|error| write_error(&path, &error))?;
    Ok(id)
}

/// Reads plan `id`, refusing a file whose bytes no longer hash to its id.
pub(super) fn load(state_dir: &Path, id: &str) -> Result<SavedPlan, Error> {
    if id.len() != 16 || !id.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(crate::diagnostic::Diagnostic::error(format!(
            "`{id}` is not a plan id (16 hex digits, as `plan --save` prints)"
        ))
        .into());
    }
    let path = plan_path(state_dir, id);
    let bytes = std::fs::read(&path).map_err(|error| {
        Error::from(
            crate::diagnostic::Diagnostic::error(format!(
                "no saved plan `{id}` (`{}`: {error})",
                path.display()
            ))
            .hint("`opsgate plan RUNBOOK --save` saves one and prints its id"),
        )
    })?;
    if plan_id(&bytes) != id {
        return Err(Error::Rejected {
            message: format!("saved plan `{id}` was altered: its bytes no longer hash to its id"),
            hints: vec!["save the plan again and have it approved again".to_owned()],
        });
    }
    serde_json::from_slice(&bytes).map_err(|error| {
        Error::environment(format!("saved plan `{id}` cannot be read: {error}"), vec![])
    })
}

/// Marks plan `id` as run; `false` when it already was (atomic: one winner).
pub(super) fn mark_ran(state_dir: &Path, id: &str) -> Result<bool, Error> {
    let path = state_dir.join(PLANS).join(format!("{id}.ran"));
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)
    {
        Ok(mut file) => {
            let _ = writeln!(file, "{}", std::process::id());
            Ok(true)
        }
        Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
        Err(error) => Err(write_error(&path, &error)),
    }
}

fn plan_path(state_dir: &Path, id: &str) -> PathBuf {
    state_dir.join(PLANS).join(format!("{id}.json"))
}

fn plan_id(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))[..16].to_owned()
}

fn write_error(path: &Path, error: &std::io::Error) -> Error {
    Error::environment(
        format!("cannot write `{}`: {error}", path.display()),
        vec![],
    )
}

fn random_bytes() -> Result<[u8; 32], Error> {
    use std::io::Read as _;
    let mut bytes = [0_u8; 32];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut file| file.read_exact(&mut bytes))
        .map_err(|error| {
            Error::environment(format!("cannot read /dev/urandom: {error}"), vec![])
        })?;
    Ok(bytes)
}

/// HMAC-SHA-256 (RFC 2104) with the standard 64-byte block.
fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    const BLOCK: usize = 64;
    let mut block = [0_u8; BLOCK];
    if key.len() > BLOCK {
        block[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let inner_key: Vec<u8> = block.iter().map(|byte| byte ^ 0x36).collect();
    let outer_key: Vec<u8> = block.iter().map(|byte| byte ^ 0x5c).collect();
    let inner = Sha256::new()
        .chain_update(&inner_key)
        .chain_update(message)
        .finalize();
    Sha256::new()
        .chain_update(&outer_key)
        .chain_update(inner)
        .finalize()
        .into()
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

/// The `Target` that plans `saved` again: its runbook, `-l` and `--widen`, its non-secret
/// params, and the secrets the caller gives now (`-p`, `--params-file`, or a prompt).
pub(super) fn target(saved: &SavedPlan, given: &Target) -> Target {
    let secret_names: Vec<&str> = saved
        .secrets
        .iter()
        .map(|check| check.name.as_str())
        .collect();
    let mut params: Vec<String> = saved
        .fingerprint
        .params
        .iter()
        .filter(|(name, _)| !secret_names.contains(&name.as_str()))
        .map(|(name, value)| format!("{name}={value}"))
        .collect();
    params.extend(given.params.iter().cloned());
    Target {
        runbook: Some(saved.runbook.clone()),
        limit: saved.limit.clone(),
        widen: saved.widen.clone(),
        params,
        params_file: given.params_file.clone(),
    }
}

/// Refuses to run `saved` (planned again as `plan`) unless the caller is its author, it is
/// within its 24 hours, nothing drifted and every secret is the one it was saved with.
pub(super) fn check_for_run(
    id: &str,
    saved: &SavedPlan,
    plan: &Plan,
    gatekeeper: &Gatekeeper,
) -> Result<(), Error> {
    if gatekeeper.account() != saved.author {
        return Err(Error::Denied {
            message: format!(
                "plan {id} was saved by `{}`; only its author may run it (rule `plan-author`)",
                saved.author
            ),
            hints: vec!["save your own plan with `opsgate plan … --save`".to_owned()],
        });
    }
    let ttl = plan_ttl(gatekeeper.policy.as_ref());
    if expired(saved, ttl) {
        return Err(Error::Denied {
            message: format!(
                "plan {id} was saved at {} and may no longer run (plans run within {} of being \
                 saved; rule `plan-expired`)",
                saved.created_at,
                ttl_text(ttl)
            ),
            hints: vec!["save it again and have it approved again".to_owned()],
        });
    }
    let now = fingerprint(
        plan,
        gatekeeper.policy.as_ref().map(crate::gate::Policy::digest),
        super::plan::plan_json(plan),
    );
    let then = &saved.fingerprint;
    let drifted: Vec<&str> = [
        (
            "the runbook",
            now.runbook_id != then.runbook_id || now.runbook_digest != then.runbook_digest,
        ),
        (
            "the inventory",
            now.inventory_digest != then.inventory_digest,
        ),
        ("the policy", now.policy_digest != then.policy_digest),
        ("the params", now.params != then.params),
        ("the hosts", now.hosts != then.hosts),
        ("the rendered steps", now.rendered != then.rendered),
    ]
    .into_iter()
    .filter_map(|(what, changed)| changed.then_some(what))
    .collect();
    if !drifted.is_empty() {
        return Err(Error::Denied {
            message: format!(
                "plan {id} has drifted: {} changed since it was saved (rule `plan-drifted`)",
                drifted.join(", ")
            ),
            hints: vec!["nothing ran; save the plan again and have it approved again".to_owned()],
        });
    }
    for check in &saved.secrets {
        let value = plan
            .params
            .iter()
            .find(|(name, _)| *name == check.name)
            .map(|(_, value)| value.to_text());
        if !value.is_some_and(|value| secret_matches(check, &value)) {
            return Err(crate::diagnostic::Diagnostic::error(format!(
                "secret param `{}` is not the value plan {id} was saved with",
                check.name
            ))
            .hint(format!(
                "give the same value again, e.g. `-p {}=@FILE`",
                check.name
            ))
            .into());
        }
    }
    Ok(())
}

/// The latest answer to a saved plan: who approved it, at which level.
#[derive(Debug, Clone)]
pub(super) struct PlanApproval {
    /// The plan id.
    pub(super) plan: String,
    /// The approver's account.
    pub(super) approver: String,
    /// The approver's level when approving.
    pub(super) level: u8,
    /// The plan's author.
    author: String,
    /// The approval's SSH signature, if signed.
    signature: Option<String>,
}

impl PlanApproval {
    /// Whether this approval may stand in for a run approval that needs level `by`, under the
    /// current policy (the approver still an operator of that level, and not the author).
    pub(super) fn admissible(&self, gatekeeper: &Gatekeeper, by: crate::gate::Level) -> bool {
        gatekeeper.policy.as_ref().is_some_and(|policy| {
            let signed_if_needed = !policy.signed_approvals()
                || self.signature.as_deref().is_some_and(|signature| {
                    let approval = super::signed::Approval {
                        approver: self.approver.clone(),
                        verdict: super::signed::Verdict::Grant,
                        subject: super::signed::Subject::Plan {
                            id: self.plan.clone(),
                        },
                        reason: None,
                    };
                    super::signed::verify(policy, &approval, signature).is_ok()
                });
            signed_if_needed
                && policy.operator(&self.approver).is_some_and(|operator| {
                    crate::gate::may_approve(operator, &self.author, by).is_ok()
                })
        })
    }
}

/// The plan's approval, refusing a plan nobody approved (or whose latest answer is a rejection).
pub(super) fn approval(
    store: &AuditStore,
    state_dir: &Path,
    id: &str,
) -> Result<PlanApproval, Error> {
    let events = store
        .plan_approvals(id)
        .map_err(|error| Error::environment(error.to_string(), error.hints()))?;
    match events.last().and_then(|event| event.record.clone()) {
        Some(Record::ApprovalGranted {
            approver,
            approver_level,
            signature,
            ..
        }) => {
            let saved = load(state_dir, id)?;
            Ok(PlanApproval {
                plan: id.to_owned(),
                approver,
                level: approver_level,
                author: saved.author,
                signature,
            })
        }
        _ => Err(Error::Denied {
            message: format!("plan {id} is not approved (rule `plan-unapproved`)"),
            hints: vec![format!(
                "another operator reviews it with `opsgate plan show {id}` and approves it with \
                 `opsgate approve plan {id}`"
            )],
        }),
    }
}
