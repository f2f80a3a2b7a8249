//! `fetch`: copy a remote file to `dest/<host>/<name>` on the control machine, checksum verified.
//!
//! # Where fetched files may go
//! The local side writes with the rights of the account running opsgate (the service account in
//! team mode), into a path a runbook names — so it must not be steerable into that account's
//! private files. The rule:
//! - `dest` is a local directory, relative to the working directory or absolute, without `..`;
//! - no component of `dest/<host>/<name>` may be a symlink: every directory is opened with
//!   `O_NOFOLLOW` relative to the one before it (`openat`), so there is no check-then-open race,
//!   and a planted symlink is refused, never followed — even a root-owned one like `/var/run`;
//! - `dest` itself and `dest/<host>` must be directories owned by the fetching account (missing
//!   ones are created, so they are); a file is written only inside a directory it owns;
//! - the file is written to a fresh temp file created with `O_CREAT | O_EXCL | O_NOFOLLOW` in
//!   `dest/<host>` (mode 0600), synced, then renamed over `<name>` within that directory; an
//!   existing `<name>` that is a symlink or not a regular file is refused.

use std::ffi::{CStr, CString, OsStr};
use std::io::{Read as _, Write as _};
use std::os::fd::{AsRawFd as _, FromRawFd as _, OwnedFd};
use std::os::unix::ffi::OsStrExt as _;
use std::path::{Component, Path, PathBuf};

use sha2::{Digest, Sha256};

use super::{Context, Outcome, RunMode, quote};
use crate::runbook::model::Fetch;
use crate::transport::{Transport, TransportError};

/// Why a fetched file cannot be written where the runbook says.
#[derive(Debug, thiserror::Error)]
enum LocalError {
    /// `dest` climbs with `..`.
    #[error("`{}` climbs with `..`; name the directory without it", .0.display())]
    ParentComponent(PathBuf),
    /// A component is a symlink.
    #[error("`{}` is a symlink; fetch never writes through one", .0.display())]
    Symlink(PathBuf),
    /// A component is not a directory, or the file is not a regular file.
    #[error("`{}` is not a {wanted}", path.display())]
    WrongType { path: PathBuf, wanted: &'static str },
    /// A directory the file would go into belongs to another account.
    #[error(
        "`{}` belongs to another account (uid {uid}); fetch writes only into directories it owns",
        path.display()
    )]
    NotOwned { path: PathBuf, uid: u32 },
    /// A system call failed.
    #[error("`{}`: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Reads the remote file and its checksum in one command, verifies, writes locally via a temp
/// file + rename; `ok` when the local copy is already identical.
pub(super) async fn run<T: Transport>(
    context: &Context<'_, T>,
    fetch: &Fetch<String>,
) -> Result<Outcome, TransportError> {
    let Some(name) = Path::new(&fetch.src).file_name() else {
        return Ok(Outcome::failed(format!(
            "`{}` does not name a file",
            fetch.src
        )));
    };
    let local: PathBuf = Path::new(&fetch.dest).join(context.host).join(name);
    // Checksum first, on its own line, then the bytes: one round trip, and the checksum is of
    // exactly the bytes that were sent.
    let script = format!(
        "p={}; sha256sum -- \"$p\" | cut -d' ' -f1 && cat -- \"$p\"",
        quote(&fetch.src)
    );
    let output = context.shell(script).await?;
    if !output.success() && context.mode == RunMode::Check {
        // Under --check the step that would create it may not have run.
        return Ok(Outcome::skipped(format!(
            "check mode: cannot read `{}` yet; would fetch it",
            fetch.src
        )));
    }
    if !output.success() {
        return Ok(Outcome::failed_with(
            format!("cannot read `{}`: {}", fetch.src, output.failure()),
            &output,
        ));
    }
    let Some(newline) = output.stdout.iter().position(|byte| *byte == b'\n') else {
        return Ok(Outcome::failed("unexpected answer reading the remote file"));
    };
    let expected = String::from_utf8_lossy(&output.stdout[..newline])
        .trim()
        .to_owned();
    let bytes = &output.stdout[newline + 1..];
    let actual = hex::encode(Sha256::digest(bytes));
    if actual != expected {
        return Ok(Outcome::failed(format!(
            "checksum mismatch fetching `{}`: remote {expected}, received {actual}",
            fetch.src
        )));
    }
    let written = write_fetched(
        Path::new(&fetch.dest),
        context.host,
        name,
        bytes,
        context.mode,
    );
    match written {
        Ok(Written::UpToDate) => Ok(Outcome::ok(format!("{} is up to date", local.display()))),
        Ok(Written::WouldWrite) => Ok(Outcome::changed(format!("would write {}", local.display()))),
        Ok(Written::Wrote) => Ok(Outcome::changed(format!(
            "{} ({} bytes)",
            local.display(),
            bytes.len()
        ))),
        Err(error) => Ok(Outcome::failed(format!(
            "cannot write `{}`: {error}",
            local.display()
        ))),
    }
}

/// What [`write_fetched`] did.
#[derive(Debug, PartialEq, Eq)]
enum Written {
    UpToDate,
    WouldWrite,
    Wrote,
}

/// Writes `bytes` as `dest/<host>/<name>` by the rule of the module doc; under `--check` only
/// compares (and creates nothing).
fn write_fetched(
    dest: &Path,
    host: &str,
    name: &OsStr,
    bytes: &[u8],
    mode: RunMode,
) -> Result<Written, LocalError> {
    let create = mode != RunMode::Check;
    let Some(directory) = open_destination(dest, host, create)? else {
        return Ok(Written::WouldWrite);
    };
    let shown = dest.join(host).join(name);
    let file_name = c_name(name, &shown)?;
    if read_file_at(&directory, &file_name, &shown)?.is_some_and(|current| current == bytes) {
        return Ok(Written::UpToDate);
    }
    if !create {
        return Ok(Written::WouldWrite);
    }
    write_file_at(&directory, &file_name, &shown, bytes)?;
    Ok(Written::Wrote)
}

/// Opens `dest/<host>` without following any symlink, creating missing directories when
/// `create`; `None` when one is missing and `create` is off. `dest` and `dest/<host>` must be
/// owned by this account.
fn open_destination(dest: &Path, host: &str, create: bool) -> Result<Option<OwnedFd>, LocalError> {
    let mut current: Option<OwnedFd> = None;
    let mut shown = PathBuf::new();
    for component in dest.components() {
        match component {
            Component::RootDir => {
                shown.push("/");
                current = Some(open_directory(None, c"/", &shown)?);
            }
            Component::CurDir => {}
            Component::ParentDir | Component::Prefix(_) => {
                return Err(LocalError::ParentComponent(dest.to_path_buf()));
            }
            Component::Normal(name) => {
                shown.push(name);
                let Some(next) = step(current.as_ref(), name, &shown, create)? else {
                    return Ok(None);
                };
                current = Some(next);
            }
        }
    }
    let dest_directory = match current {
        Some(directory) => directory,
        None => open_directory(None, c".", Path::new("."))?,
    };
    let shown_dest = if shown.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        shown.clone()
    };
    check_owner(&dest_directory, &shown_dest)?;
    shown.push(host);
    let Some(host_directory) = step(Some(&dest_directory), OsStr::new(host), &shown, create)?
    else {
        return Ok(None);
    };
    check_owner(&host_directory, &shown)?;
    Ok(Some(host_directory))
}

/// Opens directory `name` inside `parent` (the working directory for `None`), creating it first
/// when missing and `create`.
fn step(
    parent: Option<&OwnedFd>,
    name: &OsStr,
    shown: &Path,
    create: bool,
) -> Result<Option<OwnedFd>, LocalError> {
    let c_name = c_name(name, shown)?;
    match open_directory(parent, &c_name, shown) {
        Ok(directory) => Ok(Some(directory)),
        Err(LocalError::Io { source: error, .. })
            if error.kind() == std::io::ErrorKind::NotFound =>
        {
            if !create {
                return Ok(None);
            }
            // SAFETY: `c_name` is a valid C string and the descriptor is open (or AT_FDCWD).
            let made = unsafe { libc::mkdirat(raw(parent), c_name.as_ptr(), 0o777) };
            if made != 0 {
                let error = std::io::Error::last_os_error();
                if error.kind() != std::io::ErrorKind::AlreadyExists {
                    return Err(LocalError::Io {
                        path: shown.to_path_buf(),
                        source: error,
                    });
                }
            }
            open_directory(parent, &c_name, shown).map(Some)
        }
        Err(error) => Err(error),
    }
}

fn raw(directory: Option<&OwnedFd>) -> libc::c_int {
    directory.map_or(libc::AT_FDCWD, std::os::fd::AsRawFd::as_raw_fd)
}

fn c_name(name: &OsStr, shown: &Path) -> Result<CString, LocalError> {
    CString::new(name.as_bytes()).map_err(|_| LocalError::WrongType {
        path: shown.to_path_buf(),
        wanted: "path",
    })
}

/// `openat(parent, name, O_DIRECTORY | O_NOFOLLOW)`, naming a symlink as such.
fn open_directory(
    parent: Option<&OwnedFd>,
    name: &CStr,
    shown: &Path,
) -> Result<OwnedFd, LocalError> {
    let flags = libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC;
    // SAFETY: `name` is a valid C string and the descriptor is open (or AT_FDCWD).
    let fd = unsafe { libc::openat(raw(parent), name.as_ptr(), flags) };
    if fd < 0 {
        let error = std::io::Error::last_os_error();
        return Err(classify(parent, name, shown, error, "directory"));
    }
    // SAFETY: `openat` returned a new descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Turns `ELOOP`/`ENOTDIR` into [`LocalError::Symlink`] or [`LocalError::WrongType`] by looking
/// at the entry itself (`AT_SYMLINK_NOFOLLOW`).
fn classify(
    parent: Option<&OwnedFd>,
    name: &CStr,
    shown: &Path,
    error: std::io::Error,
    wanted: &'static str,
) -> LocalError {
    if !matches!(error.raw_os_error(), Some(libc::ELOOP | libc::ENOTDIR)) {
        return LocalError::Io {
            path: shown.to_path_buf(),
            source: error,
        };
    }
    match lstat_at(parent, name) {
        Some(status) if status.st_mode & libc::S_IFMT == libc::S_IFLNK => {
            LocalError::Symlink(shown.to_path_buf())
        }
        _ => LocalError::WrongType {
            path: shown.to_path_buf(),
            wanted,
        },
    }
}

fn lstat_at(parent: Option<&OwnedFd>, name: &CStr) -> Option<libc::stat> {
    // SAFETY: an all-zero `stat` is a valid value to be overwritten.
    let mut status: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: valid C string, open descriptor (or AT_FDCWD), `status` is writable.
    let code = unsafe {
        libc::fstatat(
            raw(parent),
            name.as_ptr(),
            &raw mut status,
            libc::AT_SYMLINK_NOFOLLOW,
        )
    };
    (code == 0).then_some(status)
}

/// Refuses a directory that another account owns.
fn check_owner(directory: &OwnedFd, shown: &Path) -> Result<(), LocalError> {
    // SAFETY: an all-zero `stat` is a valid value to be overwritten.
    let mut status: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: the descriptor is open and `status` is writable.
    if unsafe { libc::fstat(directory.as_raw_fd(), &raw mut status) } != 0 {
        return Err(LocalError::Io {
            path: shown.to_path_buf(),
            source: std::io::Error::last_os_error(),
        });
    }
    let account = crate::os_account::effective_uid();
    if status.st_uid == account {
        Ok(())
    } else {
        Err(LocalError::NotOwned {
            path: shown.to_path_buf(),
            uid: status.st_uid,
        })
    }
}

/// The current content of `name` in `directory`, `None` when absent; a symlink or anything but a
/// regular file is refused.
fn read_file_at(
    directory: &OwnedFd,
    name: &CStr,
    shown: &Path,
) -> Result<Option<Vec<u8>>, LocalError> {
    let flags = libc::O_RDONLY | libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC;
    // SAFETY: valid C string and open descriptor.
    let fd = unsafe { libc::openat(directory.as_raw_fd(), name.as_ptr(), flags) };
    if fd < 0 {
        let error = std::io::Error::last_os_error();
        if error.kind() == std::io::ErrorKind::NotFound {
            return Ok(None);
        }
        return Err(classify(
            Some(directory),
            name,
            shown,
            error,
            "regular file",
        ));
    }
    // SAFETY: `openat` returned a new descriptor that nothing else owns.
    let mut file = std::fs::File::from(unsafe { OwnedFd::from_raw_fd(fd) });
    let io = |source| LocalError::Io {
        path: shown.to_path_buf(),
        source,
    };
    if !file.metadata().map_err(io)?.is_file() {
        return Err(LocalError::WrongType {
            path: shown.to_path_buf(),
            wanted: "regular file",
        });
    }
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes).map_err(io)?;
    Ok(Some(bytes))
}

/// Writes a fresh temp file in `directory` and renames it over `name` (which, were it a
/// symlink planted since the read, is replaced, never followed).
fn write_file_at(
    directory: &OwnedFd,
    name: &CStr,
    shown: &Path,
    bytes: &[u8],
) -> Result<(), LocalError> {
    let io = |source| LocalError::Io {
        path: shown.to_path_buf(),
        source,
    };
    let mut random = [0_u8; 8];
    getrandom::getrandom(&mut random).map_err(|error| io(std::io::Error::from(error)))?;
    let temporary = CString::new(format!(
        ".opsgate-fetch-{}-{}",
        std::process::id(),
        hex::encode(random)
    ))
    .expect("hex digits and a pid hold no NUL byte");
    let flags = libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW | libc::O_CLOEXEC;
    // SAFETY: valid C string and open descriptor.
    let fd = unsafe {
        libc::openat(
            directory.as_raw_fd(),
            temporary.as_ptr(),
            flags,
            libc::c_uint::from(0o600_u16),
        )
    };
    if fd < 0 {
        return Err(io(std::io::Error::last_os_error()));
    }
    // SAFETY: `openat` returned a new descriptor that nothing else owns.
    let mut file = std::fs::File::from(unsafe { OwnedFd::from_raw_fd(fd) });
    let written = file.write_all(bytes).and_then(|()| file.sync_all());
    let renamed = written.and_then(|()| {
        // SAFETY: valid C strings, the same open directory on both sides.
        let code = unsafe {
            libc::renameat(
                directory.as_raw_fd(),
                temporary.as_ptr(),
                directory.as_raw_fd(),
                name.as_ptr(),
            )
        };
        if code == 0 {
            Ok(())
        } else {
            Err(std::io::Error::last_os_error())
        }
    });
    if renamed.is_err() {
        // SAFETY: valid C string and open descriptor.
        unsafe { libc::unlinkat(directory.as_raw_fd(), temporary.as_ptr(), 0) };
    }
    renamed.map_err(io)
}

#[cfg(test)]
mod tests {
    use std::ffi::OsStr;
    use std::os::unix::fs::symlink;

    use super::{LocalError, RunMode, Written, write_fetched};

    fn fetch(dest: &std::path::Path, mode: RunMode) -> Result<Written, LocalError> {
        write_fetched(dest, "web1", OsStr::new("app.conf"), b"new\n", mode)
    }

    #[test]
    fn a_fetched_file_is_written_once_then_up_to_date() {
        let scratch = tempfile::tempdir().expect("temp dir");
        let dest = scratch.path().join("fetched");
        assert_eq!(
            fetch(&dest, RunMode::Check).expect("check"),
            Written::WouldWrite
        );
        assert!(!dest.exists(), "check mode creates nothing");
        assert_eq!(fetch(&dest, RunMode::Apply).expect("write"), Written::Wrote);
        let file = dest.join("web1/app.conf");
        assert_eq!(std::fs::read(&file).expect("written"), b"new\n");
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(&file).expect("stat").permissions(),
        );
        assert_eq!(mode & 0o077, 0, "private until the operator widens it");
        assert_eq!(
            fetch(&dest, RunMode::Apply).expect("again"),
            Written::UpToDate
        );
        let leftovers: Vec<_> = std::fs::read_dir(dest.join("web1"))
            .expect("list")
            .map(|entry| entry.expect("entry").file_name())
            .collect();
        assert_eq!(leftovers, ["app.conf"], "no temp file left behind");
    }

    #[test]
    fn a_planted_symlink_anywhere_on_the_path_is_refused_not_followed() {
        let scratch = tempfile::tempdir().expect("temp dir");
        let private = scratch.path().join("private");
        std::fs::create_dir(&private).expect("private dir");
        std::fs::write(private.join("app.conf"), "keep\n").expect("victim");

        // The host directory is a symlink into someone's private directory.
        let dest = scratch.path().join("a");
        std::fs::create_dir(&dest).expect("dest");
        symlink(&private, dest.join("web1")).expect("symlink");
        assert!(
            matches!(fetch(&dest, RunMode::Apply), Err(LocalError::Symlink(path)) if path == dest.join("web1"))
        );

        // The file itself is a symlink.
        let dest = scratch.path().join("b");
        std::fs::create_dir_all(dest.join("web1")).expect("dest");
        symlink(private.join("app.conf"), dest.join("web1/app.conf")).expect("symlink");
        assert!(matches!(
            fetch(&dest, RunMode::Apply),
            Err(LocalError::Symlink(_))
        ));

        // `dest` is a symlink, or sits below one.
        let dest = scratch.path().join("c");
        symlink(&private, &dest).expect("symlink");
        assert!(matches!(
            fetch(&dest, RunMode::Apply),
            Err(LocalError::Symlink(_))
        ));
        assert!(matches!(
            fetch(&dest.join("deeper"), RunMode::Apply),
            Err(LocalError::Symlink(_))
        ));

        assert_eq!(
            std::fs::read_to_string(private.join("app.conf")).expect("victim"),
            "keep\n",
            "nothing was written through a symlink"
        );
        assert!(!private.join("web1").exists() && !private.join("deeper").exists());
    }

    #[test]
    fn dest_must_not_climb_and_must_belong_to_the_account() {
        let scratch = tempfile::tempdir().expect("temp dir");
        assert!(matches!(
            fetch(&scratch.path().join("x/../y"), RunMode::Apply),
            Err(LocalError::ParentComponent(_))
        ));
        if crate::os_account::effective_uid() == 0 {
            let foreign = scratch.path().join("foreign");
            std::fs::create_dir(&foreign).expect("dir");
            std::os::unix::fs::chown(&foreign, Some(65534), None).expect("chown");
            assert!(matches!(
                fetch(&foreign, RunMode::Apply),
                Err(LocalError::NotOwned { uid: 65534, .. })
            ));
        }
    }
}
