//! `copy` and `template`: put bytes at a remote path, changed only when checksum or attributes
//! differ, written to a temp file beside the destination, verified, then renamed over it — so a
//! host never holds a half-written file, even if the connection drops mid-upload.

use std::fmt::Write as _;

use sha2::{Digest, Sha256};
use thiserror::Error;

use super::{Context, DiffMode, Outcome, RunMode, quote};
use crate::plan::redact;
use crate::runbook::model::{Content, Copy};
use crate::secret::{MASK, Secret};
use crate::transport::{Transport, TransportError};

/// Largest existing file fetched to show a `--diff`.
const DIFF_LIMIT: u64 = 1024 * 1024;

/// Why the destination cannot hold the file.
#[derive(Debug, Error, PartialEq, Eq)]
enum Conflict {
    #[error("destination is a directory")]
    Directory,
}

/// What the destination looks like now.
#[derive(Debug, PartialEq)]
enum Existing {
    Absent,
    Directory,
    File {
        mode: u32,
        owner: String,
        group: String,
        sha256: String,
    },
}

/// Compares, then writes (unless `--check`).
pub(super) async fn run<T: Transport>(
    context: &Context<'_, T>,
    copy: &Copy<String>,
    mode: Option<u32>,
    backup: bool,
) -> Result<Outcome, TransportError> {
    let bytes: &[u8] = match &copy.content {
        Content::Bytes { bytes, .. } => bytes,
        Content::Text(text) => text.as_bytes(),
    };
    let dest = &copy.dest;
    let existing = match query(context, dest).await? {
        Ok(existing) => existing,
        Err(failure) => return Ok(failure),
    };
    let sha256 = hex::encode(Sha256::digest(bytes));
    let changes = changes(
        &existing,
        &sha256,
        mode,
        copy.attributes.owner.as_deref(),
        copy.attributes.group.as_deref(),
    );
    let changes = match changes {
        Ok(changes) => changes,
        Err(conflict) => return Ok(Outcome::failed(conflict.to_string())),
    };
    if changes.is_empty() {
        return Ok(Outcome::ok(None));
    }
    let content_changed = changes
        .iter()
        .any(|change| change == "content" || change == "created");
    let diff = if context.diff == DiffMode::Show && content_changed {
        Some(diff(context, dest, &existing, bytes).await?)
    } else {
        None
    };
    let summary = format!("{dest}: {}", changes.join(", "));
    if context.mode == RunMode::Check {
        return Ok(Outcome {
            diff,
            ..Outcome::changed(format!("would change {summary}"))
        });
    }
    let script = if content_changed {
        write_script(
            dest,
            &sha256,
            mode,
            copy.attributes.owner.as_deref(),
            copy.attributes.group.as_deref(),
            backup,
            &existing,
        )
    } else {
        attributes_script(
            dest,
            mode,
            copy.attributes.owner.as_deref(),
            copy.attributes.group.as_deref(),
        )
    };
    let stdin = content_changed.then(|| bytes.to_vec());
    let output = context.shell_with(script, stdin, None).await?;
    if !output.success() {
        return Ok(Outcome::failed_with(
            format!("cannot write `{dest}`: {}", output.failure()),
            &output,
        ));
    }
    Ok(Outcome {
        diff,
        ..Outcome::changed(summary)
    })
}

async fn query<T: Transport>(
    context: &Context<'_, T>,
    dest: &str,
) -> Result<Result<Existing, Outcome>, TransportError> {
    let script = format!(
        "p={}; if [ -d \"$p\" ]; then echo directory; elif [ -e \"$p\" ]; then \
         printf 'file %s ' \"$(stat -c '%a %U %G' -- \"$p\")\" && sha256sum -- \"$p\" | cut -d' ' -f1; \
         else echo absent; fi",
        quote(dest)
    );
    let output = context.shell(script).await?;
    if !output.success() {
        return Ok(Err(Outcome::failed_with(
            format!("cannot inspect `{dest}`: {}", output.failure()),
            &output,
        )));
    }
    Ok(parse_existing(&output.stdout_text())
        .ok_or_else(|| Outcome::failed(format!("unexpected answer inspecting `{dest}`"))))
}

fn parse_existing(answer: &str) -> Option<Existing> {
    let mut words = answer.split_whitespace();
    match words.next()? {
        "absent" => Some(Existing::Absent),
        "directory" => Some(Existing::Directory),
        "file" => Some(Existing::File {
            mode: u32::from_str_radix(words.next()?, 8).ok()?,
            owner: words.next()?.to_owned(),
            group: words.next()?.to_owned(),
            sha256: words.next()?.to_owned(),
        }),
        _ => None,
    }
}

/// What would change, in words; an error when the destination cannot hold a file.
fn changes(
    existing: &Existing,
    sha256: &str,
    mode: Option<u32>,
    owner: Option<&str>,
    group: Option<&str>,
) -> Result<Vec<String>, Conflict> {
    match existing {
        Existing::Directory => Err(Conflict::Directory),
        Existing::Absent => Ok(vec!["created".to_owned()]),
        Existing::File {
            mode: current_mode,
            owner: current_owner,
            group: current_group,
            sha256: current,
        } => {
            let mut changes = Vec::new();
            if current != sha256 {
                changes.push("content".to_owned());
            }
            if let Some(mode) = mode.filter(|mode| mode != current_mode) {
                changes.push(format!("mode {current_mode:04o} → {mode:04o}"));
            }
            if let Some(owner) = owner.filter(|owner| owner != current_owner) {
                changes.push(format!("owner {current_owner} → {owner}"));
            }
            if let Some(group) = group.filter(|group| group != current_group) {
                changes.push(format!("group {current_group} → {group}"));
            }
            Ok(changes)
        }
    }
}

/// Upload on stdin into a temp file in the destination's directory, verify its checksum, set
/// attributes, optionally keep a backup, then rename: the destination only ever holds the old or
/// the complete new file.
fn write_script(
    dest: &str,
    sha256: &str,
    mode: Option<u32>,
    owner: Option<&str>,
    group: Option<&str>,
    backup: bool,
    existing: &Existing,
) -> String {
    let mut script = format!(
        "set -e; dest={}; tmp=$(mktemp \"$(dirname -- \"$dest\")/.opsgate.XXXXXXXX\"); \
         trap 'rm -f -- \"$tmp\"' EXIT; trap 'exit 1' HUP INT TERM; cat > \"$tmp\"; \
         [ \"$(sha256sum < \"$tmp\" | cut -d' ' -f1)\" = {} ] || {{ echo 'upload checksum mismatch' >&2; exit 1; }}; ",
        quote(dest),
        quote(sha256)
    );
    let mode = mode.or(match existing {
        Existing::File { mode, .. } => Some(*mode),
        _ => None,
    });
    let _ = write!(script, "chmod {:04o} -- \"$tmp\"; ", mode.unwrap_or(0o644));
    if let Existing::File { .. } = existing {
        // A replaced file keeps its owner unless the step names one.
        script.push_str("chown --reference=\"$dest\" \"$tmp\" 2>/dev/null || true; ");
    }
    push_ownership(&mut script, "\"$tmp\"", owner, group);
    if backup && matches!(existing, Existing::File { .. }) {
        script.push_str("cp -p -- \"$dest\" \"$dest.$(date -u +%Y%m%dT%H%M%SZ)~\"; ");
    }
    // The bytes reach the disk before the rename makes them the file: after a host crash the
    // destination holds the old or the new content, never an empty file.
    script
        .push_str("sync -- \"$tmp\" 2>/dev/null || true; mv -f -- \"$tmp\" \"$dest\"; trap - EXIT");
    script
}

fn attributes_script(
    dest: &str,
    mode: Option<u32>,
    owner: Option<&str>,
    group: Option<&str>,
) -> String {
    let mut script = format!("set -e; dest={}; ", quote(dest));
    if let Some(mode) = mode {
        let _ = write!(script, "chmod {mode:04o} -- \"$dest\"; ");
    }
    push_ownership(&mut script, "\"$dest\"", owner, group);
    script.push(':');
    script
}

fn push_ownership(script: &mut String, target: &str, owner: Option<&str>, group: Option<&str>) {
    if let Some(owner) = owner {
        let _ = write!(script, "chown -- {} {target}; ", quote(owner));
    }
    if let Some(group) = group {
        let _ = write!(script, "chgrp -- {} {target}; ", quote(group));
    }
}

async fn diff<T: Transport>(
    context: &Context<'_, T>,
    dest: &str,
    existing: &Existing,
    new: &[u8],
) -> Result<String, TransportError> {
    let old = match existing {
        Existing::File { .. } => {
            let script = format!(
                "p={}; [ \"$(stat -c %s -- \"$p\")\" -le {DIFF_LIMIT} ] && cat -- \"$p\"",
                quote(dest)
            );
            let output = context.shell(script).await?;
            if !output.success() {
                return Ok(format!(
                    "--- {dest}\n+++ {dest}\n(existing file too large to diff)\n"
                ));
            }
            output.stdout
        }
        _ => Vec::new(),
    };
    Ok(unified_diff(dest, &old, new, context.secrets))
}

/// A unified diff of two file contents with secrets masked on both sides, or a note when
/// either is not text.
#[must_use]
fn unified_diff(path: &str, old: &[u8], new: &[u8], secrets: &[Secret<String>]) -> String {
    match (std::str::from_utf8(old), std::str::from_utf8(new)) {
        (Ok(old), Ok(new)) => {
            let diff = similar::TextDiff::from_lines(old, new)
                .unified_diff()
                .context_radius(3)
                .header(&format!("{path} (before)"), &format!("{path} (after)"))
                .to_string();
            mask_diff(&diff, new, secrets)
        }
        _ => format!("binary files differ: {path}\n"),
    }
}

/// Masks secrets on both sides of a diff. The new side and context hold today's values, which
/// are known and replaced by [`MASK`] wherever they appear. The old side may hold a *previous*
/// value nobody gave us: a removed line shaped like a new line that carries a secret (same text
/// before and after the secret, e.g. `password=` and nothing) has that middle part masked too, so a
/// rotated password shows as `-password=***` / `+password=***`.
fn mask_diff(diff: &str, new: &str, secrets: &[Secret<String>]) -> String {
    let values: Vec<&str> = secrets
        .iter()
        .map(|secret| secret.expose().as_str())
        .filter(|value| !value.is_empty())
        .collect();
    // (text before the first secret, text after the last one) of every new line with a secret.
    let shapes: Vec<(&str, &str)> = new
        .lines()
        .filter_map(|line| {
            let start = values.iter().filter_map(|value| line.find(value)).min()?;
            let end = values
                .iter()
                .filter_map(|value| line.rfind(value).map(|at| at + value.len()))
                .max()?;
            Some((&line[..start], &line[end..]))
        })
        .collect();
    let mut masked = String::with_capacity(diff.len());
    for line in diff.split_inclusive('\n') {
        let (body, newline) = match line.strip_suffix('\n') {
            Some(body) => (body, "\n"),
            None => (line, ""),
        };
        let removed = body.strip_prefix('-').filter(|_| !body.starts_with("--- "));
        let reshaped = removed.and_then(|text| {
            shapes.iter().find_map(|(before, after)| {
                (text.len() >= before.len() + after.len()
                    && text.starts_with(before)
                    && text.ends_with(after))
                .then(|| format!("-{before}{MASK}{after}"))
            })
        });
        masked.push_str(&redact(reshaped.as_deref().unwrap_or(body), secrets));
        masked.push_str(newline);
    }
    masked
}

#[cfg(test)]
mod tests {
    use super::{Existing, changes, parse_existing, unified_diff};
    use crate::secret::Secret;

    #[test]
    fn existing_files_are_parsed_from_the_query() {
        assert_eq!(
            parse_existing("file 640 root adm abc123"),
            Some(Existing::File {
                mode: 0o640,
                owner: "root".into(),
                group: "adm".into(),
                sha256: "abc123".into()
            })
        );
        assert_eq!(parse_existing("absent"), Some(Existing::Absent));
        assert_eq!(parse_existing("garbage"), None);
    }

    #[test]
    fn only_real_differences_are_changes() {
        let existing = Existing::File {
            mode: 0o644,
            owner: "root".into(),
            group: "root".into(),
            sha256: "s".into(),
        };
        assert_eq!(
            changes(&existing, "s", Some(0o644), Some("root"), None),
            Ok(vec![])
        );
        assert_eq!(
            changes(&existing, "t", Some(0o600), None, None),
            Ok(vec!["content".into(), "mode 0644 → 0600".into()])
        );
        assert!(changes(&Existing::Directory, "s", None, None, None).is_err());
    }

    #[test]
    fn diffs_are_unified() {
        let diff = unified_diff("/etc/app.conf", b"a\nb\n", b"a\nc\n", &[]);
        assert!(diff.contains("-b\n+c\n"), "{diff}");
    }

    #[test]
    fn diffs_mask_secrets_on_both_sides() {
        let secrets = [Secret::new("n3w-s3cret".to_owned())];
        // A rotated secret: the old value is unknown, its line has the new line's shape.
        let diff = unified_diff(
            "/etc/app.conf",
            b"user=app\npassword=0ld-s3cret\nport=1\n",
            b"user=app\npassword=n3w-s3cret\nport=2\n",
            &secrets,
        );
        assert!(diff.contains("-password=***\n"), "{diff}");
        assert!(diff.contains("+password=***\n"), "{diff}");
        assert!(
            diff.contains("-port=1\n") && diff.contains("+port=2\n"),
            "{diff}"
        );
        assert!(!diff.contains("s3cret"), "{diff}");
        // The secret is unchanged but another line is: context keeps it masked.
        let diff = unified_diff(
            "/etc/app.conf",
            b"token: n3w-s3cret\nport=1\n",
            b"token: n3w-s3cret\nport=2\n",
            &secrets,
        );
        assert!(diff.contains(" token: ***\n"), "{diff}");
        assert!(!diff.contains("s3cret"), "{diff}");
        // The secret leaves the file: the old side is masked by value.
        let diff = unified_diff("/etc/app.conf", b"k=n3w-s3cret\n", b"k=\n", &secrets);
        assert!(diff.contains("-k=***\n"), "{diff}");
        assert!(!diff.contains("s3cret"), "{diff}");
    }
}
