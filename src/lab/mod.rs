//! Throwaway local SSH hosts: `opsgate lab up|status|down`, reused by the test suite.
//!
//! `up` starts one OpenSSH server per lab host, each on its own loopback address
//! (127.0.0.2 – 127.0.0.254, chosen at random so that many labs can run side by side) and on a
//! port found free by binding it. Every host gets a fresh ed25519 host key and its own working
//! directory (`lab_root`); one generated client key logs in to all of them as the account that
//! runs opsgate. The lab directory then holds everything a client needs:
//!
//! ```text
//! DIR/lab.json          what was started (pids, namespaces, addresses, ports): for status, down
//! DIR/inventory.yaml    SPEC §3 inventory: group `lab`, hosts lab1…labN, vars `lab_root`,
//!                       `app_root`, `backup_root`, `lab_isolated`
//! DIR/ssh_config        `ssh -F DIR/ssh_config lab1` for a person
//! DIR/known_hosts       each host key pinned at `[127.0.0.x]:port`
//! DIR/client_key(.pub)  the login key; DIR/authorized_keys holds its public half
//! DIR/hosts/labN/       sshd_config, host key, sshd.pid, sshd.log, root/ (= lab_root),
//!                       reboot.sh; on an overlay also boot.sh, boot_id, supervisor.pid and
//!                       overlay/{upper,work,merged}
//! ```
//!
//! # Two kinds of lab host
//!
//! Run as root (as CI does), each host is a separate machine as far as files go: its sshd runs
//! under a supervisor (`boot.sh`, module `boot`) in a mount namespace of its own, chrooted into
//! an overlay of the machine's `/` whose changes land in `overlay/upper`. A package installed, a
//! file edited under `/etc` or a backup written on one host is invisible to the others and to
//! the machine, and gone after `down`. Inside the host, `/run`, `/tmp` and `/dev/shm` are fresh
//! tmpfs mounts, the lab directory shows only the host's own directory (bind-mounted at the same
//! path, so `lab_root` means the same on both sides) and `boot_id` is the host's own. Network,
//! processes (pids are visible across hosts) and the kernel stay shared: these are not
//! containers. Before starting hosts, `up` proves with a throwaway mount that the overlay works
//! on the lab directory's filesystem (module `isolation`).
//!
//! Otherwise (not root, or the overlay refused) hosts share the machine's filesystem and only
//! `lab_root` is theirs; [`Lab::isolation`] says why, for the CLI to warn. This module never
//! prints.
//!
//! Every host's sshd hands its sessions `OPSGATE_LAB_REBOOT`, the path of `reboot.sh`: the
//! `reboot` action's lab-only stand-in for `shutdown -r now`. On an overlay it stops every
//! process of the host, writes a new boot id and has the supervisor start sshd again; on a
//! shared filesystem it refuses, since the host's boot id is the machine's. `docs/lab.md`
//! describes all of this for people.
//!
//! # Stopping exactly what was started
//!
//! `down` signals only processes that are provably the lab's: a shared host's recorded sshd
//! while `/proc/PID/cmdline` still names the host's config file; an overlay host's processes by
//! its mount namespace, while that namespace still mounts the host's upper directory (module
//! `namespace`), which also catches daemons a runbook started there. Who may run a lab is not
//! decided here: SPEC §4.6 refuses `opsgate lab` to the service account and under a `SUDO_USER`
//! identity, which is the gate's job before it calls in here. It works as root and as an
//! ordinary user (sshd runs without PAM on unprivileged ports; only root needs `/run/sshd`).

mod account;
mod boot;
mod client;
mod error;
mod host;
mod isolation;
mod keys;
mod namespace;
mod process;
mod sshd;
mod state;

/// What `transport::test_sshd` starts one lab host from, in-process, for the transport's unit
/// tests: unit and integration tests then share one sshd harness, this module's.
#[cfg(test)]
pub(crate) mod harness {
    pub(crate) use super::host::{HostFiles, Launch};
    pub(crate) use super::keys::generate;
    pub(crate) use super::sshd::{
        ServerConfig, StartFailure, ensure_privilege_separation_dir, free_port, spawn, stop,
        wait_ready,
    };
}

use std::collections::hash_map::RandomState;
use std::fs;
use std::hash::{BuildHasher, Hasher};
use std::io::ErrorKind;
use std::net::Ipv4Addr;
use std::os::unix::fs::PermissionsExt;
use std::panic::resume_unwind;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};
use std::thread;

pub use error::LabError;
pub use host::{HostFilesystem, HostState, HostStatus, LabHost};
pub use isolation::{Isolation, SharedReason};

use client::ClientPaths;
use error::io_error;
use host::{HostFiles, Launch};
use keys::PublicKey;
use namespace::HostNamespace;
use process::Stopped;
use sshd::{ServerConfig, StartFailure};
use state::State;

/// The environment variable every lab sshd sets for its sessions: the path of the host's
/// lab-only reboot script, which the `reboot` action runs instead of `shutdown -r now`.
pub const REBOOT_VARIABLE: &str = "OPSGATE_LAB_REBOOT";

/// The largest lab: one host per usable loopback address 127.0.0.2 – 127.0.0.254.
pub const MAX_HOSTS: usize = 253;

/// Attempts per host when another process takes the chosen port before sshd binds it.
const START_ATTEMPTS: usize = 5;

/// Hosts started at the same time.
const PARALLEL_STARTS: usize = 8;

/// What `lab up` should start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabOptions {
    /// Lab directory (created when missing; must be empty or hold a stopped lab).
    pub dir: PathBuf,
    /// Number of hosts, 1 to [`MAX_HOSTS`].
    pub hosts: usize,
}

/// A lab as started by [`up`] or recorded in its directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lab {
    /// Absolute lab directory.
    pub dir: PathBuf,
    /// Absolute path of the generated inventory.
    pub inventory: PathBuf,
    /// Account the hosts log in as.
    pub user: String,
    /// Whether the hosts have filesystems of their own, and if not why.
    pub isolation: Isolation,
    /// The hosts, `lab1` first.
    pub hosts: Vec<LabHost>,
}

impl Lab {
    /// The `ssh_config` for `ssh -F … labN`.
    #[must_use]
    pub fn ssh_config(&self) -> PathBuf {
        self.dir.join("ssh_config")
    }

    /// The `known_hosts` file holding every host key.
    #[must_use]
    pub fn known_hosts(&self) -> PathBuf {
        self.dir.join("known_hosts")
    }

    /// The private client key that logs in to every host.
    #[must_use]
    pub fn client_key(&self) -> PathBuf {
        self.dir.join("client_key")
    }

    /// sshd's log (its stderr) for `host`.
    #[must_use]
    pub fn sshd_log(&self, host: &LabHost) -> PathBuf {
        HostFiles::new(&self.dir, &host.name).log()
    }

    /// The sshd config of `host`.
    #[must_use]
    pub fn sshd_config(&self, host: &LabHost) -> PathBuf {
        HostFiles::new(&self.dir, &host.name).sshd_config()
    }

    /// The overlay upper directory of `host`: every file it created or changed (deletions are
    /// whiteouts: character devices 0/0). Exists only while an isolated host runs.
    #[must_use]
    pub fn upper_dir(&self, host: &LabHost) -> PathBuf {
        HostFiles::new(&self.dir, &host.name).upper()
    }

    /// The lab-only reboot script of `host`, which its sessions see as `OPSGATE_LAB_REBOOT`.
    #[must_use]
    pub fn reboot_script(&self, host: &LabHost) -> PathBuf {
        HostFiles::new(&self.dir, &host.name).reboot_script()
    }

    fn from_state(dir: &Path, state: State) -> Self {
        Self {
            dir: dir.to_owned(),
            inventory: dir.join("inventory.yaml"),
            user: state.user,
            isolation: state.isolation,
            hosts: state.hosts,
        }
    }
}

/// The state of a recorded lab, as `lab status` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabStatus {
    /// Absolute lab directory.
    pub dir: PathBuf,
    /// Absolute path of the generated inventory.
    pub inventory: PathBuf,
    /// Every recorded host with its state.
    pub hosts: Vec<HostStatus>,
}

impl LabStatus {
    /// Number of hosts whose sshd runs.
    #[must_use]
    pub fn running(&self) -> usize {
        self.hosts
            .iter()
            .filter(|host| host.state == HostState::Running)
            .count()
    }
}

/// Starts a lab: one sshd per host, keys, `known_hosts`, `ssh_config` and `DIR/inventory.yaml`.
/// As root the hosts get filesystems of their own when the overlay works; [`Lab::isolation`]
/// says whether they did.
///
/// Refuses a directory that holds a running lab or files that are not a lab's. A directory with
/// a stopped lab is cleaned and reused. When a host fails to start, every process started so
/// far is stopped and the lab's files are removed before the error is returned.
pub fn up(options: &LabOptions) -> Result<Lab, LabError> {
    if options.hosts == 0 || options.hosts > MAX_HOSTS {
        return Err(LabError::HostCount {
            hosts: options.hosts,
            max: MAX_HOSTS,
        });
    }
    if !Path::new(sshd::SSHD).exists() {
        return Err(LabError::SshdMissing {
            path: PathBuf::from(sshd::SSHD),
        });
    }
    fs::create_dir_all(&options.dir).map_err(io_error("create directory", &options.dir))?;
    let dir = options
        .dir
        .canonicalize()
        .map_err(io_error("resolve", &options.dir))?;
    sshd::check_config_path(&dir)?;
    if let Some(state) = State::read(&dir)? {
        if host_statuses(&dir, state.hosts.clone())
            .iter()
            .any(|host| host.state == HostState::Running)
        {
            return Err(LabError::AlreadyRunning { dir });
        }
        // A host whose main process died may have left processes in its namespace (a daemon a
        // runbook started); they must not outlive the files they run from.
        stop_all(&dir, &state)?;
        remove_files(&dir)?;
        // `remove_files` drops the directory when it held only the lab.
        fs::create_dir_all(&dir).map_err(io_error("create directory", &dir))?;
    } else {
        let mut entries = fs::read_dir(&dir).map_err(io_error("read directory", &dir))?;
        if entries.next().is_some() {
            return Err(LabError::DirectoryNotEmpty { dir });
        }
    }
    let user = account::account_name()?;
    let mut state = State::new(user, Isolation::default());
    // Written before any file or process exists, so a crash at any later point leaves a
    // directory that `down` (or the next `up`) recognizes as a lab.
    state.write(&dir)?;
    match start(&dir, &mut state, options.hosts) {
        Ok(lab) => Ok(lab),
        Err(error) => {
            // The start error is what the person needs to see. The lab's record is removed only
            // once every host it started is stopped: otherwise it stays, so that `lab down` can
            // still find and stop what survived.
            if stop_all(&dir, &state).is_ok() {
                let _ = remove_files(&dir);
            }
            Err(error)
        }
    }
}

/// Reports which recorded hosts of the lab in `dir` are running.
pub fn status(dir: &Path) -> Result<LabStatus, LabError> {
    let (dir, state) = recorded(dir)?;
    let lab = Lab::from_state(&dir, state);
    Ok(LabStatus {
        hosts: host_statuses(&dir, lab.hosts),
        dir,
        inventory: lab.inventory,
    })
}

/// Reads the lab recorded in `dir` without looking at its processes.
pub fn load(dir: &Path) -> Result<Lab, LabError> {
    let (dir, state) = recorded(dir)?;
    Ok(Lab::from_state(&dir, state))
}

/// Stops exactly the sshd processes recorded in `dir` (each only while it is still that host's
/// sshd) and removes the lab's files. Hosts that already stopped are skipped quietly.
pub fn down(dir: &Path) -> Result<(), LabError> {
    let (dir, state) = recorded(dir)?;
    stop_all(&dir, &state)?;
    remove_files(&dir)
}

fn recorded(dir: &Path) -> Result<(PathBuf, State), LabError> {
    let absolute = match dir.canonicalize() {
        Ok(absolute) => absolute,
        Err(error) if error.kind() == ErrorKind::NotFound => {
            return Err(LabError::NoLab {
                dir: dir.to_owned(),
            });
        }
        Err(error) => return Err(io_error("resolve", dir)(error)),
    };
    match State::read(&absolute)? {
        Some(state) => Ok((absolute, state)),
        None => Err(LabError::NoLab { dir: absolute }),
    }
}

fn host_statuses(dir: &Path, hosts: Vec<LabHost>) -> Vec<HostStatus> {
    hosts
        .into_iter()
        .map(|host| {
            let files = HostFiles::new(dir, &host.name);
            let running = match host.filesystem {
                HostFilesystem::Shared => sshd::is_our_sshd(host.pid, &files.sshd_config()),
                HostFilesystem::Overlay { namespace } => {
                    boot::is_supervisor(host.pid, &files.boot_script(), namespace)
                }
            };
            let state = if running {
                HostState::Running
            } else {
                HostState::Stopped
            };
            HostStatus { host, state }
        })
        .collect()
}

/// Stops every recorded host, continuing past failures; returns the first failure.
fn stop_all(dir: &Path, state: &State) -> Result<(), LabError> {
    let mut first_error = None;
    for host in &state.hosts {
        match stop_host(dir, host) {
            Ok(Stopped::Now | Stopped::Already) => {}
            Err(error) => {
                first_error.get_or_insert(error);
            }
        }
    }
    first_error.map_or(Ok(()), Err)
}

/// Stops one host: its sshd, or every process of its namespace (the overlay goes with the last).
fn stop_host(dir: &Path, host: &LabHost) -> Result<Stopped, LabError> {
    let files = HostFiles::new(dir, &host.name);
    match host.filesystem {
        HostFilesystem::Shared => sshd::stop(&host.name, host.pid, &files.sshd_config()),
        HostFilesystem::Overlay {
            namespace: Some(inode),
        } => {
            let upper = files.upper();
            namespace::stop(
                &host.name,
                host.pid,
                &HostNamespace {
                    inode,
                    upper: &upper,
                },
            )
        }
        HostFilesystem::Overlay { namespace: None } => {
            // The supervisor exited before its namespace was read, and the namespace with it.
            let _ = process::reap(host.pid);
            Ok(Stopped::Already)
        }
    }
}

/// Files and directories a lab creates in its directory; nothing else is ever removed.
const LAB_FILES: &[&str] = &[
    "inventory.yaml",
    "ssh_config",
    "known_hosts",
    "client_key",
    "client_key.pub",
    "authorized_keys",
    "lab.json.tmp",
    state::STATE_FILE,
];

/// Directories a lab creates in its directory: every host's files (overlay upper directories
/// included, once their namespaces are gone) and the overlay probe's scratch directory.
const LAB_DIRS: &[&str] = &["hosts", isolation::PROBE_DIR];

/// Removes the lab's files (state last), then the directory itself when that leaves it empty.
fn remove_files(dir: &Path) -> Result<(), LabError> {
    for name in LAB_DIRS {
        let path = dir.join(name);
        match fs::remove_dir_all(&path) {
            Err(error) if error.kind() != ErrorKind::NotFound => {
                return Err(io_error("remove", path)(error));
            }
            _ => {}
        }
    }
    for name in LAB_FILES {
        let path = dir.join(name);
        match fs::remove_file(&path) {
            Err(error) if error.kind() != ErrorKind::NotFound => {
                return Err(io_error("remove", path)(error));
            }
            _ => {}
        }
    }
    // Fails when the person keeps other files there, which is fine: they stay.
    let _ = fs::remove_dir(dir);
    Ok(())
}

/// Decides the isolation, creates the client key, starts every host, then writes the client
/// files.
fn start(dir: &Path, state: &mut State, count: usize) -> Result<Lab, LabError> {
    state.isolation = isolation::choose(dir)?;
    state.write(dir)?;
    let launch = match state.isolation {
        Isolation::Overlay => Launch::Overlay,
        Isolation::Shared { .. } => {
            sshd::ensure_privilege_separation_dir(account::effective_uid() == 0)?;
            Launch::Shared
        }
    };
    let client_key = dir.join("client_key");
    let client_public = keys::generate(&client_key, "opsgate-lab-client")?;
    let authorized_keys = dir.join("authorized_keys");
    write_private(&authorized_keys, &format!("{}\n", client_public.as_str()))?;

    // Hosts start in parallel, a few at a time: each start is mostly waiting for processes
    // (ssh-keygen, the mounts of boot.sh, sshd binding its port).
    let mut addresses = AddressPicker::new();
    let targets: Vec<(String, Ipv4Addr)> = (1..=count)
        .map(|number| (format!("lab{number}"), addresses.pick()))
        .collect();
    let recorder = Mutex::new(&mut *state);
    let mut started = Vec::with_capacity(count);
    for chunk in targets.chunks(PARALLEL_STARTS) {
        let results: Vec<Result<(LabHost, PublicKey), LabError>> = thread::scope(|scope| {
            let handles: Vec<_> = chunk
                .iter()
                .map(|(name, address)| {
                    let recorder = &recorder;
                    let authorized_keys = &authorized_keys;
                    scope.spawn(move || {
                        prepare_and_start(dir, recorder, name, *address, authorized_keys, launch)
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|handle| handle.join().unwrap_or_else(|panic| resume_unwind(panic)))
                .collect()
        });
        for result in results {
            started.push(result?);
        }
    }

    let user = state.user.clone();
    let known_hosts = dir.join("known_hosts");
    let paths = ClientPaths {
        user: &user,
        client_key: &client_key,
        known_hosts: &known_hosts,
    };
    let hosts: Vec<LabHost> = started.iter().map(|(host, _)| host.clone()).collect();
    write_private(&known_hosts, &client::known_hosts(&started))?;
    let ssh_config = dir.join("ssh_config");
    fs::write(&ssh_config, client::ssh_config(dir, &hosts, &paths))
        .map_err(io_error("write", &ssh_config))?;
    let inventory = dir.join("inventory.yaml");
    fs::write(&inventory, client::inventory(dir, &hosts, &paths))
        .map_err(io_error("write", &inventory))?;
    Ok(Lab {
        dir: dir.to_owned(),
        inventory,
        user,
        isolation: state.isolation.clone(),
        hosts,
    })
}

/// Writes one host's files (`lab_root`, host key, scripts) and starts it; returns the host and its
/// public host key.
fn prepare_and_start(
    dir: &Path,
    recorder: &Mutex<&mut State>,
    name: &str,
    address: Ipv4Addr,
    authorized_keys: &Path,
    launch: Launch,
) -> Result<(LabHost, PublicKey), LabError> {
    let files = HostFiles::new(dir, name);
    fs::create_dir_all(files.lab_root()).map_err(io_error("create directory", files.lab_root()))?;
    let host_key = keys::generate(&files.host_key(), &format!("opsgate-lab-{name}"))?;
    if launch == Launch::Overlay {
        boot::write_boot_id(&files.boot_id())?;
        boot::write_script(&files.boot_script(), &boot::boot_script(dir, name, &files))?;
    }
    boot::write_script(
        &files.reboot_script(),
        &boot::reboot_script(name, &files, launch),
    )?;
    let target = StartTarget {
        name,
        files: &files,
        address,
        authorized_keys,
        launch,
    };
    let host = start_host(recorder, dir, &target)?;
    Ok((host, host_key))
}

/// One host to start.
struct StartTarget<'a> {
    name: &'a str,
    files: &'a HostFiles,
    address: Ipv4Addr,
    authorized_keys: &'a Path,
    launch: Launch,
}

/// Starts one host's sshd, retrying with a new port when a neighbour took the chosen one.
fn start_host(
    recorder: &Mutex<&mut State>,
    dir: &Path,
    target: &StartTarget<'_>,
) -> Result<LabHost, LabError> {
    let StartTarget {
        name,
        files,
        address,
        authorized_keys,
        launch,
    } = *target;
    let mut attempt = 1;
    loop {
        let port = sshd::free_port(address)?;
        let config = ServerConfig {
            host: name,
            address,
            port,
            files,
            authorized_keys,
        };
        fs::write(files.sshd_config(), config.render())
            .map_err(io_error("write", files.sshd_config()))?;
        // A stale pid file would let a new sshd look bound before it is.
        match fs::remove_file(files.pid_file()) {
            Err(error) if error.kind() != ErrorKind::NotFound => {
                return Err(io_error("remove", files.pid_file())(error));
            }
            _ => {}
        }
        if launch == Launch::Overlay {
            // Fresh layers per attempt: a failed attempt's overlay may still be tearing down.
            reset_overlay(files)?;
        }
        let mut child = sshd::spawn(files, launch)?;
        let filesystem = match launch {
            Launch::Shared => HostFilesystem::Shared,
            // The namespace exists once spawn returns: it is entered before exec.
            Launch::Overlay => HostFilesystem::Overlay {
                namespace: namespace::namespace_of(child.id()),
            },
        };
        let host = LabHost {
            name: name.to_owned(),
            address,
            port,
            pid: child.id(),
            lab_root: files.lab_root(),
            filesystem,
        };
        {
            // A poisoned lock only means another host's thread panicked, which re-raises below;
            // the state itself is whole (each update is one `record`).
            let mut state = recorder.lock().unwrap_or_else(PoisonError::into_inner);
            state.record(host.clone());
            state.write(dir)?;
        }
        match sshd::wait_ready(&mut child, name, files, address, port) {
            Ok(()) => return Ok(host),
            Err(StartFailure::PortTaken) if attempt < START_ATTEMPTS => attempt += 1,
            Err(StartFailure::PortTaken) => {
                return Err(LabError::SshdExited {
                    host: name.to_owned(),
                    status: child.wait().map_err(io_error("wait for", sshd::SSHD))?,
                    log: files.log(),
                    log_tail: sshd::log_tail(&files.log()),
                });
            }
            Err(StartFailure::Failed(error)) => return Err(error),
        }
        // `child` is dropped without waiting only on success, where sshd keeps running; a
        // failed attempt was reaped by `try_wait` inside `wait_ready`.
    }
}

/// Empties the overlay directories of a host and creates `upper`, `work` and `merged` again.
fn reset_overlay(files: &HostFiles) -> Result<(), LabError> {
    let overlay = files.overlay();
    match fs::remove_dir_all(&overlay) {
        Err(error) if error.kind() != ErrorKind::NotFound => {
            return Err(io_error("remove", overlay)(error));
        }
        _ => {}
    }
    for directory in [files.upper(), files.work(), files.merged()] {
        fs::create_dir_all(&directory).map_err(io_error("create directory", &directory))?;
    }
    Ok(())
}

/// Writes a file only its owner may read (sshd and ssh refuse keys others can read).
fn write_private(path: &Path, text: &str) -> Result<(), LabError> {
    fs::write(path, text).map_err(io_error("write", path))?;
    fs::set_permissions(path, fs::Permissions::from_mode(0o600))
        .map_err(io_error("set permissions of", path))
}

/// Distinct random loopback addresses, so that labs started at the same moment (parallel tests)
/// rarely share an address, and when they do, still get distinct ports from the kernel.
struct AddressPicker {
    taken: Vec<Ipv4Addr>,
    random: RandomState,
    draws: u64,
}

impl AddressPicker {
    fn new() -> Self {
        Self {
            taken: Vec::new(),
            random: RandomState::new(),
            draws: 0,
        }
    }

    fn pick(&mut self) -> Ipv4Addr {
        loop {
            let mut hasher = self.random.build_hasher();
            hasher.write_u64(self.draws);
            hasher.write_u32(std::process::id());
            self.draws += 1;
            // 253 choices: 127.0.0.2 – 127.0.0.254.
            let last = 2 + (hasher.finish() % 253) as u8;
            let address = Ipv4Addr::new(127, 0, 0, last);
            if !self.taken.contains(&address) {
                self.taken.push(address);
                return address;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{AddressPicker, LabError, LabOptions, MAX_HOSTS, up};

    #[test]
    fn address_picker_gives_distinct_loopback_addresses_until_the_range_is_full() {
        let mut picker = AddressPicker::new();
        let mut seen: Vec<_> = (0..MAX_HOSTS).map(|_| picker.pick()).collect();
        seen.sort_unstable();
        seen.dedup();
        assert_eq!(seen.len(), MAX_HOSTS);
        assert!(seen.iter().all(|address| {
            let [first, second, third, last] = address.octets();
            (first, second, third) == (127, 0, 0) && (2..=254).contains(&last)
        }));
    }

    #[test]
    fn up_refuses_zero_hosts_and_more_than_the_range_holds() {
        let dir = tempfile::tempdir().expect("temp dir");
        for hosts in [0, MAX_HOSTS + 1] {
            let error = up(&LabOptions {
                dir: dir.path().join("lab"),
                hosts,
            })
            .expect_err("out-of-range host count");
            assert!(matches!(error, LabError::HostCount { .. }), "{error:?}");
        }
    }

    #[test]
    fn up_refuses_a_directory_holding_other_files() {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(dir.path().join("notes.txt"), "mine").expect("write");
        let error = up(&LabOptions {
            dir: dir.path().to_owned(),
            hosts: 1,
        })
        .expect_err("not empty");
        assert!(
            matches!(error, LabError::DirectoryNotEmpty { .. }),
            "{error:?}"
        );
        assert!(
            dir.path().join("notes.txt").exists(),
            "the person's file is untouched"
        );
    }
}
