//! `file`: ensure a path is a file, a directory, a link, or absent, with the given attributes.

use thiserror::Error;

use super::{Context, Outcome, RunMode, quote};
use crate::runbook::model::{FileKind, FileState};
use crate::transport::{Transport, TransportError};

/// Why the path cannot be brought to the wanted state without destroying what is there.
#[derive(Debug, Error, PartialEq, Eq)]
enum Conflict {
    #[error("`{0}` exists and is not a link; remove it first")]
    NotALink(String),
    #[error("`{path}` exists but is not a {}", wanted.noun())]
    WrongKind { path: String, wanted: FileKind },
}

/// How a message names a kind of node.
trait Noun {
    fn noun(self) -> &'static str;
}

impl Noun for FileKind {
    fn noun(self) -> &'static str {
        match self {
            FileKind::File => "regular file",
            FileKind::Directory => "directory",
            FileKind::Link => "link",
            FileKind::Absent => "nothing",
        }
    }
}

#[derive(Debug, PartialEq)]
enum Existing {
    Absent,
    Link(String),
    Node {
        kind: FileKind,
        mode: u32,
        owner: String,
        group: String,
    },
}

/// Compares the path's state with the wanted one, then changes it (unless `--check`).
pub(super) async fn run<T: Transport>(
    context: &Context<'_, T>,
    file: &FileState<String>,
    mode: Option<u32>,
) -> Result<Outcome, TransportError> {
    let path = file.path.as_str();
    if path.trim_end_matches('/').is_empty() {
        return Ok(Outcome::failed("refusing to manage `/`"));
    }
    let query = format!(
        "p={}; if [ -L \"$p\" ]; then printf 'link %s\\n' \"$(readlink -- \"$p\")\"; \
         elif [ -d \"$p\" ]; then printf 'directory %s\\n' \"$(stat -c '%a %U %G' -- \"$p\")\"; \
         elif [ -e \"$p\" ]; then printf 'file %s\\n' \"$(stat -c '%a %U %G' -- \"$p\")\"; else echo absent; fi",
        quote(path)
    );
    let output = context.shell(query).await?;
    if !output.success() {
        return Ok(Outcome::failed_with(
            format!("cannot inspect `{path}`: {}", output.failure()),
            &output,
        ));
    }
    let Some(existing) = parse_existing(&output.stdout_text()) else {
        return Ok(Outcome::failed(format!(
            "unexpected answer inspecting `{path}`"
        )));
    };
    let (mut changes, mut script) = match plan_state(file, &existing) {
        Ok(plan) => plan,
        Err(conflict) => return Ok(Outcome::failed(conflict.to_string())),
    };
    if file.state != FileKind::Absent {
        let (current_mode, current_owner, current_group) = match &existing {
            Existing::Node {
                mode, owner, group, ..
            } => (Some(*mode), Some(owner.as_str()), Some(group.as_str())),
            _ => (None, None, None),
        };
        let quoted = quote(path);
        // Links carry no mode of their own; owner and group apply to the link itself (-h).
        if let Some(mode) =
            mode.filter(|mode| Some(*mode) != current_mode && file.state != FileKind::Link)
        {
            changes.push(format!("mode {mode:04o}"));
            script.push(format!("chmod {mode:04o} -- {quoted}"));
        }
        if let Some(owner) = file
            .attributes
            .owner
            .as_deref()
            .filter(|owner| Some(*owner) != current_owner)
        {
            changes.push(format!("owner {owner}"));
            script.push(format!("chown -h -- {} {quoted}", quote(owner)));
        }
        if let Some(group) = file
            .attributes
            .group
            .as_deref()
            .filter(|group| Some(*group) != current_group)
        {
            changes.push(format!("group {group}"));
            script.push(format!("chgrp -h -- {} {quoted}", quote(group)));
        }
    }
    if changes.is_empty() {
        return Ok(Outcome::ok(None));
    }
    let summary = format!("{path}: {}", changes.join(", "));
    if context.mode == RunMode::Check {
        return Ok(Outcome::changed(format!("would change {summary}")));
    }
    let output = context
        .shell(format!("set -e; {}", script.join("; ")))
        .await?;
    if !output.success() {
        return Ok(Outcome::failed_with(
            format!("cannot change `{path}`: {}", output.failure()),
            &output,
        ));
    }
    Ok(Outcome::changed(summary))
}

/// The state change needed (descriptions and commands), or why it cannot be made safely.
fn plan_state(
    file: &FileState<String>,
    existing: &Existing,
) -> Result<(Vec<String>, Vec<String>), Conflict> {
    let path = quote(&file.path);
    let is =
        |kind: FileKind| matches!(existing, Existing::Node { kind: found, .. } if *found == kind);
    Ok(match file.state {
        FileKind::File if is(FileKind::File) => (vec![], vec![]),
        FileKind::File if *existing == Existing::Absent => {
            (vec!["created".into()], vec![format!("touch -- {path}")])
        }
        FileKind::Directory if is(FileKind::Directory) => (vec![], vec![]),
        FileKind::Directory if *existing == Existing::Absent => (
            vec!["created directory".into()],
            vec![format!("mkdir -p -- {path}")],
        ),
        FileKind::Absent if *existing == Existing::Absent => (vec![], vec![]),
        FileKind::Absent => (vec!["removed".into()], vec![format!("rm -rf -- {path}")]),
        FileKind::Link => {
            let target = file.src.clone().unwrap_or_default();
            match existing {
                Existing::Link(current) if *current == target => (vec![], vec![]),
                Existing::Link(_) | Existing::Absent => (
                    vec![format!("link → {target}")],
                    vec![format!("ln -sfn -- {} {path}", quote(&target))],
                ),
                Existing::Node { .. } => {
                    return Err(Conflict::NotALink(file.path.clone()));
                }
            }
        }
        FileKind::File | FileKind::Directory => {
            return Err(Conflict::WrongKind {
                path: file.path.clone(),
                wanted: file.state,
            });
        }
    })
}

fn parse_existing(answer: &str) -> Option<Existing> {
    let (kind, rest) = answer.split_once(' ').unwrap_or((answer, ""));
    let node = |kind| {
        let mut words = rest.split_whitespace();
        Some(Existing::Node {
            kind,
            mode: u32::from_str_radix(words.next()?, 8).ok()?,
            owner: words.next()?.to_owned(),
            group: words.next()?.to_owned(),
        })
    };
    match kind {
        "absent" => Some(Existing::Absent),
        "link" => Some(Existing::Link(rest.to_owned())),
        "directory" => node(FileKind::Directory),
        "file" => node(FileKind::File),
        _ => None,
    }
}
