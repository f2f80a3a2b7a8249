//! `backup`: archive paths (or keep a command's output) in a remote store, with a SHA-256
//! manifest beside it, then prune old backups of the same runbook and host.
//!
//! Format, decided per host when the backup is taken: `tar --numeric-owner -cpf` (owners as
//! numbers, modes, symlinks as links) compressed with zstd when `zstd` is installed on the host
//! (`.tar.zst`), else with gzip (`.tar.gz`); a `dump` is the command's standard output as is
//! (`.dump`). Paths are archived relative to `/` (member `etc/app` for `/etc/app`), so a restore
//! puts them back at their original place or under a `target`. The store itself is excluded, so
//! backing up a tree that contains it does not archive older backups.
//!
//! File names are `<runbook>-<host>-<YYYYMMDDTHHMMSSZ>[-N].<ext>` in UTC host time; the id is
//! the name without its extension, and `-N` is added when that id is taken (two backups in the
//! same second). The archive is written as `.<name>.partial` (claimed with `set -C`, so two
//! runs cannot share it), checksummed, then the manifest `<name>.sha256` (`sha256sum` format)
//! and the archive are renamed into place — the manifest first, so a listed backup always has
//! one. The store is created with mode 0700 and backups are written 0600: they hold whatever
//! the paths held.
//!
//! `keep: N` keeps the newest N backups of this runbook and host (the new one included, and
//! never deleted even when the host clock went backwards); without `keep` nothing is pruned.
//! Archives and most dumps are byte-for-byte reproducible, so a backup whose bytes equal the
//! newest backup of this runbook and host (its manifest's SHA-256, re-checked against the file)
//! is discarded and the step is `ok`, registering that newest backup: running a backup twice
//! does not fill the store with copies, and retention only runs when a backup is written. A
//! dump that embeds the time (`pg_dump -Fc`) is new every time and `changed`. Under `--check` a
//! backup of paths streams the archive to `sha256sum` (nothing written) to say `ok` or "would
//! write", with what it would prune; a dump is not run (`skipped` when a path does not exist
//! yet, since an earlier step that `--check` did not run may create it).

use std::cmp::Reverse;
use std::fmt::Write as _;

use serde_json::{Map, Value};
use thiserror::Error;

use super::{BackupMade, Context, Outcome, RunMode, quote};
use crate::runbook::model::{Backup, BackupSource};
use crate::transport::{Transport, TransportError};

/// How a backup's bytes are stored, named by its file extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Format {
    /// `tar` compressed with zstd.
    TarZstd,
    /// `tar` compressed with gzip.
    TarGzip,
    /// A command's standard output.
    Dump,
}

impl Format {
    const ALL: [Format; 3] = [Format::TarZstd, Format::TarGzip, Format::Dump];

    /// The file extension, without the dot.
    pub(super) fn extension(self) -> &'static str {
        match self {
            Format::TarZstd => "tar.zst",
            Format::TarGzip => "tar.gz",
            Format::Dump => "dump",
        }
    }

    /// The `tar` option that (de)compresses this format; `None` for a dump.
    pub(super) fn tar_option(self) -> Option<&'static str> {
        match self {
            Format::TarZstd => Some("--use-compress-program=zstd"),
            Format::TarGzip => Some("--gzip"),
            Format::Dump => None,
        }
    }
}

/// A backup file name, parsed: `<prefix>-<stamp>[-<sequence>].<extension>`, where the prefix is
/// `<runbook>-<host>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct BackupName {
    /// `<runbook>-<host>`.
    pub(super) prefix: String,
    /// `YYYYMMDDTHHMMSSZ`.
    pub(super) stamp: String,
    /// 0 for the first backup of that second, then 1, 2 …
    pub(super) sequence: u32,
    /// How the bytes are stored.
    pub(super) format: Format,
}

impl BackupName {
    /// Parses a file name from the store; `None` for anything that is not a backup (manifests,
    /// partial files, foreign files).
    pub(super) fn parse(file: &str) -> Option<Self> {
        let (id, format) = Format::ALL.iter().find_map(|format| {
            file.strip_suffix(format.extension())
                .and_then(|rest| rest.strip_suffix('.'))
                .map(|id| (id, *format))
        })?;
        if id.starts_with('.') {
            return None;
        }
        let (rest, sequence) = match id.rsplit_once('-') {
            Some((rest, digits))
                if !digits.is_empty()
                    && digits.bytes().all(|byte| byte.is_ascii_digit())
                    && rest.len() > 16 =>
            {
                (rest, digits.parse().ok()?)
            }
            _ => (id, 0),
        };
        let (prefix, stamp) = rest.rsplit_once('-')?;
        if prefix.is_empty() || !is_stamp(stamp) {
            return None;
        }
        Some(Self {
            prefix: prefix.to_owned(),
            stamp: stamp.to_owned(),
            sequence,
            format,
        })
    }

    /// The id: the file name without its extension.
    pub(super) fn id(&self) -> String {
        if self.sequence == 0 {
            format!("{}-{}", self.prefix, self.stamp)
        } else {
            format!("{}-{}-{}", self.prefix, self.stamp, self.sequence)
        }
    }

    /// The file name in the store.
    pub(super) fn file_name(&self) -> String {
        format!("{}.{}", self.id(), self.format.extension())
    }

    /// Newer backups sort greater.
    pub(super) fn age_key(&self) -> (String, u32) {
        (self.stamp.clone(), self.sequence)
    }

    /// Whether this is a backup of `host`, from any runbook: the prefix is `<runbook>-<host>`
    /// with a non-empty runbook id.
    pub(super) fn is_of_host(&self, host: &str) -> bool {
        self.prefix
            .strip_suffix(host)
            .and_then(|runbook| runbook.strip_suffix('-'))
            .is_some_and(|runbook| !runbook.is_empty())
    }
}

/// `YYYYMMDDTHHMMSSZ`.
fn is_stamp(text: &str) -> bool {
    let bytes = text.as_bytes();
    bytes.len() == 16
        && bytes[8] == b'T'
        && bytes[15] == b'Z'
        && bytes[..8].iter().all(u8::is_ascii_digit)
        && bytes[9..15].iter().all(u8::is_ascii_digit)
}

/// Every backup in a store listing (one file name per line).
pub(super) fn backups_in(listing: &str) -> Vec<BackupName> {
    listing.lines().filter_map(BackupName::parse).collect()
}

/// The store path without trailing slashes (`/` stays `/`).
pub(super) fn normalize_store(store: &str) -> String {
    let trimmed = store.trim_end_matches('/');
    if trimmed.is_empty() {
        "/".to_owned()
    } else {
        trimmed.to_owned()
    }
}

/// `store/name`, without a double slash for a store of `/`.
pub(super) fn join(store: &str, name: &str) -> String {
    if store.ends_with('/') {
        format!("{store}{name}")
    } else {
        format!("{store}/{name}")
    }
}

/// An absolute path as a tar member relative to `/` (`/etc/app/` → `etc/app`, `/` → `.`).
pub(super) fn member(path: &str) -> String {
    let relative = path.trim_matches('/');
    if relative.is_empty() {
        ".".to_owned()
    } else {
        relative.to_owned()
    }
}

/// Why a backup step's rendered fields cannot be used.
#[derive(Debug, Error, PartialEq, Eq)]
enum Invalid {
    #[error("store `{0}` is not an absolute path")]
    RelativeStore(String),
    #[error("backup path `{0}` is not an absolute path")]
    RelativePath(String),
    #[error("`keep: 0` would delete the backup just made; use 1 or more")]
    KeepZero,
}

/// Checks the rendered fields: absolute paths and store, `keep` at least 1.
fn check_fields(backup: &Backup<String>, keep: Option<u32>) -> Result<Option<usize>, Invalid> {
    if !backup.store.starts_with('/') {
        return Err(Invalid::RelativeStore(backup.store.clone()));
    }
    if let BackupSource::Paths(paths) = &backup.source {
        if let Some(path) = paths.iter().find(|path| !path.starts_with('/')) {
            return Err(Invalid::RelativePath(path.clone()));
        }
    }
    match keep {
        None => Ok(None),
        Some(0) => Err(Invalid::KeepZero),
        Some(keep) => Ok(Some(keep as usize)),
    }
}

/// Takes the backup (or, under `--check`, says what it would take) and prunes old ones.
pub(super) async fn run<T: Transport>(
    context: &Context<'_, T>,
    backup: &Backup<String>,
    keep: Option<u32>,
) -> Result<Outcome, TransportError> {
    let keep = match check_fields(backup, keep) {
        Ok(keep) => keep,
        Err(invalid) => return Ok(Outcome::failed(invalid.to_string())),
    };
    let store = normalize_store(&backup.store);
    let prefix = format!("{}-{}", context.runbook, context.host);
    if context.mode == RunMode::Check {
        return check(context, backup, &store, &prefix, keep).await;
    }
    let newest = match newest_backup(context, &store, &prefix).await? {
        Ok(newest) => newest,
        Err(failure) => return Ok(failure),
    };
    let output = context
        .shell(write_script(backup, &store, &prefix, newest.as_ref()))
        .await?;
    if !output.success() {
        return Ok(Outcome::failed_with(
            format!("backup into `{store}` failed: {}", output.failure()),
            &output,
        ));
    }
    let stdout = output.stdout_text();
    let Some(written) = parse_written(&stdout) else {
        return Ok(Outcome::failed_with(
            "unexpected answer from the backup script",
            &output,
        ));
    };
    let path = join(&store, &written.name.file_name());
    let mut extra = Map::new();
    extra.insert("id".into(), Value::String(written.name.id()));
    extra.insert("path".into(), Value::String(path.clone()));
    extra.insert("size".into(), Value::from(written.size));
    extra.insert("sha256".into(), Value::String(written.sha256.clone()));
    let mut made = BackupMade {
        id: written.name.id(),
        store: store.clone(),
        path: path.clone(),
        size: written.size,
        sha256: written.sha256.clone(),
        removed: Vec::new(),
    };
    if written.unchanged {
        // Nothing was written, so nothing is pruned either: retention runs with a new backup.
        return Ok(Outcome {
            extra,
            ..Outcome::ok(format!(
                "unchanged since backup `{}` (same SHA-256); nothing written",
                written.name.id()
            ))
        });
    }
    let mut message = format!("wrote {path} ({} bytes)", written.size);
    if written.tar_warned {
        message.push_str("; tar warned that files changed while they were read");
    }
    if let Some(keep) = keep {
        let old = prune_list(&written.listing, &prefix, &written.name, keep);
        if !old.is_empty() {
            // One backup at a time, each named once its file is gone (its manifest after it),
            // so a failure part-way still says exactly which ones were removed.
            let mut script = format!("cd -- {} || exit 1; rc=0; ", quote(&store));
            for name in &old {
                let file = name.file_name();
                let _ = write!(
                    script,
                    "if rm -f -- {file}; then echo removed {id}; rm -f -- {manifest} || rc=1; \
                     else rc=1; fi; ",
                    file = quote(&file),
                    id = quote(&name.id()),
                    manifest = quote(&format!("{file}.sha256"))
                );
            }
            script.push_str("exit $rc");
            let removed = context.shell(script).await?;
            made.removed = removed
                .stdout_text()
                .lines()
                .filter_map(|line| line.strip_prefix("removed "))
                .map(str::to_owned)
                .collect();
            if !removed.success() {
                return Ok(Outcome {
                    extra,
                    backup: Some(made),
                    ..Outcome::failed_with(
                        format!(
                            "{message}, but removing old backups failed: {}",
                            removed.failure()
                        ),
                        &removed,
                    )
                });
            }
            let _ = write!(message, "; removed {}", ids(&old));
        }
    }
    Ok(Outcome {
        stderr: output.stderr,
        extra,
        backup: Some(made),
        ..Outcome::changed(message)
    })
}

/// `--check`: the name it would write and what it would prune; nothing is written.
async fn check<T: Transport>(
    context: &Context<'_, T>,
    backup: &Backup<String>,
    store: &str,
    prefix: &str,
    keep: Option<usize>,
) -> Result<Outcome, TransportError> {
    let mut script = format!(
        "store={}; base={}; date -u +%Y%m%dT%H%M%SZ; \
         if command -v zstd >/dev/null 2>&1; then echo zstd; else echo gzip; fi; ",
        quote(store),
        quote(prefix)
    );
    if let BackupSource::Paths(paths) = &backup.source {
        for path in paths {
            let _ = write!(
                script,
                "[ -e {path} ] || [ -L {path} ] || echo missing; ",
                path = quote(path)
            );
        }
    }
    script.push_str("echo --; ");
    script.push_str(SURVEY);
    let output = context.shell(script).await?;
    if !output.success() {
        return Ok(Outcome::failed_with(
            format!("cannot inspect `{store}`: {}", output.failure()),
            &output,
        ));
    }
    let stdout = output.stdout_text();
    let (head, survey) = stdout.split_once("\n--").unwrap_or((&stdout, ""));
    let (listing, _) = split_survey(survey);
    let mut head = head.lines();
    let (Some(stamp), Some(compressor)) = (head.next(), head.next()) else {
        return Ok(Outcome::failed("unexpected answer inspecting the store"));
    };
    if !is_stamp(stamp.trim()) {
        return Ok(Outcome::failed(format!(
            "unexpected host time `{stamp}` inspecting the store"
        )));
    }
    let format = match (&backup.source, compressor.trim()) {
        (BackupSource::Dump(_), _) => Format::Dump,
        (BackupSource::Paths(_), "zstd") => Format::TarZstd,
        (BackupSource::Paths(_), _) => Format::TarGzip,
    };
    let existing = backups_in(listing);
    let name = next_name(&existing, prefix, stamp.trim(), format);
    let path = join(store, &name.file_name());
    let mut extra = Map::new();
    extra.insert("id".into(), Value::String(name.id()));
    extra.insert("path".into(), Value::String(path.clone()));
    extra.insert("size".into(), Value::Null);
    extra.insert("sha256".into(), Value::Null);
    if head.any(|line| line.trim() == "missing") {
        return Ok(Outcome {
            extra,
            ..Outcome::skipped(format!(
                "check mode: a path to back up does not exist yet; would write {path}"
            ))
        });
    }
    if let (BackupSource::Paths(paths), Some(newest)) = (&backup.source, newest_in(survey, prefix))
    {
        // Archives are byte-for-byte reproducible, so the checksum of one streamed to
        // `sha256sum` (nothing written) says whether a backup would differ from the newest.
        let streamed = context
            .shell(format!(
                "{} | sha256sum | cut -d' ' -f1",
                tar_command(paths, store, "-", format.tar_option().unwrap_or("--gzip"))
            ))
            .await?;
        if streamed.success() && streamed.stdout_text().trim() == newest.sha256 {
            return Ok(Outcome {
                extra,
                ..Outcome::ok(format!(
                    "unchanged since backup `{}` (same SHA-256); would write nothing",
                    newest.name.id()
                ))
            });
        }
    }
    let mut message = format!("would write {path} and its .sha256 manifest");
    if let Some(keep) = keep {
        let old = prune_list(listing, prefix, &name, keep);
        if !old.is_empty() {
            let _ = write!(message, "; would remove {}", ids(&old));
        }
    }
    Ok(Outcome {
        extra,
        ..Outcome::changed(message)
    })
}

/// The newest backup of this runbook and host, with the checksum its manifest records.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Newest {
    name: BackupName,
    sha256: String,
}

/// Finds the newest backup of `prefix` in the store (`None` without one, or without its
/// manifest): a new backup with the same bytes is not written again.
async fn newest_backup<T: Transport>(
    context: &Context<'_, T>,
    store: &str,
    prefix: &str,
) -> Result<Result<Option<Newest>, Outcome>, TransportError> {
    let output = context
        .shell(format!(
            "store={}; base={}; {SURVEY}",
            quote(store),
            quote(prefix)
        ))
        .await?;
    if !output.success() {
        return Ok(Err(Outcome::failed_with(
            format!("cannot inspect `{store}`: {}", output.failure()),
            &output,
        )));
    }
    Ok(Ok(newest_in(&output.stdout_text(), prefix)))
}

/// Shell (with `$store` and `$base` set) that lists the store, then a separator line, then the
/// first line of every manifest of `$base`: what [`split_survey`] and [`newest_in`] read.
const SURVEY: &str = "if [ -d \"$store\" ]; then ls -1A -- \"$store\"; \
     echo opsgate-manifests; for f in \"$store/$base\"-*.sha256; do \
     if [ -f \"$f\" ]; then head -n 1 -- \"$f\"; fi; done; fi";

/// Splits a [`SURVEY`] answer into the store listing and the manifest lines.
fn split_survey(answer: &str) -> (&str, &str) {
    answer
        .split_once("opsgate-manifests\n")
        .unwrap_or((answer, ""))
}

/// The newest backup of `prefix` in a [`SURVEY`] answer, with its manifest's checksum.
fn newest_in(answer: &str, prefix: &str) -> Option<Newest> {
    let (listing, manifests) = split_survey(answer);
    let name = backups_in(listing)
        .into_iter()
        .filter(|name| name.prefix == prefix)
        .max_by_key(BackupName::age_key)?;
    let file = name.file_name();
    let sha256 = manifests.lines().find_map(|line| {
        let (sum, named) = line.split_once("  ")?;
        (named == file && sum.len() == 64).then(|| sum.to_owned())
    })?;
    Some(Newest { name, sha256 })
}

/// `tar` archiving `paths` (relative to `/`, the store excluded) into `file` (`-`: stdout)
/// with `compress` (`--gzip`, or `\"$compress\"` inside the write script).
fn tar_command<F: AsRef<str>>(paths: &[F], store: &str, file: &str, compress: &str) -> String {
    let members: Vec<String> = paths
        .iter()
        .map(|path| quote(&member(path.as_ref())))
        .collect();
    format!(
        "tar --numeric-owner --anchored --no-wildcards --exclude={exclude} -cpf {file} {compress} -C / -- {members}",
        exclude = quote(&member(store)),
        members = members.join(" ")
    )
}

/// The first free name for a backup taken at `stamp`: `-N` is added while the id is taken by a
/// backup of any format.
fn next_name(existing: &[BackupName], prefix: &str, stamp: &str, format: Format) -> BackupName {
    let mut name = BackupName {
        prefix: prefix.to_owned(),
        stamp: stamp.to_owned(),
        sequence: 0,
        format,
    };
    while existing.iter().any(|other| other.id() == name.id()) {
        name.sequence += 1;
    }
    name
}

/// Backups of this runbook and host to delete so that `keep` remain, the new one included and
/// never deleted.
fn prune_list(listing: &str, prefix: &str, new: &BackupName, keep: usize) -> Vec<BackupName> {
    let mut others: Vec<BackupName> = backups_in(listing)
        .into_iter()
        .filter(|name| name.prefix == prefix && name.id() != new.id())
        .collect();
    others.sort_by_key(|name| Reverse(name.age_key()));
    others.split_off(keep.saturating_sub(1).min(others.len()))
}

fn ids(names: &[BackupName]) -> String {
    let ids: Vec<String> = names
        .iter()
        .map(|name| format!("`{}`", name.id()))
        .collect();
    format!(
        "{} old backup{}: {}",
        names.len(),
        if names.len() == 1 { "" } else { "s" },
        ids.join(", ")
    )
}

/// What the write script reported.
#[derive(Debug, PartialEq)]
struct Written {
    name: BackupName,
    size: u64,
    sha256: String,
    tar_warned: bool,
    /// The store's file names after the write, for pruning.
    listing: String,
    /// Nothing was written: `name` is the newest backup, whose bytes the new one had.
    unchanged: bool,
}

/// Parses `opsgate-backup NAME SIZE SHA256` (after an optional `opsgate-tar-warned` line),
/// followed by the store listing.
fn parse_written(stdout: &str) -> Option<Written> {
    let unchanged = stdout.contains("opsgate-unchanged ");
    let marker = if unchanged {
        "opsgate-unchanged "
    } else {
        "opsgate-backup "
    };
    let start = stdout.find(marker)?;
    let tar_warned = stdout[..start]
        .lines()
        .any(|line| line == "opsgate-tar-warned");
    let rest = &stdout[start..];
    let (line, listing) = rest.split_once('\n').unwrap_or((rest, ""));
    let mut words = line.split(' ').skip(1);
    let name = BackupName::parse(words.next()?)?;
    let size = words.next()?.parse().ok()?;
    let sha256 = words.next()?.to_owned();
    if sha256.len() != 64 || !sha256.bytes().all(|byte| byte.is_ascii_hexdigit()) {
        return None;
    }
    Some(Written {
        name,
        size,
        sha256,
        tar_warned,
        listing: listing.to_owned(),
        unchanged,
    })
}

/// The remote script that takes the backup: claim a free name, write the partial file, checksum
/// it, rename the manifest then the backup into place, report, and list the store.
///
/// With `newest`, a backup whose bytes equal the newest one's (re-checked against that file, not
/// only its manifest) is discarded and reported as `opsgate-unchanged NAME SIZE SHA256`.
fn write_script<F: AsRef<str>>(
    backup: &Backup<F>,
    store: &str,
    prefix: &str,
    newest: Option<&Newest>,
) -> String {
    let mut script = format!(
        "set -e; umask 077; store={}; base={}; mkdir -p -- \"$store\"; ",
        quote(store),
        quote(prefix)
    );
    let produce = match &backup.source {
        BackupSource::Paths(paths) => {
            for path in paths {
                let _ = write!(
                    script,
                    "[ -e {path} ] || [ -L {path} ] || {{ printf '%s does not exist\\n' {path} >&2; exit 3; }}; ",
                    path = quote(path.as_ref())
                );
            }
            script.push_str(
                "if command -v zstd >/dev/null 2>&1; then ext=tar.zst; \
                 compress=--use-compress-program=zstd; else ext=tar.gz; compress=--gzip; fi; ",
            );
            // GNU tar exits 1 when a file changed while it was read: the archive is complete
            // and matches its manifest, so that is a warning, not a failure.
            format!(
                "rc=0; {} || rc=$?; \
                 if [ \"$rc\" -eq 1 ]; then echo opsgate-tar-warned; \
                 elif [ \"$rc\" -ne 0 ]; then echo \"tar failed with exit code $rc\" >&2; exit \"$rc\"; fi; ",
                tar_command(paths, store, "\"$tmp\"", "\"$compress\"")
            )
        }
        BackupSource::Dump(command) => {
            script.push_str("ext=dump; ");
            format!(
                "rc=0; /bin/sh -c {} > \"$tmp\" || rc=$?; \
                 if [ \"$rc\" -ne 0 ]; then echo \"the dump command failed with exit code $rc\" >&2; exit 4; fi; ",
                quote(command.as_ref())
            )
        }
    };
    // A free id: none of the formats' files or manifests may exist under it, and the partial
    // file is created with noclobber so a concurrent run cannot claim the same name.
    script.push_str(
        "stamp=$(date -u +%Y%m%dT%H%M%SZ); id=\"$base-$stamp\"; n=0; \
         while :; do taken=; \
         for e in tar.zst tar.gz dump; do \
         if [ -e \"$store/$id.$e\" ] || [ -e \"$store/$id.$e.sha256\" ] || [ -e \"$store/.$id.$e.partial\" ]; then taken=1; fi; \
         done; \
         if [ -z \"$taken\" ] && ( set -C; : > \"$store/.$id.$ext.partial\" ) 2>/dev/null; then break; fi; \
         n=$((n + 1)); id=\"$base-$stamp-$n\"; done; \
         name=\"$id.$ext\"; tmp=\"$store/.$name.partial\"; manifest=\"$store/.$name.sha256.partial\"; \
         trap 'rm -f -- \"$tmp\" \"$manifest\"' EXIT; ",
    );
    script.push_str(&produce);
    script.push_str(
        "sync -- \"$tmp\" 2>/dev/null || sync; \
         sum=$(sha256sum < \"$tmp\" | cut -d' ' -f1); size=$(wc -c < \"$tmp\" | tr -d ' '); \
         [ ${#sum} -eq 64 ] || { echo 'cannot checksum the backup' >&2; exit 5; }; ",
    );
    if let Some(newest) = newest {
        let _ = write!(
            script,
            "same={file}; if [ \"$sum\" = {sum} ] && [ -f \"$store/$same\" ] \
             && [ \"$(sha256sum < \"$store/$same\" | cut -d' ' -f1)\" = \"$sum\" ]; then \
             rm -f -- \"$tmp\"; trap - EXIT; \
             printf 'opsgate-unchanged %s %s %s\\n' \"$same\" \"$size\" \"$sum\"; ls -1A -- \"$store\"; exit 0; fi; ",
            file = quote(&newest.name.file_name()),
            sum = quote(&newest.sha256),
        );
    }
    script.push_str(
        "printf '%s  %s\\n' \"$sum\" \"$name\" > \"$manifest\"; \
         mv -f -- \"$manifest\" \"$store/$name.sha256\"; mv -f -- \"$tmp\" \"$store/$name\"; \
         trap - EXIT; \
         printf 'opsgate-backup %s %s %s\\n' \"$name\" \"$size\" \"$sum\"; ls -1A -- \"$store\"",
    );
    script
}

#[cfg(test)]
mod tests {
    use super::{
        BackupName, Format, backups_in, member, next_name, normalize_store, parse_written,
        prune_list,
    };

    #[test]
    fn backup_names_round_trip_and_ignore_other_files() {
        let name = BackupName::parse("backup-files-web1-20261124T090000Z-2.tar.zst")
            .expect("a backup name");
        assert_eq!(name.prefix, "backup-files-web1");
        assert_eq!(name.stamp, "20261124T090000Z");
        assert_eq!(name.sequence, 2);
        assert_eq!(name.format, Format::TarZstd);
        assert_eq!(name.id(), "backup-files-web1-20261124T090000Z-2");
        assert_eq!(
            name.file_name(),
            "backup-files-web1-20261124T090000Z-2.tar.zst"
        );
        let first = BackupName::parse("db-db1-20261124T090000Z.dump").expect("a dump");
        assert_eq!((first.sequence, first.format), (0, Format::Dump));
        for other in [
            "db-db1-20261124T090000Z.dump.sha256",
            ".db-db1-20261124T090000Z.dump.partial",
            "notes.txt",
            "db-20261124T0900Z.tar.gz",
            "-20261124T090000Z.tar.gz",
        ] {
            assert_eq!(BackupName::parse(other), None, "{other}");
        }
    }

    #[test]
    fn a_backup_belongs_to_the_host_at_the_end_of_its_prefix() {
        let name = BackupName::parse("backup-files-web1-20261124T090000Z.tar.gz").expect("name");
        assert!(name.is_of_host("web1"));
        assert!(name.is_of_host("files-web1"));
        assert!(!name.is_of_host("eb1"));
        assert!(!name.is_of_host("backup-files-web1"));
    }

    #[test]
    fn collisions_in_the_same_second_get_a_sequence_number() {
        let existing = backups_in(
            "a-h-20261124T090000Z.tar.zst\na-h-20261124T090000Z.tar.zst.sha256\na-h-20261124T090000Z-1.dump\n",
        );
        let name = next_name(&existing, "a-h", "20261124T090000Z", Format::TarZstd);
        assert_eq!(name.id(), "a-h-20261124T090000Z-2");
        let fresh = next_name(&existing, "a-h", "20261124T090001Z", Format::TarZstd);
        assert_eq!(fresh.id(), "a-h-20261124T090001Z");
    }

    #[test]
    fn pruning_keeps_the_newest_and_never_the_new_one() {
        let listing = "a-h-20261124T090000Z.tar.zst\na-h-20261124T090000Z-10.tar.zst\n\
                       a-h-20261124T090000Z-2.tar.zst\nb-h-20200101T000000Z.tar.zst\n\
                       a-h-20261124T080000Z.tar.gz\n";
        let new = BackupName::parse("a-h-20261124T090000Z-10.tar.zst").expect("name");
        let removed: Vec<String> = prune_list(listing, "a-h", &new, 2)
            .iter()
            .map(BackupName::id)
            .collect();
        assert_eq!(removed, ["a-h-20261124T090000Z", "a-h-20261124T080000Z"]);
        // The new one is kept even when the clock went back and it is the oldest.
        let old_new = BackupName::parse("a-h-20000101T000000Z.tar.zst").expect("name");
        assert_eq!(prune_list(listing, "a-h", &old_new, 1).len(), 4);
        assert!(prune_list(listing, "a-h", &new, 10).is_empty());
    }

    #[test]
    fn the_write_script_answer_is_parsed() {
        let sha = "a".repeat(64);
        let stdout = format!(
            "opsgate-tar-warned\nopsgate-backup a-h-20261124T090000Z.tar.gz 1234 {sha}\na-h-20261124T090000Z.tar.gz\n"
        );
        let written = parse_written(&stdout).expect("parsed");
        assert_eq!(written.size, 1234);
        assert!(written.tar_warned);
        assert_eq!(written.listing, "a-h-20261124T090000Z.tar.gz\n");
        assert!(parse_written("opsgate-backup a-h-20261124T090000Z.tar.gz 12 short").is_none());
    }

    #[test]
    fn paths_become_members_relative_to_root() {
        assert_eq!(member("/etc/app/"), "etc/app");
        assert_eq!(member("/"), ".");
        assert_eq!(normalize_store("/var/backups//"), "/var/backups");
        assert_eq!(normalize_store("/"), "/");
    }
}
