//! Throwaway local SSH hosts: `opsgate lab up|status|down`, reused by the test suite.
//!
//! `up` starts one OpenSSH server per lab host, each on its own loopback address
//! (127.0.0.2 – 127.0.0.254, chosen at random so that many labs can run side by side) and on a
//! port found free by binding it. Every host gets a fresh ed25519 host key and its own working
//! directory (`lab_root`); one generated client key logs in to all of them as the account that
//! runs opsgate. The lab directory then holds everything a client needs:
//!
//! ```text
//! DIR/lab.json          what was started (pids, addresses, ports): read by status and down
//! DIR/inventory.yaml    SPEC §3 inventory: group `lab`, hosts lab1…labN, var `lab_root`
//! DIR/ssh_config        `ssh -F DIR/ssh_config lab1` for a person
//! DIR/known_hosts       each host key pinned at `[127.0.0.x]:port`
//! DIR/client_key(.pub)  the login key; DIR/authorized_keys holds its public half
//! DIR/hosts/labN/       sshd_config, host key, sshd.pid, sshd.log, root/ (= lab_root)
//! ```
//!
//! `down` signals exactly the recorded pids, and only while `/proc/PID/cmdline` still names the
//! host's config file. This module never prints and never decides who may run a lab: SPEC §4.6
//! refuses `opsgate lab` to the service account and under a `SUDO_USER` identity, which is the
//! gate's job before it calls in here. It works as root and as an ordinary user (sshd runs
//! without PAM on unprivileged ports; only root needs `/run/sshd`).

mod account;
mod client;
mod error;
mod host;
mod keys;
mod sshd;
mod state;

use std::collections::hash_map::RandomState;
use std::fs;
use std::hash::{BuildHasher, Hasher};
use std::io::ErrorKind;
use std::net::Ipv4Addr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

pub use error::LabError;
pub use host::{HostState, HostStatus, LabHost};

use client::ClientPaths;
use error::io_error;
use host::HostFiles;
use sshd::{ServerConfig, StartFailure, Stopped};
use state::State;

/// The largest lab: one host per usable loopback address 127.0.0.2 – 127.0.0.254.
pub const MAX_HOSTS: usize = 253;

/// Attempts per host when another process takes the chosen port before sshd binds it.
const START_ATTEMPTS: usize = 5;

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

    fn from_state(dir: &Path, state: State) -> Self {
        Self {
            dir: dir.to_owned(),
            inventory: dir.join("inventory.yaml"),
            user: state.user,
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
///
/// Refuses a directory that holds a running lab or files that are not a lab's. A directory with
/// a stopped lab is cleaned and reused. When a host fails to start, every sshd started so far is
/// stopped and the lab's files are removed before the error is returned.
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
        if host_statuses(&dir, state.hosts)
            .iter()
            .any(|host| host.state == HostState::Running)
        {
            return Err(LabError::AlreadyRunning { dir });
        }
        remove_files(&dir)?;
        // `remove_files` drops the directory when it held only the lab.
        fs::create_dir_all(&dir).map_err(io_error("create directory", &dir))?;
    } else {
        let mut entries = fs::read_dir(&dir).map_err(io_error("read directory", &dir))?;
        if entries.next().is_some() {
            return Err(LabError::DirectoryNotEmpty { dir });
        }
    }
    sshd::ensure_privilege_separation_dir(account::effective_uid() == 0)?;
    let user = account::account_name()?;
    let mut state = State::new(user);
    // Written before any file or process exists, so a crash at any later point leaves a
    // directory that `down` (or the next `up`) recognizes as a lab.
    state.write(&dir)?;
    match start(&dir, &mut state, options.hosts) {
        Ok(lab) => Ok(lab),
        Err(error) => {
            // Best effort: the start error is what the person needs to see.
            let _ = stop_all(&dir, &state);
            let _ = remove_files(&dir);
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
            let config = HostFiles::new(dir, &host.name).sshd_config();
            let state = if sshd::is_our_sshd(host.pid, &config) {
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
        let config = HostFiles::new(dir, &host.name).sshd_config();
        match sshd::stop(&host.name, host.pid, &config) {
            Ok(Stopped::Now | Stopped::Already) => {}
            Err(error) => {
                first_error.get_or_insert(error);
            }
        }
    }
    first_error.map_or(Ok(()), Err)
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

/// Removes the lab's files (state last), then the directory itself when that leaves it empty.
fn remove_files(dir: &Path) -> Result<(), LabError> {
    let hosts = dir.join("hosts");
    match fs::remove_dir_all(&hosts) {
        Err(error) if error.kind() != ErrorKind::NotFound => {
            return Err(io_error("remove", hosts)(error));
        }
        _ => {}
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

/// Creates the client key, starts every host, then writes the client files.
fn start(dir: &Path, state: &mut State, count: usize) -> Result<Lab, LabError> {
    let client_key = dir.join("client_key");
    let client_public = keys::generate(&client_key, "opsgate-lab-client")?;
    let authorized_keys = dir.join("authorized_keys");
    write_private(&authorized_keys, &format!("{}\n", client_public.as_str()))?;

    let mut addresses = AddressPicker::new();
    let mut started = Vec::with_capacity(count);
    for number in 1..=count {
        let name = format!("lab{number}");
        let files = HostFiles::new(dir, &name);
        fs::create_dir_all(files.lab_root())
            .map_err(io_error("create directory", files.lab_root()))?;
        let host_key = keys::generate(&files.host_key(), &format!("opsgate-lab-{name}"))?;
        let address = addresses.pick();
        let host = start_host(state, dir, &name, &files, address, &authorized_keys)?;
        started.push((host, host_key));
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
        hosts,
    })
}

/// Starts one host's sshd, retrying with a new port when a neighbour took the chosen one.
fn start_host(
    state: &mut State,
    dir: &Path,
    name: &str,
    files: &HostFiles,
    address: Ipv4Addr,
    authorized_keys: &Path,
) -> Result<LabHost, LabError> {
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
        let mut child = sshd::spawn(files)?;
        let host = LabHost {
            name: name.to_owned(),
            address,
            port,
            pid: child.id(),
            lab_root: files.lab_root(),
        };
        state.record(host.clone());
        state.write(dir)?;
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
