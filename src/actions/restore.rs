//! `restore`: put a backup taken by `backup` back, after proving it is intact.
//!
//! The backup is chosen from the store's listing: `from: latest` is the newest backup of this
//! host from any runbook (ordered by its UTC time stamp, then its `-N`); any other value is an
//! id. Before anything on the host changes, the manifest must exist, name the file and match
//! its SHA-256, and an archive must list cleanly with every requested path in it; any failure
//! refuses the restore with nothing touched. The newest backup is never skipped for an older one
//! because its manifest is missing: that is a refusal too.
//!
//! Archives are extracted with `tar --numeric-owner -xp` (owners, modes and links as taken) to
//! their original place, or under `target`; `paths` narrows it to those paths (members relative
//! to `/`, so a subdirectory of a backed-up path works too). Files that exist now but are not in
//! the backup are left alone, as `tar` does. A restore whose files already match the archive
//! (`tar --compare` for files: contents, modes, owners, times, link targets; the archive's
//! listing for directories: mode and owner) is `ok` and extracts nothing.
//! A `.dump` backup needs `load`, a command fed the backup on its standard input; that is
//! always `changed`, since opsgate cannot compare a database with a dump. Under `--check` a
//! restore verifies and reports, and changes nothing.

use std::cmp::Reverse;

use serde_json::{Map, Value};
use thiserror::Error;

use super::backup::{BackupName, Format, backups_in, join, member, normalize_store};
use super::{Context, Outcome, RunMode, quote};
use crate::runbook::model::{Restore, RestoreInto};
use crate::transport::{Transport, TransportError};

/// Newest backup ids named in the message when the requested one does not exist.
const SHOWN_IDS: usize = 5;

/// Why a restore is refused before anything on the host changes.
#[derive(Debug, Error, PartialEq, Eq)]
enum Refusal {
    #[error("store `{0}` is not an absolute path")]
    RelativeStore(String),
    #[error("`{0}` is not an absolute path")]
    RelativePath(String),
    #[error("no backup of host `{host}`")]
    NoBackupOfHost { host: String },
    #[error("no backup `{from}` (and none of host `{host}`)")]
    NoSuchBackup { from: String, host: String },
    #[error("no backup `{from}` (newest of host `{host}`: {})", quoted(newest))]
    NoSuchBackupAmong {
        from: String,
        host: String,
        newest: Vec<String>,
    },
    #[error(
        "id `{from}` names several backups ({}); remove the stray one",
        quoted(files)
    )]
    Ambiguous { from: String, files: Vec<String> },
    #[error("`{0}` is missing")]
    BackupMissing(String),
    #[error("its manifest `{0}.sha256` is missing")]
    ManifestMissing(String),
    #[error("unexpected answer verifying it")]
    UnexpectedAnswer,
    #[error("its manifest `{0}.sha256` does not hold exactly one checksum line")]
    ManifestNotOneLine(String),
    #[error("its manifest `{0}.sha256` is not in sha256sum format")]
    ManifestFormat(String),
    #[error("its manifest `{file}.sha256` is for `{named}`, not `{file}`")]
    ManifestForAnother { file: String, named: String },
    #[error(
        "its SHA-256 {actual} does not match the manifest's {expected} (the backup is corrupt)"
    )]
    Corrupt { actual: String, expected: String },
}

/// `` `a`, `b` `` for a message.
fn quoted(names: &[String]) -> String {
    names
        .iter()
        .map(|name| format!("`{name}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Verifies the chosen backup, then restores it (unless `--check`).
pub(super) async fn run<T: Transport>(
    context: &Context<'_, T>,
    restore: &Restore<String>,
) -> Result<Outcome, TransportError> {
    if let Err(refusal) = check_fields(restore) {
        return Ok(Outcome::failed(refusal.to_string()));
    }
    let store = normalize_store(&restore.store);
    let listing = context
        .shell(format!(
            "store={}; [ -d \"$store\" ] || {{ echo 'no such directory' >&2; exit 3; }}; ls -1A -- \"$store\"",
            quote(&store)
        ))
        .await?;
    if !listing.success() {
        return Ok(Outcome::failed_with(
            format!(
                "cannot list the backups in `{store}`: {}",
                listing.failure()
            ),
            &listing,
        ));
    }
    let name = match select(&listing.stdout_text(), restore.from.trim(), context.host) {
        Ok(name) => name,
        Err(reason) => return Ok(Outcome::failed(format!("{reason} in `{store}`"))),
    };
    let file = name.file_name();
    let path = join(&store, &file);
    let verified = match verify(context, &store, &name).await? {
        Ok(verified) => verified,
        Err(failure) => return Ok(failure),
    };
    let mut extra = Map::new();
    extra.insert("id".into(), Value::String(name.id()));
    extra.insert("path".into(), Value::String(path.clone()));
    extra.insert("size".into(), Value::from(verified.size));
    extra.insert("sha256".into(), Value::String(verified.sha256));
    let (script, what) = match (&restore.into, name.format.tar_option()) {
        (RestoreInto::Load(command), _) => (
            format!("/bin/sh -c {} < {}", quote(command), quote(&path)),
            format!("fed {path} to `{}`", first_line(command)),
        ),
        (RestoreInto::Files { .. }, None) => {
            return Ok(Outcome::failed(format!(
                "backup `{}` is a command's output (`.{}`): restore it with `load`",
                name.id(),
                Format::Dump.extension()
            )));
        }
        (RestoreInto::Files { paths, target }, Some(option)) => {
            // Requested paths must all be in the archive, and the archive must read to its
            // end, before extraction starts.
            let members: Vec<String> = paths.iter().map(|path| quote(&member(path))).collect();
            let listed = context
                .shell(format!(
                    "tar --numeric-owner -tf {} {option} -- {} > /dev/null",
                    quote(&path),
                    members.join(" ")
                ))
                .await?;
            if !listed.success() {
                let absent = not_in_archive(&String::from_utf8_lossy(&listed.stderr));
                let reason = if absent.is_empty() {
                    format!("reading the archive failed: {}", listed.failure())
                } else {
                    format!("the backup does not hold {}", absent.join(", "))
                };
                return Ok(Outcome {
                    extra,
                    ..Outcome::failed_with(
                        format!(
                            "refusing to restore `{}`: {reason}; nothing was changed",
                            name.id()
                        ),
                        &listed,
                    )
                });
            }
            let directory = target.as_deref().unwrap_or("/");
            // `tar --compare` checks the contents, modes, owners, times and link targets of
            // files, but of directories only that they exist: their mode and owner are compared
            // from the archive's listing. When nothing differs, the restore has nothing to do.
            let compared = context
                .shell(format!(
                    "cd -- {directory} 2>/dev/null || exit 1; \
                     tar --numeric-owner -df {archive} {option} -- {members} >/dev/null 2>&1 \
                     || exit 1; \
                     tar --numeric-owner -tvf {archive} {option} -- {members} 2>/dev/null \
                     | while read -r perms owner size day time name; do \
                     case $perms in d*) \
                     [ \"$(stat -c '%A %u/%g' -- \"$name\" 2>/dev/null)\" = \"$perms $owner\" ] \
                     || exit 1 ;; esac; done",
                    directory = quote(directory),
                    archive = quote(&path),
                    members = members.join(" ")
                ))
                .await?;
            if compared.success() {
                return Ok(Outcome {
                    extra,
                    ..Outcome::ok(format!(
                        "backup `{}` verified; the files already match it",
                        name.id()
                    ))
                });
            }
            let create = if target.is_some() {
                format!("mkdir -p -- {}; ", quote(directory))
            } else {
                String::new()
            };
            let script = format!(
                "set -e; {create}tar --numeric-owner -xpf {} {option} -C {} -- {}",
                quote(&path),
                quote(directory),
                members.join(" ")
            );
            let scope = if paths.is_empty() {
                "everything".to_owned()
            } else {
                paths.join(", ")
            };
            let place = target.as_ref().map_or_else(
                || "its original place".to_owned(),
                |target| format!("under {target}"),
            );
            (script, format!("restored {scope} to {place}"))
        }
    };
    if context.mode == RunMode::Check {
        return Ok(Outcome {
            extra,
            ..Outcome::changed(format!(
                "backup `{}` verified; would have {what}",
                name.id()
            ))
        });
    }
    let output = context.shell(script).await?;
    if !output.success() {
        return Ok(Outcome {
            extra,
            ..Outcome::failed_with(
                format!("restoring `{}` failed: {}", name.id(), output.failure()),
                &output,
            )
        });
    }
    Ok(Outcome {
        stdout: output.stdout,
        stderr: output.stderr,
        extra,
        ..Outcome::changed(format!("backup `{}` verified; {what}", name.id()))
    })
}

fn check_fields(restore: &Restore<String>) -> Result<(), Refusal> {
    if !restore.store.starts_with('/') {
        return Err(Refusal::RelativeStore(restore.store.clone()));
    }
    if let RestoreInto::Files { paths, target } = &restore.into {
        if let Some(path) = paths
            .iter()
            .chain(target)
            .find(|path| !path.starts_with('/'))
        {
            return Err(Refusal::RelativePath(path.clone()));
        }
    }
    Ok(())
}

/// The backup `from` names in a store listing: `latest` (the newest of `host`, any runbook) or
/// an id.
fn select(listing: &str, from: &str, host: &str) -> Result<BackupName, Refusal> {
    let backups = backups_in(listing);
    if from == "latest" {
        return backups
            .into_iter()
            .filter(|name| name.is_of_host(host))
            .max_by_key(BackupName::age_key)
            .ok_or_else(|| Refusal::NoBackupOfHost { host: host.into() });
    }
    let mut matching: Vec<&BackupName> = backups.iter().filter(|name| name.id() == from).collect();
    match matching.len() {
        1 => Ok(matching.remove(0).clone()),
        0 => {
            let mut of_host: Vec<&BackupName> = backups
                .iter()
                .filter(|name| name.is_of_host(host))
                .collect();
            of_host.sort_by_key(|name| Reverse(name.age_key()));
            let newest: Vec<String> = of_host
                .iter()
                .take(SHOWN_IDS)
                .map(|name| name.id())
                .collect();
            let (from, host) = (from.to_owned(), host.to_owned());
            if newest.is_empty() {
                Err(Refusal::NoSuchBackup { from, host })
            } else {
                Err(Refusal::NoSuchBackupAmong { from, host, newest })
            }
        }
        _ => Err(Refusal::Ambiguous {
            from: from.to_owned(),
            files: matching.iter().map(|name| name.file_name()).collect(),
        }),
    }
}

/// A backup whose bytes match its manifest.
#[derive(Debug, PartialEq)]
struct Verified {
    size: u64,
    sha256: String,
}

/// Reads the manifest and checksums the backup on the host; a refusal when they disagree.
async fn verify<T: Transport>(
    context: &Context<'_, T>,
    store: &str,
    name: &BackupName,
) -> Result<Result<Verified, Outcome>, TransportError> {
    let file = name.file_name();
    let script = format!(
        "cd -- {} || exit 3; name={}; \
         if [ ! -f \"$name\" ]; then echo missing-backup; exit 0; fi; \
         if [ ! -f \"$name.sha256\" ]; then echo missing-manifest; exit 0; fi; \
         printf 'size %s\\n' \"$(wc -c < \"$name\" | tr -d ' ')\"; \
         printf 'actual %s\\n' \"$(sha256sum < \"$name\" | cut -d' ' -f1)\"; \
         echo manifest; head -c 4096 -- \"$name.sha256\"",
        quote(store),
        quote(&file)
    );
    let output = context.shell(script).await?;
    if !output.success() {
        return Ok(Err(Outcome::failed_with(
            format!("cannot verify backup `{}`: {}", name.id(), output.failure()),
            &output,
        )));
    }
    Ok(judge(&output.stdout_text(), &file).map_err(|reason| {
        Outcome::failed(format!(
            "refusing to restore `{}`: {reason}; nothing was changed",
            name.id()
        ))
    }))
}

/// Compares the verify script's answer with the manifest it printed.
fn judge(answer: &str, file: &str) -> Result<Verified, Refusal> {
    match answer.trim() {
        "missing-backup" => return Err(Refusal::BackupMissing(file.into())),
        "missing-manifest" => return Err(Refusal::ManifestMissing(file.into())),
        _ => {}
    }
    let (head, manifest) = answer
        .split_once("\nmanifest\n")
        .ok_or(Refusal::UnexpectedAnswer)?;
    let mut size = None;
    let mut actual = None;
    for line in head.lines() {
        match line.split_once(' ') {
            Some(("size", value)) => size = value.trim().parse::<u64>().ok(),
            Some(("actual", value)) => actual = Some(value.trim().to_owned()),
            _ => {}
        }
    }
    let (Some(size), Some(actual)) = (size, actual) else {
        return Err(Refusal::UnexpectedAnswer);
    };
    let lines: Vec<&str> = manifest.lines().filter(|line| !line.is_empty()).collect();
    let [line] = lines.as_slice() else {
        return Err(Refusal::ManifestNotOneLine(file.into()));
    };
    // `sha256sum` writes `HASH  NAME`, or `HASH *NAME` in binary mode.
    let (expected, named) = line
        .split_once("  ")
        .or_else(|| line.split_once(" *"))
        .ok_or_else(|| Refusal::ManifestFormat(file.into()))?;
    if named != file {
        return Err(Refusal::ManifestForAnother {
            file: file.into(),
            named: named.into(),
        });
    }
    if !expected.eq_ignore_ascii_case(&actual) {
        return Err(Refusal::Corrupt {
            actual,
            expected: expected.into(),
        });
    }
    Ok(Verified {
        size,
        sha256: actual,
    })
}

/// The requested paths GNU tar did not find (`tar: etc/app: Not found in archive`), as `/…`.
fn not_in_archive(stderr: &str) -> Vec<String> {
    stderr
        .lines()
        .filter_map(|line| line.strip_suffix(": Not found in archive"))
        .map(|line| {
            let member = line.strip_prefix("tar: ").unwrap_or(line);
            format!("`/{member}`")
        })
        .collect()
}

fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::{Verified, judge, not_in_archive, select};

    #[test]
    fn paths_missing_from_an_archive_are_named() {
        let stderr = "tar: srv/app: Not found in archive\ntar: Exiting with failure status due to previous errors\n";
        assert_eq!(not_in_archive(stderr), ["`/srv/app`"]);
        assert!(not_in_archive("tar: short read\n").is_empty());
    }

    const LISTING: &str = "backup-files-web1-20261124T090000Z.tar.zst\n\
        backup-files-web1-20261124T090000Z.tar.zst.sha256\n\
        patch-web1-20261124T090000Z-1.tar.gz\n\
        backup-files-web2-20261124T100000Z.tar.zst\n\
        db-web1-20261123T235959Z.dump\n";

    #[test]
    fn latest_is_the_newest_of_this_host_from_any_runbook() {
        let name = select(LISTING, "latest", "web1").expect("found");
        assert_eq!(name.id(), "patch-web1-20261124T090000Z-1");
        assert_eq!(
            select(LISTING, "latest", "web2").expect("found").id(),
            "backup-files-web2-20261124T100000Z"
        );
        assert!(select(LISTING, "latest", "db1").is_err());
    }

    #[test]
    fn an_id_names_one_backup_or_the_error_lists_the_newest() {
        let name = select(LISTING, "db-web1-20261123T235959Z", "web1").expect("found");
        assert_eq!(name.file_name(), "db-web1-20261123T235959Z.dump");
        let error = select(LISTING, "db-web1-2026", "web1")
            .expect_err("missing")
            .to_string();
        assert!(
            error.contains("`patch-web1-20261124T090000Z-1`, `backup-files-web1-20261124T090000Z`"),
            "{error}"
        );
    }

    #[test]
    fn verification_refuses_a_mismatch_a_wrong_name_and_a_missing_manifest() {
        let sha = "ab".repeat(32);
        let good = format!("size 10\nactual {sha}\nmanifest\n{sha}  f.tar.gz");
        assert_eq!(
            judge(&good, "f.tar.gz"),
            Ok(Verified {
                size: 10,
                sha256: sha.clone()
            })
        );
        let other = "cd".repeat(32);
        let corrupt = format!("size 10\nactual {other}\nmanifest\n{sha}  f.tar.gz");
        assert!(
            judge(&corrupt, "f.tar.gz").is_err_and(|error| error.to_string().contains("corrupt"))
        );
        let renamed = format!("size 10\nactual {sha}\nmanifest\n{sha}  g.tar.gz");
        assert!(judge(&renamed, "f.tar.gz").is_err());
        assert!(
            judge("missing-manifest", "f.tar.gz")
                .is_err_and(|error| error.to_string().contains("missing"))
        );
    }
}
