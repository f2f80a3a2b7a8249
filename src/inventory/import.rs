//! `opsgate inventory import`: converts an Ansible YAML inventory into an opsgate inventory.
//!
//! The Ansible shape is `all: { hosts, children, vars }`, recursively for each child group; top-
//! level keys other than `all` are groups too. The conversion:
//! - every host becomes an entry of `hosts:` in order of first appearance; the variables it gets
//!   wherever it is listed are merged (later wins), as Ansible does;
//! - host ranges (`web[01:03].example.com`, `db-[a:c]`) are expanded, `name:port` keys split;
//! - each group becomes an entry of `groups:` with its direct `hosts`, `children` and `vars`;
//!   `all.vars` becomes `defaults`;
//! - the connection variables `ansible_host`, `ansible_port`, `ansible_user`,
//!   `ansible_ssh_private_key_file` (and their old `ansible_ssh_*` spellings) become `address`,
//!   `port`, `user`, `identity_file`; `-o Key=Value` settings of `ansible_ssh_common_args` and
//!   `ansible_ssh_extra_args` become `ssh_options`;
//! - every other `ansible_*` variable is kept under `vars` with a comment saying it has no
//!   opsgate equivalent, so nothing is silently lost; vault-encrypted values get a comment too.
//!
//! Ansible has no `environment`, and it layers group variables by group depth while opsgate uses
//! the order of `groups:`; the output's header comment asks the user to review both.
//! Reading the file and printing the result is the caller's job.

use std::fmt::{self, Write as _};

use serde::Deserialize;
use serde::de::{Deserializer, MapAccess, SeqAccess, Visitor};

use super::model::{ALL, GroupName, HostName, NameError};

/// Why an Ansible inventory cannot be converted.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ImportError {
    /// The text is not YAML.
    #[error("invalid YAML at line {line}, column {column}: {message}")]
    Yaml {
        /// The parser's message.
        message: String,
        /// 1-based line.
        line: u64,
        /// 1-based column.
        column: u64,
    },
    /// A part that must be a mapping is something else.
    #[error("`{path}` must be a mapping")]
    NotAMapping {
        /// Where, as `all.children.web.hosts`.
        path: String,
    },
    /// A group has a key other than `hosts`, `children` and `vars`.
    #[error("group `{group}` has unexpected key `{key}`")]
    UnexpectedKey {
        /// The group.
        group: String,
        /// The unexpected key.
        key: String,
    },
    /// A host or group name that opsgate cannot use.
    #[error("{kind} `{name}` cannot be imported: {reason}")]
    InvalidName {
        /// `host` or `group`.
        kind: &'static str,
        /// The name as written.
        name: String,
        /// What is wrong with it.
        reason: NameError,
    },
    /// A host range such as `web[01:x]` that does not expand.
    #[error("host range `{pattern}` is malformed")]
    InvalidRange {
        /// The host key as written.
        pattern: String,
    },
    /// The same name is used for a host and a group.
    #[error("`{name}` is both a host and a group")]
    HostAndGroup {
        /// The name.
        name: String,
    },
}

impl ImportError {
    /// Ways to fix the input.
    #[must_use]
    pub fn hints(&self) -> Vec<String> {
        match self {
            ImportError::Yaml { .. } | ImportError::NotAMapping { .. } => vec![
                "an Ansible YAML inventory starts with `all:` holding `hosts`, `children` and \
                 `vars`; an INI inventory converts to YAML with `ansible-inventory -i FILE \
                 --list --yaml`"
                    .to_owned(),
            ],
            ImportError::UnexpectedKey { .. } => {
                vec!["an Ansible group has only `hosts`, `children` and `vars`".to_owned()]
            }
            ImportError::InvalidName { reason, .. } => {
                let mut hints = reason.hints();
                hints.push("rename it in the Ansible inventory, then import again".to_owned());
                hints
            }
            ImportError::InvalidRange { .. } => vec![
                "ranges look like `web[01:20].example.com`, `web[1:9:2]` or `db-[a:f]`".to_owned(),
            ],
            ImportError::HostAndGroup { .. } => vec![
                "rename one of them: opsgate host patterns could not tell them apart".to_owned(),
            ],
        }
    }
}

/// Converts the text of an Ansible YAML inventory into the text of an opsgate inventory.
pub fn import_ansible(text: &str) -> Result<String, ImportError> {
    let root = serde_saphyr::from_str::<Node>(text).map_err(|error| {
        let (line, column) = error
            .location()
            .map_or((0, 0), |location| (location.line(), location.column()));
        ImportError::Yaml {
            message: serde_saphyr::MessageFormatter::format_message(
                &serde_saphyr::DefaultMessageFormatter,
                error.without_snippet(),
            )
            .into_owned(),
            line,
            column,
        }
    })?;
    let Node::Map(entries) = root else {
        return Err(ImportError::NotAMapping {
            path: "the document".to_owned(),
        });
    };
    let mut converter = Converter::default();
    for (name, body) in &entries {
        converter.group(name, body, name)?;
    }
    if let Some(name) = converter
        .hosts
        .iter()
        .map(|host| &host.name)
        .find(|name| converter.group_position(name).is_some())
    {
        return Err(ImportError::HostAndGroup { name: name.clone() });
    }
    Ok(converter.emit())
}

/// A YAML node with mapping order kept (`serde_json`'s map would sort the keys, and the order of
/// hosts is the order of rolling batches).
#[derive(Debug, Clone, PartialEq)]
enum Node {
    Scalar(serde_json::Value),
    List(Vec<Node>),
    Map(Vec<(String, Node)>),
}

impl Node {
    fn is_scalar(&self) -> bool {
        matches!(self, Node::Scalar(_))
    }

    /// The text of a string or number scalar.
    fn as_text(&self) -> Option<String> {
        match self {
            Node::Scalar(serde_json::Value::String(text)) => Some(text.clone()),
            Node::Scalar(serde_json::Value::Number(number)) => Some(number.to_string()),
            _ => None,
        }
    }
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct NodeVisitor;

        impl<'de> Visitor<'de> for NodeVisitor {
            type Value = Node;

            fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
                formatter.write_str("any YAML value")
            }

            fn visit_bool<E>(self, value: bool) -> Result<Node, E> {
                Ok(Node::Scalar(value.into()))
            }

            fn visit_i64<E>(self, value: i64) -> Result<Node, E> {
                Ok(Node::Scalar(value.into()))
            }

            fn visit_u64<E>(self, value: u64) -> Result<Node, E> {
                Ok(Node::Scalar(value.into()))
            }

            fn visit_f64<E>(self, value: f64) -> Result<Node, E> {
                Ok(Node::Scalar(value.into()))
            }

            fn visit_str<E>(self, value: &str) -> Result<Node, E> {
                Ok(Node::Scalar(value.into()))
            }

            fn visit_string<E>(self, value: String) -> Result<Node, E> {
                Ok(Node::Scalar(value.into()))
            }

            fn visit_unit<E>(self) -> Result<Node, E> {
                Ok(Node::Scalar(serde_json::Value::Null))
            }

            fn visit_none<E>(self) -> Result<Node, E> {
                Ok(Node::Scalar(serde_json::Value::Null))
            }

            fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Node, D::Error> {
                Node::deserialize(deserializer)
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut sequence: A) -> Result<Node, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = sequence.next_element()? {
                    items.push(item);
                }
                Ok(Node::List(items))
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node, A::Error> {
                let mut entries = Vec::new();
                while let Some(entry) = map.next_entry()? {
                    entries.push(entry);
                }
                Ok(Node::Map(entries))
            }
        }

        deserializer.deserialize_any(NodeVisitor)
    }
}

/// The entries of a mapping node; `null` (`hosts:` with nothing after it) is an empty mapping.
fn entries<'a>(node: &'a Node, path: &str) -> Result<&'a [(String, Node)], ImportError> {
    match node {
        Node::Map(entries) => Ok(entries),
        Node::Scalar(serde_json::Value::Null) => Ok(&[]),
        _ => Err(ImportError::NotAMapping {
            path: path.to_owned(),
        }),
    }
}

/// Inserts or replaces `key`, keeping the position of its first insertion.
fn upsert<K: PartialEq>(entries: &mut Vec<(K, Node)>, key: K, value: Node) {
    match entries.iter_mut().find(|(existing, _)| *existing == key) {
        Some(entry) => entry.1 = value,
        None => entries.push((key, value)),
    }
}

/// Connection keys and variables of one level (defaults, a group or a host).
#[derive(Debug, Default)]
struct Settings {
    /// opsgate connection keys, in the order they are emitted.
    connection: Vec<(&'static str, Node)>,
    vars: Vec<(String, Node)>,
    /// Comments emitted above `vars:`.
    notes: Vec<String>,
}

impl Settings {
    fn absorb(&mut self, key: &str, value: &Node) {
        let target = match key {
            "ansible_host" | "ansible_ssh_host" => Some("address"),
            "ansible_port" | "ansible_ssh_port" => Some("port"),
            "ansible_user" | "ansible_ssh_user" => Some("user"),
            "ansible_ssh_private_key_file" | "ansible_private_key_file" => Some("identity_file"),
            _ => None,
        };
        let templated = value.as_text().is_some_and(|text| text.contains("{{"));
        if let (Some(target), Some(text), false) = (target, value.as_text(), templated) {
            let converted = if target == "port" {
                text.trim()
                    .parse::<u16>()
                    .ok()
                    .map(|port| Node::Scalar(port.into()))
            } else {
                Some(Node::Scalar(text.into()))
            };
            if let Some(converted) = converted {
                upsert(&mut self.connection, target, converted);
                return;
            }
        }
        if matches!(key, "ansible_ssh_common_args" | "ansible_ssh_extra_args")
            && let Some(options) = value.as_text().and_then(|text| ssh_options(&text))
        {
            let mut list = match self
                .connection
                .iter()
                .find(|(name, _)| *name == "ssh_options")
            {
                Some((_, Node::List(existing))) => existing.clone(),
                _ => Vec::new(),
            };
            for option in options {
                if super::ssh_option::check(&option).is_ok() {
                    list.push(Node::Scalar(option.into()));
                } else {
                    self.note(format!(
                        "ssh option `{option}` of `{key}` is not allowed in `ssh_options` \
                         (connection tuning only; use `jump:`, `known_hosts:`, `identity_file:`); \
                         dropped"
                    ));
                }
            }
            if !list.is_empty() {
                upsert(&mut self.connection, "ssh_options", Node::List(list));
            }
            return;
        }
        if key.starts_with("ansible_") {
            let reason = if target.is_some() && templated {
                "is a Jinja template opsgate does not evaluate"
            } else if target.is_some() {
                "does not convert"
            } else {
                "has no opsgate equivalent"
            };
            self.note(format!("`{key}` {reason}; kept under `vars`"));
        }
        if value
            .as_text()
            .is_some_and(|text| text.trim_start().starts_with("$ANSIBLE_VAULT"))
        {
            self.note(format!(
                "`{key}` is vault-encrypted; opsgate cannot decrypt it"
            ));
        }
        upsert(&mut self.vars, key.to_owned(), value.clone());
    }

    fn note(&mut self, note: String) {
        if !self.notes.contains(&note) {
            self.notes.push(note);
        }
    }

    fn is_empty(&self) -> bool {
        self.connection.is_empty() && self.vars.is_empty() && self.notes.is_empty()
    }
}

/// The `-o Key=Value` settings of an `ansible_ssh_*_args` string; `None` when it holds anything
/// else (other flags, a `ProxyCommand` with spaces), which is then kept as a variable.
fn ssh_options(arguments: &str) -> Option<Vec<String>> {
    let words = split_words(arguments)?;
    let mut options = Vec::new();
    let mut words = words.into_iter();
    while let Some(word) = words.next() {
        let option = match word.strip_prefix("-o") {
            Some("") => words.next()?,
            Some(attached) => attached.to_owned(),
            None => return None,
        };
        let (key, value) = option.split_once('=')?;
        if key.is_empty() || !key.chars().all(|c| c.is_ascii_alphanumeric()) || value.is_empty() {
            return None;
        }
        options.push(option);
    }
    (!options.is_empty()).then_some(options)
}

/// Splits shell-like words with `'` and `"` quoting; `None` on an unclosed quote.
fn split_words(text: &str) -> Option<Vec<String>> {
    let mut words = Vec::new();
    let mut current: Option<String> = None;
    let mut quote: Option<char> = None;
    for character in text.chars() {
        match (quote, character) {
            (Some(open), c) if c == open => quote = None,
            (None, '\'' | '"') => {
                quote = Some(character);
                current.get_or_insert_default();
            }
            (None, c) if c.is_whitespace() => words.extend(current.take()),
            // Inside quotes, or an ordinary character outside them.
            (_, c) => current.get_or_insert_default().push(c),
        }
    }
    if quote.is_some() {
        return None;
    }
    words.extend(current);
    Some(words)
}

#[derive(Debug)]
struct ImportedHost {
    name: String,
    settings: Settings,
}

#[derive(Debug)]
struct ImportedGroup {
    name: String,
    hosts: Vec<String>,
    children: Vec<String>,
    settings: Settings,
}

#[derive(Debug, Default)]
struct Converter {
    defaults: Settings,
    groups: Vec<ImportedGroup>,
    hosts: Vec<ImportedHost>,
}

impl Converter {
    fn group_position(&self, name: &str) -> Option<usize> {
        self.groups.iter().position(|group| group.name == name)
    }

    /// Walks one Ansible group (`all` included) and everything below it.
    fn group(&mut self, name: &str, body: &Node, path: &str) -> Result<(), ImportError> {
        let is_all = name == ALL;
        let index = if is_all {
            None
        } else {
            GroupName::new(name).map_err(|reason| ImportError::InvalidName {
                kind: "group",
                name: name.to_owned(),
                reason,
            })?;
            Some(self.group_position(name).unwrap_or_else(|| {
                self.groups.push(ImportedGroup {
                    name: name.to_owned(),
                    hosts: Vec::new(),
                    children: Vec::new(),
                    settings: Settings::default(),
                });
                self.groups.len() - 1
            }))
        };
        for (key, value) in entries(body, path)? {
            let path = format!("{path}.{key}");
            match key.as_str() {
                "hosts" => {
                    for (pattern, variables) in entries(value, &path)? {
                        for (host, port) in expand_host(pattern)? {
                            let position = self.host(&host)?;
                            if let Some(port) = port {
                                upsert(
                                    &mut self.hosts[position].settings.connection,
                                    "port",
                                    Node::Scalar(port.into()),
                                );
                            }
                            for (variable, value) in
                                entries(variables, &format!("{path}.{pattern}"))?
                            {
                                self.hosts[position].settings.absorb(variable, value);
                            }
                            if let Some(group) = index
                                && !self.groups[group].hosts.contains(&host)
                            {
                                self.groups[group].hosts.push(host);
                            }
                        }
                    }
                }
                "children" => {
                    for (child, child_body) in entries(value, &path)? {
                        self.group(child, child_body, &format!("{path}.{child}"))?;
                        if let Some(group) = index
                            && !self.groups[group].children.contains(child)
                        {
                            self.groups[group].children.push(child.clone());
                        }
                    }
                }
                "vars" => {
                    for (variable, value) in entries(value, &path)? {
                        match index {
                            Some(group) => self.groups[group].settings.absorb(variable, value),
                            None => self.defaults.absorb(variable, value),
                        }
                    }
                }
                _ => {
                    return Err(ImportError::UnexpectedKey {
                        group: name.to_owned(),
                        key: key.clone(),
                    });
                }
            }
        }
        Ok(())
    }

    /// The position of host `name`, added on first sight.
    fn host(&mut self, name: &str) -> Result<usize, ImportError> {
        if let Some(position) = self.hosts.iter().position(|host| host.name == name) {
            return Ok(position);
        }
        HostName::new(name).map_err(|reason| ImportError::InvalidName {
            kind: "host",
            name: name.to_owned(),
            reason,
        })?;
        self.hosts.push(ImportedHost {
            name: name.to_owned(),
            settings: Settings::default(),
        });
        Ok(self.hosts.len() - 1)
    }

    fn emit(&self) -> String {
        let mut out = String::from(
            "# Converted from an Ansible inventory by `opsgate inventory import`. Review before use:\n\
             # - set `environment:` (e.g. production, staging) on groups: the gate relies on it;\n\
             # - group variables layer in the order of `groups:` below (a later group wins),\n\
             #   not by Ansible's group depth: check variables set in several groups.\n",
        );
        if !self.defaults.is_empty() {
            out.push_str("defaults:\n");
            emit_settings(&mut out, 2, &self.defaults);
        }
        if !self.groups.is_empty() {
            out.push_str("groups:\n");
            for group in &self.groups {
                let _ = write!(out, "  {}:", scalar_text(&group.name));
                if group.hosts.is_empty() && group.children.is_empty() && group.settings.is_empty()
                {
                    out.push_str(" {}\n");
                    continue;
                }
                out.push('\n');
                if !group.hosts.is_empty() {
                    let _ = writeln!(out, "    hosts: {}", flow_list(&group.hosts));
                }
                if !group.children.is_empty() {
                    let _ = writeln!(out, "    children: {}", flow_list(&group.children));
                }
                emit_settings(&mut out, 4, &group.settings);
            }
        }
        if self.hosts.is_empty() {
            out.push_str("hosts: {}\n");
        } else {
            out.push_str("hosts:\n");
            for host in &self.hosts {
                let _ = write!(out, "  {}:", scalar_text(&host.name));
                if host.settings.is_empty() {
                    out.push_str(" {}\n");
                } else {
                    out.push('\n');
                    emit_settings(&mut out, 4, &host.settings);
                }
            }
        }
        out
    }
}

/// Expands Ansible host ranges and splits a `name:port` suffix.
fn expand_host(pattern: &str) -> Result<Vec<(String, Option<u16>)>, ImportError> {
    let malformed = || ImportError::InvalidRange {
        pattern: pattern.to_owned(),
    };
    let (name, port) = match pattern.rsplit_once(':') {
        Some((name, port))
            if !name.contains(':')
                && !port.is_empty()
                && port.chars().all(|c| c.is_ascii_digit()) =>
        {
            (name, Some(port.parse::<u16>().map_err(|_| malformed())?))
        }
        _ => (pattern, None),
    };
    Ok(expand_ranges(name)
        .ok_or_else(malformed)?
        .into_iter()
        .map(|host| (host, port))
        .collect())
}

/// `web[01:03]x` → `web01x`, `web02x`, `web03x`; several ranges multiply. `None` if malformed.
fn expand_ranges(name: &str) -> Option<Vec<String>> {
    let Some(open) = name.find('[') else {
        return (!name.contains(']')).then(|| vec![name.to_owned()]);
    };
    let close = open + name[open..].find(']')?;
    let (head, range, tail) = (&name[..open], &name[open + 1..close], &name[close + 1..]);
    let mut parts = range.split(':');
    let (start, end) = (parts.next()?, parts.next()?);
    let stride: usize = match parts.next() {
        Some(stride) => stride.parse().ok().filter(|&stride| stride > 0)?,
        None => 1,
    };
    if parts.next().is_some() {
        return None;
    }
    let values: Vec<String> =
        if let (Ok(first), Ok(last)) = (start.parse::<u64>(), end.parse::<u64>()) {
            // A leading zero fixes the width, as in Ansible: `[01:10]` gives `01` … `10`.
            let width = if start.len() > 1 && start.starts_with('0') {
                start.len()
            } else {
                0
            };
            if first > last {
                return None;
            }
            (first..=last)
                .step_by(stride)
                .map(|number| format!("{number:0width$}"))
                .collect()
        } else {
            let (mut first_chars, mut last_chars) = (start.chars(), end.chars());
            let (first, last) = (first_chars.next()?, last_chars.next()?);
            if first_chars.next().is_some()
                || last_chars.next().is_some()
                || !first.is_ascii_alphabetic()
                || !last.is_ascii_alphabetic()
                || first > last
            {
                return None;
            }
            (first..=last).step_by(stride).map(String::from).collect()
        };
    let tails = expand_ranges(tail)?;
    Some(
        values
            .iter()
            .flat_map(|value| tails.iter().map(move |tail| format!("{head}{value}{tail}")))
            .collect(),
    )
}

/// Writes connection keys, notes and `vars` at `indent`.
fn emit_settings(out: &mut String, indent: usize, settings: &Settings) {
    let pad = " ".repeat(indent);
    for (key, value) in &settings.connection {
        let _ = write!(out, "{pad}{key}:");
        emit_node(out, indent, value);
    }
    for note in &settings.notes {
        let _ = writeln!(out, "{pad}# {note}");
    }
    if !settings.vars.is_empty() {
        let _ = write!(out, "{pad}vars:");
        emit_node(out, indent, &Node::Map(settings.vars.clone()));
    }
}

/// Writes a node after `key:` at `indent`: scalars and flat lists on the same line, mappings and
/// nested lists as indented blocks.
fn emit_node(out: &mut String, indent: usize, node: &Node) {
    match node {
        Node::Scalar(value) => {
            let _ = writeln!(out, " {}", scalar(value));
        }
        Node::Map(entries) if entries.is_empty() => out.push_str(" {}\n"),
        Node::List(items) if items.iter().all(Node::is_scalar) => {
            let items: Vec<String> = items
                .iter()
                .map(|item| match item {
                    Node::Scalar(value) => scalar(value),
                    _ => String::new(),
                })
                .collect();
            let _ = writeln!(out, " [{}]", items.join(", "));
        }
        Node::Map(entries) => {
            out.push('\n');
            for (key, value) in entries {
                let _ = write!(out, "{}{}:", " ".repeat(indent + 2), scalar_text(key));
                emit_node(out, indent + 2, value);
            }
        }
        Node::List(items) => {
            out.push('\n');
            for item in items {
                emit_list_item(out, indent + 2, item);
            }
        }
    }
}

/// Writes `- item` at `indent`; a mapping's first key shares the dash's line.
fn emit_list_item(out: &mut String, indent: usize, item: &Node) {
    let pad = " ".repeat(indent);
    match item {
        Node::Map(entries) if !entries.is_empty() => {
            let mut block = String::new();
            emit_node(&mut block, indent, item);
            // `block` is "\n" + lines indented by `indent + 2`; turn the first into `- key:`.
            let body = block.trim_start_matches('\n');
            let _ = write!(out, "{pad}- {}", &body[indent + 2..]);
        }
        Node::List(inner) if !inner.iter().all(Node::is_scalar) => {
            let _ = write!(out, "{pad}-");
            emit_node(out, indent, item);
        }
        _ => {
            let mut line = String::new();
            emit_node(&mut line, indent, item);
            let _ = write!(out, "{pad}-{line}");
        }
    }
}

fn flow_list(names: &[String]) -> String {
    format!(
        "[{}]",
        names
            .iter()
            .map(|name| scalar_text(name))
            .collect::<Vec<_>>()
            .join(", ")
    )
}

fn scalar(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::String(text) => scalar_text(text),
        other => other.to_string(),
    }
}

/// A string as a YAML scalar: plain when it is made of harmless characters and reads back as the
/// same string (so `yes`, `0x10` and `1e3` get quoted), else JSON-quoted, which YAML reads as a
/// double-quoted scalar.
fn scalar_text(text: &str) -> String {
    let harmless = text
        .chars()
        .all(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '.' | '/' | '@' | '+' | '~' | '='))
        && text
            .chars()
            .next()
            .is_some_and(|c| c.is_alphanumeric() || matches!(c, '_' | '/' | '.'));
    let reads_back = harmless
        && serde_saphyr::from_str::<serde_json::Value>(text)
            .is_ok_and(|value| value.as_str() == Some(text));
    if reads_back {
        text.to_owned()
    } else {
        serde_json::Value::from(text).to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::{ImportError, expand_ranges, import_ansible, scalar_text, ssh_options};
    use crate::diagnostic::SourceFile;
    use crate::inventory::{GroupName, Inventory};

    const ANSIBLE: &str = r#"
all:
  vars:
    ansible_user: deploy
    ntp_server: ntp.example.net
  hosts:
    bastion:
      ansible_host: bastion.example.net
  children:
    web:
      hosts:
        web[1:2]:
          ansible_port: "2222"
      vars:
        http_port: 8080
        ansible_ssh_common_args: "-o ProxyJump=bastion -o ConnectTimeout=5"
    db:
      hosts:
        db1:
          ansible_host: 10.0.0.21
          ansible_become: true
          ansible_python_interpreter: /usr/bin/python3
          pg_version: 16
          replicas: [db2, db3]
          tuning: { shared_buffers: 1GB, nested: { a: 1 } }
          on: "yes"
    production:
      children:
        web:
        db:
      vars:
        backup: "{{ lookup('env', 'X') }}"
"#;

    #[test]
    fn a_sample_ansible_inventory_converts_to_a_valid_opsgate_inventory() {
        let converted = import_ansible(ANSIBLE).expect("converts");
        let expected = r#"# Converted from an Ansible inventory by `opsgate inventory import`. Review before use:
# - set `environment:` (e.g. production, staging) on groups: the gate relies on it;
# - group variables layer in the order of `groups:` below (a later group wins),
#   not by Ansible's group depth: check variables set in several groups.
defaults:
  user: deploy
  vars:
    ntp_server: ntp.example.net
groups:
  web:
    hosts: [web1, web2]
    ssh_options: [ConnectTimeout=5]
    # ssh option `ProxyJump=bastion` of `ansible_ssh_common_args` is not allowed in `ssh_options` (connection tuning only; use `jump:`, `known_hosts:`, `identity_file:`); dropped
    vars:
      http_port: 8080
  db:
    hosts: [db1]
  production:
    children: [web, db]
    vars:
      backup: "{{ lookup('env', 'X') }}"
hosts:
  bastion:
    address: bastion.example.net
  web1:
    port: 2222
  web2:
    port: 2222
  db1:
    address: 10.0.0.21
    # `ansible_become` has no opsgate equivalent; kept under `vars`
    # `ansible_python_interpreter` has no opsgate equivalent; kept under `vars`
    vars:
      ansible_become: true
      ansible_python_interpreter: /usr/bin/python3
      pg_version: 16
      replicas: [db2, db3]
      tuning:
        shared_buffers: 1GB
        nested:
          a: 1
      "on": "yes"
"#;
        assert_eq!(converted, expected);

        let (inventory, warnings) =
            Inventory::parse(SourceFile::new("/import/hosts.yaml", converted)).expect("valid");
        assert!(warnings.is_empty(), "{warnings:?}");
        let names: Vec<&str> = inventory
            .hosts()
            .iter()
            .map(|host| host.name.as_str())
            .collect();
        assert_eq!(names, ["bastion", "web1", "web2", "db1"]);
        let web2 = inventory.host("web2").expect("web2");
        assert_eq!(web2.port, Some(2222));
        assert_eq!(web2.user.as_deref(), Some("deploy"));
        assert_eq!(web2.address, "web2");
        assert_eq!(web2.ssh_options, ["ConnectTimeout=5"]);
        assert_eq!(
            web2.groups
                .iter()
                .map(GroupName::as_str)
                .collect::<Vec<_>>(),
            ["web", "production"]
        );
        let db1 = inventory.host("db1").expect("db1");
        assert_eq!(db1.vars["tuning"]["nested"]["a"], 1);
        assert_eq!(db1.vars["on"], "yes");
        assert_eq!(db1.vars["ntp_server"], "ntp.example.net");
    }

    #[test]
    fn hosts_listed_twice_merge_their_variables_and_keep_first_order() {
        let text = "all:\n  children:\n    a:\n      hosts:\n        h1: { x: 1 }\n        h2:\n    b:\n      hosts:\n        h1: { x: 2, ansible_host: 10.0.0.1 }\n";
        let converted = import_ansible(text).expect("converts");
        let (inventory, _) =
            Inventory::parse(SourceFile::new("/i/hosts.yaml", converted.clone())).expect("valid");
        let h1 = inventory.host("h1").expect("h1");
        assert_eq!(h1.vars["x"], 2, "{converted}");
        assert_eq!(h1.address, "10.0.0.1");
        assert_eq!(inventory.hosts()[0].name.as_str(), "h1");
    }

    #[test]
    fn host_ranges_and_ports_expand_like_ansible() {
        let cases: &[(&str, Option<&[&str]>)] = &[
            ("web", Some(&["web"])),
            ("web[1:3]", Some(&["web1", "web2", "web3"])),
            ("web[01:03].x", Some(&["web01.x", "web02.x", "web03.x"])),
            ("w[1:5:2]", Some(&["w1", "w3", "w5"])),
            ("db-[a:c]", Some(&["db-a", "db-b", "db-c"])),
            ("r[1:2]c[a:b]", Some(&["r1ca", "r1cb", "r2ca", "r2cb"])),
            ("web[3:1]", None),
            ("web[1]", None),
            ("web[1:x]", None),
            ("web]", None),
        ];
        for (pattern, expected) in cases {
            let expanded = expand_ranges(pattern);
            assert_eq!(
                expanded.as_deref(),
                expected
                    .map(|names| names.iter().map(|&n| n.to_owned()).collect::<Vec<_>>())
                    .as_deref(),
                "{pattern}"
            );
        }
        let converted = import_ansible("all:\n  hosts:\n    web1:2201:\n").expect("converts");
        assert!(
            converted.contains("  web1:\n    port: 2201\n"),
            "{converted}"
        );
    }

    #[test]
    fn ssh_arguments_convert_only_when_they_are_plain_options() {
        assert_eq!(
            ssh_options("-o A=b -oC=d -o 'E=f g'"),
            Some(vec!["A=b".to_owned(), "C=d".to_owned(), "E=f g".to_owned()])
        );
        assert_eq!(
            ssh_options("-o ProxyCommand=\"ssh -W %h:%p b\""),
            Some(vec!["ProxyCommand=ssh -W %h:%p b".to_owned()])
        );
        assert_eq!(ssh_options("-C -o A=b"), None);
        assert_eq!(ssh_options("-o 'A=b"), None);
        let converted =
            import_ansible("all:\n  vars:\n    ansible_ssh_extra_args: -vvv\n").expect("converts");
        assert!(
            converted.contains("# `ansible_ssh_extra_args` has no opsgate equivalent"),
            "{converted}"
        );
    }

    #[test]
    fn scalars_are_quoted_only_when_plain_text_would_change_meaning() {
        let cases = [
            ("web1", "web1"),
            ("10.0.0.11", "10.0.0.11"),
            ("/etc/ssh/key", "/etc/ssh/key"),
            ("yes", "\"yes\""),
            ("0x10", "\"0x10\""),
            ("2222", "\"2222\""),
            ("a b", "\"a b\""),
            ("x: y", "\"x: y\""),
            ("", "\"\""),
            ("-1", "\"-1\""),
        ];
        for (text, expected) in cases {
            assert_eq!(scalar_text(text), expected, "{text}");
        }
    }

    #[test]
    fn unusable_inputs_are_errors_with_hints() {
        let cases: &[(&str, ImportError)] = &[
            (
                "- a\n",
                ImportError::NotAMapping {
                    path: "the document".into(),
                },
            ),
            (
                "all:\n  hostz: {}\n",
                ImportError::UnexpectedKey {
                    group: "all".into(),
                    key: "hostz".into(),
                },
            ),
            (
                "all:\n  hosts: [a]\n",
                ImportError::NotAMapping {
                    path: "all.hosts".into(),
                },
            ),
            (
                "all:\n  hosts:\n    web[1:x]:\n",
                ImportError::InvalidRange {
                    pattern: "web[1:x]".into(),
                },
            ),
            (
                "all:\n  children:\n    web:\n      hosts:\n        web:\n",
                ImportError::HostAndGroup { name: "web".into() },
            ),
        ];
        for (text, expected) in cases {
            let error = import_ansible(text).expect_err(text);
            assert_eq!(&error, expected, "{text}");
            assert!(!error.hints().is_empty());
        }
        let error = import_ansible("all:\n  hosts:\n    'a b':\n").expect_err("invalid name");
        assert_eq!(
            error.to_string(),
            "host `a b` cannot be imported: name `a b` contains ` `"
        );
        let error = import_ansible("all: [\n").expect_err("bad yaml");
        assert!(
            matches!(error, ImportError::Yaml { line: 1, .. }),
            "{error:?}"
        );
    }
}
