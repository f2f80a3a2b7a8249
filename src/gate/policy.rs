//! The operators policy, `policy/operators.yaml` (SPEC §4.1): who the operators are, at which
//! SFIA level, with which key, and the rules that tighten the default gate matrix.
//!
//! Loading follows the project's two-step shape: a serde mirror of the file that keeps the
//! location of every value (`schema` below, `deny_unknown_fields` everywhere), then a validation
//! that collects *every* problem as a [`Diagnostic`] at `file:line:col` before giving up, and
//! produces a [`Policy`] that cannot hold an invalid level, account name or key.
//!
//! # Rules only tighten
//! A rule selects runs by exactly one of `runbook: ID`, `environment: NAME` (some target host is
//! in that environment) or `kind: KIND`, and has one or both effects:
//! - `min_level: N`: operators below level N may not run what it selects; no approval lifts it,
//!   exactly like a runbook's own `min_level`;
//! - `require_approval_below: N`: operators below level N need a run approval for what it
//!   selects, from an approver of level N or more (and never less than the usual approver level
//!   for the requester, SPEC §4.3).
//!
//! [`crate::gate::decide`] takes the strictest of the default matrix and every matching rule, so a
//! rule that reads like a loosening (`min_level: 1` on a runbook whose own is 3) has no effect at
//! all; such rules are not errors, because whether a rule loosens depends on the runbook it meets,
//! but the ones that can never do anything (`min_level: 1`, `require_approval_below: 1`) get a
//! warning. Rules apply to every run they select, including `check` runbooks and `--check` runs:
//! the exemptions of SPEC §4.3 lift the default matrix's approvals, not an admin's explicit rule.
//!
//! Decisions where the spec is silent: a rule naming two selectors is rejected rather than
//! guessed as "and" or "or"; operators sharing a key are rejected, because a signed approval
//! could not tell them apart; with `signed_approvals: true`, an operator of level 3+ without a key
//! is a warning (they can run, but cannot approve). A file that exists but cannot be read is an
//! error, never "no policy": only a missing file means single-operator mode.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::Path;
use std::sync::Arc;

use serde_saphyr::Spanned;
use sha2::{Digest as _, Sha256};

use crate::diagnostic::{Diagnostic, Diagnostics, SourceFile, Span, read_source};
use crate::gate::level::Level;
use crate::gate::operator::Operator;
use crate::runbook::model::Kind;

/// The serde mirror of the policy file.
mod schema {
    use indexmap::IndexMap;
    use serde::Deserialize;
    use serde_saphyr::Spanned;

    /// The whole file.
    #[derive(Debug, Default, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub(super) struct PolicyFile {
        pub(super) service_account: Option<Spanned<String>>,
        pub(super) signed_approvals: Option<Spanned<bool>>,
        pub(super) plan_ttl: Option<Spanned<String>>,
        pub(super) operators: Option<IndexMap<Spanned<String>, Option<Spanned<OperatorEntry>>>>,
        pub(super) rules: Option<Vec<Spanned<RuleEntry>>>,
    }

    /// One entry under `operators:`. `level` is optional here so that a missing one is reported
    /// with the others instead of stopping the parse; integers are wide so that `level: 300`
    /// gets a range message instead of a type one.
    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub(super) struct OperatorEntry {
        pub(super) level: Option<Spanned<i64>>,
        pub(super) name: Option<Spanned<String>>,
        pub(super) key: Option<Spanned<String>>,
    }

    /// One entry under `rules:`; which combinations make sense is checked in validation.
    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub(super) struct RuleEntry {
        pub(super) runbook: Option<Spanned<String>>,
        pub(super) environment: Option<Spanned<String>>,
        pub(super) kind: Option<Spanned<String>>,
        pub(super) min_level: Option<Spanned<i64>>,
        pub(super) require_approval_below: Option<Spanned<i64>>,
    }
}

/// A validated operators policy.
#[derive(Debug, Clone)]
pub struct Policy {
    source: Arc<SourceFile>,
    service_account: Option<String>,
    signed_approvals: bool,
    plan_ttl: std::time::Duration,
    operators: BTreeMap<String, Operator>,
    rules: Vec<PolicyRule>,
}

/// What a policy rule applies to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selector {
    /// Runs of the runbook with this id.
    Runbook(String),
    /// Runs with at least one target host in this environment.
    Environment(String),
    /// Runs of runbooks of this kind.
    Kind(Kind),
}

/// One entry of `rules:`, validated: a selector and at least one effect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyRule {
    /// What the rule applies to.
    pub selector: Selector,
    /// Operators below this level may not run what the rule selects.
    pub min_level: Option<Level>,
    /// Operators below this level need a run approval for what the rule selects.
    pub require_approval_below: Option<Level>,
    /// Where the rule is written, `file:line`, so that a decision can point at it.
    pub origin: String,
}

impl PolicyRule {
    /// Whether the rule selects a run of `runbook` (of `kind`) on hosts in `environments`.
    #[must_use]
    pub fn selects(&self, runbook: &str, kind: Kind, environments: &BTreeSet<String>) -> bool {
        match &self.selector {
            Selector::Runbook(id) => id == runbook,
            Selector::Environment(environment) => environments.contains(environment),
            Selector::Kind(selected) => *selected == kind,
        }
    }
}

impl fmt::Display for PolicyRule {
    /// The rule as it would be written in flow style: `{ environment: production,
    /// require_approval_below: 4 }`.
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.selector {
            Selector::Runbook(id) => write!(formatter, "{{ runbook: {id}")?,
            Selector::Environment(name) => write!(formatter, "{{ environment: {name}")?,
            Selector::Kind(kind) => write!(formatter, "{{ kind: {}", kind.as_str())?,
        }
        if let Some(level) = self.min_level {
            write!(formatter, ", min_level: {}", level.get())?;
        }
        if let Some(level) = self.require_approval_below {
            write!(formatter, ", require_approval_below: {}", level.get())?;
        }
        write!(formatter, " }}")
    }
}

impl Policy {
    /// Reads and validates the policy at `path`: the policy and its warnings, or every error.
    pub fn load(path: &Path) -> Result<(Policy, Vec<Diagnostic>), Diagnostics> {
        Self::parse(read_source(path)?)
    }

    /// Like [`Policy::load`], but a file that does not exist is `Ok(None)`: the caller decides
    /// between single-operator mode and a denial (SPEC §4.1). Any other failure to read it (a
    /// permission problem, a directory) is an error, so that an unreadable policy never turns
    /// into "no policy".
    pub fn load_optional(path: &Path) -> Result<Option<(Policy, Vec<Diagnostic>)>, Diagnostics> {
        match std::fs::symlink_metadata(path) {
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
            _ => Self::load(path).map(Some),
        }
    }

    /// Parses and validates a policy already read into memory.
    pub fn parse(file: Arc<SourceFile>) -> Result<(Policy, Vec<Diagnostic>), Diagnostics> {
        // An empty file (or only comments) is a policy with no operators: every gated command
        // is denied, which is the safe reading of "the admin has not listed anyone yet".
        let schema = if file.text.lines().all(|line| {
            let line = line.trim();
            line.is_empty() || line.starts_with('#') || line == "---"
        }) {
            schema::PolicyFile::default()
        } else {
            serde_saphyr::from_str::<schema::PolicyFile>(&file.text)
                .map_err(|error| Diagnostics::from(Diagnostic::from_yaml(&file, &error)))?
        };
        Validator::new(file).validate(schema)
    }

    /// The listed operator with this account name.
    #[must_use]
    pub fn operator(&self, account: &str) -> Option<&Operator> {
        self.operators.get(account)
    }

    /// Every listed operator, by account name.
    pub fn operators(&self) -> impl Iterator<Item = &Operator> {
        self.operators.values()
    }

    /// The service account that owns the policy, state and SSH keys in production (§4.6).
    #[must_use]
    pub fn service_account(&self) -> Option<&str> {
        self.service_account.as_deref()
    }

    /// Whether approvals must carry an SSH signature from the approver's registered key (§4.2).
    #[must_use]
    pub fn signed_approvals(&self) -> bool {
        self.signed_approvals
    }

    /// How long an approved saved plan may be run after it was saved (`plan_ttl`, §4.5;
    /// default 24 hours).
    #[must_use]
    pub fn plan_ttl(&self) -> std::time::Duration {
        self.plan_ttl
    }

    /// The tightening rules, in file order.
    #[must_use]
    pub fn rules(&self) -> &[PolicyRule] {
        &self.rules
    }

    /// The policy file's path, as the user named it.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.source.path
    }

    /// SHA-256 of the file's exact text, hex: what a saved plan records so that a changed
    /// policy makes it drift (§4.5).
    #[must_use]
    pub fn digest(&self) -> String {
        hex::encode(Sha256::digest(self.source.text.as_bytes()))
    }

    /// A runbook's `min_level` as raised by the `runbook:` and `kind:` rules, for catalog
    /// approval (§4.2), which happens before any targets are known; `environment:` rules are
    /// applied per run by [`crate::gate::decide`].
    #[must_use]
    pub fn catalog_min_level(&self, runbook: &str, kind: Kind, own: Level) -> Level {
        self.rules
            .iter()
            .filter(|rule| !matches!(rule.selector, Selector::Environment(_)))
            .filter(|rule| rule.selects(runbook, kind, &BTreeSet::new()))
            .filter_map(|rule| rule.min_level)
            .fold(own, Level::max)
    }
}

/// Turns the schema into a [`Policy`], collecting every problem.
struct Validator {
    file: Arc<SourceFile>,
    diagnostics: Diagnostics,
}

/// How long an approved saved plan may run without a `plan_ttl` (SPEC §4.5).
const DEFAULT_PLAN_TTL: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

const LEVEL_HINT: &str = "opsgate uses SFIA levels 1 (follow) to 5 (ensure, advise)";

impl Validator {
    fn new(file: Arc<SourceFile>) -> Self {
        Self {
            file,
            diagnostics: Diagnostics::new(),
        }
    }

    /// Where `value` is, underlining its whole token: the shared renderer measures plain
    /// block-style tokens, but a policy is mostly flow mappings (`alice: { level: 7 }`), where a
    /// token also ends at `,`, `}` or `]`, and a flow mapping is underlined to its closing brace.
    fn span<T>(&self, value: &Spanned<T>) -> Span {
        let mut span = Span::from_location(value.referenced);
        if let Some(line) = self.file.line(span.line) {
            let column = (span.column as usize).max(1);
            let in_flow = line.chars().take(column - 1).any(|c| c == '{' || c == '[');
            let rest: Vec<char> = line.chars().skip(column - 1).collect();
            span.length = token_length(&rest, in_flow) as u32;
        }
        span
    }

    fn report(&mut self, diagnostic: Diagnostic, span: Span, hints: &[&str]) {
        let diagnostic = hints
            .iter()
            .fold(diagnostic.at(&self.file, span), |diagnostic, hint| {
                diagnostic.hint(*hint)
            });
        self.diagnostics.push(diagnostic);
    }

    fn error(&mut self, message: String, span: Span, hints: &[&str]) {
        self.report(Diagnostic::error(message), span, hints);
    }

    fn warning(&mut self, message: String, span: Span, hints: &[&str]) {
        self.report(Diagnostic::warning(message), span, hints);
    }

    fn validate(
        mut self,
        schema: schema::PolicyFile,
    ) -> Result<(Policy, Vec<Diagnostic>), Diagnostics> {
        let service_account = schema
            .service_account
            .as_ref()
            .and_then(|account| self.account(account, "`service_account`"));
        let operators = self.operators(&schema.operators.unwrap_or_default());
        let signed_approvals = schema
            .signed_approvals
            .as_ref()
            .is_some_and(|signed| signed.value);
        if signed_approvals {
            self.check_approver_keys(&operators);
        }
        let plan_ttl = match &schema.plan_ttl {
            None => DEFAULT_PLAN_TTL,
            Some(ttl) => match crate::runbook::model::parse_duration(&ttl.value) {
                Ok(duration) if !duration.is_zero() => duration,
                Ok(_) => {
                    self.error(
                        "`plan_ttl` is zero: no saved plan could ever run".to_owned(),
                        self.span(ttl),
                        &["write a duration such as `24h` or `30m`"],
                    );
                    DEFAULT_PLAN_TTL
                }
                Err(problem) => {
                    self.error(
                        format!("`plan_ttl`: {problem}"),
                        self.span(ttl),
                        &["write a duration such as `24h` or `30m`"],
                    );
                    DEFAULT_PLAN_TTL
                }
            },
        };
        if let (Some(account), Some(written)) = (&service_account, &schema.service_account)
            && operators.contains_key(account)
        {
            self.warning(
                format!("service account `{account}` is also listed as an operator"),
                self.span(written),
                &[
                    "whoever runs opsgate as the service account directly, without sudo, acts at \
                     that operator's level; list people, not the service account",
                ],
            );
        }
        let rules = schema
            .rules
            .unwrap_or_default()
            .iter()
            .filter_map(|rule| self.rule(rule))
            .collect();
        let policy = Policy {
            source: Arc::clone(&self.file),
            service_account,
            signed_approvals,
            plan_ttl,
            operators,
            rules,
        };
        let Validator { diagnostics, .. } = self;
        diagnostics
            .into_result(policy)
            .map(|(policy, mut warnings)| {
                warnings.sort_by_key(|warning| warning.location.as_ref().map(|(_, span)| *span));
                (policy, warnings)
            })
    }

    fn account(&mut self, account: &Spanned<String>, what: &str) -> Option<String> {
        if is_account_name(&account.value) {
            Some(account.value.clone())
        } else {
            self.error(
                format!("{what} `{}` is not an account name", account.value),
                self.span(account),
                &["write the OS account name as `id -un` prints it, e.g. `alice`"],
            );
            None
        }
    }

    fn level(
        &mut self,
        value: &Spanned<i64>,
        message: impl FnOnce(i64) -> String,
    ) -> Option<Level> {
        let level = u8::try_from(value.value).ok().and_then(Level::new);
        if level.is_none() {
            self.error(message(value.value), self.span(value), &[LEVEL_HINT]);
        }
        level
    }

    fn operators(
        &mut self,
        entries: &indexmap::IndexMap<Spanned<String>, Option<Spanned<schema::OperatorEntry>>>,
    ) -> BTreeMap<String, Operator> {
        if entries.is_empty() {
            self.warning(
                "the policy lists no operators: every gated command will be denied".to_owned(),
                Span::default(),
                &["add operators under `operators:`, e.g. `alice: { level: 5, name: Alice }`"],
            );
        }
        let mut operators = BTreeMap::new();
        // Which operator registered each key, to refuse a key shared by two of them.
        let mut keys: Vec<(ssh_key::public::KeyData, String)> = Vec::new();
        for (account, entry) in entries {
            let name = self.account(account, "operator");
            let owner = format!("operator `{}`", account.value);
            let Some(entry) = entry else {
                self.error(
                    format!("{owner} has no `level`"),
                    self.span(account),
                    &["write it as `alice: { level: 3, name: Alice }`", LEVEL_HINT],
                );
                continue;
            };
            let level = if let Some(level) = &entry.value.level {
                self.level(level, |number| {
                    format!("{owner} has level `{number}`, which is not an SFIA level")
                })
            } else {
                self.error(
                    format!("{owner} has no `level`"),
                    self.span(entry),
                    &["add `level: N`", LEVEL_HINT],
                );
                None
            };
            let display_name = entry.value.name.as_ref().and_then(|display_name| {
                let trimmed = display_name.value.trim();
                if trimmed.is_empty() {
                    self.error(
                        format!("{owner} has an empty `name`"),
                        self.span(display_name),
                        &["write the person's name, or leave `name` out"],
                    );
                    None
                } else {
                    Some(trimmed.to_owned())
                }
            });
            let key = entry
                .value
                .key
                .as_ref()
                .and_then(|key| self.key(key, &owner));
            if let (Some(key), Some(written)) = (&key, &entry.value.key) {
                if let Some((_, first)) = keys.iter().find(|(data, _)| data == key.key_data()) {
                    self.error(
                        format!("{owner} has the same `key` as operator `{first}`"),
                        self.span(written),
                        &[
                            "each operator needs their own key: a signed approval must name one \
                           person",
                        ],
                    );
                } else {
                    keys.push((key.key_data().clone(), account.value.clone()));
                }
            }
            if let (Some(name), Some(level)) = (name, level) {
                operators.insert(
                    name.clone(),
                    Operator {
                        account: name,
                        level: Some(level),
                        display_name,
                        key,
                    },
                );
            }
        }
        operators
    }

    fn key(&mut self, key: &Spanned<String>, owner: &str) -> Option<ssh_key::PublicKey> {
        if key.value.contains("PRIVATE KEY") {
            self.error(
                format!("{owner} has a private key as `key`"),
                self.span(key),
                &[
                    "remove it from the file now and treat that key as leaked",
                    "`key` takes the public half: one line of `~/.ssh/id_ed25519.pub`",
                ],
            );
            return None;
        }
        match ssh_key::PublicKey::from_openssh(key.value.trim()) {
            Ok(public_key) => Some(public_key),
            Err(error) => {
                let detail = format!("the key does not parse as an OpenSSH public key: {error}");
                self.error(
                    format!("{owner} has an invalid `key`"),
                    self.span(key),
                    &[
                        &detail,
                        "paste one line of the operator's public key file, e.g. \
                         `ssh-ed25519 AAAAC3Nza… alice@laptop` from `~/.ssh/id_ed25519.pub`",
                    ],
                );
                None
            }
        }
    }

    fn check_approver_keys(&mut self, operators: &BTreeMap<String, Operator>) {
        for operator in operators.values() {
            if operator.key.is_none() && operator.level.is_some_and(|level| level >= Level::L3) {
                let level = operator
                    .level
                    .map(|level| level.to_string())
                    .unwrap_or_default();
                self.warning(
                    format!(
                        "operator `{}` ({level}) has no `key`, so with `signed_approvals: true` \
                         they cannot approve anything",
                        operator.account
                    ),
                    Span::default(),
                    &["add their public key line as `key: \"ssh-ed25519 AAAA…\"`"],
                );
            }
        }
    }

    fn rule(&mut self, rule: &Spanned<schema::RuleEntry>) -> Option<PolicyRule> {
        let entry = &rule.value;
        let selectors: Vec<(&str, &Spanned<String>)> = [
            ("runbook", &entry.runbook),
            ("environment", &entry.environment),
            ("kind", &entry.kind),
        ]
        .into_iter()
        .filter_map(|(key, value)| value.as_ref().map(|value| (key, value)))
        .collect();
        let selector = match selectors.as_slice() {
            [] => {
                self.error(
                    "rule does not say what it applies to".to_owned(),
                    self.span(rule),
                    &["add one of `runbook: ID`, `environment: NAME` or `kind: KIND`"],
                );
                None
            }
            [(key, value)] => self.selector(key, value),
            [(first, _), (second, value), ..] => {
                self.error(
                    format!("rule names both `{first}` and `{second}`"),
                    self.span(value),
                    &[
                        "a rule selects by one key; write one rule for each, and the strictest \
                         of all matching rules applies",
                    ],
                );
                None
            }
        };
        let min_level = entry.min_level.as_ref().and_then(|level| {
            self.level(level, |number| {
                format!("rule has `min_level: {number}`, which is not an SFIA level")
            })
        });
        let require_approval_below = entry.require_approval_below.as_ref().and_then(|level| {
            self.level(level, |number| {
                format!("rule has `require_approval_below: {number}`, which is not an SFIA level")
            })
        });
        if entry.min_level.is_none() && entry.require_approval_below.is_none() {
            self.error(
                "rule has no effect".to_owned(),
                self.span(rule),
                &["add `min_level: N` or `require_approval_below: N`"],
            );
        }
        if let (Some(Level::L1), Some(written)) = (min_level, &entry.min_level) {
            self.warning(
                "rule `min_level: 1` never changes anything".to_owned(),
                self.span(written),
                &["rules only tighten: every runbook already needs level 1 or more"],
            );
        }
        if let (Some(Level::L1), Some(written)) =
            (require_approval_below, &entry.require_approval_below)
        {
            self.warning(
                "rule `require_approval_below: 1` never applies".to_owned(),
                self.span(written),
                &["no operator is below level 1; did you mean a higher level?"],
            );
        }
        let origin = format!("{}:{}", self.file.path.display(), rule.referenced.line());
        Some(PolicyRule {
            selector: selector?,
            min_level,
            require_approval_below,
            origin,
        })
        .filter(|rule| rule.min_level.is_some() || rule.require_approval_below.is_some())
    }

    fn selector(&mut self, key: &str, value: &Spanned<String>) -> Option<Selector> {
        let text = value.value.trim();
        match key {
            "runbook" if is_runbook_id(text) => Some(Selector::Runbook(text.to_owned())),
            "runbook" => {
                self.error(
                    format!("rule names runbook `{text}`, which is not a runbook id"),
                    self.span(value),
                    &["a runbook id is lower-case letters, digits and `-`, e.g. `restore-postgres`"],
                );
                None
            }
            "kind" => {
                let kind = Kind::ALL
                    .iter()
                    .find(|(name, _)| *name == text)
                    .map(|(_, kind)| *kind);
                if kind.is_none() {
                    let names = Kind::ALL.map(|(name, _)| name);
                    let close = crate::suggest::close_names(text, names);
                    let mut hints = Vec::new();
                    let did_you_mean = crate::suggest::did_you_mean(&close);
                    if let Some(hint) = &did_you_mean {
                        hints.push(hint.as_str());
                    }
                    let kinds = format!("kinds: {}", crate::suggest::quoted_list(names));
                    hints.push(&kinds);
                    self.error(
                        format!("rule names unknown kind `{text}`"),
                        self.span(value),
                        &hints,
                    );
                }
                kind.map(Selector::Kind)
            }
            _ if text.is_empty() => {
                self.error(
                    "rule names an empty environment".to_owned(),
                    self.span(value),
                    &["name an environment set on inventory groups, e.g. `production`"],
                );
                None
            }
            _ => Some(Selector::Environment(text.to_owned())),
        }
    }
}

/// Characters of the YAML token at the start of `rest`: a quoted scalar to its closing quote, a
/// flow mapping to its closing brace, a plain scalar to where YAML ends it.
fn token_length(rest: &[char], in_flow: bool) -> usize {
    match rest.first() {
        Some(quote @ ('"' | '\'')) => rest[1..]
            .iter()
            .position(|c| c == quote)
            .map_or(rest.len(), |end| end + 2),
        Some('{') => {
            let mut depth = 0_usize;
            for (index, character) in rest.iter().enumerate() {
                match character {
                    '{' => depth += 1,
                    '}' if depth <= 1 => return index + 1,
                    '}' => depth -= 1,
                    _ => {}
                }
            }
            1
        }
        Some(_) => {
            let ends = |index: usize| {
                let next = rest.get(index + 1).copied();
                match rest[index] {
                    ':' => next.is_none_or(char::is_whitespace),
                    '#' => index > 0 && rest[index - 1].is_whitespace(),
                    ',' | '}' | ']' => in_flow,
                    _ => false,
                }
            };
            let end = (0..rest.len())
                .find(|index| ends(*index))
                .unwrap_or(rest.len());
            let token: String = rest[..end].iter().collect();
            token.trim_end().chars().count().max(1)
        }
        None => 1,
    }
}

/// An OS account name as `useradd` accepts them (letters, digits, `_`, `.`, `-`; not starting
/// with `-` or `.`; at most 32 characters).
fn is_account_name(name: &str) -> bool {
    let mut characters = name.chars();
    name.len() <= 32
        && characters
            .next()
            .is_some_and(|first| first.is_ascii_alphanumeric() || first == '_')
        && characters
            .all(|character| character.is_ascii_alphanumeric() || "_.-".contains(character))
}

/// `[a-z0-9][a-z0-9-]*`, the runbook id format (SPEC §2).
fn is_runbook_id(id: &str) -> bool {
    let mut characters = id.chars();
    characters
        .next()
        .is_some_and(|first| first.is_ascii_lowercase() || first.is_ascii_digit())
        && characters.all(|character| {
            character.is_ascii_lowercase() || character.is_ascii_digit() || character == '-'
        })
}

#[cfg(test)]
mod tests;
