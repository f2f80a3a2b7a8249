//! The serde mirror of a runbook file, exactly as written (SPEC §2).
//!
//! Nothing here is checked beyond YAML syntax, key names and scalar shapes: every value keeps
//! its [`Spanned`] location so that [`super::validate`] can point at it. Typed scalars
//! (`keep`, `timeout`, `mode`, `become` …) are [`Scalar`]s because any of them may be a template
//! that only becomes an int or a bool once rendered.

use indexmap::IndexMap;
use serde::Deserialize;
use serde_saphyr::Spanned;

/// A YAML scalar as written: the validated model decides what type it must have.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum Scalar {
    /// `true` / `false`.
    Bool(bool),
    /// An integer.
    Int(i64),
    /// A float (only ever an error, but reported as a type mismatch rather than a parse error).
    Float(f64),
    /// Any string, possibly a template.
    Text(String),
}

impl Scalar {
    /// The scalar as the text a template would render it to.
    #[must_use]
    pub fn to_text(&self) -> String {
        match self {
            Scalar::Bool(value) => value.to_string(),
            Scalar::Int(value) => value.to_string(),
            Scalar::Float(value) => value.to_string(),
            Scalar::Text(text) => text.clone(),
        }
    }
}

/// A spanned scalar.
pub type Field = Spanned<Scalar>;
/// A spanned string.
pub type Text = Spanned<String>;

/// The top level of a runbook file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Runbook {
    /// Catalog id.
    pub runbook: Text,
    /// One-line title.
    pub title: Option<Text>,
    /// `check`, `provision`, `patch`, `backup`, `restore` or `maintenance`.
    pub kind: Text,
    /// Free text.
    pub description: Option<Text>,
    /// Lowest SFIA level that may run it once approved.
    pub min_level: Option<Spanned<i64>>,
    /// Default host pattern.
    pub targets: Text,
    /// Run steps through sudo unless a step says otherwise.
    #[serde(rename = "become")]
    pub become_root: Option<Field>,
    /// Declared parameters, in file order.
    pub params: Option<IndexMap<Text, Param>>,
    /// Rolling batches.
    pub rolling: Option<Spanned<Rolling>>,
    /// The steps.
    pub steps: Spanned<Vec<Spanned<Step>>>,
    /// Steps run on a host whose steps failed.
    pub on_failure: Option<Vec<Spanned<Step>>>,
}

/// One declared parameter.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Param {
    /// `int`, `bool`, `enum` or `string`.
    #[serde(rename = "type")]
    pub kind: Text,
    /// Default value.
    pub default: Option<Field>,
    /// Inclusive minimum for ints.
    pub min: Option<Spanned<i64>>,
    /// Inclusive maximum for ints.
    pub max: Option<Spanned<i64>>,
    /// Allowed values for enums.
    pub values: Option<Vec<Text>>,
    /// Whether the caller must give a value.
    pub required: Option<Spanned<bool>>,
    /// Never printed, never stored.
    pub secret: Option<Spanned<bool>>,
    /// Free text.
    pub description: Option<Text>,
}

/// `rolling: { batch: 25%, max_failures: 0 }`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rolling {
    /// `N` hosts or `P%` of the selected hosts per batch.
    pub batch: Option<Field>,
    /// `N` or `P%` failed hosts tolerated before later batches are skipped.
    pub max_failures: Option<Field>,
}

/// One step: common keys plus exactly one action key (validation counts them).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Step {
    /// Display name.
    pub name: Option<Text>,
    /// Condition.
    pub when: Option<Field>,
    /// Name under which the result is registered.
    pub register: Option<Text>,
    /// Mask registered values.
    pub secret: Option<Spanned<bool>>,
    /// Run through sudo.
    #[serde(rename = "become")]
    pub become_root: Option<Field>,
    /// Run through sudo as this user.
    pub become_user: Option<Text>,
    /// Environment variables for the remote command.
    pub env: Option<IndexMap<Text, Field>>,
    /// Duration.
    pub timeout: Option<Field>,
    /// Extra attempts after a failure.
    pub retries: Option<Field>,
    /// Pause between attempts.
    pub retry_delay: Option<Field>,
    /// Condition overriding `changed`.
    pub changed_when: Option<Field>,
    /// Condition overriding `failed`.
    pub failed_when: Option<Field>,
    /// Failure does not stop the host.
    pub ignore_errors: Option<Field>,
    /// Run even under `--check`.
    pub check_mode: Option<Spanned<bool>>,

    /// Command guard: skip when this remote path exists.
    pub creates: Option<Text>,
    /// Command guard: skip unless this remote path exists.
    pub removes: Option<Text>,
    /// Command guard: skip when this command succeeds.
    pub unless: Option<Text>,
    /// Command guard: skip unless this command succeeds.
    pub only_if: Option<Text>,
    /// Accepted exit codes.
    pub expect_rc: Option<Spanned<ExpectRc>>,
    /// Shell used for `command`.
    pub executable: Option<Text>,

    /// Action: run shell text.
    pub command: Option<Text>,
    /// Action: alias of `command`.
    pub shell: Option<Text>,
    /// Action: upload a local script and run it.
    pub script: Option<Spanned<Script>>,
    /// Action: copy a file.
    pub copy: Option<Spanned<Copy>>,
    /// Action: render a template file.
    pub template: Option<Spanned<Template>>,
    /// Action: fetch a remote file.
    pub fetch: Option<Spanned<Fetch>>,
    /// Action: ensure a path's state.
    pub file: Option<Spanned<File>>,
    /// Action: check conditions.
    #[serde(rename = "assert")]
    pub assert_that: Option<Spanned<Assert>>,
    /// Action: wait for a port, path or command.
    pub wait_for: Option<Spanned<WaitFor>>,
    /// Action: archive paths or a command's output into a remote store.
    pub backup: Option<Spanned<Backup>>,
    /// Action: put a backup back.
    pub restore: Option<Spanned<Restore>>,
    /// Action: pause the host until an operator approves.
    pub gate: Option<Spanned<Gate>>,
    /// Action: ensure an OS account.
    pub user: Option<Spanned<User>>,
    /// Action: install, upgrade or remove packages.
    pub package: Option<Spanned<Package>>,
    /// Action: start, stop, restart or reload a service; enable or disable it at boot.
    pub service: Option<Spanned<Service>>,
    /// Action: reboot the host and wait for it.
    pub reboot: Option<Spanned<Reboot>>,
}

/// `expect_rc: 0` or `expect_rc: [0, 1]`.
#[derive(Debug, Deserialize, Clone)]
#[serde(untagged)]
pub enum ExpectRc {
    /// One code.
    One(i64),
    /// Several codes.
    Many(Vec<i64>),
}

/// `script: { src, args }`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Script {
    /// Local script, relative to the runbook.
    pub src: Text,
    /// Arguments, each shell-quoted.
    pub args: Option<Vec<Field>>,
}

/// `copy: { src | content, dest, mode, owner, group, backup }`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Copy {
    /// Local file, relative to the runbook.
    pub src: Option<Text>,
    /// Inline content.
    pub content: Option<Text>,
    /// Remote path.
    pub dest: Text,
    /// Octal mode string.
    pub mode: Option<Field>,
    /// Owner account.
    pub owner: Option<Text>,
    /// Owner group.
    pub group: Option<Text>,
    /// Keep the previous file as `dest.<timestamp>~`.
    pub backup: Option<Field>,
}

/// `template: { src, dest, mode, owner, group, backup }`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Template {
    /// Local Handlebars file, relative to the runbook.
    pub src: Text,
    /// Remote path.
    pub dest: Text,
    /// Octal mode string.
    pub mode: Option<Field>,
    /// Owner account.
    pub owner: Option<Text>,
    /// Owner group.
    pub group: Option<Text>,
    /// Keep the previous file as `dest.<timestamp>~`.
    pub backup: Option<Field>,
}

/// `fetch: { src, dest }`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fetch {
    /// Remote file.
    pub src: Text,
    /// Local directory.
    pub dest: Text,
}

/// `file: { path, state, src, mode, owner, group }`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct File {
    /// Remote path.
    pub path: Text,
    /// `file`, `directory`, `absent` or `link`.
    pub state: Option<Text>,
    /// Link target for `state: link`.
    pub src: Option<Text>,
    /// Octal mode string.
    pub mode: Option<Field>,
    /// Owner account.
    pub owner: Option<Text>,
    /// Owner group.
    pub group: Option<Text>,
}

/// `assert: { that, message }`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Assert {
    /// Conditions that must all be true.
    pub that: Vec<Field>,
    /// Failure message.
    pub message: Option<Text>,
}

/// `wait_for: { port, host | path | command, timeout }`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WaitFor {
    /// TCP port.
    pub port: Option<Field>,
    /// Address for `port`, as seen from the target.
    pub host: Option<Text>,
    /// Remote path that must exist.
    pub path: Option<Text>,
    /// Command that must succeed.
    pub command: Option<Text>,
    /// How long to wait.
    pub timeout: Option<Field>,
}

/// `backup: { paths | dump, store, keep }`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Backup {
    /// Remote paths to archive.
    pub paths: Option<Vec<Text>>,
    /// A command whose standard output is the backup.
    pub dump: Option<Text>,
    /// Remote directory the backups live in.
    pub store: Text,
    /// Backups of this runbook and host to keep, the new one included.
    pub keep: Option<Field>,
}

/// `restore: { from, store, paths, target | load }`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Restore {
    /// `latest` or a backup id.
    pub from: Text,
    /// Remote directory the backups live in.
    pub store: Text,
    /// Paths to put back (default: everything in the backup).
    pub paths: Option<Vec<Text>>,
    /// Extract under this directory instead of `/`.
    pub target: Option<Text>,
    /// A command fed the backup on its standard input.
    pub load: Option<Text>,
}

/// `gate: { approver_level, message }`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Gate {
    /// The lowest SFIA level that may approve (1..=5); the requester's own rule may ask more.
    pub approver_level: Option<Spanned<i64>>,
    /// What the approver is asked.
    pub message: Option<Text>,
}

/// `user: { name, state, groups, shell, home, system }`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct User {
    /// Account name.
    pub name: Text,
    /// `present` (default) or `absent`.
    pub state: Option<Text>,
    /// Supplementary groups the account must be in (others are left alone).
    pub groups: Option<Vec<Text>>,
    /// Login shell.
    pub shell: Option<Text>,
    /// Home directory.
    pub home: Option<Text>,
    /// A system account (only used when creating it).
    pub system: Option<Field>,
}

/// `package: { name | names, state }` or `package: { upgrade: all | security }`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Package {
    /// One package.
    pub name: Option<Text>,
    /// Several packages.
    pub names: Option<Vec<Text>>,
    /// `present` (default), `latest` or `absent`.
    pub state: Option<Text>,
    /// `all` or `security`: upgrade installed packages instead of naming them.
    pub upgrade: Option<Text>,
}

/// `service: { name, state, enabled }`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Service {
    /// Unit or init script name.
    pub name: Text,
    /// `started`, `stopped`, `restarted` or `reloaded`.
    pub state: Option<Text>,
    /// Start at boot.
    pub enabled: Option<Field>,
}

/// `reboot: { timeout }`.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Reboot {
    /// How long the host may take to answer again with a new boot id.
    pub timeout: Option<Field>,
}
