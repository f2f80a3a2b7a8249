//! Schema → model: the only place a runbook file becomes a [`Runbook`].
//!
//! Validation collects every problem it can find in one pass and reports them together, sorted
//! by position, each pointing at the offending text with a hint. A runbook that validates can
//! still fail to *plan* (an inventory variable that does not exist, a `-p` value out of range):
//! those checks need the inventory and the caller's params and live in [`crate::plan`].

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use serde_saphyr::Spanned;
use sha2::{Digest, Sha256};

use super::model::{
    Action, Amount, Assert, Attributes, Backup, BackupSource, Command, Content, Copy, Fetch,
    FieldType, FileKind, FileState, Gate, Kind, Package, PackageState, ParamKind, ParamSpec,
    Presence, Reboot, Restore, RestoreInto, Rolling, Runbook, Script, Service, ServiceState, Step,
    Text, UpgradeScope, User, WaitFor, WaitTarget, backticked,
};
use super::schema;
use crate::diagnostic::{Diagnostic, Diagnostics, SourceFile, Span, closest};
use crate::template::{self, Mode};

/// Facts a runbook may read as `facts.*` (SPEC §2).
pub const FACTS: [&str; 7] = [
    "os_family",
    "distribution",
    "version",
    "arch",
    "hostname",
    "boot_id",
    "pkg_manager",
];

/// Fields of a registered result (SPEC §2).
pub const REGISTERED_FIELDS: [&str; 6] = [
    "rc",
    "stdout",
    "stderr",
    "stdout_lines",
    "changed",
    "status",
];

/// Fields of `host.*`.
pub const HOST_FIELDS: [&str; 4] = ["name", "address", "groups", "environment"];

/// Fields of `run.*`.
pub const RUN_FIELDS: [&str; 2] = ["id", "operator"];

/// Fields a `backup` or `restore` step registers besides [`REGISTERED_FIELDS`]: the backup's
/// id (file name without extension), path, size in bytes and SHA-256.
pub const BACKUP_FIELDS: [&str; 4] = ["id", "path", "size", "sha256"];

/// Fields a `package` step registers besides [`REGISTERED_FIELDS`]: `packages`, the list of
/// `{name, from, to}` it changed (or would change under `--check`).
pub const PACKAGE_FIELDS: [&str; 1] = ["packages"];

/// Actions a `check` runbook may use (SPEC §4.3).
const CHECK_ACTIONS: [&str; 4] = ["command", "assert", "wait_for", "fetch"];

/// Reads, parses and validates the runbook at `path`.
pub fn load(path: &Path) -> Result<(Runbook, Vec<Diagnostic>), Diagnostics> {
    let file = crate::diagnostic::read_source(path)?;
    parse(&file)
}

/// Parses and validates a runbook file already in memory.
pub fn parse(file: &Arc<SourceFile>) -> Result<(Runbook, Vec<Diagnostic>), Diagnostics> {
    let schema: schema::Runbook = serde_saphyr::from_str(&file.text)
        .map_err(|error| Diagnostics::from(Diagnostic::from_yaml(file, &error)))?;
    let mut validator = Validator {
        file,
        diagnostics: Diagnostics::new(),
        local_files: vec![],
        action_fields: BTreeMap::new(),
    };
    let runbook = validator.runbook(schema);
    let Validator { diagnostics, .. } = validator;
    diagnostics.into_result(runbook)
}

struct Validator<'f> {
    file: &'f Arc<SourceFile>,
    diagnostics: Diagnostics,
    local_files: Vec<(PathBuf, String)>,
    /// Names registered by steps whose action adds fields to the result ([`BACKUP_FIELDS`] for
    /// `backup` and `restore`, [`PACKAGE_FIELDS`] for `package`), with those fields.
    action_fields: BTreeMap<String, BTreeSet<&'static str>>,
}

/// What a template may read at a given step: the params and the names registered so far.
struct Scope<'a> {
    params: &'a [ParamSpec],
    registered: &'a BTreeSet<String>,
    /// Names registered by *later* steps, for a precise "used before it is set" message.
    registered_later: &'a BTreeSet<String>,
}

impl Validator<'_> {
    fn action_names() -> Vec<String> {
        [
            "command", "shell", "script", "copy", "template", "fetch", "file", "assert",
            "wait_for", "backup", "restore", "gate", "user", "package", "service", "reboot",
        ]
        .map(String::from)
        .to_vec()
    }

    fn error(&mut self, span: Span, message: impl Into<String>) -> &mut Diagnostic {
        self.push(Diagnostic::error(message).at(self.file, span))
    }

    fn push(&mut self, diagnostic: Diagnostic) -> &mut Diagnostic {
        self.diagnostics.push_mut(diagnostic)
    }

    fn span<T>(spanned: &Spanned<T>) -> Span {
        Span::from_location(spanned.referenced)
    }

    fn runbook(&mut self, schema: schema::Runbook) -> Runbook {
        let id = schema.runbook.value.clone();
        if !is_runbook_id(&id) {
            self.error(
                Self::span(&schema.runbook),
                format!("runbook id `{id}` is not valid"),
            )
            .hints
            .push("use lower-case letters, digits and `-`, starting with a letter or digit".into());
        }
        let kind = Kind::ALL
            .iter()
            .find(|(name, _)| *name == schema.kind.value)
            .map(|(_, k)| *k);
        if kind.is_none() {
            let names: Vec<String> = Kind::ALL
                .iter()
                .map(|(name, _)| (*name).to_owned())
                .collect();
            self.error(
                Self::span(&schema.kind),
                format!("unknown kind `{}`", schema.kind.value),
            )
            .hints
            .push(format!("kind is one of {}", backticked(&names)));
        }
        let min_level = match &schema.min_level {
            None => 1,
            Some(level) if (1..=5).contains(&level.value) => level.value as u8,
            Some(level) => {
                self.error(
                    Self::span(level),
                    format!("min_level `{}` is not an SFIA level", level.value),
                )
                .hints
                .push("min_level is 1, 2, 3, 4 or 5".into());
                1
            }
        };
        if schema.targets.value.trim().is_empty() {
            self.error(Self::span(&schema.targets), "targets is empty")
                .hints
                .push("name a host, a group or a pattern such as `web,!web3`".into());
        }
        let become_root = schema
            .become_root
            .as_ref()
            .and_then(|field| self.literal_bool(field, "become"))
            .unwrap_or(false);
        let params = self.params(schema.params.unwrap_or_default());
        let rolling = schema
            .rolling
            .as_ref()
            .map(|rolling| self.rolling(&rolling.value))
            .unwrap_or_default();

        let kind = kind.unwrap_or(Kind::Maintenance);
        let mut registered = BTreeSet::new();
        let all_registered: BTreeSet<String> = schema
            .steps
            .value
            .iter()
            .chain(schema.on_failure.iter().flatten())
            .filter_map(|step| step.value.register.as_ref().map(|name| name.value.clone()))
            .collect();
        for step in schema
            .steps
            .value
            .iter()
            .chain(schema.on_failure.iter().flatten())
        {
            let step = &step.value;
            let fields: &[&'static str] = if step.backup.is_some() || step.restore.is_some() {
                &BACKUP_FIELDS
            } else if step.package.is_some() {
                &PACKAGE_FIELDS
            } else {
                continue;
            };
            if let Some(name) = &step.register {
                self.action_fields
                    .entry(name.value.clone())
                    .or_default()
                    .extend(fields);
            }
        }
        if schema.steps.value.is_empty() {
            self.error(Self::span(&schema.steps), "runbook has no steps")
                .hints
                .push("add at least one step under `steps:`".into());
        }
        let steps = self.steps(
            &schema.steps.value,
            kind,
            &params,
            &mut registered,
            &all_registered,
        );
        // `on_failure` steps see every name the main steps register: steps that never ran are
        // registered as skipped before `on_failure` starts.
        let on_failure = self.steps(
            schema.on_failure.as_deref().unwrap_or_default(),
            kind,
            &params,
            &mut registered,
            &all_registered,
        );

        let digest = digest(&self.file.text, &self.local_files);
        Runbook {
            title: schema.title.map_or_else(|| id.clone(), |title| title.value),
            id,
            kind,
            description: schema
                .description
                .map(|text| text.value)
                .unwrap_or_default(),
            min_level,
            targets: (schema.targets.value.clone(), Self::span(&schema.targets)),
            become_root,
            params,
            rolling,
            steps,
            on_failure,
            source: Arc::clone(self.file),
            digest,
            local_files: std::mem::take(&mut self.local_files),
        }
    }

    fn params(
        &mut self,
        schema: indexmap::IndexMap<schema::Text, schema::Param>,
    ) -> Vec<ParamSpec> {
        let mut params = Vec::new();
        for (name, param) in schema {
            let span = Self::span(&name);
            if !is_identifier(&name.value) {
                self.error(
                    span,
                    format!("param name `{}` is not an identifier", name.value),
                )
                .hints
                .push("use letters, digits and `_`, starting with a letter".into());
            }
            let kind = match param.kind.value.as_str() {
                "int" => ParamKind::Int {
                    min: param.min.as_ref().map(|min| min.value),
                    max: param.max.as_ref().map(|max| max.value),
                },
                "bool" => ParamKind::Bool,
                "string" => ParamKind::String,
                "enum" => match &param.values {
                    Some(values) if !values.is_empty() => {
                        ParamKind::Enum(values.iter().map(|value| value.value.clone()).collect())
                    }
                    _ => {
                        self.error(
                            Self::span(&param.kind),
                            format!("enum param `{}` has no `values`", name.value),
                        )
                        .hints
                        .push("list the allowed values: `values: [staging, production]`".into());
                        ParamKind::String
                    }
                },
                other => {
                    self.error(
                        Self::span(&param.kind),
                        format!("param `{}` has unknown type `{other}`", name.value),
                    )
                    .hints
                    .push("type is one of `int`, `bool`, `enum`, `string`".into());
                    ParamKind::String
                }
            };
            if (param.min.is_some() || param.max.is_some())
                && !matches!(kind, ParamKind::Int { .. })
            {
                self.error(
                    span,
                    format!("param `{}` has `min`/`max` but is not an int", name.value),
                );
            }
            let secret = param.secret.as_ref().is_some_and(|secret| secret.value);
            let default = param.default.as_ref().and_then(|default| {
                match kind.parse(&default.value.to_text()) {
                    Ok(value) => Some(value),
                    Err(reason) => {
                        self.error(
                            Self::span(default),
                            format!("default of param `{}`: {reason}", name.value),
                        );
                        None
                    }
                }
            });
            if secret && !matches!(kind, ParamKind::String) {
                self.error(
                    Self::span(&param.kind),
                    format!("secret param `{}` must be a string", name.value),
                )
                .hints
                .push(
                    "masking a number or a boolean would mask every such word in the output".into(),
                );
            }
            if secret && default.is_some() {
                self.error(span, format!("secret param `{}` has a default", name.value))
                    .hints
                    .push(
                        "a secret written in the runbook is not secret: remove the default".into(),
                    );
            }
            if params
                .iter()
                .any(|existing: &ParamSpec| existing.name == name.value)
            {
                self.error(span, format!("param `{}` is declared twice", name.value));
            }
            params.push(ParamSpec {
                name: name.value.clone(),
                required: param
                    .required
                    .as_ref()
                    .is_some_and(|required| required.value)
                    && default.is_none(),
                kind,
                default,
                secret,
                description: param.description.map(|text| text.value).unwrap_or_default(),
            });
        }
        params
    }

    fn rolling(&mut self, schema: &schema::Rolling) -> Rolling {
        let mut amount = |field: &Option<schema::Field>, default: Amount| match field {
            None => default,
            Some(field) => Amount::parse(&field.value.to_text()).unwrap_or_else(|reason| {
                self.error(Self::span(field), reason.to_string());
                default
            }),
        };
        let defaults = Rolling::default();
        let rolling = Rolling {
            batch: amount(&schema.batch, defaults.batch),
            max_failures: amount(&schema.max_failures, defaults.max_failures),
        };
        if let (Some(field), Amount::Count(0) | Amount::Percent(0)) = (&schema.batch, rolling.batch)
        {
            self.error(
                Self::span(field),
                "a batch of 0 hosts would never run anything",
            )
            .hints
            .push(
                "use a number of hosts (`batch: 2`) or a percentage above 0 (`batch: 25%`)".into(),
            );
        }
        rolling
    }

    fn steps(
        &mut self,
        steps: &[Spanned<schema::Step>],
        kind: Kind,
        params: &[ParamSpec],
        registered: &mut BTreeSet<String>,
        all_registered: &BTreeSet<String>,
    ) -> Vec<Step<Text>> {
        let mut out = Vec::new();
        for step in steps {
            let later: BTreeSet<String> = all_registered.difference(registered).cloned().collect();
            let scope = Scope {
                params,
                registered,
                registered_later: &later,
            };
            if let Some(model) = self.step(step, kind, &scope) {
                out.push(model);
            }
            if let Some(name) = &step.value.register {
                if !is_identifier(&name.value) || is_reserved_root(&name.value) {
                    self.error(
                        Self::span(name),
                        format!("`{}` cannot be a register name", name.value),
                    )
                    .hints
                    .push(
                        "use an identifier that is not `params`, `host`, `vars`, `facts` or `run`"
                            .into(),
                    );
                }
                registered.insert(name.value.clone());
            }
        }
        out
    }

    fn step(
        &mut self,
        spanned: &Spanned<schema::Step>,
        kind: Kind,
        scope: &Scope<'_>,
    ) -> Option<Step<Text>> {
        let step = &spanned.value;
        let span = Self::span(spanned);
        let actions: Vec<&str> = [
            ("command", step.command.is_some()),
            ("shell", step.shell.is_some()),
            ("script", step.script.is_some()),
            ("copy", step.copy.is_some()),
            ("template", step.template.is_some()),
            ("fetch", step.fetch.is_some()),
            ("file", step.file.is_some()),
            ("assert", step.assert_that.is_some()),
            ("wait_for", step.wait_for.is_some()),
            ("backup", step.backup.is_some()),
            ("restore", step.restore.is_some()),
            ("gate", step.gate.is_some()),
            ("user", step.user.is_some()),
            ("package", step.package.is_some()),
            ("service", step.service.is_some()),
            ("reboot", step.reboot.is_some()),
        ]
        .into_iter()
        .filter_map(|(name, present)| present.then_some(name))
        .collect();
        let label = step.name.as_ref().map_or_else(
            || "step".to_owned(),
            |name| format!("step `{}`", name.value),
        );
        match actions.as_slice() {
            [] => {
                self.error(span, format!("{label} has no action"))
                    .hints
                    .push(format!(
                        "give it exactly one of {}",
                        backticked(&Self::action_names())
                    ));
                return None;
            }
            [_] => {}
            several => {
                let several: Vec<String> = several.iter().map(ToString::to_string).collect();
                self.error(
                    span,
                    format!(
                        "{label} has {} actions: {}",
                        several.len(),
                        backticked(&several)
                    ),
                )
                .hints
                .push("split it into one step per action".into());
                return None;
            }
        }
        let keyword = if actions[0] == "shell" {
            "command"
        } else {
            actions[0]
        };
        if kind == Kind::Check && !CHECK_ACTIONS.contains(&keyword) {
            self.error(
                span,
                format!("{label} uses `{keyword}`, which a `check` runbook may not use"),
            )
            .hints
            .push(format!(
                "check runbooks are read-only: use {}, or change `kind`",
                backticked(&CHECK_ACTIONS.map(String::from))
            ));
        }
        let is_command = keyword == "command";
        for (name, guard) in [
            ("creates", &step.creates),
            ("removes", &step.removes),
            ("unless", &step.unless),
            ("only_if", &step.only_if),
            ("executable", &step.executable),
        ] {
            if let (Some(guard), false) = (guard, is_command) {
                self.error(
                    Self::span(guard),
                    format!("`{name}` only applies to `command` steps"),
                );
            }
        }
        if let (Some(expect), false) = (&step.expect_rc, is_command) {
            self.error(
                Self::span(expect),
                "`expect_rc` only applies to `command` steps",
            );
        }

        let mut fields = FieldChecker {
            validator: self,
            scope,
        };
        let action = fields.action(step, keyword)?;
        let data = |fields: &mut FieldChecker<'_, '_, '_>, text: &Option<schema::Text>| {
            text.as_ref().map(|text| fields.text(text, Mode::Data))
        };
        let field = |fields: &mut FieldChecker<'_, '_, '_>,
                     field: &Option<schema::Field>,
                     check: FieldType| {
            field.as_ref().map(|field| fields.typed(field, check))
        };
        let when = field(&mut fields, &step.when, FieldType::Condition);
        let become_root = field(&mut fields, &step.become_root, FieldType::Bool);
        let become_user = data(&mut fields, &step.become_user);
        let timeout = field(&mut fields, &step.timeout, FieldType::Duration);
        let retries = field(&mut fields, &step.retries, FieldType::Count);
        let retry_delay = field(&mut fields, &step.retry_delay, FieldType::Duration);
        let ignore_errors = field(&mut fields, &step.ignore_errors, FieldType::Bool);
        let mut env = Vec::new();
        for (name, value) in step.env.iter().flatten() {
            if !is_env_name(&name.value) {
                fields.validator.error(
                    Self::span(name),
                    format!("`{}` is not a valid environment variable name", name.value),
                );
            }
            env.push((name.value.clone(), fields.typed(value, FieldType::Text)));
        }
        // `changed_when` and `failed_when` judge this step's own result, so they may read the
        // name it registers.
        let mut own = scope.registered.clone();
        own.extend(step.register.as_ref().map(|name| name.value.clone()));
        let own_scope = Scope {
            params: scope.params,
            registered: &own,
            registered_later: scope.registered_later,
        };
        let mut fields = FieldChecker {
            validator: self,
            scope: &own_scope,
        };
        let mut changed_when = field(&mut fields, &step.changed_when, FieldType::Condition);
        let failed_when = field(&mut fields, &step.failed_when, FieldType::Condition);
        // A check runbook's commands only read: SPEC §4.3 treats them as `changed_when: false`.
        if kind == Kind::Check && is_command && changed_when.is_none() {
            changed_when = Some(Text {
                source: "false".into(),
                span,
                mode: Mode::Data,
                kind: FieldType::Condition,
            });
        }
        let name = step
            .name
            .as_ref()
            .map_or_else(|| default_name(step, keyword), |name| name.value.clone());
        Some(Step {
            name,
            span,
            action,
            when,
            register: step.register.as_ref().map(|name| name.value.clone()),
            secret: step.secret.as_ref().is_some_and(|secret| secret.value),
            become_root,
            become_user,
            env,
            timeout,
            retries,
            retry_delay,
            changed_when,
            failed_when,
            ignore_errors,
            check_mode: step.check_mode.as_ref().is_some_and(|check| check.value),
        })
    }

    fn literal_bool(&mut self, field: &schema::Field, key: &str) -> Option<bool> {
        match &field.value {
            schema::Scalar::Bool(value) => Some(*value),
            other => {
                self.error(
                    Self::span(field),
                    format!("`{key}` must be true or false, not `{}`", other.to_text()),
                );
                None
            }
        }
    }

    /// Resolves a local `src` relative to the runbook's directory, refusing escapes.
    fn local_file(&mut self, src: &schema::Text) -> Option<(PathBuf, Vec<u8>)> {
        let relative = Path::new(&src.value);
        let escapes = relative.is_absolute()
            || relative
                .components()
                .any(|component| matches!(component, Component::ParentDir));
        if escapes {
            self.error(Self::span(src), format!("`{}` is outside the runbook's directory", src.value))
                .hints
                .push("local files must be relative paths inside the runbook's directory tree (no `/…`, no `..`)".into());
            return None;
        }
        let directory = self.file.path.parent().unwrap_or_else(|| Path::new("."));
        let path = directory.join(relative);
        // A symbolic link inside the tree may point anywhere (a key, a password file): the
        // resolved file must still be inside the runbook's directory.
        let inside = match (directory.canonicalize(), path.canonicalize()) {
            (Ok(root), Ok(resolved)) => resolved.starts_with(root),
            // Missing files are reported by the read below.
            _ => true,
        };
        if !inside {
            self.error(
                Self::span(src),
                format!("`{}` resolves outside the runbook's directory", src.value),
            )
            .hints
            .push("a symbolic link in `src` must point inside the runbook's directory tree".into());
            return None;
        }
        match std::fs::read(&path) {
            Ok(bytes) => {
                let sha = hex::encode(Sha256::digest(&bytes));
                self.local_files.push((relative.to_path_buf(), sha));
                Some((relative.to_path_buf(), bytes))
            }
            Err(error) => {
                self.error(
                    Self::span(src),
                    format!("cannot read `{}`: {error}", path.display()),
                )
                .hints
                .push("paths in `src` are relative to the runbook file".into());
                None
            }
        }
    }
}

/// Checks fields of one step: templates parse, references resolve, literals have the right type.
struct FieldChecker<'v, 'f, 's> {
    validator: &'v mut Validator<'f>,
    scope: &'v Scope<'s>,
}

impl FieldChecker<'_, '_, '_> {
    fn text(&mut self, text: &schema::Text, mode: Mode) -> Text {
        let model = Text {
            source: text.value.clone(),
            span: Validator::span(text),
            mode,
            kind: FieldType::Text,
        };
        self.references(&model);
        model
    }

    fn typed(&mut self, field: &schema::Field, check: FieldType) -> Text {
        let source = field.value.to_text();
        let model = Text {
            source: source.clone(),
            span: Validator::span(field),
            mode: Mode::Data,
            kind: check,
        };
        if matches!(check, FieldType::Mode) && matches!(field.value, schema::Scalar::Int(_)) {
            self.validator
                .error(
                    model.span,
                    format!("mode `{source}` must be a quoted string"),
                )
                .hints
                .push(format!(
                    "write `mode: \"0{source}\"`: YAML reads an unquoted 0640 as a number"
                ));
        } else if template::is_template(&source) {
            self.references(&model);
        } else if let Err(reason) = check.parse(&source) {
            self.validator.error(model.span, reason.to_string());
        }
        model
    }

    fn references(&mut self, text: &Text) {
        let references = match text.mode {
            Mode::Command => template::command_references(&text.source),
            Mode::Data => template::references(&text.source),
        };
        let references = match references {
            Ok(references) => references,
            Err(error) => {
                let span = span_at(
                    &self.validator.file.clone(),
                    text,
                    error.offset().unwrap_or(0),
                );
                let hints = error.hints();
                let diagnostic = self.validator.error(span, error.to_string());
                diagnostic.hints.extend(hints);
                return;
            }
        };
        for reference in references {
            let span = span_at(&self.validator.file.clone(), text, reference.offset);
            let span = Span {
                length: reference.length as u32,
                ..span
            };
            if reference.raw && text.mode == Mode::Command {
                self.validator
                    .push(Diagnostic::warning(format!("`{{{{{{{}}}}}}}` inserts raw, unquoted text into a command", reference.path.join(".")))
                        .at(self.validator.file, span)
                        .hint("use `{{…}}` so the value is shell-quoted, unless the value is trusted shell syntax"));
            }
            if let Some(problem) = self.check_reference(&reference.path) {
                let (message, hint) = problem;
                let diagnostic = self.validator.error(span, message);
                if let Some(hint) = hint {
                    diagnostic.hints.push(hint);
                }
            }
        }
    }

    fn check_reference(&self, path: &[String]) -> Option<(String, Option<String>)> {
        let (root, rest) = path.split_first()?;
        let field = rest.first().map(String::as_str);
        let dotted = path.join(".");
        let known = |field: Option<&str>,
                     allowed: &[&str],
                     what: &str|
         -> Option<(String, Option<String>)> {
            let field = field?;
            (!allowed.contains(&field)).then(|| {
                let hint = closest(field, allowed.iter().copied()).map_or_else(
                    || {
                        format!(
                            "{what} has {}",
                            backticked(
                                &allowed.iter().map(ToString::to_string).collect::<Vec<_>>()
                            )
                        )
                    },
                    |close| format!("did you mean `{root}.{close}`?"),
                );
                (format!("`{dotted}` does not exist"), Some(hint))
            })
        };
        match root.as_str() {
            "params" => {
                let name = field?;
                if self.scope.params.iter().any(|param| param.name == name) {
                    return None;
                }
                let names: Vec<&str> = self
                    .scope
                    .params
                    .iter()
                    .map(|param| param.name.as_str())
                    .collect();
                let hint = closest(name, names.iter().copied()).map_or_else(
                    || format!("declare it under `params:` (e.g. `{name}: {{ type: string, required: true }}`)"),
                    |close| format!("did you mean `params.{close}`?"),
                );
                Some((format!("undeclared param `{name}`"), Some(hint)))
            }
            "host" => known(field, &HOST_FIELDS, "`host`"),
            "facts" => known(field, &FACTS, "`facts`"),
            "run" => known(field, &RUN_FIELDS, "`run`"),
            // Inventory variables are checked per host at plan time, when the inventory is known.
            "vars" | "this" | "@index" | "@key" | "@first" | "@last" => None,
            name if self.scope.registered.contains(name) => {
                if let Some(extra) = self.validator.action_fields.get(name) {
                    let fields: Vec<&str> = REGISTERED_FIELDS
                        .iter()
                        .copied()
                        .chain(extra.iter().copied())
                        .collect();
                    let what = if extra.contains("packages") {
                        "a package step's registered result"
                    } else {
                        "a backup's registered result"
                    };
                    known(field, &fields, what)
                } else {
                    known(field, &REGISTERED_FIELDS, "a registered result")
                }
            }
            name if self.scope.registered_later.contains(name) => Some((
                format!("`{name}` is used before a step registers it"),
                Some(format!(
                    "move this step after the step with `register: {name}`"
                )),
            )),
            name => {
                let roots = ["params", "host", "vars", "facts", "run"];
                let registered = self.scope.registered.iter().map(String::as_str);
                let hint = closest(name, roots.into_iter().chain(registered)).map_or_else(
                    || "templates read `params.*`, `host.*`, `vars.*`, `facts.*`, `run.*` and registered results".to_owned(),
                    |close| format!("did you mean `{close}`?"),
                );
                Some((format!("unknown variable `{dotted}`"), Some(hint)))
            }
        }
    }

    fn action(&mut self, step: &schema::Step, keyword: &str) -> Option<Action<Text>> {
        let data = |this: &mut Self, text: &Option<schema::Text>| {
            text.as_ref().map(|text| this.text(text, Mode::Data))
        };
        let command = |this: &mut Self, text: &Option<schema::Text>| {
            text.as_ref().map(|text| this.text(text, Mode::Command))
        };
        let attributes = |this: &mut Self,
                          mode: &Option<schema::Field>,
                          owner: &Option<schema::Text>,
                          group: &Option<schema::Text>| Attributes {
            mode: mode.as_ref().map(|mode| this.typed(mode, FieldType::Mode)),
            owner: data(this, owner),
            group: data(this, group),
        };
        Some(match keyword {
            "command" => {
                let text = step.command.as_ref().or(step.shell.as_ref())?;
                let expect_rc = match step.expect_rc.as_ref().map(|codes| &codes.value) {
                    None => vec![0],
                    Some(schema::ExpectRc::One(code)) => vec![*code as i32],
                    Some(schema::ExpectRc::Many(codes)) => {
                        codes.iter().map(|code| *code as i32).collect()
                    }
                };
                Action::Command(Command {
                    text: self.text(text, Mode::Command),
                    executable: data(self, &step.executable),
                    creates: data(self, &step.creates),
                    removes: data(self, &step.removes),
                    unless: command(self, &step.unless),
                    only_if: command(self, &step.only_if),
                    expect_rc,
                })
            }
            "script" => {
                let script = &step.script.as_ref()?.value;
                let (src, body) = self.validator.local_file(&script.src)?;
                let args = script
                    .args
                    .iter()
                    .flatten()
                    .map(|arg| self.typed(arg, FieldType::Text))
                    .collect();
                Action::Script(Script {
                    body: Arc::new(body),
                    src,
                    args,
                })
            }
            "copy" => {
                let spanned = step.copy.as_ref()?;
                let copy = &spanned.value;
                let content = match (&copy.src, &copy.content) {
                    (Some(src), None) => {
                        let (src, bytes) = self.validator.local_file(src)?;
                        Content::Bytes {
                            bytes: Arc::new(bytes),
                            src,
                        }
                    }
                    (None, Some(content)) => Content::Text(self.text(content, Mode::Data)),
                    _ => {
                        self.validator
                            .error(
                                Validator::span(spanned),
                                "`copy` needs exactly one of `src` and `content`",
                            )
                            .hints
                            .push("use `src` for a local file, `content` for inline text".into());
                        return None;
                    }
                };
                Action::Copy(Copy {
                    content,
                    dest: self.text(&copy.dest, Mode::Data),
                    attributes: attributes(self, &copy.mode, &copy.owner, &copy.group),
                    backup: copy
                        .backup
                        .as_ref()
                        .map(|backup| self.typed(backup, FieldType::Bool)),
                })
            }
            "template" => {
                let template = &step.template.as_ref()?.value;
                let (_, bytes) = self.validator.local_file(&template.src)?;
                let Ok(source) = String::from_utf8(bytes) else {
                    self.validator.error(
                        Validator::span(&template.src),
                        format!("template `{}` is not UTF-8 text", template.src.value),
                    );
                    return None;
                };
                let body = Text {
                    source,
                    span: Validator::span(&template.src),
                    mode: Mode::Data,
                    kind: FieldType::Text,
                };
                self.references(&body);
                Action::Template(Copy {
                    content: Content::Text(body),
                    dest: self.text(&template.dest, Mode::Data),
                    attributes: attributes(self, &template.mode, &template.owner, &template.group),
                    backup: template
                        .backup
                        .as_ref()
                        .map(|backup| self.typed(backup, FieldType::Bool)),
                })
            }
            "fetch" => {
                let fetch = &step.fetch.as_ref()?.value;
                Action::Fetch(Fetch {
                    src: self.text(&fetch.src, Mode::Data),
                    dest: self.text(&fetch.dest, Mode::Data),
                })
            }
            "file" => {
                let spanned = step.file.as_ref()?;
                let file = &spanned.value;
                let state = match file.state.as_ref().map(|state| state.value.as_str()) {
                    None | Some("file") => FileKind::File,
                    Some("directory") => FileKind::Directory,
                    Some("absent") => FileKind::Absent,
                    Some("link") => FileKind::Link,
                    Some(other) => {
                        let span = file.state.as_ref().map_or(Span::default(), Validator::span);
                        self.validator
                            .error(span, format!("unknown file state `{other}`"))
                            .hints
                            .push("state is one of `file`, `directory`, `absent`, `link`".into());
                        FileKind::File
                    }
                };
                if (state == FileKind::Link) != file.src.is_some() {
                    self.validator
                        .error(
                            Validator::span(spanned),
                            "`file` takes `src` exactly when `state: link`",
                        )
                        .hints
                        .push("`src` is the link's target".into());
                }
                Action::File(FileState {
                    path: self.text(&file.path, Mode::Data),
                    state,
                    src: data(self, &file.src),
                    attributes: attributes(self, &file.mode, &file.owner, &file.group),
                })
            }
            "assert" => {
                let spanned = step.assert_that.as_ref()?;
                if spanned.value.that.is_empty() {
                    self.validator.error(
                        Validator::span(spanned),
                        "`assert` has no conditions in `that`",
                    );
                }
                Action::Assert(Assert {
                    that: spanned
                        .value
                        .that
                        .iter()
                        .map(|condition| self.typed(condition, FieldType::Condition))
                        .collect(),
                    message: data(self, &spanned.value.message),
                })
            }
            "wait_for" => {
                let spanned = step.wait_for.as_ref()?;
                let wait = &spanned.value;
                let target = match (&wait.port, &wait.path, &wait.command) {
                    (Some(port), None, None) => WaitTarget::Port {
                        port: self.typed(port, FieldType::Port),
                        host: data(self, &wait.host),
                    },
                    (None, Some(path), None) => WaitTarget::Path(self.text(path, Mode::Data)),
                    (None, None, Some(command)) => {
                        WaitTarget::Command(self.text(command, Mode::Command))
                    }
                    _ => {
                        self.validator.error(
                            Validator::span(spanned),
                            "`wait_for` needs exactly one of `port`, `path` and `command`",
                        );
                        return None;
                    }
                };
                Action::WaitFor(WaitFor {
                    target,
                    timeout: wait
                        .timeout
                        .as_ref()
                        .map(|timeout| self.typed(timeout, FieldType::Duration)),
                })
            }
            "backup" => {
                let spanned = step.backup.as_ref()?;
                self.backup(spanned)?
            }
            "restore" => {
                let spanned = step.restore.as_ref()?;
                self.restore(spanned)?
            }
            "user" => self.user(&step.user.as_ref()?.value),
            "package" => self.package(step.package.as_ref()?)?,
            "service" => self.service(&step.service.as_ref()?.value),
            "reboot" => Action::Reboot(Reboot {
                timeout: step
                    .reboot
                    .as_ref()?
                    .value
                    .timeout
                    .as_ref()
                    .map(|timeout| self.typed(timeout, FieldType::Duration)),
            }),
            "gate" => {
                let spanned = step.gate.as_ref()?;
                let approver_level = match &spanned.value.approver_level {
                    None => None,
                    Some(level) if (1..=5).contains(&level.value) => u8::try_from(level.value).ok(),
                    Some(level) => {
                        self.validator
                            .error(
                                Span::from_location(level.referenced),
                                format!(
                                    "`approver_level` is {}, which is not an SFIA level",
                                    level.value
                                ),
                            )
                            .hints
                            .push(
                                "opsgate uses SFIA levels 1 (follow) to 5 (ensure, advise)".into(),
                            );
                        return None;
                    }
                };
                Action::Gate(Gate {
                    approver_level,
                    message: data(self, &spanned.value.message),
                })
            }
            _ => return None,
        })
    }

    /// A path field that must be absolute once rendered: checked here when it is literal.
    fn absolute(&mut self, text: &schema::Text, what: &str) -> Text {
        let model = self.text(text, Mode::Data);
        if !template::is_template(&text.value) && !text.value.starts_with('/') {
            self.validator
                .error(
                    Validator::span(text),
                    format!("{what} `{}` is not an absolute path", text.value),
                )
                .hints
                .push("remote paths here start with `/`".into());
        }
        model
    }

    fn backup(&mut self, spanned: &Spanned<schema::Backup>) -> Option<Action<Text>> {
        let backup = &spanned.value;
        let source = match (&backup.paths, &backup.dump) {
            (Some(paths), None) if !paths.is_empty() => BackupSource::Paths(
                paths
                    .iter()
                    .map(|path| self.absolute(path, "backup path"))
                    .collect(),
            ),
            (None, Some(dump)) => BackupSource::Dump(self.text(dump, Mode::Command)),
            _ => {
                self.validator
                    .error(
                        Validator::span(spanned),
                        "`backup` needs exactly one of `paths` (a non-empty list) and `dump`",
                    )
                    .hints
                    .push(
                        "use `paths: [/etc]` to archive files, `dump: pg_dumpall` to keep a command's output"
                            .into(),
                    );
                return None;
            }
        };
        let keep = backup.keep.as_ref().map(|keep| {
            let model = self.typed(keep, FieldType::Count);
            if keep.value.to_text().trim() == "0" {
                self.validator
                    .error(Validator::span(keep), "`keep: 0` would delete the backup just made")
                    .hints
                    .push("keep counts the new backup too: use 1 or more, or leave `keep` out to keep every backup".into());
            }
            model
        });
        Some(Action::Backup(Backup {
            source,
            store: self.absolute(&backup.store, "store"),
            keep,
        }))
    }

    /// A literal keyword such as a `state`: one of `choices`, or an error listing them.
    fn keyword<T: std::marker::Copy>(
        &mut self,
        text: Option<&schema::Text>,
        what: &str,
        choices: &[(&str, T)],
        default: T,
    ) -> T {
        let Some(text) = text else {
            return default;
        };
        if let Some((_, value)) = choices.iter().find(|(name, _)| *name == text.value) {
            return *value;
        }
        let names: Vec<String> = choices.iter().map(|(name, _)| (*name).to_owned()).collect();
        let diagnostic = self.validator.error(
            Validator::span(text),
            format!("unknown {what} `{}`", text.value),
        );
        if let Some(close) = closest(&text.value, names.iter().map(String::as_str)) {
            diagnostic.hints.push(format!("did you mean `{close}`?"));
        }
        diagnostic
            .hints
            .push(format!("{what} is one of {}", backticked(&names)));
        default
    }

    fn user(&mut self, user: &schema::User) -> Action<Text> {
        let state = self.keyword(
            user.state.as_ref(),
            "user state",
            &[("present", Presence::Present), ("absent", Presence::Absent)],
            Presence::Present,
        );
        Action::User(User {
            name: self.text(&user.name, Mode::Data),
            state,
            groups: user
                .groups
                .iter()
                .flatten()
                .map(|group| self.text(group, Mode::Data))
                .collect(),
            shell: user
                .shell
                .as_ref()
                .map(|shell| self.absolute(shell, "shell")),
            home: user.home.as_ref().map(|home| self.absolute(home, "home")),
            system: user
                .system
                .as_ref()
                .map(|system| self.typed(system, FieldType::Bool)),
        })
    }

    fn package(&mut self, spanned: &Spanned<schema::Package>) -> Option<Action<Text>> {
        let package = &spanned.value;
        let names: Vec<&schema::Text> = package
            .name
            .iter()
            .chain(package.names.iter().flatten())
            .collect();
        match (names.is_empty(), &package.upgrade) {
            (false, None) => {
                let state = self.keyword(
                    package.state.as_ref(),
                    "package state",
                    &[
                        ("present", PackageState::Present),
                        ("latest", PackageState::Latest),
                        ("absent", PackageState::Absent),
                    ],
                    PackageState::Present,
                );
                let names = names
                    .into_iter()
                    .map(|name| self.text(name, Mode::Data))
                    .collect();
                Some(Action::Package(Package::Named { names, state }))
            }
            (true, Some(upgrade)) => {
                if let Some(state) = &package.state {
                    self.validator
                        .error(
                            Validator::span(state),
                            "`state` names what named packages must be; `upgrade` has none",
                        )
                        .hints
                        .push("remove `state`, or name the packages instead of `upgrade`".into());
                }
                let scope = self.keyword(
                    Some(upgrade),
                    "upgrade",
                    &[
                        ("all", UpgradeScope::All),
                        ("security", UpgradeScope::Security),
                    ],
                    UpgradeScope::All,
                );
                Some(Action::Package(Package::Upgrade(scope)))
            }
            _ => {
                self.validator
                    .error(
                        Validator::span(spanned),
                        "`package` needs `name` or `names`, or `upgrade`, and not both",
                    )
                    .hints
                    .push(
                        "use `names: [nginx]` with a `state`, or `upgrade: all` to patch the host"
                            .into(),
                    );
                None
            }
        }
    }

    fn service(&mut self, service: &schema::Service) -> Action<Text> {
        let state = service.state.as_ref().map(|state| {
            self.keyword(
                Some(state),
                "service state",
                &[
                    ("started", ServiceState::Started),
                    ("stopped", ServiceState::Stopped),
                    ("restarted", ServiceState::Restarted),
                    ("reloaded", ServiceState::Reloaded),
                ],
                ServiceState::Started,
            )
        });
        if state.is_none() && service.enabled.is_none() {
            self.validator
                .error(
                    Validator::span(&service.name),
                    format!(
                        "`service` {} says neither `state` nor `enabled`",
                        service.name.value
                    ),
                )
                .hints
                .push("add `state: started` and/or `enabled: true`".into());
        }
        Action::Service(Service {
            name: self.text(&service.name, Mode::Data),
            state,
            enabled: service
                .enabled
                .as_ref()
                .map(|enabled| self.typed(enabled, FieldType::Bool)),
        })
    }

    fn restore(&mut self, spanned: &Spanned<schema::Restore>) -> Option<Action<Text>> {
        let restore = &spanned.value;
        let store = self.absolute(&restore.store, "store");
        let from = self.text(&restore.from, Mode::Data);
        let literal = restore.from.value.trim();
        if !template::is_template(literal) && literal != "latest" && !is_backup_id(literal) {
            self.validator
                .error(
                    Validator::span(&restore.from),
                    format!("`{literal}` is not a backup id"),
                )
                .hints
                .push("use `latest`, or an id such as `backup-files-web1-20260101T000000Z` (a backup's file name without its extension)".into());
        }
        let into = match (&restore.load, &restore.paths, &restore.target) {
            (Some(load), None, None) => RestoreInto::Load(self.text(load, Mode::Command)),
            (None, paths, target) => RestoreInto::Files {
                paths: paths
                    .iter()
                    .flatten()
                    .map(|path| self.absolute(path, "restore path"))
                    .collect(),
                target: target
                    .as_ref()
                    .map(|target| self.absolute(target, "target")),
            },
            (Some(_), _, _) => {
                self.validator
                    .error(
                        Validator::span(spanned),
                        "`restore` takes `load` or `paths`/`target`, not both",
                    )
                    .hints
                    .push("`load` feeds a dump to a command; `paths` and `target` extract files from an archive".into());
                return None;
            }
        };
        Some(Action::Restore(Restore { from, store, into }))
    }
}

/// Maps a byte offset inside a field's template to a line and column in the YAML file: exact for
/// single-line scalars (plain or quoted), the field's start otherwise.
fn span_at(file: &SourceFile, text: &Text, offset: usize) -> Span {
    let Some(line) = file.line(text.span.line) else {
        return text.span;
    };
    if text.source.contains('\n') {
        return text.span;
    }
    let start = text.span.column.saturating_sub(1) as usize;
    let rest: String = line.chars().skip(start).collect();
    let quoted = rest.starts_with('"') || rest.starts_with('\'');
    let inner = if quoted { &rest[1..] } else { rest.as_str() };
    if !inner.starts_with(&text.source[..offset.min(text.source.len())]) {
        return text.span;
    }
    let prefix = text.source[..offset.min(text.source.len())].chars().count() as u32;
    Span {
        column: text.span.column + prefix + u32::from(quoted),
        ..text.span
    }
}

fn default_name(step: &schema::Step, keyword: &str) -> String {
    let summary = match keyword {
        "command" => step
            .command
            .as_ref()
            .or(step.shell.as_ref())
            .map(|text| text.value.clone()),
        "copy" => step.copy.as_ref().map(|copy| copy.value.dest.value.clone()),
        "template" => step
            .template
            .as_ref()
            .map(|template| template.value.dest.value.clone()),
        "file" => step.file.as_ref().map(|file| file.value.path.value.clone()),
        "user" => step.user.as_ref().map(|user| user.value.name.value.clone()),
        "service" => step
            .service
            .as_ref()
            .map(|service| service.value.name.value.clone()),
        "package" => step.package.as_ref().map(|package| {
            let package = &package.value;
            package.upgrade.as_ref().map_or_else(
                || {
                    package
                        .name
                        .iter()
                        .chain(package.names.iter().flatten())
                        .map(|name| name.value.clone())
                        .collect::<Vec<_>>()
                        .join(", ")
                },
                |upgrade| format!("upgrade {}", upgrade.value),
            )
        }),
        "backup" => step.backup.as_ref().map(|backup| {
            let backup = &backup.value;
            let source = backup.dump.as_ref().map_or_else(
                || {
                    backup
                        .paths
                        .iter()
                        .flatten()
                        .map(|path| path.value.clone())
                        .collect::<Vec<_>>()
                        .join(", ")
                },
                |dump| dump.value.clone(),
            );
            format!("{source} → {}", backup.store.value)
        }),
        "restore" => step.restore.as_ref().map(|restore| {
            format!(
                "{} from {}",
                restore.value.from.value, restore.value.store.value
            )
        }),
        _ => None,
    };
    match summary {
        Some(summary) => {
            let line = summary.lines().next().unwrap_or_default();
            let short: String = line.chars().take(40).collect();
            let ellipsis = if short.len() < summary.len() {
                "…"
            } else {
                ""
            };
            format!("{keyword}: {short}{ellipsis}")
        }
        None => keyword.to_owned(),
    }
}

fn digest(text: &str, local_files: &[(PathBuf, String)]) -> String {
    // Hash layout (versioned, never reordered): tag, file length + bytes, then each local file's
    // relative path and SHA-256, sorted by path, each length-prefixed so fields cannot run together.
    let mut hasher = Sha256::new();
    hasher.update(b"opsgate-runbook-v1\0");
    hasher.update((text.len() as u64).to_be_bytes());
    hasher.update(text.as_bytes());
    let mut files: Vec<_> = local_files.iter().collect();
    files.sort();
    files.dedup();
    for (path, sha) in files {
        let path = path.to_string_lossy();
        hasher.update((path.len() as u64).to_be_bytes());
        hasher.update(path.as_bytes());
        hasher.update(sha.as_bytes());
    }
    hex::encode(hasher.finalize())
}

fn is_runbook_id(id: &str) -> bool {
    let mut chars = id.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

/// A backup id names a file in the store: no path separators, no leading dot.
fn is_backup_id(id: &str) -> bool {
    !id.is_empty()
        && !id.starts_with('.')
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn is_env_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn is_reserved_root(name: &str) -> bool {
    ["params", "host", "vars", "facts", "run"].contains(&name)
}

#[cfg(test)]
mod tests {
    use crate::diagnostic::{SourceFile, Style};

    fn errors(yaml: &str) -> String {
        let file = SourceFile::new("rb.yaml", yaml);
        match super::parse(&file) {
            Ok(_) => String::new(),
            Err(diagnostics) => diagnostics
                .sorted()
                .iter()
                .map(|diagnostic| diagnostic.render(Style::Plain))
                .collect::<Vec<_>>()
                .join("\n"),
        }
    }

    #[test]
    fn a_template_syntax_error_says_invalid_template_once() {
        let yaml = "runbook: a\nkind: maintenance\ntargets: all\nsteps:\n  - name: hi\n    command: echo {{#if x}}\n";
        let out = errors(yaml);
        assert!(out.contains("error: invalid template: "), "{out}");
        assert!(!out.contains("invalid template: invalid template"), "{out}");
    }

    #[test]
    fn a_valid_runbook_parses() {
        let yaml = "runbook: a\nkind: maintenance\ntargets: all\nparams:\n  keep: { type: int, default: 7 }\nsteps:\n  - name: hi\n    command: echo {{params.keep}}\n    timeout: 5s\n";
        assert_eq!(errors(yaml), "");
    }

    #[test]
    fn every_error_is_reported_in_one_pass() {
        let yaml = "runbook: a\nkind: maintenance\ntargets: all\nsteps:\n  - command: x\n    copy: { content: x, dest: /y }\n  - name: z\n    timeout: 5d\n    command: x\n  - command: echo {{params.nope}}\n";
        let out = errors(yaml);
        assert!(
            out.contains("step has 2 actions: `command`, `copy`\n --> rb.yaml:5:5"),
            "{out}"
        );
        assert!(out.contains("`5d` has unknown unit `d`"), "{out}");
        assert!(
            out.contains("undeclared param `nope`\n --> rb.yaml:10:21"),
            "{out}"
        );
    }

    #[test]
    fn a_steps_own_register_is_visible_to_its_conditions_only() {
        let own = "runbook: a\nkind: maintenance\ntargets: all\nsteps:\n  - command: x\n    register: r\n    failed_when: \"{{ne r.rc 0}}\"\n";
        assert_eq!(errors(own), "");
        let early = "runbook: a\nkind: maintenance\ntargets: all\nsteps:\n  - command: echo {{r.stdout}}\n    register: r\n";
        assert!(errors(early).contains("`r` is used before a step registers it"));
    }

    #[test]
    fn local_files_may_not_escape_through_a_symlink() {
        let dir = tempfile::tempdir().expect("temp dir");
        std::os::unix::fs::symlink("/etc/hostname", dir.path().join("key")).expect("symlink");
        let path = dir.path().join("rb.yaml");
        let yaml = "runbook: a\nkind: maintenance\ntargets: all\nsteps:\n  - copy: { src: key, dest: /x }\n";
        let file = SourceFile::new(&path, yaml);
        let error = super::parse(&file).expect_err("refused");
        let rendered: Vec<String> = error
            .sorted()
            .iter()
            .map(|d| d.render(Style::Plain))
            .collect();
        assert!(
            rendered
                .join("")
                .contains("resolves outside the runbook's directory"),
            "{rendered:?}"
        );
    }

    #[test]
    fn secret_params_are_strings() {
        let yaml = "runbook: a\nkind: maintenance\ntargets: all\nparams:\n  pin: { type: int, secret: true }\nsteps:\n  - command: 'true'\n";
        assert!(errors(yaml).contains("secret param `pin` must be a string"));
    }

    #[test]
    fn backup_and_restore_fields_are_checked_with_their_spans() {
        let head = "runbook: a\nkind: backup\ntargets: all\nsteps:\n";
        let both = format!("{head}  - backup: {{ paths: [/etc], dump: pg_dumpall, store: /b }}\n");
        assert!(
            errors(&both).contains("`backup` needs exactly one of `paths` (a non-empty list) and `dump`\n --> rb.yaml:5:13"),
            "{}",
            errors(&both)
        );
        let relative = format!("{head}  - backup: {{ paths: [etc], store: /b, keep: 0 }}\n");
        let out = errors(&relative);
        assert!(
            out.contains("backup path `etc` is not an absolute path\n --> rb.yaml:5:23"),
            "{out}"
        );
        assert!(
            out.contains("`keep: 0` would delete the backup just made"),
            "{out}"
        );
        let keep = format!("{head}  - backup: {{ paths: [/etc], store: /b, keep: seven }}\n");
        assert!(errors(&keep).contains("`seven` is not a non-negative integer"));
        let load =
            format!("{head}  - restore: {{ from: latest, store: /b, load: psql, target: /x }}\n");
        assert!(errors(&load).contains("`restore` takes `load` or `paths`/`target`, not both"));
        let from = format!("{head}  - restore: {{ from: ../etc, store: /b }}\n");
        assert!(errors(&from).contains("`../etc` is not a backup id"));
    }

    #[test]
    fn only_backup_and_restore_results_have_backup_fields() {
        let head = "runbook: a\nkind: backup\ntargets: all\nsteps:\n";
        let good = format!(
            "{head}  - backup: {{ paths: [/etc], store: /b }}\n    register: snap\n  - command: echo {{{{snap.id}}}} {{{{snap.sha256}}}}\n"
        );
        assert_eq!(errors(&good), "");
        let command = format!(
            "{head}  - command: date\n    register: now\n  - command: echo {{{{now.sha256}}}}\n"
        );
        assert!(errors(&command).contains("`now.sha256` does not exist"));
    }

    #[test]
    fn only_package_results_have_the_packages_field() {
        let head = "runbook: a\nkind: patch\ntargets: all\nsteps:\n";
        let good = format!(
            "{head}  - package: {{ upgrade: all }}\n    register: up\n  - command: echo {{{{len up.packages}}}}\n"
        );
        assert_eq!(errors(&good), "");
        let typo = format!(
            "{head}  - package: {{ upgrade: all }}\n    register: up\n  - command: echo {{{{up.package}}}}\n"
        );
        assert!(
            errors(&typo).contains("`up.package` does not exist"),
            "{}",
            errors(&typo)
        );
        assert!(
            errors(&typo).contains("did you mean `up.packages`?"),
            "{}",
            errors(&typo)
        );
        let backup = format!(
            "{head}  - backup: {{ paths: [/etc], store: /b }}\n    register: snap\n  - command: echo {{{{snap.packages}}}}\n"
        );
        assert!(errors(&backup).contains("`snap.packages` does not exist"));
    }

    #[test]
    fn local_files_may_not_escape_the_runbook_directory() {
        let yaml = "runbook: a\nkind: maintenance\ntargets: all\nsteps:\n  - copy: { src: ../secrets, dest: /x }\n";
        assert!(errors(yaml).contains("is outside the runbook's directory"));
    }

    #[test]
    fn user_package_service_and_reboot_fields_are_checked() {
        let head = "runbook: a\nkind: patch\ntargets: all\nsteps:\n";
        let both = format!("{head}  - package: {{ names: [nginx], upgrade: all }}\n");
        assert!(
            errors(&both).contains(
                "`package` needs `name` or `names`, or `upgrade`, and not both\n --> rb.yaml:5:14"
            ),
            "{}",
            errors(&both)
        );
        let state = format!("{head}  - package: {{ name: nginx, state: lastest }}\n");
        let out = errors(&state);
        assert!(out.contains("unknown package state `lastest`"), "{out}");
        assert!(out.contains("did you mean `latest`?"), "{out}");
        let upgrade = format!("{head}  - package: {{ upgrade: everything }}\n");
        assert!(errors(&upgrade).contains("unknown upgrade `everything`"));
        let service = format!("{head}  - service: {{ name: nginx }}\n");
        assert!(errors(&service).contains("says neither `state` nor `enabled`"));
        let user = format!("{head}  - user: {{ name: web, state: gone, home: srv/web }}\n");
        let out = errors(&user);
        assert!(out.contains("unknown user state `gone`"), "{out}");
        assert!(
            out.contains("home `srv/web` is not an absolute path"),
            "{out}"
        );
        let reboot = format!("{head}  - reboot: {{ timeout: soon }}\n");
        assert!(!errors(&reboot).is_empty());
        let fine = format!(
            "{head}  - package: {{ names: [nginx, curl], state: latest }}\n  - package: {{ upgrade: security }}\n  - service: {{ name: nginx, state: started, enabled: true }}\n  - user: {{ name: web, groups: [www-data], system: true }}\n  - reboot: {{ timeout: 5m }}\n"
        );
        assert_eq!(errors(&fine), "");
    }
}
