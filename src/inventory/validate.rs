//! Schema → model: checks every rule of the inventory and resolves each host's settings.
//!
//! All problems are collected before returning, so one `opsgate validate` shows every mistake
//! in the file. Rules and layering are described in the [module documentation](super).

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_saphyr::Spanned;

use super::model::{Group, GroupName, Host, HostName, Inventory};
use super::schema::{Connection, GroupEntry, HostEntry, InventoryFile, Vars};
use super::ssh_option::{self, Refusal};
use crate::diagnostic::{Diagnostic, Diagnostics, SourceFile, Span};
use crate::suggest::{close_names, did_you_mean};

/// The span of a located value: where it starts and how many characters it covers.
pub(crate) fn span_of<T>(spanned: &Spanned<T>) -> Span {
    let location = spanned.referenced;
    let length = location.span().len();
    Span::new(
        location.line() as u32,
        location.column() as u32,
        length as u32,
    )
}

/// Converts a parsed file into an [`Inventory`], or returns every error found.
pub(crate) fn validate(
    file: Arc<SourceFile>,
    schema: InventoryFile,
) -> Result<(Inventory, Vec<Diagnostic>), Diagnostics> {
    let defaults = schema
        .defaults
        .map(|defaults| defaults.value)
        .unwrap_or_default();
    let groups: Vec<(Spanned<String>, GroupEntry)> = schema
        .groups
        .unwrap_or_default()
        .0
        .into_iter()
        .map(|(name, entry)| (name, entry.unwrap_or_default()))
        .collect();
    let hosts: Vec<(Spanned<String>, HostEntry)> = schema
        .hosts
        .unwrap_or_default()
        .0
        .into_iter()
        .map(|(name, entry)| (name, entry.unwrap_or_default()))
        .collect();
    let mut validator = Validator {
        file: &file,
        diagnostics: Diagnostics::new(),
        host_index: hosts
            .iter()
            .enumerate()
            .map(|(index, (name, _))| (name.value.clone(), index))
            .collect(),
        group_index: groups
            .iter()
            .enumerate()
            .map(|(index, (name, _))| (name.value.clone(), index))
            .collect(),
        host_names: hosts.iter().map(|(name, _)| name.value.clone()).collect(),
        group_names: groups.iter().map(|(name, _)| name.value.clone()).collect(),
    };
    validator.check_names(&hosts, &groups);
    let direct_hosts = validator.direct_hosts(&groups);
    let children = validator.children(&groups);
    validator.check_cycles(&groups, &children);
    let members = transitive_members(&direct_hosts, &children);

    validator.check_connection(defaults.connection(), "defaults", None);
    for (name, group) in &groups {
        let owner = format!("group `{}`", name.value);
        validator.check_connection(group.connection(), &owner, None);
        validator.check_environment(name, group);
        if group.hosts.as_ref().is_none_or(Vec::is_empty)
            && group.children.as_ref().is_none_or(Vec::is_empty)
        {
            validator.warning(
                format!("group `{}` has no hosts and no children", name.value),
                span_of(name),
                vec!["list its members under `hosts:` or `children:`, or remove it".to_owned()],
            );
        }
    }
    for (name, host) in &hosts {
        let owner = format!("host `{}`", name.value);
        validator.check_connection(host.connection(), &owner, Some(&name.value));
    }
    if hosts.is_empty() {
        validator.diagnostics.push(
            Diagnostic::warning("the inventory defines no hosts")
                .at(&file, Span::default())
                .hint("add hosts under `hosts:`, e.g. `web1: { address: 10.0.0.11 }`"),
        );
    }

    let base = file.path.parent().unwrap_or(Path::new("")).to_path_buf();
    let mut resolved = Vec::with_capacity(hosts.len());
    for (index, (name, host)) in hosts.iter().enumerate() {
        let group_indices: Vec<usize> = (0..groups.len())
            .filter(|&group| members[group].contains(&index))
            .collect();
        let environment = validator.environment(name, &group_indices, &groups);
        let mut layers = vec![defaults.connection()];
        layers.extend(
            group_indices
                .iter()
                .map(|&group| groups[group].1.connection()),
        );
        layers.push(host.connection());
        let mut vars = defaults.vars.clone().unwrap_or_default();
        for &group in &group_indices {
            merge_vars(&mut vars, groups[group].1.vars.as_ref());
        }
        merge_vars(&mut vars, host.vars.as_ref());
        resolved.push(Host {
            name: HostName::unchecked(&name.value),
            address: last(&layers, |layer| layer.address)
                .map_or_else(|| name.value.clone(), |address| address.value.clone()),
            port: last(&layers, |layer| layer.port).and_then(|port| u16::try_from(port.value).ok()),
            user: last(&layers, |layer| layer.user).map(|user| user.value.clone()),
            identity_file: last(&layers, |layer| layer.identity_file)
                .map(|path| resolve_path(&base, &path.value)),
            known_hosts: last(&layers, |layer| layer.known_hosts)
                .map(|path| resolve_path(&base, &path.value)),
            ssh_config: last(&layers, |layer| layer.ssh_config)
                .map(|path| resolve_path(&base, &path.value)),
            host_key: last(&layers, |layer| layer.host_key).map(|key| key.value.trim().to_owned()),
            ssh_options: merge_ssh_options(&layers),
            jump: resolve_jump(&layers, &name.value),
            groups: group_indices
                .iter()
                .map(|&group| GroupName::unchecked(&groups[group].0.value))
                .collect(),
            environment,
            vars,
        });
    }
    validator.check_jump_cycles(&resolved, &hosts);

    let model_groups = groups
        .iter()
        .enumerate()
        .map(|(index, (name, group))| Group {
            name: GroupName::unchecked(&name.value),
            hosts: direct_hosts[index]
                .iter()
                .map(|&host| resolved[host].name.clone())
                .collect(),
            children: children[index]
                .iter()
                .map(|&(child, _)| GroupName::unchecked(&groups[child].0.value))
                .collect(),
            environment: group
                .environment
                .as_ref()
                .map(|environment| environment.value.clone()),
            vars: group.vars.clone().unwrap_or_default(),
        })
        .collect();
    let Validator {
        diagnostics,
        host_index,
        group_index,
        ..
    } = validator;
    if diagnostics.has_errors() {
        return Err(diagnostics);
    }
    let inventory = Inventory {
        source: file,
        hosts: resolved,
        groups: model_groups,
        host_index,
        group_index,
    };
    // Only warnings remain; sorted so they read top to bottom like the file.
    Ok((inventory, diagnostics.sorted()))
}

/// The most specific layer's value for one key (layers go from defaults to the host).
fn last<'a, T>(
    layers: &[Connection<'a>],
    key: impl Fn(&Connection<'a>) -> Option<&'a Spanned<T>>,
) -> Option<&'a Spanned<T>> {
    layers.iter().rev().find_map(key)
}

/// The host's `jump`, skipping inherited values that name the host itself, so that a bastion may
/// sit in a group whose other hosts jump through it. A host naming itself is an error reported
/// by [`Validator::check_connection`].
fn resolve_jump(layers: &[Connection<'_>], host: &str) -> Option<HostName> {
    layers
        .iter()
        .rev()
        .filter_map(|layer| layer.jump)
        .find(|jump| jump.value != host)
        .and_then(|jump| HostName::new(&jump.value).ok())
}

/// `ssh_options` of every layer merged per option name (case-insensitive, as ssh reads them);
/// the more specific layer replaces the value in place, new options are appended.
fn merge_ssh_options(layers: &[Connection<'_>]) -> Vec<String> {
    let mut merged: Vec<(String, String)> = Vec::new();
    for option in layers.iter().flat_map(|layer| layer.ssh_options) {
        let Some((key, _)) = option.value.split_once('=') else {
            continue;
        };
        let key = key.trim().to_ascii_lowercase();
        let text = option.value.trim().to_owned();
        match merged.iter_mut().find(|(existing, _)| *existing == key) {
            Some(entry) => entry.1 = text,
            None => merged.push((key, text)),
        }
    }
    merged.into_iter().map(|(_, text)| text).collect()
}

fn merge_vars(vars: &mut Vars, layer: Option<&Vars>) {
    for (key, value) in layer.into_iter().flatten() {
        vars.insert(key.clone(), value.clone());
    }
}

/// `~/x` under the home directory, absolute paths as written, anything else relative to the
/// directory of the inventory file (so the inventory works from any working directory).
fn resolve_path(base: &Path, path: &str) -> PathBuf {
    let joined = if let Some(rest) = path.strip_prefix("~/").or((path == "~").then_some("")) {
        match std::env::home_dir() {
            Some(home) => home.join(rest),
            // Without a home directory, leave `~` for ssh to expand as it sees fit.
            None => PathBuf::from(path),
        }
    } else {
        base.join(path)
    };
    std::path::absolute(&joined).unwrap_or(joined)
}

/// Every host of each group, directly or through children; cycles are tolerated here because
/// they are reported separately.
fn transitive_members(
    direct_hosts: &[Vec<usize>],
    children: &[Vec<(usize, Span)>],
) -> Vec<BTreeSet<usize>> {
    (0..direct_hosts.len())
        .map(|group| {
            let mut members = BTreeSet::new();
            let mut seen = BTreeSet::from([group]);
            let mut pending = vec![group];
            while let Some(current) = pending.pop() {
                members.extend(direct_hosts[current].iter().copied());
                for &(child, _) in &children[current] {
                    if seen.insert(child) {
                        pending.push(child);
                    }
                }
            }
            members
        })
        .collect()
}

struct Validator<'a> {
    file: &'a Arc<SourceFile>,
    diagnostics: Diagnostics,
    host_index: HashMap<String, usize>,
    group_index: HashMap<String, usize>,
    host_names: Vec<String>,
    group_names: Vec<String>,
}

impl Validator<'_> {
    fn error(&mut self, message: String, span: Span, hints: Vec<String>) {
        let mut diagnostic = Diagnostic::error(message).at(self.file, span);
        diagnostic.hints = hints;
        self.diagnostics.push(diagnostic);
    }

    fn warning(&mut self, message: String, span: Span, hints: Vec<String>) {
        let mut diagnostic = Diagnostic::warning(message).at(self.file, span);
        diagnostic.hints = hints;
        self.diagnostics.push(diagnostic);
    }

    fn check_names(
        &mut self,
        hosts: &[(Spanned<String>, HostEntry)],
        groups: &[(Spanned<String>, GroupEntry)],
    ) {
        for (name, _) in hosts {
            if let Err(error) = HostName::new(&name.value) {
                self.error(format!("host {error}"), span_of(name), error.hints());
            }
        }
        for (name, _) in groups {
            if let Err(error) = GroupName::new(&name.value) {
                self.error(format!("group {error}"), span_of(name), error.hints());
            }
            if self.host_index.contains_key(&name.value) {
                self.error(
                    format!("`{}` is both a host and a group", name.value),
                    span_of(name),
                    vec![
                        "rename the group or the host: host patterns could not tell them apart"
                            .to_owned(),
                    ],
                );
            }
        }
    }

    /// The direct members of each group, as host indices; reports unknown and repeated hosts.
    fn direct_hosts(&mut self, groups: &[(Spanned<String>, GroupEntry)]) -> Vec<Vec<usize>> {
        let mut all = Vec::with_capacity(groups.len());
        for (group, entry) in groups {
            let mut members = Vec::new();
            for host in entry.hosts.iter().flatten() {
                match self.host_index.get(&host.value) {
                    Some(&index) if members.contains(&index) => self.warning(
                        format!("group `{}` lists host `{}` twice", group.value, host.value),
                        span_of(host),
                        vec![],
                    ),
                    Some(&index) => members.push(index),
                    None => {
                        let mut hints = Vec::new();
                        if self.group_index.contains_key(&host.value) {
                            hints.push(format!(
                                "`{}` is a group: list it under `children:`",
                                host.value
                            ));
                        } else {
                            hints.extend(did_you_mean(&close_names(
                                &host.value,
                                self.host_names.iter().map(String::as_str),
                            )));
                            hints.push(format!("define `{}` under `hosts:`", host.value));
                        }
                        self.error(
                            format!(
                                "group `{}` lists unknown host `{}`",
                                group.value, host.value
                            ),
                            span_of(host),
                            hints,
                        );
                    }
                }
            }
            all.push(members);
        }
        all
    }

    /// The child groups of each group, with the span of each mention; reports unknown children.
    fn children(&mut self, groups: &[(Spanned<String>, GroupEntry)]) -> Vec<Vec<(usize, Span)>> {
        let mut all = Vec::with_capacity(groups.len());
        for (group, entry) in groups {
            let mut children: Vec<(usize, Span)> = Vec::new();
            for child in entry.children.iter().flatten() {
                match self.group_index.get(&child.value) {
                    Some(&index) if children.iter().any(|&(known, _)| known == index) => self
                        .warning(
                            format!(
                                "group `{}` lists child `{}` twice",
                                group.value, child.value
                            ),
                            span_of(child),
                            vec![],
                        ),
                    Some(&index) => children.push((index, span_of(child))),
                    None => {
                        let mut hints = Vec::new();
                        if self.host_index.contains_key(&child.value) {
                            hints.push(format!(
                                "`{}` is a host: list it under `hosts:`",
                                child.value
                            ));
                        } else {
                            if let Some(hint) = did_you_mean(&close_names(
                                &child.value,
                                self.group_names.iter().map(String::as_str),
                            )) {
                                hints.push(hint);
                            }
                            hints.push(format!("define `{}` under `groups:`", child.value));
                        }
                        self.error(
                            format!(
                                "group `{}` lists unknown child group `{}`",
                                group.value, child.value
                            ),
                            span_of(child),
                            hints,
                        );
                    }
                }
            }
            all.push(children);
        }
        all
    }

    /// Reports each cycle of `children` once, at the mention that closes it.
    fn check_cycles(
        &mut self,
        groups: &[(Spanned<String>, GroupEntry)],
        children: &[Vec<(usize, Span)>],
    ) {
        #[derive(Clone, Copy, PartialEq)]
        enum Mark {
            New,
            Active,
            Done,
        }
        struct Search<'a> {
            children: &'a [Vec<(usize, Span)>],
            marks: Vec<Mark>,
            path: Vec<usize>,
            cycles: Vec<(Vec<usize>, Span)>,
        }
        impl Search<'_> {
            fn visit(&mut self, group: usize) {
                self.marks[group] = Mark::Active;
                self.path.push(group);
                for &(child, span) in &self.children[group] {
                    match self.marks[child] {
                        Mark::New => self.visit(child),
                        Mark::Active => {
                            let start = self
                                .path
                                .iter()
                                .position(|&on_path| on_path == child)
                                .unwrap_or(0);
                            let mut cycle = self.path[start..].to_vec();
                            cycle.push(child);
                            self.cycles.push((cycle, span));
                        }
                        Mark::Done => {}
                    }
                }
                self.path.pop();
                self.marks[group] = Mark::Done;
            }
        }
        let mut search = Search {
            children,
            marks: vec![Mark::New; groups.len()],
            path: Vec::new(),
            cycles: Vec::new(),
        };
        for group in 0..groups.len() {
            if search.marks[group] == Mark::New {
                search.visit(group);
            }
        }
        for (cycle, span) in search.cycles {
            let names: Vec<&str> = cycle
                .iter()
                .map(|&group| groups[group].0.value.as_str())
                .collect();
            self.error(
                format!(
                    "groups form a cycle through `children`: `{}`",
                    names.join(" -> ")
                ),
                span,
                vec![
                    "remove one of these `children:` entries; a group cannot contain itself"
                        .to_owned(),
                ],
            );
        }
    }

    fn check_environment(&mut self, name: &Spanned<String>, group: &GroupEntry) {
        if let Some(environment) = &group.environment
            && environment.value.trim().is_empty()
        {
            self.error(
                format!("group `{}` has an empty `environment`", name.value),
                span_of(environment),
                vec!["name it, e.g. `environment: production`, or remove the key".to_owned()],
            );
        }
    }

    /// The one environment of a host's groups; two different ones are an error at the host.
    fn environment(
        &mut self,
        host: &Spanned<String>,
        group_indices: &[usize],
        groups: &[(Spanned<String>, GroupEntry)],
    ) -> Option<String> {
        let sources: Vec<(&str, &str)> = group_indices
            .iter()
            .filter_map(|&group| {
                let (name, entry) = &groups[group];
                entry
                    .environment
                    .as_ref()
                    .map(|environment| (name.value.as_str(), environment.value.as_str()))
            })
            .collect();
        let (_, first) = *sources.first()?;
        if sources.iter().all(|&(_, environment)| environment == first) {
            return Some(first.to_owned());
        }
        let listed: Vec<String> = sources
            .iter()
            .map(|(group, environment)| format!("`{environment}` from group `{group}`"))
            .collect();
        self.error(
            format!(
                "host `{}` has conflicting environments: {}",
                host.value,
                listed.join(", ")
            ),
            span_of(host),
            vec![
                "a host has one environment: align the groups' `environment:` values or move \
                  the host out of one of them"
                    .to_owned(),
            ],
        );
        None
    }

    /// Checks one layer's connection keys where they are written, so an error in `defaults` is
    /// reported once rather than once per host.
    fn check_connection(&mut self, connection: Connection<'_>, owner: &str, host: Option<&str>) {
        for (key, value) in [
            ("address", connection.address),
            ("user", connection.user),
            ("identity_file", connection.identity_file),
            ("known_hosts", connection.known_hosts),
            ("ssh_config", connection.ssh_config),
        ] {
            if let Some(value) = value
                && value.value.trim().is_empty()
            {
                self.error(
                    format!("{owner} has an empty `{key}`"),
                    span_of(value),
                    vec![format!("set a value or remove `{key}`")],
                );
            }
        }
        if let Some(port) = connection.port
            && !(1..=i64::from(u16::MAX)).contains(&port.value)
        {
            self.error(
                format!("{owner} has invalid port `{}`", port.value),
                span_of(port),
                vec!["a port is a number from 1 to 65535".to_owned()],
            );
        }
        if let Some(jump) = connection.jump {
            self.check_jump(jump, owner, host);
        }
        if let Some(key) = connection.host_key
            && !is_public_key(&key.value)
        {
            self.error(
                format!("{owner} has an invalid `host_key`"),
                span_of(key),
                vec![
                    "paste the server's public key line, e.g. `ssh-ed25519 AAAAC3Nza…` (from \
                      `ssh-keyscan -t ed25519 HOST` or /etc/ssh/ssh_host_ed25519_key.pub)"
                        .to_owned(),
                ],
            );
        }
        for option in connection.ssh_options {
            if !is_key_value(&option.value) {
                self.error(
                    format!(
                        "{owner} has ssh option `{}` that is not `Key=Value`",
                        option.value
                    ),
                    span_of(option),
                    vec!["write it as `ssh -o` takes it, e.g. `ServerAliveInterval=30`".to_owned()],
                );
                continue;
            }
            if let Err(refusal) = ssh_option::check(&option.value) {
                let message = match &refusal {
                    Refusal::Malformed => format!(
                        "{owner} has ssh option `{}` that is not `Key=Value`",
                        option.value
                    ),
                    Refusal::NotAllowed { keyword } => {
                        format!("{owner} has ssh option `{keyword}`, which is not allowed")
                    }
                    Refusal::WidensAlgorithms { keyword, algorithm } => format!(
                        "{owner} has ssh option `{keyword}` with `{algorithm}`, which is not \
                         enabled by default"
                    ),
                };
                self.error(message, span_of(option), refusal.hints());
            }
        }
    }

    fn check_jump(&mut self, jump: &Spanned<String>, owner: &str, host: Option<&str>) {
        if host == Some(jump.value.as_str()) {
            self.error(
                format!("{owner} jumps through itself"),
                span_of(jump),
                vec!["remove `jump`, or name the bastion host to connect through".to_owned()],
            );
        } else if !self.host_index.contains_key(&jump.value) {
            let mut hints = Vec::new();
            if self.group_index.contains_key(&jump.value) {
                hints.push(format!(
                    "`{}` is a group; `jump` names one host",
                    jump.value
                ));
            } else {
                hints.extend(did_you_mean(&close_names(
                    &jump.value,
                    self.host_names.iter().map(String::as_str),
                )));
                hints.push(format!("define `{}` under `hosts:`", jump.value));
            }
            self.error(
                format!("{owner} jumps through unknown host `{}`", jump.value),
                span_of(jump),
                hints,
            );
        }
    }

    /// Jump chains that loop (`a` through `b`, `b` through `a`) would make ssh recurse forever.
    fn check_jump_cycles(&mut self, resolved: &[Host], hosts: &[(Spanned<String>, HostEntry)]) {
        let mut reported: BTreeSet<usize> = BTreeSet::new();
        for start in 0..resolved.len() {
            let mut chain = vec![start];
            let mut current = start;
            while let Some(next) = resolved[current]
                .jump
                .as_ref()
                .and_then(|jump| self.host_index.get(jump.as_str()).copied())
            {
                if let Some(position) = chain.iter().position(|&seen| seen == next) {
                    let cycle = &chain[position..];
                    if cycle.iter().all(|host| !reported.contains(host)) {
                        reported.extend(cycle.iter().copied());
                        let first = *cycle.iter().min().unwrap_or(&next);
                        let rotation = cycle.iter().position(|&host| host == first).unwrap_or(0);
                        let mut names: Vec<&str> = cycle[rotation..]
                            .iter()
                            .chain(&cycle[..rotation])
                            .map(|&host| hosts[host].0.value.as_str())
                            .collect();
                        names.push(names[0]);
                        self.error(
                            format!("jump hosts form a cycle: `{}`", names.join(" -> ")),
                            span_of(&hosts[first].0),
                            vec![
                                "a host cannot reach itself through its jump hosts; the \
                                  bastion at the end of a chain needs no `jump`"
                                    .to_owned(),
                            ],
                        );
                    }
                    break;
                }
                chain.push(next);
                current = next;
            }
        }
    }
}

/// `Key=Value` with a non-empty option name made of letters and digits, as `ssh_config` spells them.
fn is_key_value(option: &str) -> bool {
    option.split_once('=').is_some_and(|(key, value)| {
        !key.is_empty()
            && key
                .chars()
                .all(|character| character.is_ascii_alphanumeric())
            && !value.trim().is_empty()
    })
}

/// `<type> <base64> [comment]` with a key type ssh knows the shape of.
fn is_public_key(key: &str) -> bool {
    let mut fields = key.split_whitespace();
    let kind = fields.next().unwrap_or_default();
    let body = fields.next().unwrap_or_default();
    ["ssh-", "ecdsa-", "sk-"]
        .iter()
        .any(|prefix| kind.starts_with(prefix))
        && body.len() >= 16
        && body
            .chars()
            .all(|character| character.is_ascii_alphanumeric() || "+/=".contains(character))
}
