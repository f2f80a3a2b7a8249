//! The validated runbook: a value of these types cannot hold an illegal state.
//!
//! Steps and actions are generic over their field type `F`, because the same shape travels the
//! whole pipeline with fields at different stages:
//! - `Step<Text>`: as written, each field a template source with its span (this module);
//! - `Step<plan::Field>`: rendered and typed for one host where the plan could (a
//!   `plan::Rendered`), deferred where it needs facts or registered results;
//! - `Step<plan::Rendered>`: every field rendered and typed on the host, then split into
//!   `Step<String>` (the text an action gets) and `Step<FieldValue>` (the typed values the
//!   executor and the action act on), so nothing downstream parses text again.
//!
//! [`Step::try_map`] converts between stages, so no stage re-implements the walk over fields.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::diagnostic::{SourceFile, Span};
use crate::template::Mode;
// The scalar parsers live in `value`; they are re-exported here, where the fields they parse are.
pub use super::value::{
    ValueError, bool_value, condition_value, count_value, parse_bool, parse_condition,
    parse_duration, parse_mode, port_value,
};

/// A validated runbook.
#[derive(Debug)]
pub struct Runbook {
    /// Catalog id.
    pub id: String,
    /// One-line title (the id when none was given).
    pub title: String,
    /// What kind of work it does.
    pub kind: Kind,
    /// Free text.
    pub description: String,
    /// Lowest SFIA level that may run it once approved.
    pub min_level: u8,
    /// Default host pattern and where it was written.
    pub targets: (String, Span),
    /// Default for steps' `become`.
    pub become_root: bool,
    /// Declared parameters, in file order.
    pub params: Vec<ParamSpec>,
    /// Rolling batches.
    pub rolling: Rolling,
    /// The steps.
    pub steps: Vec<Step<Text>>,
    /// Steps run on a host whose steps failed.
    pub on_failure: Vec<Step<Text>>,
    /// The file it was read from.
    pub source: Arc<SourceFile>,
    /// SHA-256 of the file's exact bytes and of every local file it names (SPEC §4.2).
    pub digest: String,
    /// Local files named by `src`, relative to the runbook's directory, with their SHA-256.
    pub local_files: Vec<(PathBuf, String)>,
}

impl Runbook {
    /// The declared param called `name`.
    #[must_use]
    pub fn param(&self, name: &str) -> Option<&ParamSpec> {
        self.params.iter().find(|param| param.name == name)
    }
}

/// What a runbook does, which decides how it is gated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Read-only checks.
    Check,
    /// Bring hosts into a state.
    Provision,
    /// Apply updates.
    Patch,
    /// Take backups.
    Backup,
    /// Put backups back.
    Restore,
    /// Anything else that changes hosts.
    Maintenance,
}

impl Kind {
    /// Every kind with its YAML name.
    pub const ALL: [(&'static str, Kind); 6] = [
        ("check", Kind::Check),
        ("provision", Kind::Provision),
        ("patch", Kind::Patch),
        ("backup", Kind::Backup),
        ("restore", Kind::Restore),
        ("maintenance", Kind::Maintenance),
    ];

    /// The YAML name.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(_, kind)| *kind == self)
            .map_or("check", |(name, _)| name)
    }
}

/// A declared parameter.
#[derive(Clone)]
pub struct ParamSpec {
    /// Name, as used in `{{params.name}}`.
    pub name: String,
    /// Type and constraints.
    pub kind: ParamKind,
    /// Default value, already of the declared type.
    pub default: Option<ParamValue>,
    /// Whether the caller must give a value (and there is no default).
    pub required: bool,
    /// Never printed, never stored.
    pub secret: bool,
    /// Free text.
    pub description: String,
}

/// Written by hand so that a secret param's default never shows: validation rejects one, but a
/// `ParamSpec` built another way could still hold it.
impl fmt::Debug for ParamSpec {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        let default = self.default.as_ref().map(|value| -> &dyn fmt::Debug {
            if self.secret {
                &crate::secret::MASK
            } else {
                value
            }
        });
        formatter
            .debug_struct("ParamSpec")
            .field("name", &self.name)
            .field("kind", &self.kind)
            .field("default", &default)
            .field("required", &self.required)
            .field("secret", &self.secret)
            .field("description", &self.description)
            .finish()
    }
}

/// A parameter's type and constraints.
#[derive(Debug, Clone, PartialEq)]
pub enum ParamKind {
    /// An integer within optional bounds.
    Int {
        /// Inclusive minimum.
        min: Option<i64>,
        /// Inclusive maximum.
        max: Option<i64>,
    },
    /// A boolean.
    Bool,
    /// One of a fixed list of strings.
    Enum(Vec<String>),
    /// Any string.
    String,
}

impl ParamKind {
    /// Converts text (from `-p`, a params file or a default) to this type, or says why not.
    pub fn parse(&self, text: &str) -> Result<ParamValue, ValueError> {
        match self {
            ParamKind::Int { min, max } => {
                let value: i64 = text
                    .trim()
                    .parse()
                    .map_err(|_| ValueError::NotInt(text.to_owned()))?;
                if let Some(min) = min.filter(|min| value < *min) {
                    return Err(ValueError::BelowMinimum { value, min });
                }
                if let Some(max) = max.filter(|max| value > *max) {
                    return Err(ValueError::AboveMaximum { value, max });
                }
                Ok(ParamValue::Int(value))
            }
            ParamKind::Bool => parse_bool(text)
                .map(ParamValue::Bool)
                .ok_or_else(|| ValueError::NotBoolParam(text.to_owned())),
            ParamKind::Enum(values) => {
                if values.iter().any(|value| value == text) {
                    Ok(ParamValue::Text(text.to_owned()))
                } else {
                    Err(ValueError::NotInEnum {
                        text: text.to_owned(),
                        allowed: backticked(values),
                    })
                }
            }
            ParamKind::String => Ok(ParamValue::Text(text.to_owned())),
        }
    }

    /// The YAML name of the type.
    #[must_use]
    pub fn name(&self) -> &'static str {
        match self {
            ParamKind::Int { .. } => "int",
            ParamKind::Bool => "bool",
            ParamKind::Enum(_) => "enum",
            ParamKind::String => "string",
        }
    }
}

/// A parameter value of its declared type.
#[derive(Debug, Clone, PartialEq)]
pub enum ParamValue {
    /// An int param.
    Int(i64),
    /// A bool param.
    Bool(bool),
    /// A string or enum param.
    Text(String),
}

impl ParamValue {
    /// The value as it appears in the template context.
    #[must_use]
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            ParamValue::Int(value) => (*value).into(),
            ParamValue::Bool(value) => (*value).into(),
            ParamValue::Text(value) => value.clone().into(),
        }
    }

    /// The value as text, for display and hashing.
    #[must_use]
    pub fn to_text(&self) -> String {
        match self {
            ParamValue::Int(value) => value.to_string(),
            ParamValue::Bool(value) => value.to_string(),
            ParamValue::Text(value) => value.clone(),
        }
    }
}

/// `rolling:` settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rolling {
    /// Hosts per batch.
    pub batch: Amount,
    /// Failed hosts tolerated before later batches are skipped.
    pub max_failures: Amount,
}

impl Default for Rolling {
    /// Without `rolling:`, every host is in one batch and failures never skip anything: each
    /// host runs independently, like Ansible's default.
    fn default() -> Self {
        Self {
            batch: Amount::Percent(100),
            max_failures: Amount::Percent(100),
        }
    }
}

/// `N` or `P%`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Amount {
    /// A number of hosts.
    Count(usize),
    /// A percentage of the selected hosts, rounded up.
    Percent(u32),
}

impl Amount {
    /// The amount for `total` hosts (`P%` rounds up).
    #[must_use]
    pub fn of(self, total: usize) -> usize {
        match self {
            Amount::Count(count) => count,
            Amount::Percent(percent) => (total * percent as usize).div_ceil(100),
        }
    }

    /// Parses `N` or `P%`.
    pub fn parse(text: &str) -> Result<Amount, ValueError> {
        let text = text.trim();
        if let Some(percent) = text.strip_suffix('%') {
            match percent.trim().parse::<u32>() {
                Ok(percent) if percent <= 100 => Ok(Amount::Percent(percent)),
                _ => Err(ValueError::NotPercent(text.to_owned())),
            }
        } else {
            text.parse::<usize>()
                .map(Amount::Count)
                .map_err(|_| ValueError::NotAmount(text.to_owned()))
        }
    }
}

/// A field as written in the runbook: template source, where it is, how it renders.
#[derive(Debug, Clone, PartialEq)]
pub struct Text {
    /// The template source (a plain literal when it has no `{{`).
    pub source: String,
    /// Where it was written.
    pub span: Span,
    /// Whether rendered values are shell-quoted.
    pub mode: Mode,
    /// What the rendered text must parse as.
    pub kind: FieldType,
}

/// What a field's rendered text must parse as (SPEC §2: a template is rendered, then parsed as
/// the field's type).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldType {
    /// Any text.
    Text,
    /// `true` or `false`.
    Bool,
    /// A condition: a rendered `true` or `false`.
    Condition,
    /// A non-negative integer.
    Count,
    /// A TCP port.
    Port,
    /// A duration.
    Duration,
    /// An octal mode string.
    Mode,
}

impl FieldType {
    /// Parses `text` as this type, or says why not: the one place a field's text becomes its
    /// typed value.
    pub fn parse(self, text: &str) -> Result<FieldValue, ValueError> {
        Ok(match self {
            FieldType::Text => FieldValue::Text,
            FieldType::Bool => FieldValue::Bool(bool_value(text)?),
            FieldType::Condition => FieldValue::Condition(condition_value(text)?),
            FieldType::Count => FieldValue::Count(count_value(text)?),
            FieldType::Port => FieldValue::Port(port_value(text)?),
            FieldType::Duration => FieldValue::Duration(parse_duration(text)?),
            FieldType::Mode => FieldValue::Mode(parse_mode(text)?),
        })
    }
}

/// A field's text parsed as its [`FieldType`]: what the executor acts on, so it never parses
/// text again. A text field's value is its text, which the holder keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldValue {
    /// A [`FieldType::Text`] field.
    Text,
    /// A [`FieldType::Bool`] field.
    Bool(bool),
    /// A [`FieldType::Condition`] field.
    Condition(bool),
    /// A [`FieldType::Count`] field.
    Count(u32),
    /// A [`FieldType::Port`] field.
    Port(u16),
    /// A [`FieldType::Duration`] field.
    Duration(Duration),
    /// A [`FieldType::Mode`] field: permission bits.
    Mode(u32),
}

impl FieldValue {
    /// The value of a bool field.
    #[must_use]
    pub fn bool(self) -> Option<bool> {
        match self {
            FieldValue::Bool(value) => Some(value),
            _ => None,
        }
    }

    /// The value of a condition.
    #[must_use]
    pub fn condition(self) -> Option<bool> {
        match self {
            FieldValue::Condition(value) => Some(value),
            _ => None,
        }
    }

    /// The value of a count field.
    #[must_use]
    pub fn count(self) -> Option<u32> {
        match self {
            FieldValue::Count(value) => Some(value),
            _ => None,
        }
    }

    /// The value of a duration field.
    #[must_use]
    pub fn duration(self) -> Option<Duration> {
        match self {
            FieldValue::Duration(value) => Some(value),
            _ => None,
        }
    }

    /// The value of a port field.
    #[must_use]
    pub fn port(self) -> Option<u16> {
        match self {
            FieldValue::Port(value) => Some(value),
            _ => None,
        }
    }

    /// The permission bits of a mode field.
    #[must_use]
    pub fn mode(self) -> Option<u32> {
        match self {
            FieldValue::Mode(value) => Some(value),
            _ => None,
        }
    }
}

/// One step, generic over its field type (see the module doc).
#[derive(Debug, Clone)]
pub struct Step<F> {
    /// Display name (the action's name when none was given).
    pub name: String,
    /// Where the step starts.
    pub span: Span,
    /// What it does.
    pub action: Action<F>,
    /// Condition for running it.
    pub when: Option<F>,
    /// Name under which the result is registered.
    pub register: Option<String>,
    /// Registered values are masked.
    pub secret: bool,
    /// Run through sudo (a bool field).
    pub become_root: Option<F>,
    /// Run through sudo as this user.
    pub become_user: Option<F>,
    /// Environment variables.
    pub env: Vec<(String, F)>,
    /// A duration field.
    pub timeout: Option<F>,
    /// An int field: extra attempts after a failure.
    pub retries: Option<F>,
    /// A duration field.
    pub retry_delay: Option<F>,
    /// Condition overriding `changed`.
    pub changed_when: Option<F>,
    /// Condition overriding `failed`.
    pub failed_when: Option<F>,
    /// A bool field: failure does not stop the host.
    pub ignore_errors: Option<F>,
    /// Run even under `--check`.
    pub check_mode: bool,
}

/// What a step does.
#[derive(Debug, Clone)]
pub enum Action<F> {
    /// `command` / `shell`.
    Command(Command<F>),
    /// `script`.
    Script(Script<F>),
    /// `copy`.
    Copy(Copy<F>),
    /// `template`: a local Handlebars file rendered per host, then copied.
    Template(Copy<F>),
    /// `fetch`.
    Fetch(Fetch<F>),
    /// `file`.
    File(FileState<F>),
    /// `assert`.
    Assert(Assert<F>),
    /// `wait_for`.
    WaitFor(WaitFor<F>),
    /// `backup`.
    Backup(Backup<F>),
    /// `restore`.
    Restore(Restore<F>),
    /// `gate`: pause the host until an operator allowed to approve approves (SPEC §2.1).
    Gate(Gate<F>),
    /// `user`.
    User(User<F>),
    /// `package`.
    Package(Package<F>),
    /// `service`.
    Service(Service<F>),
    /// `reboot`: handled by the executor, which owns the host's connection.
    Reboot(Reboot<F>),
}

/// `gate: { approver_level, message }`.
#[derive(Debug, Clone)]
pub struct Gate<F> {
    /// The lowest SFIA level that may approve (1..=5), if the step asks for one; the approver
    /// also needs the level the requester's own level calls for (SPEC §4.3).
    pub approver_level: Option<u8>,
    /// What the approver is asked.
    pub message: Option<F>,
}

impl<F> Action<F> {
    /// The action's YAML key.
    #[must_use]
    pub fn keyword(&self) -> &'static str {
        match self {
            Action::Command(_) => "command",
            Action::Script(_) => "script",
            Action::Copy(_) => "copy",
            Action::Template(_) => "template",
            Action::Fetch(_) => "fetch",
            Action::File(_) => "file",
            Action::Assert(_) => "assert",
            Action::WaitFor(_) => "wait_for",
            Action::Backup(_) => "backup",
            Action::Restore(_) => "restore",
            Action::Gate(_) => "gate",
            Action::User(_) => "user",
            Action::Package(_) => "package",
            Action::Service(_) => "service",
            Action::Reboot(_) => "reboot",
        }
    }
}

/// `command: TEXT` with its guards.
#[derive(Debug, Clone)]
pub struct Command<F> {
    /// Shell text; template values are shell-quoted.
    pub text: F,
    /// Shell to run it with (default `/bin/sh`).
    pub executable: Option<F>,
    /// Already done when this path exists.
    pub creates: Option<F>,
    /// Already done unless this path exists.
    pub removes: Option<F>,
    /// Already done when this command succeeds.
    pub unless: Option<F>,
    /// Already done unless this command succeeds.
    pub only_if: Option<F>,
    /// Exit codes that count as success.
    pub expect_rc: Vec<i32>,
}

/// `script: { src, args }`.
#[derive(Debug, Clone)]
pub struct Script<F> {
    /// The script's bytes, read at validation time.
    pub body: Arc<Vec<u8>>,
    /// The script's path relative to the runbook, for messages.
    pub src: PathBuf,
    /// Arguments, each passed as one word.
    pub args: Vec<F>,
}

/// `copy` and `template`: content, destination, attributes.
#[derive(Debug, Clone)]
pub struct Copy<F> {
    /// The file's content: a data template (`content`, a `template` file) or raw bytes (`src`).
    pub content: Content<F>,
    /// Remote path.
    pub dest: F,
    /// Mode, owner, group.
    pub attributes: Attributes<F>,
    /// A bool field: keep the previous file as `dest.<timestamp>~`.
    pub backup: Option<F>,
}

/// Where a copied file's bytes come from.
#[derive(Debug, Clone)]
pub enum Content<F> {
    /// A local file's exact bytes (`copy: { src }`), never templated.
    Bytes {
        /// The bytes.
        bytes: Arc<Vec<u8>>,
        /// The file's path relative to the runbook, for messages.
        src: PathBuf,
    },
    /// Text rendered per host (`copy: { content }` or a `template` file).
    Text(F),
}

/// `mode`, `owner`, `group`.
#[derive(Debug, Clone)]
pub struct Attributes<F> {
    /// Octal mode string field.
    pub mode: Option<F>,
    /// Owner account.
    pub owner: Option<F>,
    /// Owner group.
    pub group: Option<F>,
}

impl<F> Attributes<F> {
    fn try_map<'a, G, E>(
        &'a self,
        f: &mut impl FnMut(&'a F) -> Result<G, E>,
    ) -> Result<Attributes<G>, E> {
        Ok(Attributes {
            mode: self.mode.as_ref().map(&mut *f).transpose()?,
            owner: self.owner.as_ref().map(&mut *f).transpose()?,
            group: self.group.as_ref().map(&mut *f).transpose()?,
        })
    }
}

/// `fetch: { src, dest }`.
#[derive(Debug, Clone)]
pub struct Fetch<F> {
    /// Remote file.
    pub src: F,
    /// Local directory (files land in `dest/<host>/<name>`).
    pub dest: F,
}

/// `file: { path, state, src, … }`.
#[derive(Debug, Clone)]
pub struct FileState<F> {
    /// Remote path.
    pub path: F,
    /// Desired state.
    pub state: FileKind,
    /// Link target for `state: link`.
    pub src: Option<F>,
    /// Mode, owner, group.
    pub attributes: Attributes<F>,
}

/// The states `file` can ensure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    /// A regular file must exist (it is created empty when missing).
    File,
    /// A directory, created with its parents.
    Directory,
    /// Nothing at the path.
    Absent,
    /// A symbolic link to `src`.
    Link,
}

/// Whether something must exist.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Presence {
    /// It must exist (created when missing).
    Present,
    /// It must not exist (removed when there).
    Absent,
}

/// `user`: an OS account.
#[derive(Debug, Clone)]
pub struct User<F> {
    /// Account name.
    pub name: F,
    /// Present or absent.
    pub state: Presence,
    /// Supplementary groups the account must be in; groups not named are left alone.
    pub groups: Vec<F>,
    /// Login shell.
    pub shell: Option<F>,
    /// Home directory.
    pub home: Option<F>,
    /// A bool field: create a system account (only matters when creating it).
    pub system: Option<F>,
}

/// `package`: named packages to a state, or an upgrade of what is installed.
#[derive(Debug, Clone)]
pub enum Package<F> {
    /// `name`/`names` with `state`.
    Named {
        /// Package names.
        names: Vec<F>,
        /// What each must be.
        state: PackageState,
    },
    /// `upgrade: all|security`.
    Upgrade(UpgradeScope),
}

/// What a named package must be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PackageState {
    /// Installed, any version.
    Present,
    /// Installed at the newest version the host's repositories offer.
    Latest,
    /// Not installed.
    Absent,
}

/// Which installed packages an upgrade touches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpgradeScope {
    /// Every package with a newer version.
    All,
    /// Only packages whose newer version comes from a security source.
    Security,
}

/// `service`: a service's running state and whether it starts at boot.
#[derive(Debug, Clone)]
pub struct Service<F> {
    /// Unit or init script name.
    pub name: F,
    /// What to do with the running service; `None` leaves it as it is.
    pub state: Option<ServiceState>,
    /// A bool field: start at boot; `None` leaves it as it is.
    pub enabled: Option<F>,
}

/// A service's wanted running state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServiceState {
    /// Running (started when it is not).
    Started,
    /// Not running (stopped when it is).
    Stopped,
    /// Restarted every time (always `changed`).
    Restarted,
    /// Reloaded every time (always `changed`).
    Reloaded,
}

/// `reboot: { timeout }`.
#[derive(Debug, Clone)]
pub struct Reboot<F> {
    /// A duration field: how long the host may take to come back (default 10m).
    pub timeout: Option<F>,
}

/// `assert: { that, message }`.
#[derive(Debug, Clone)]
pub struct Assert<F> {
    /// Conditions that must all be true.
    pub that: Vec<F>,
    /// Failure message.
    pub message: Option<F>,
}

/// `wait_for`.
#[derive(Debug, Clone)]
pub struct WaitFor<F> {
    /// What to wait for.
    pub target: WaitTarget<F>,
    /// A duration field (default 60s).
    pub timeout: Option<F>,
}

/// What `wait_for` waits for.
#[derive(Debug, Clone)]
pub enum WaitTarget<F> {
    /// A TCP port accepting connections, as seen from the target.
    Port {
        /// An int field.
        port: F,
        /// Address (default 127.0.0.1).
        host: Option<F>,
    },
    /// A remote path existing.
    Path(F),
    /// A command succeeding.
    Command(F),
}

/// `backup`: what goes into the backup, where it is kept, how many are kept.
#[derive(Debug, Clone)]
pub struct Backup<F> {
    /// Files or a command's output.
    pub source: BackupSource<F>,
    /// Remote directory (absolute) the backups live in.
    pub store: F,
    /// A count field: backups of this runbook and host to keep, the new one included; `None`
    /// keeps every backup.
    pub keep: Option<F>,
}

/// What a backup holds.
#[derive(Debug, Clone)]
pub enum BackupSource<F> {
    /// Absolute remote paths, archived with owners, modes and links.
    Paths(Vec<F>),
    /// Shell text whose standard output is the backup.
    Dump(F),
}

/// `restore`: which backup, from where, and where it goes.
#[derive(Debug, Clone)]
pub struct Restore<F> {
    /// `latest` or a backup id.
    pub from: F,
    /// Remote directory (absolute) the backups live in.
    pub store: F,
    /// Where the backup goes.
    pub into: RestoreInto<F>,
}

/// Where a restored backup goes.
#[derive(Debug, Clone)]
pub enum RestoreInto<F> {
    /// Files extracted from an archive.
    Files {
        /// Absolute paths to put back; empty means everything in the archive.
        paths: Vec<F>,
        /// Extract under this directory instead of `/`.
        target: Option<F>,
    },
    /// Shell text fed the backup on its standard input.
    Load(F),
}

impl<F> Step<F> {
    /// Converts every field with `f`, keeping the step's shape; the first error stops it.
    pub fn try_map<'a, G, E>(
        &'a self,
        f: &mut impl FnMut(&'a F) -> Result<G, E>,
    ) -> Result<Step<G>, E> {
        Ok(Step {
            name: self.name.clone(),
            span: self.span,
            action: self.action.try_map(f)?,
            when: self.when.as_ref().map(&mut *f).transpose()?,
            register: self.register.clone(),
            secret: self.secret,
            become_root: self.become_root.as_ref().map(&mut *f).transpose()?,
            become_user: self.become_user.as_ref().map(&mut *f).transpose()?,
            env: self
                .env
                .iter()
                .map(|(name, value)| Ok((name.clone(), f(value)?)))
                .collect::<Result<_, E>>()?,
            timeout: self.timeout.as_ref().map(&mut *f).transpose()?,
            retries: self.retries.as_ref().map(&mut *f).transpose()?,
            retry_delay: self.retry_delay.as_ref().map(&mut *f).transpose()?,
            changed_when: self.changed_when.as_ref().map(&mut *f).transpose()?,
            failed_when: self.failed_when.as_ref().map(&mut *f).transpose()?,
            ignore_errors: self.ignore_errors.as_ref().map(&mut *f).transpose()?,
            check_mode: self.check_mode,
        })
    }

    /// Every field of the step, for checks that look at all of them (references, secrets).
    #[must_use]
    pub fn fields(&self) -> Vec<&F> {
        let mut fields = Vec::new();
        let _ = self.try_map(&mut |field| {
            fields.push(field);
            Ok::<(), std::convert::Infallible>(())
        });
        fields
    }
}

impl<F> Action<F> {
    fn try_map<'a, G, E>(
        &'a self,
        f: &mut impl FnMut(&'a F) -> Result<G, E>,
    ) -> Result<Action<G>, E> {
        Ok(match self {
            Action::Command(command) => Action::Command(Command {
                text: f(&command.text)?,
                executable: command.executable.as_ref().map(&mut *f).transpose()?,
                creates: command.creates.as_ref().map(&mut *f).transpose()?,
                removes: command.removes.as_ref().map(&mut *f).transpose()?,
                unless: command.unless.as_ref().map(&mut *f).transpose()?,
                only_if: command.only_if.as_ref().map(&mut *f).transpose()?,
                expect_rc: command.expect_rc.clone(),
            }),
            Action::Script(script) => Action::Script(Script {
                body: Arc::clone(&script.body),
                src: script.src.clone(),
                args: script.args.iter().map(&mut *f).collect::<Result<_, E>>()?,
            }),
            Action::Copy(copy) => Action::Copy(copy.try_map(f)?),
            Action::Template(copy) => Action::Template(copy.try_map(f)?),
            Action::Fetch(fetch) => Action::Fetch(Fetch {
                src: f(&fetch.src)?,
                dest: f(&fetch.dest)?,
            }),
            Action::File(file) => Action::File(FileState {
                path: f(&file.path)?,
                state: file.state,
                src: file.src.as_ref().map(&mut *f).transpose()?,
                attributes: file.attributes.try_map(f)?,
            }),
            Action::Assert(assert) => Action::Assert(Assert {
                that: assert.that.iter().map(&mut *f).collect::<Result<_, E>>()?,
                message: assert.message.as_ref().map(&mut *f).transpose()?,
            }),
            Action::Gate(gate) => Action::Gate(Gate {
                approver_level: gate.approver_level,
                message: gate.message.as_ref().map(&mut *f).transpose()?,
            }),
            Action::WaitFor(wait) => Action::WaitFor(WaitFor {
                target: match &wait.target {
                    WaitTarget::Port { port, host } => WaitTarget::Port {
                        port: f(port)?,
                        host: host.as_ref().map(&mut *f).transpose()?,
                    },
                    WaitTarget::Path(path) => WaitTarget::Path(f(path)?),
                    WaitTarget::Command(command) => WaitTarget::Command(f(command)?),
                },
                timeout: wait.timeout.as_ref().map(&mut *f).transpose()?,
            }),
            Action::Backup(backup) => Action::Backup(Backup {
                source: match &backup.source {
                    BackupSource::Paths(paths) => {
                        BackupSource::Paths(paths.iter().map(&mut *f).collect::<Result<_, E>>()?)
                    }
                    BackupSource::Dump(command) => BackupSource::Dump(f(command)?),
                },
                store: f(&backup.store)?,
                keep: backup.keep.as_ref().map(&mut *f).transpose()?,
            }),
            Action::User(user) => Action::User(User {
                name: f(&user.name)?,
                state: user.state,
                groups: user.groups.iter().map(&mut *f).collect::<Result<_, E>>()?,
                shell: user.shell.as_ref().map(&mut *f).transpose()?,
                home: user.home.as_ref().map(&mut *f).transpose()?,
                system: user.system.as_ref().map(&mut *f).transpose()?,
            }),
            Action::Package(Package::Named { names, state }) => Action::Package(Package::Named {
                names: names.iter().map(&mut *f).collect::<Result<_, E>>()?,
                state: *state,
            }),
            Action::Package(Package::Upgrade(scope)) => Action::Package(Package::Upgrade(*scope)),
            Action::Service(service) => Action::Service(Service {
                name: f(&service.name)?,
                state: service.state,
                enabled: service.enabled.as_ref().map(&mut *f).transpose()?,
            }),
            Action::Reboot(reboot) => Action::Reboot(Reboot {
                timeout: reboot.timeout.as_ref().map(&mut *f).transpose()?,
            }),
            Action::Restore(restore) => Action::Restore(Restore {
                from: f(&restore.from)?,
                store: f(&restore.store)?,
                into: match &restore.into {
                    RestoreInto::Files { paths, target } => RestoreInto::Files {
                        paths: paths.iter().map(&mut *f).collect::<Result<_, E>>()?,
                        target: target.as_ref().map(&mut *f).transpose()?,
                    },
                    RestoreInto::Load(command) => RestoreInto::Load(f(command)?),
                },
            }),
        })
    }
}

impl<F> Copy<F> {
    fn try_map<'a, G, E>(
        &'a self,
        f: &mut impl FnMut(&'a F) -> Result<G, E>,
    ) -> Result<Copy<G>, E> {
        Ok(Copy {
            content: match &self.content {
                Content::Bytes { bytes, src } => Content::Bytes {
                    bytes: Arc::clone(bytes),
                    src: src.clone(),
                },
                Content::Text(text) => Content::Text(f(text)?),
            },
            dest: f(&self.dest)?,
            attributes: self.attributes.try_map(f)?,
            backup: self.backup.as_ref().map(&mut *f).transpose()?,
        })
    }
}

/// Joins values as `` `a`, `b` `` for messages.
#[must_use]
pub fn backticked(values: &[String]) -> String {
    values
        .iter()
        .map(|value| format!("`{value}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {

    use super::{Amount, ParamKind, ParamSpec, ParamValue};

    #[test]
    fn percentages_round_up() {
        assert_eq!(Amount::parse("25%").map(|amount| amount.of(5)), Ok(2));
        assert_eq!(Amount::parse("3").map(|amount| amount.of(10)), Ok(3));
        assert!(Amount::parse("120%").is_err());
    }

    #[test]
    fn params_are_converted_to_their_type() {
        let int = ParamKind::Int {
            min: Some(1),
            max: Some(30),
        };
        assert_eq!(int.parse("7"), Ok(ParamValue::Int(7)));
        assert!(int.parse("0").is_err());
        assert!(int.parse("seven").is_err());
        assert_eq!(ParamKind::Bool.parse("true"), Ok(ParamValue::Bool(true)));
        let choice = ParamKind::Enum(vec!["staging".into(), "production".into()]);
        assert!(choice.parse("prod").is_err());
    }

    #[test]
    fn debug_of_a_secret_param_masks_its_default() {
        let mut spec = ParamSpec {
            name: "token".into(),
            kind: ParamKind::String,
            default: Some(ParamValue::Text("t0ken".into())),
            required: false,
            secret: true,
            description: String::new(),
        };
        let text = format!("{spec:?}");
        assert!(!text.contains("t0ken"), "{text}");
        assert!(text.contains(crate::secret::MASK), "{text}");
        spec.secret = false;
        assert!(format!("{spec:?}").contains("t0ken"));
    }
}
