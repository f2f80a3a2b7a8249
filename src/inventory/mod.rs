//! The inventory: hosts, groups, connection settings, variables and host patterns (SPEC §3).
//!
//! This module owns reading `inventory/hosts.yaml` into an immutable [`Inventory`] and selecting
//! hosts with patterns; it never connects anywhere and never prints. Loading is two steps: the
//! YAML is parsed into a serde schema (`schema.rs`) that mirrors the file: a syntax error, an
//! unknown key or a wrong type stops there, reported at its `file:line:col`. Then validation
//! (`validate.rs`) checks every rule below, collects *all* violations, and builds the model.
//!
//! ```yaml
//! defaults: { user: ops, port: 22, vars: { backup_root: /var/backups } }
//! groups:
//!   web:        { hosts: [web1, web2], vars: { http_port: 8080 } }
//!   db:         { hosts: [db1] }
//!   production: { children: [web, db], environment: production }
//! hosts:
//!   web1: { address: 10.0.0.11 }
//!   web2: { address: 10.0.0.12, port: 2222, jump: bastion }
//!   db1:  { address: db1.internal, user: postgres, vars: { pg_version: 16 } }
//!   bastion: { address: bastion.example.net }
//! ```
//!
//! # Rules and decisions
//! - **Order.** Hosts keep the order of the `hosts:` mapping (rolling batches use it); groups
//!   keep the order of the `groups:` mapping, and a host's [`Host::groups`] lists every group
//!   containing it, directly or through `children`, in that order.
//! - **Names** of hosts and groups match `[A-Za-z0-9_][A-Za-z0-9_.-]*`, so every name can be
//!   written in a host pattern; `all` is reserved (it selects every host), and one name cannot
//!   be both a host and a group.
//! - **Connection keys** (`address`, `port`, `user`, `jump`, `identity_file`, `known_hosts`,
//!   `ssh_config`, `host_key`, `ssh_options`) may appear in `defaults`, in groups and in hosts.
//!   The most specific layer wins: the host, then its groups with the *later* group in inventory
//!   order winning (as in Ansible), then `defaults`. `ssh_options` are merged per option name
//!   instead, the more specific layer replacing an option's value.
//! - **`address`** defaults to the host's name, as `ssh name` would connect to it.
//! - **Paths** (`identity_file`, `known_hosts`, `ssh_config`) are resolved against the inventory
//!   file's directory, so the inventory works from any working directory; `~/` is the home
//!   directory.
//! - **`jump`** names a host of the inventory, never the host itself, and jump chains must not
//!   loop. A `jump` *inherited* from defaults or a group that names the host itself is skipped
//!   for that host, so the bastion may sit in the group whose hosts jump through it.
//! - **`port`** is 1..=65535; **`ssh_options`** entries are `Key=Value` as `ssh -o` takes them,
//!   and only options that tune the connection are allowed ([`ssh_option::ALLOWED`]: timeouts,
//!   keep-alives, compression, algorithm lists narrowed within OpenSSH's defaults); options
//!   that run commands, proxy (`jump:` is the only proxy), change host-key checking or name
//!   files are errors; **`host_key`** is a public key line (`ssh-ed25519 AAAA…`).
//! - **`environment`** is set on groups only: a host inherits it from its groups, and groups
//!   giving one host two different environments are an error. Hosts cannot override it because
//!   the gate relies on it (SPEC §4.3): a host-level `staging` must not quietly lift production
//!   rules off a host that sits in a production group.
//! - **`vars`** are merged `defaults` → groups in inventory order → host; a later layer replaces
//!   a top-level key whole (no deep merge).
//! - `children` cycles, unknown hosts or child groups named by a group, and unknown `jump` hosts
//!   are errors with "did you mean" hints. An empty group, a name listed twice in a group and an
//!   inventory with no hosts are warnings.
//!
//! Host patterns are described in [`select`]; `opsgate inventory import` conversion from
//! Ansible in [`import`].

pub mod import;
mod model;
mod schema;
pub mod select;
pub mod ssh_option;

mod validate;

use std::path::Path;
use std::sync::Arc;

use serde_saphyr::MessageFormatter;

use crate::diagnostic::{Diagnostic, Diagnostics, SourceFile, Span, read_source};

pub use import::{ImportError, import_ansible};
pub use model::{ALL, Group, GroupName, Host, HostName, Inventory, NameError};
pub use select::{Pattern, PatternError};

impl Inventory {
    /// Reads and validates the inventory at `path`: the inventory and its warnings, or every
    /// error found.
    pub fn load(path: &Path) -> Result<(Inventory, Vec<Diagnostic>), Diagnostics> {
        Self::parse(read_source(path)?)
    }

    /// Parses and validates an inventory already read into memory.
    pub fn parse(file: Arc<SourceFile>) -> Result<(Inventory, Vec<Diagnostic>), Diagnostics> {
        let schema = serde_saphyr::from_str::<schema::InventoryFile>(&file.text)
            .map_err(|error| yaml_error(&file, &error))?;
        validate::validate(file, schema)
    }
}

/// Turns a serde-saphyr error into a diagnostic in our words, with the allowed keys or the
/// expected type as a hint. The wording matched here is serde-saphyr's; the rendering tests in
/// `tests.rs` pin it, so an upgrade that rewords it fails loudly instead of losing hints.
fn yaml_error(file: &Arc<SourceFile>, error: &serde_saphyr::Error) -> Diagnostic {
    let raw = serde_saphyr::DefaultMessageFormatter.format_message(error.without_snippet());
    let span = error.location().map_or_else(Span::default, |location| {
        Span::new(location.line() as u32, location.column() as u32, 0)
    });
    let (message, hints, length) = describe_yaml_error(&raw, &file.text, span);
    let span = Span { length, ..span };
    let mut diagnostic = Diagnostic::error(message).at(file, span);
    diagnostic.hints = hints;
    diagnostic
}

/// Our message and hints for a serde-saphyr message, and how many characters to underline.
fn describe_yaml_error(raw: &str, text: &str, span: Span) -> (String, Vec<String>, u32) {
    if let Some(rest) = raw.strip_prefix("unknown field `") {
        let (key, expected) = rest.split_once('`').unwrap_or((rest, ""));
        let allowed: Vec<String> = expected
            .trim_start_matches([',', ' '])
            .trim_start_matches("expected one of ")
            .trim_start_matches("expected ")
            .split([',', ' '])
            .map(|name| name.trim_matches('`'))
            .filter(|name| !name.is_empty() && *name != "or")
            .map(|name| format!("`{name}`"))
            .collect();
        let mut hints = Vec::new();
        if let Some(hint) = crate::suggest::did_you_mean(&crate::suggest::close_names(
            key,
            allowed.iter().map(|name| name.trim_matches('`')),
        )) {
            hints.push(hint);
        }
        if !allowed.is_empty() {
            hints.push(format!("allowed keys here: {}", allowed.join(", ")));
        }
        if key == "environment" {
            hints.push("`environment` is set on groups; hosts inherit it".to_owned());
        }
        return (
            format!("unknown key `{key}`"),
            hints,
            key.chars().count() as u32,
        );
    }
    if let Some(rest) = raw.strip_prefix("duplicate mapping key: ") {
        let key = rest
            .split(", set DuplicateKeyPolicy")
            .next()
            .unwrap_or(rest);
        return (
            format!("duplicate key `{key}`"),
            vec!["a key may appear once in a mapping; merge the two entries".to_owned()],
            key.chars().count() as u32,
        );
    }
    let expected = match raw {
        "invalid i64" | "invalid u16" | "invalid u64" => Some("an integer"),
        "expected sequence start" => Some("a list"),
        "expected mapping start" => Some("a mapping"),
        "expected string scalar" => Some("a string"),
        _ => None,
    };
    let length = value_length(text, span);
    match (expected, key_before(text, span)) {
        (Some(expected), Some(key)) => {
            let hint = schema::describe_key(key).map(str::to_owned).or_else(|| {
                (expected == "a mapping").then(|| {
                    "each host and group is a mapping of its settings, e.g. \
                     `web1: { address: 10.0.0.11 }`"
                        .to_owned()
                })
            });
            (
                format!("wrong type for `{key}`: expected {expected}"),
                hint.into_iter().collect(),
                length,
            )
        }
        (Some(expected), None) => (format!("wrong type: expected {expected}"), vec![], length),
        // Anything else comes from the YAML parser itself.
        (None, _) => (
            raw.to_owned(),
            vec![
                "an inventory is YAML: check the indentation (spaces, not tabs) and closing \
                 brackets near here"
                    .to_owned(),
            ],
            length,
        ),
    }
}

/// The byte offset of a known `span`'s position in `text`.
fn offset_of(text: &str, span: Span) -> Option<usize> {
    if !span.is_known() {
        return None;
    }
    let line_start: usize = text
        .split_inclusive('\n')
        .take(span.line as usize - 1)
        .map(str::len)
        .sum();
    let column_offset: usize = text
        .get(line_start..)?
        .chars()
        .take(span.column as usize - 1)
        .map(char::len_utf8)
        .sum();
    Some(line_start + column_offset)
}

/// Characters of the YAML value starting at `span`, on its line: a bracketed flow collection to
/// its closing bracket, a quoted string to its closing quote, a plain scalar up to the next
/// flow separator or comment. 0 lets the renderer decide.
fn value_length(text: &str, span: Span) -> u32 {
    let Some(offset) = offset_of(text, span) else {
        return 0;
    };
    let rest = text[offset..].lines().next().unwrap_or_default();
    let characters_before = |index: usize| rest[..index].trim_end().chars().count() as u32;
    let mut depth = 0_u32;
    let mut quote: Option<char> = None;
    for (index, character) in rest.char_indices() {
        let through = rest[..index].chars().count() as u32 + 1;
        match (quote, character) {
            (Some(open), c) if c == open && index > 0 => return through,
            (None, '"' | '\'') if index == 0 => quote = Some(character),
            (None, '[' | '{') => depth += 1,
            (None, ']' | '}') if depth > 1 => depth -= 1,
            (None, ']' | '}') if depth == 1 => return through,
            (None, ',' | ']' | '}') if depth == 0 => return characters_before(index),
            (None, '#') if depth == 0 && rest[..index].ends_with(' ') => {
                return characters_before(index);
            }
            _ => {}
        }
    }
    if depth == 0 && quote.is_none() {
        rest.trim_end().chars().count() as u32
    } else {
        0
    }
}

/// The YAML key whose value starts at `span`: the last `key:` written before it. Good enough to
/// name the field of a type error, in block and flow style alike.
fn key_before(text: &str, span: Span) -> Option<&str> {
    let before = &text[..offset_of(text, span)?];
    let colon = before
        .trim_end()
        .strip_suffix(':')
        .map(str::len)
        .or_else(|| before.rfind(": ").or_else(|| before.rfind(":\n")))?;
    let head = &before[..colon];
    let start = head
        .rfind(|character: char| !(character.is_ascii_alphanumeric() || character == '_'))
        .map_or(0, |index| index + 1);
    let key = &head[start..];
    (!key.is_empty()).then_some(key)
}

#[cfg(test)]
mod tests;
