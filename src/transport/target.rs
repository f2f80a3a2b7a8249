//! The connection settings of one host, and the ssh configuration files written for them.
//!
//! The `openssh` crate passes user, port, identity file, connect timeout and strict host key
//! checking to `ssh` on its command line, but has no way to pass any other `-o` setting. When
//! a host needs more (extra `ssh_options`, an inventory `known_hosts` file, a pinned
//! `host_key`, a jump host), this module writes a config file for it into the run's control
//! directory and hands it to `ssh -F`. ssh keeps the first value it reads for each setting, so
//! that file states opsgate's settings first and then `Include`s the configuration the user
//! would otherwise get: `~/.ssh/config` and `/etc/ssh/ssh_config`, or the inventory's
//! `ssh_config` file (which, like `ssh -F`, replaces both).
//!
//! Extra host keys go into `GlobalKnownHostsFile`, next to the system's files, so the user's
//! own `UserKnownHostsFile` setting stays in force. A jump host is reached with a
//! `ProxyCommand` running `ssh -F` with a config file of its own: settings of the target never
//! leak into the jump connection, and the jump's errors land in a log opsgate can read.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use sha2::{Digest as _, Sha256};

use super::error::{TargetProblem, TransportError, known_hosts_name};
use crate::inventory::ssh_option::{self, Refusal};

/// Connection settings of one inventory host, already resolved from the inventory.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SshTarget {
    /// The inventory host name, used in every message.
    pub host: String,
    /// The DNS name or IP address to dial.
    pub address: String,
    /// The port, when not left to ssh's configuration (default 22).
    pub port: Option<u16>,
    /// The login account, when not left to ssh's configuration.
    pub user: Option<String>,
    /// The only private key to offer (`ssh -i` with `IdentitiesOnly`).
    pub identity_file: Option<PathBuf>,
    /// A `known_hosts` file consulted in addition to the user's and the system's.
    pub known_hosts: Option<PathBuf>,
    /// An ssh config file used instead of `~/.ssh/config` and `/etc/ssh/ssh_config`.
    pub ssh_config: Option<PathBuf>,
    /// A pinned public host key, `TYPE BASE64 [COMMENT]` as in a `.pub` file.
    pub host_key: Option<String>,
    /// Extra ssh settings, each `Name=value` as for `ssh -o`.
    pub ssh_options: Vec<String>,
    /// A host to jump through (`ProxyJump`), with its own settings.
    pub jump: Option<Box<SshTarget>>,
}

impl SshTarget {
    /// Settings for `host` at `address`, everything else left to ssh's configuration.
    pub fn new(host: impl Into<String>, address: impl Into<String>) -> Self {
        Self {
            host: host.into(),
            address: address.into(),
            ..Self::default()
        }
    }

    /// `address:port`, or just the address when the port is left to ssh.
    #[must_use]
    pub fn destination(&self) -> String {
        match self.port {
            Some(port) => format!("{}:{port}", self.address),
            None => self.address.clone(),
        }
    }

    /// How long reaching this host may take: its `ssh_options` `ConnectTimeout=N` (seconds)
    /// when it sets one, else `default`. Connecting rejects a value that is not a number of
    /// seconds, so an unreadable one never gets this far in a real connection.
    #[must_use]
    pub fn connect_timeout(&self, default: Duration) -> Duration {
        self.ssh_options
            .iter()
            .find_map(|option| connect_timeout_option(option))
            .and_then(Result::ok)
            .unwrap_or(default)
    }

    /// Whether only the command line of `ssh` is needed, without a generated config file.
    fn needs_generated_config(&self) -> bool {
        !self.ssh_options.is_empty()
            || self.host_key.is_some()
            || self.known_hosts.is_some()
            || self.jump.is_some()
    }

    fn invalid(&self, problem: TargetProblem) -> TransportError {
        TransportError::InvalidTarget {
            host: self.host.clone(),
            problem,
        }
    }
}

/// Jump hosts are followed this deep; the inventory rejects cycles, this bounds the rest.
const MAX_JUMP_CHAIN: usize = 8;

/// Seconds between keep-alive probes, so a dead network is noticed during long commands.
pub(crate) const SERVER_ALIVE_INTERVAL: Duration = Duration::from_secs(15);

/// One jump host on the way to a target, with the log its `ssh` process writes.
#[derive(Debug, Clone)]
pub(crate) struct JumpHop {
    /// The jump host's settings.
    pub(crate) target: SshTarget,
    /// Where its `ssh` process logs (`-E`); read when the connection fails.
    pub(crate) log: PathBuf,
}

/// What [`prepare`] wrote and what the session builder must use.
#[derive(Debug)]
pub(crate) struct Prepared {
    /// The file for `ssh -F`, when one is needed.
    pub(crate) config_file: Option<PathBuf>,
    /// The jump hosts, nearest to the target first.
    pub(crate) jumps: Vec<JumpHop>,
}

/// Checks `target` and writes the files its connection needs into `control_dir`.
pub(crate) fn prepare(
    target: &SshTarget,
    control_dir: &Path,
    connect_timeout: Duration,
) -> Result<Prepared, TransportError> {
    validate(target)?;
    if !target.needs_generated_config() {
        let config_file = target
            .ssh_config
            .as_deref()
            .map(|path| absolute(target, path))
            .transpose()?;
        return Ok(Prepared {
            config_file,
            jumps: Vec::new(),
        });
    }

    // The chain from the target outwards: target, its jump, the jump's jump, ...
    let mut chain = vec![target];
    while let Some(jump) = &chain[chain.len() - 1].jump {
        if chain.len() > MAX_JUMP_CHAIN {
            return Err(target.invalid(TargetProblem::JumpChainTooLong(MAX_JUMP_CHAIN)));
        }
        validate(jump)?;
        chain.push(jump);
    }

    let stem = file_stem(&target.host);
    let pinned_file = |depth: usize, hop: &SshTarget| -> Result<Option<PathBuf>, TransportError> {
        let Some(key) = &hop.host_key else {
            return Ok(None);
        };
        let path = control_dir.join(format!("{stem}.hop{depth}.known_hosts"));
        write_file(target, &path, &pinned_known_hosts(hop, key)?)?;
        Ok(Some(path))
    };

    // Write the farthest hop first: each config names the file of the hop behind it.
    let mut jumps = Vec::new();
    let mut proxy: Option<Proxy> = None;
    for (depth, hop) in chain.iter().enumerate().skip(1).rev() {
        let config = control_dir.join(format!("{stem}.jump{depth}.ssh_config"));
        let pinned = pinned_file(depth, hop)?;
        let text = render_config(
            hop,
            Role::Jump,
            connect_timeout,
            pinned.as_deref(),
            proxy.as_ref(),
        )?;
        write_file(target, &config, &text)?;
        let log = control_dir.join(format!("{stem}.jump{depth}.log"));
        // Each attempt starts with an empty log, so only this attempt's errors are read.
        write_file(target, &log, "")?;
        proxy = Some(Proxy {
            config,
            log: log.clone(),
            address: hop.address.clone(),
        });
        jumps.push(JumpHop {
            target: (*hop).clone(),
            log,
        });
    }
    jumps.reverse();

    let config = control_dir.join(format!("{stem}.ssh_config"));
    let pinned = pinned_file(0, target)?;
    let text = render_config(
        target,
        Role::Master,
        connect_timeout,
        pinned.as_deref(),
        proxy.as_ref(),
    )?;
    write_file(target, &config, &text)?;
    Ok(Prepared {
        config_file: Some(config),
        jumps,
    })
}

/// How a hop's config file is used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    /// By the multiplexing master to the target (the command line adds `-M -S`).
    Master,
    /// By a `ProxyCommand` ssh that only forwards one connection.
    Jump,
}

/// The `ssh` that a `ProxyCommand` runs to reach the next hop.
#[derive(Debug, Clone)]
struct Proxy {
    config: PathBuf,
    log: PathBuf,
    address: String,
}

/// Checks what can be checked without contacting the host.
fn validate(target: &SshTarget) -> Result<(), TransportError> {
    let address = &target.address;
    let address_ok = !address.is_empty()
        && !address.starts_with('-')
        && address
            .chars()
            .all(|character| character.is_alphanumeric() || ".-_:".contains(character));
    if !address_ok {
        return Err(target.invalid(TargetProblem::InvalidAddress(address.clone())));
    }
    // The inventory refuses these already; checked again here because a target may be built
    // by other code, and what reaches `ssh -F` must hold either way.
    for option in &target.ssh_options {
        match ssh_option::check(option) {
            Ok(()) => {}
            Err(Refusal::Malformed) => {
                return Err(target.invalid(TargetProblem::InvalidSshOption(option.clone())));
            }
            Err(Refusal::NotAllowed { keyword } | Refusal::WidensAlgorithms { keyword, .. }) => {
                return Err(target.invalid(TargetProblem::RefusedSshOption {
                    option: option.clone(),
                    keyword,
                }));
            }
        }
        if let Some(Err(())) = connect_timeout_option(option) {
            return Err(target.invalid(TargetProblem::InvalidSshOption(option.clone())));
        }
    }
    if let Some(key) = &target.host_key {
        parse_host_key(key)
            .ok_or_else(|| target.invalid(TargetProblem::InvalidHostKey(key.clone())))?;
    }
    Ok(())
}

/// The seconds of a `ConnectTimeout` entry of `ssh_options` (`Err` when it is not a positive
/// number of seconds); `None` for any other entry.
fn connect_timeout_option(option: &str) -> Option<Result<Duration, ()>> {
    let (keyword, value) = ssh_option::split(option)?;
    if !keyword.eq_ignore_ascii_case("connecttimeout") {
        return None;
    }
    Some(match value.parse::<u64>() {
        Ok(seconds) if seconds > 0 => Ok(Duration::from_secs(seconds)),
        _ => Err(()),
    })
}

/// `TYPE BASE64` of a public key line, without its comment, when it looks like one.
fn parse_host_key(key: &str) -> Option<String> {
    if key.contains(['\n', '\r', '\0']) {
        return None;
    }
    let mut fields = key.split_whitespace();
    let kind = fields.next()?;
    let data = fields.next()?;
    let kind_ok = ["ssh-", "ecdsa-", "sk-"]
        .iter()
        .any(|prefix| kind.starts_with(prefix))
        && kind
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "@.-".contains(c));
    let data_ok = data.len() >= 16
        && data
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+/=".contains(c));
    (kind_ok && data_ok).then(|| format!("{kind} {data}"))
}

/// The `known_hosts` lines that pin `key` for `target`.
///
/// With the port left to ssh's configuration the real port is unknown here, so the key is
/// pinned for the bare address (port 22) and for every port of it (`[address]:*`).
fn pinned_known_hosts(target: &SshTarget, key: &str) -> Result<String, TransportError> {
    let key = parse_host_key(key)
        .ok_or_else(|| target.invalid(TargetProblem::InvalidHostKey(key.to_owned())))?;
    let names = match target.port {
        Some(port) => vec![known_hosts_name(&target.address, Some(port))],
        None => vec![target.address.clone(), format!("[{}]:*", target.address)],
    };
    let mut text = String::new();
    for name in names {
        text.push_str(&name);
        text.push(' ');
        text.push_str(&key);
        text.push('\n');
    }
    Ok(text)
}

/// The config file for one hop; see the module documentation for its layout.
fn render_config(
    target: &SshTarget,
    role: Role,
    connect_timeout: Duration,
    pinned: Option<&Path>,
    proxy: Option<&Proxy>,
) -> Result<String, TransportError> {
    let mut lines = vec![
        format!(
            "# Written by opsgate for host `{}`. ssh keeps the first value it reads for a",
            target.host.replace(['\n', '\r'], " ")
        ),
        "# setting, so opsgate's settings come before the included user configuration.".to_owned(),
        "BatchMode yes".to_owned(),
        "StrictHostKeyChecking yes".to_owned(),
        // The host's own `ConnectTimeout` wins over the default; ssh would keep this line.
        format!(
            "ConnectTimeout {}",
            target.connect_timeout(connect_timeout).as_secs().max(1)
        ),
        format!("ServerAliveInterval {}", SERVER_ALIVE_INTERVAL.as_secs()),
    ];
    if role == Role::Jump {
        // A user's `ControlMaster auto` would otherwise leave a master behind for the jump.
        lines.push("ControlMaster no".to_owned());
        lines.push("ControlPath none".to_owned());
    }
    if let Some(user) = &target.user {
        lines.push(format!("User {}", config_word(target, user)?));
    }
    if let Some(port) = target.port {
        lines.push(format!("Port {port}"));
    }
    if let Some(identity) = &target.identity_file {
        let identity = absolute(target, identity)?;
        lines.push(format!("IdentityFile {}", config_path(target, &identity)?));
        lines.push("IdentitiesOnly yes".to_owned());
    }
    let mut extra_known_hosts = Vec::new();
    if let Some(file) = &target.known_hosts {
        extra_known_hosts.push(config_path(target, &absolute(target, file)?)?);
    }
    if let Some(file) = pinned {
        extra_known_hosts.push(config_path(target, file)?);
    }
    if !extra_known_hosts.is_empty() {
        // The system's default files stay, the extra ones are added after them.
        lines.push(format!(
            "GlobalKnownHostsFile /etc/ssh/ssh_known_hosts /etc/ssh/ssh_known_hosts2 {}",
            extra_known_hosts.join(" ")
        ));
    }
    lines.extend(target.ssh_options.iter().cloned());
    if let Some(proxy) = proxy {
        // ssh runs this with `/bin/sh -c "exec …"` and expands `%h`/`%p` first; the paths
        // were checked to hold no `%`.
        lines.push(format!(
            "ProxyCommand ssh -F {} -E {} -W '[%h]:%p' {}",
            crate::quote::shell_quote(&proxy_path(target, &proxy.config)?),
            crate::quote::shell_quote(&proxy_path(target, &proxy.log)?),
            crate::quote::shell_quote(&proxy.address),
        ));
    }
    if let Some(file) = &target.ssh_config {
        let file = absolute(target, file)?;
        lines.push(format!("Include {}", config_path(target, &file)?));
    } else {
        // `ssh -F` skips both of these, so they are included to keep the user's setup.
        lines.push("Include ~/.ssh/config".to_owned());
        lines.push("Include /etc/ssh/ssh_config".to_owned());
    }
    let mut text = lines.join("\n");
    text.push('\n');
    Ok(text)
}

/// A double-quoted config value; `"`, `%` and control characters cannot be expressed safely.
fn config_word(target: &SshTarget, text: &str) -> Result<String, TransportError> {
    if text.contains(['"', '%']) || text.chars().any(char::is_control) {
        return Err(target.invalid(TargetProblem::UnsupportedPath(PathBuf::from(text))));
    }
    Ok(format!("\"{text}\""))
}

/// A path as a double-quoted config value.
fn config_path(target: &SshTarget, path: &Path) -> Result<String, TransportError> {
    let text = path
        .to_str()
        .ok_or_else(|| target.invalid(TargetProblem::UnsupportedPath(path.to_owned())))?;
    config_word(target, text)
        .map_err(|_| target.invalid(TargetProblem::UnsupportedPath(path.to_owned())))
}

/// A path for the `ProxyCommand` line: no `%`, which ssh would expand.
fn proxy_path(target: &SshTarget, path: &Path) -> Result<String, TransportError> {
    let text = path
        .to_str()
        .filter(|text| !text.contains('%') && !text.chars().any(char::is_control))
        .ok_or_else(|| target.invalid(TargetProblem::UnsupportedPath(path.to_owned())))?;
    Ok(text.to_owned())
}

/// `path` made absolute against the current directory: an `Include` or `IdentityFile` with a
/// relative path would be read relative to `~/.ssh` instead.
fn absolute(target: &SshTarget, path: &Path) -> Result<PathBuf, TransportError> {
    std::path::absolute(path).map_err(|source| TransportError::Io {
        host: target.host.clone(),
        action: format!("could not resolve path `{}`", path.display()),
        source,
    })
}

/// A file name stem for `host`: the name itself when it is harmless, else a cleaned name with
/// a hash of the original, so two hosts never share files.
pub(crate) fn file_stem(host: &str) -> String {
    let harmless = !host.is_empty()
        && !host.starts_with('.')
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c));
    if harmless {
        return host.to_owned();
    }
    let cleaned: String = host
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .take(40)
        .collect();
    let digest = Sha256::digest(host.as_bytes());
    format!("{cleaned}-{}", hex::encode(&digest[..4]))
}

/// Writes `text` to `path` through a temporary file and a rename, so ssh never reads half a
/// file.
fn write_file(target: &SshTarget, path: &Path, text: &str) -> Result<(), TransportError> {
    let io_error = |source| TransportError::Io {
        host: target.host.clone(),
        action: format!("could not write `{}`", path.display()),
        source,
    };
    let directory = path.parent().unwrap_or_else(|| Path::new("."));
    let mut file = tempfile::NamedTempFile::new_in(directory).map_err(io_error)?;
    file.write_all(text.as_bytes()).map_err(io_error)?;
    file.persist(path).map_err(|error| io_error(error.error))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{
        Role, SshTarget, TargetProblem, TransportError, file_stem, parse_host_key,
        pinned_known_hosts, prepare, render_config,
    };
    use std::path::{Path, PathBuf};
    use std::time::Duration;

    const KEY: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl";

    fn problem(result: Result<impl std::fmt::Debug, TransportError>) -> TargetProblem {
        match result {
            Err(TransportError::InvalidTarget { problem, .. }) => problem,
            other => panic!("expected an invalid target, got {other:?}"),
        }
    }

    #[test]
    fn options_outside_the_allowlist_and_malformed_options_are_refused() {
        let directory = tempfile::tempdir().expect("temp dir");
        let mut target = SshTarget::new("web1", "10.0.0.1");
        target.ssh_options = vec!["StrictHostKeyChecking=no".to_owned()];
        assert!(matches!(
            problem(prepare(&target, directory.path(), Duration::from_secs(5))),
            TargetProblem::RefusedSshOption { keyword, .. } if keyword == "StrictHostKeyChecking"
        ));
        target.ssh_options = vec!["KnownHostsCommand=/bin/true".to_owned()];
        assert!(matches!(
            problem(prepare(&target, directory.path(), Duration::from_secs(5))),
            TargetProblem::RefusedSshOption { keyword, .. } if keyword == "KnownHostsCommand"
        ));
        target.ssh_options = vec!["Comp-ression=yes".to_owned()];
        assert_eq!(
            problem(prepare(&target, directory.path(), Duration::from_secs(5))),
            TargetProblem::InvalidSshOption("Comp-ression=yes".to_owned())
        );
        target.ssh_options = vec!["Compression=yes\nHost evil".to_owned()];
        assert_eq!(
            problem(prepare(&target, directory.path(), Duration::from_secs(5))),
            TargetProblem::InvalidSshOption("Compression=yes\nHost evil".to_owned())
        );
    }

    #[test]
    fn an_ssh_options_connect_timeout_replaces_the_default() {
        let directory = tempfile::tempdir().expect("temp dir");
        let default = Duration::from_secs(15);
        let mut target = SshTarget::new("web1", "10.0.0.1");
        assert_eq!(target.connect_timeout(default), default);
        for option in ["ConnectTimeout=3", "connecttimeout 3", "ConnectTimeout = 3"] {
            target.ssh_options = vec!["Compression=yes".to_owned(), option.to_owned()];
            assert_eq!(
                target.connect_timeout(default),
                Duration::from_secs(3),
                "{option}"
            );
        }
        let prepared = prepare(&target, directory.path(), default).expect("ok");
        let config = std::fs::read_to_string(prepared.config_file.expect("a config file"))
            .expect("readable");
        let first = config
            .lines()
            .find(|line| line.to_ascii_lowercase().starts_with("connecttimeout"))
            .expect("a ConnectTimeout line");
        assert_eq!(
            first, "ConnectTimeout 3",
            "ssh keeps the first value:\n{config}"
        );
        for bad in [
            "ConnectTimeout=soon",
            "ConnectTimeout=0",
            "ConnectTimeout=-1",
        ] {
            target.ssh_options = vec![bad.to_owned()];
            assert_eq!(target.connect_timeout(default), default, "{bad}");
            assert_eq!(
                problem(prepare(&target, directory.path(), default)),
                TargetProblem::InvalidSshOption(bad.to_owned())
            );
        }
    }

    #[test]
    fn addresses_that_look_like_options_are_refused() {
        let directory = tempfile::tempdir().expect("temp dir");
        for address in ["", "-oProxyCommand=evil", "a b", "user@host", "a/b"] {
            let target = SshTarget::new("web1", address);
            assert_eq!(
                problem(prepare(&target, directory.path(), Duration::from_secs(5))),
                TargetProblem::InvalidAddress(address.to_owned())
            );
        }
    }

    #[test]
    fn host_keys_must_look_like_public_keys() {
        assert_eq!(
            parse_host_key(&format!("{KEY} root@web1")),
            Some(KEY.to_owned())
        );
        assert_eq!(parse_host_key("ssh-ed25519"), None);
        assert_eq!(parse_host_key("AAAA ssh-ed25519"), None);
        assert_eq!(parse_host_key(&format!("{KEY}\n[evil]:22 {KEY}")), None);
    }

    #[test]
    fn pinned_keys_use_the_known_hosts_port_syntax() {
        let mut target = SshTarget::new("web1", "10.0.0.1");
        target.port = Some(2222);
        assert_eq!(
            pinned_known_hosts(&target, KEY).expect("valid key"),
            format!("[10.0.0.1]:2222 {KEY}\n")
        );
        target.port = Some(22);
        assert_eq!(
            pinned_known_hosts(&target, KEY).expect("valid key"),
            format!("10.0.0.1 {KEY}\n")
        );
        target.port = None;
        assert_eq!(
            pinned_known_hosts(&target, KEY).expect("valid key"),
            format!("10.0.0.1 {KEY}\n[10.0.0.1]:* {KEY}\n")
        );
    }

    #[test]
    fn plain_targets_need_no_generated_config() {
        let directory = tempfile::tempdir().expect("temp dir");
        let target = SshTarget::new("web1", "10.0.0.1");
        let prepared = prepare(&target, directory.path(), Duration::from_secs(5)).expect("ok");
        assert_eq!(prepared.config_file, None);
        assert_eq!(
            std::fs::read_dir(directory.path())
                .expect("readable")
                .count(),
            0
        );
    }

    #[test]
    fn generated_config_puts_settings_before_includes() {
        let mut target = SshTarget::new("web1", "10.0.0.1");
        target.port = Some(2222);
        target.user = Some("ops".to_owned());
        target.identity_file = Some(PathBuf::from("/keys/id_ed25519"));
        target.known_hosts = Some(PathBuf::from("/inventory/known_hosts"));
        target.ssh_options = vec!["Compression=yes".to_owned()];
        let text = render_config(
            &target,
            Role::Master,
            Duration::from_secs(7),
            Some(Path::new("/control/web1.hop0.known_hosts")),
            None,
        )
        .expect("renders");
        let body: Vec<&str> = text.lines().filter(|line| !line.starts_with('#')).collect();
        assert_eq!(
            body,
            [
                "BatchMode yes",
                "StrictHostKeyChecking yes",
                "ConnectTimeout 7",
                "ServerAliveInterval 15",
                "User \"ops\"",
                "Port 2222",
                "IdentityFile \"/keys/id_ed25519\"",
                "IdentitiesOnly yes",
                "GlobalKnownHostsFile /etc/ssh/ssh_known_hosts /etc/ssh/ssh_known_hosts2 \
                 \"/inventory/known_hosts\" \"/control/web1.hop0.known_hosts\"",
                "Compression=yes",
                "Include ~/.ssh/config",
                "Include /etc/ssh/ssh_config",
            ]
        );
        target.ssh_config = Some(PathBuf::from("/inventory/ssh_config"));
        let text = render_config(&target, Role::Jump, Duration::from_secs(7), None, None)
            .expect("renders");
        assert!(text.contains("ControlPath none\n"), "{text}");
        assert!(
            text.ends_with("Include \"/inventory/ssh_config\"\n"),
            "{text}"
        );
        assert!(!text.contains("/etc/ssh/ssh_config"), "{text}");
    }

    #[test]
    fn jump_chains_get_one_config_and_log_per_hop() {
        let directory = tempfile::tempdir().expect("temp dir");
        let mut far = SshTarget::new("far", "10.0.0.3");
        far.host_key = Some(KEY.to_owned());
        let mut near = SshTarget::new("near", "10.0.0.2");
        near.jump = Some(Box::new(far));
        let mut target = SshTarget::new("web1", "10.0.0.1");
        target.jump = Some(Box::new(near));
        let prepared = prepare(&target, directory.path(), Duration::from_secs(5)).expect("ok");
        let hosts: Vec<&str> = prepared
            .jumps
            .iter()
            .map(|hop| hop.target.host.as_str())
            .collect();
        assert_eq!(hosts, ["near", "far"]);
        let config = std::fs::read_to_string(prepared.config_file.expect("config written"))
            .expect("readable");
        let near_config = directory.path().join("web1.jump1.ssh_config");
        assert!(
            config.contains(&format!(
                "ProxyCommand ssh -F {} -E {} -W '[%h]:%p' 10.0.0.2",
                near_config.display(),
                directory.path().join("web1.jump1.log").display()
            )),
            "{config}"
        );
        let near_text = std::fs::read_to_string(near_config).expect("near config written");
        assert!(near_text.contains("-W '[%h]:%p' 10.0.0.3"), "{near_text}");
        let far_text = std::fs::read_to_string(directory.path().join("web1.jump2.ssh_config"))
            .expect("far config written");
        assert!(far_text.contains("web1.hop2.known_hosts"), "{far_text}");
        assert!(!far_text.contains("ProxyCommand"), "{far_text}");
    }

    #[test]
    fn file_stems_are_safe_and_distinct() {
        assert_eq!(file_stem("web1"), "web1");
        assert_ne!(file_stem("a/b"), file_stem("a_b"));
        assert!(!file_stem("../etc").contains('/'));
        assert!(!file_stem(".hidden").starts_with('.'));
    }
}
