//! Which inventory `ssh_options` opsgate passes to `ssh -o`: an allowlist of connection tuning.
//!
//! An `ssh -o` option can run a local command (`ProxyCommand`, `LocalCommand`,
//! `KnownHostsCommand`), turn host-key checking off (`StrictHostKeyChecking`,
//! `UserKnownHostsFile`), read or send files and environment (`IdentityFile`, `Include`,
//! `SendEnv`) or re-enable broken algorithms (`Ciphers=+3des-cbc`). Whoever may edit an
//! inventory must not get any of that through it, so this module names the options that only
//! tune a connection (timeouts, keep-alives, compression, algorithm *restrictions*) and refuses
//! everything else. The inventory's own keys cover what the refused options would do safely:
//! `jump:` is the only proxy, `known_hosts:`/`host_key:` add host keys, `identity_file:` picks a
//! key. Algorithm lists may only name algorithms OpenSSH enables by default, without the `+`,
//! `-` or `^` modifiers, so an inventory can narrow the choice but never widen it.
//!
//! The check is pure: inventory validation reports a refusal at the option's `file:line:col`,
//! and the transport checks again before writing an ssh config (defence in depth).

/// Options an inventory may set, as OpenSSH spells them (matching is case-insensitive).
pub const ALLOWED: &[&str] = &[
    "AddressFamily",
    "Ciphers",
    "Compression",
    "ConnectionAttempts",
    "ConnectTimeout",
    "IdentitiesOnly",
    "IPQoS",
    "KexAlgorithms",
    "LogLevel",
    "MACs",
    "ServerAliveCountMax",
    "ServerAliveInterval",
    "TCPKeepAlive",
];

/// Ciphers OpenSSH enables by default.
const DEFAULT_CIPHERS: &[&str] = &[
    "chacha20-poly1305@openssh.com",
    "aes128-ctr",
    "aes192-ctr",
    "aes256-ctr",
    "aes128-gcm@openssh.com",
    "aes256-gcm@openssh.com",
];

/// MACs OpenSSH enables by default.
const DEFAULT_MACS: &[&str] = &[
    "umac-64-etm@openssh.com",
    "umac-128-etm@openssh.com",
    "hmac-sha2-256-etm@openssh.com",
    "hmac-sha2-512-etm@openssh.com",
    "hmac-sha1-etm@openssh.com",
    "umac-64@openssh.com",
    "umac-128@openssh.com",
    "hmac-sha2-256",
    "hmac-sha2-512",
    "hmac-sha1",
];

/// Key exchange algorithms OpenSSH enables by default (up to 10.0).
const DEFAULT_KEX: &[&str] = &[
    "mlkem768x25519-sha256",
    "sntrup761x25519-sha512",
    "sntrup761x25519-sha512@openssh.com",
    "curve25519-sha256",
    "curve25519-sha256@libssh.org",
    "ecdh-sha2-nistp256",
    "ecdh-sha2-nistp384",
    "ecdh-sha2-nistp521",
    "diffie-hellman-group-exchange-sha256",
    "diffie-hellman-group16-sha512",
    "diffie-hellman-group18-sha512",
    "diffie-hellman-group14-sha256",
];

/// Why an `ssh_options` entry is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// Not `Name=value` (or `Name value`) on one line.
    Malformed,
    /// The option is not on the [`ALLOWED`] list.
    NotAllowed {
        /// The option's name as written.
        keyword: String,
    },
    /// An algorithm list that uses `+`, `-` or `^`, or names an algorithm OpenSSH does not
    /// enable by default.
    WidensAlgorithms {
        /// The option's name as written.
        keyword: String,
        /// The first offending item of the list.
        algorithm: String,
    },
}

impl Refusal {
    /// What the user can do instead, one sentence each.
    #[must_use]
    pub fn hints(&self) -> Vec<String> {
        match self {
            Self::Malformed => {
                vec!["write it as `ssh -o` takes it, e.g. `ServerAliveInterval=30`".to_owned()]
            }
            Self::NotAllowed { keyword } => {
                let mut hints = Vec::new();
                let lowered = keyword.to_ascii_lowercase();
                if lowered.starts_with("proxy") {
                    hints.push("use `jump:` to connect through a bastion host".to_owned());
                } else if lowered.contains("knownhosts") || lowered == "stricthostkeychecking" {
                    hints.push(
                        "use `known_hosts:` or `host_key:` for extra host keys; opsgate always \
                         checks host keys strictly"
                            .to_owned(),
                    );
                } else if lowered == "identityfile" || lowered == "certificatefile" {
                    hints.push("use `identity_file:` to choose the key".to_owned());
                }
                hints.push(format!(
                    "`ssh_options` only tune the connection; allowed options: {}",
                    allowed_list()
                ));
                hints
            }
            Self::WidensAlgorithms { keyword, .. } => vec![format!(
                "`{keyword}` may only list algorithms OpenSSH enables by default, without `+`, \
                 `-` or `^`: {}",
                defaults_for(keyword)
                    .unwrap_or_default()
                    .iter()
                    .map(|name| format!("`{name}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )],
        }
    }
}

/// The allowed option names in backticks, comma-separated, for hints.
#[must_use]
pub fn allowed_list() -> String {
    ALLOWED
        .iter()
        .map(|name| format!("`{name}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The keyword and value of an entry (`Name=value` or `Name value`), when well formed.
#[must_use]
pub fn split(option: &str) -> Option<(&str, &str)> {
    if option.chars().any(char::is_control) {
        return None;
    }
    let option = option.trim();
    let end = option
        .find(|character: char| character == '=' || character.is_whitespace())
        .unwrap_or(option.len());
    let (keyword, rest) = option.split_at(end);
    let value = rest.trim_start().strip_prefix('=').unwrap_or(rest).trim();
    let keyword_ok = !keyword.is_empty() && keyword.chars().all(|c| c.is_ascii_alphanumeric());
    (keyword_ok && !value.is_empty()).then_some((keyword, value))
}

/// Checks one `ssh_options` entry against the allowlist.
///
/// # Errors
/// The [`Refusal`] saying why the entry cannot be passed to ssh.
pub fn check(option: &str) -> Result<(), Refusal> {
    let (keyword, value) = split(option).ok_or(Refusal::Malformed)?;
    if !ALLOWED
        .iter()
        .any(|allowed| allowed.eq_ignore_ascii_case(keyword))
    {
        return Err(Refusal::NotAllowed {
            keyword: keyword.to_owned(),
        });
    }
    if let Some(defaults) = defaults_for(keyword) {
        let widening = value
            .split(',')
            .map(str::trim)
            .find(|algorithm| !defaults.contains(algorithm));
        if let Some(algorithm) = widening {
            return Err(Refusal::WidensAlgorithms {
                keyword: keyword.to_owned(),
                algorithm: algorithm.to_owned(),
            });
        }
    }
    Ok(())
}

/// The default algorithms for an algorithm-list option, `None` for other options.
fn defaults_for(keyword: &str) -> Option<&'static [&'static str]> {
    match keyword.to_ascii_lowercase().as_str() {
        "ciphers" => Some(DEFAULT_CIPHERS),
        "macs" => Some(DEFAULT_MACS),
        "kexalgorithms" => Some(DEFAULT_KEX),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::{Refusal, check};

    #[test]
    fn connection_tuning_is_allowed() {
        for option in [
            "ConnectTimeout=5",
            "serveraliveinterval=30",
            "ServerAliveCountMax 2",
            "TCPKeepAlive=yes",
            "Compression=yes",
            "Ciphers=aes256-gcm@openssh.com,chacha20-poly1305@openssh.com",
            "MACs=hmac-sha2-512-etm@openssh.com",
            "KexAlgorithms=curve25519-sha256",
            "IPQoS=lowdelay throughput",
            "ConnectionAttempts=3",
            "AddressFamily=inet",
            "LogLevel=ERROR",
            "IdentitiesOnly=yes",
        ] {
            assert_eq!(check(option), Ok(()), "{option}");
        }
    }

    #[test]
    fn options_that_run_commands_or_change_trust_are_refused() {
        for option in [
            "ProxyCommand=nc %h %p",
            "ProxyJump=bastion",
            "LocalCommand=touch /tmp/x",
            "PermitLocalCommand=yes",
            "KnownHostsCommand=/bin/true",
            "UserKnownHostsFile=/dev/null",
            "GlobalKnownHostsFile=/dev/null",
            "StrictHostKeyChecking=no",
            "IdentityFile=/root/.ssh/id_ed25519",
            "CertificateFile=/tmp/cert",
            "Include=/etc/passwd",
            "Match=all",
            "SendEnv=*",
            "SetEnv=A=b",
            "RemoteCommand=id",
            "ControlPath=/tmp/x",
            "Host=*",
            "BatchMode=no",
        ] {
            assert!(
                matches!(check(option), Err(Refusal::NotAllowed { .. })),
                "{option}"
            );
        }
    }

    #[test]
    fn algorithm_lists_cannot_widen_the_defaults() {
        for (option, algorithm) in [
            ("Ciphers=+3des-cbc", "+3des-cbc"),
            ("Ciphers=^aes128-cbc", "^aes128-cbc"),
            ("MACs=-hmac-sha1", "-hmac-sha1"),
            (
                "KexAlgorithms=curve25519-sha256,diffie-hellman-group1-sha1",
                "diffie-hellman-group1-sha1",
            ),
        ] {
            assert_eq!(
                check(option),
                Err(Refusal::WidensAlgorithms {
                    keyword: option.split('=').next().unwrap_or_default().to_owned(),
                    algorithm: algorithm.to_owned(),
                }),
                "{option}"
            );
        }
    }

    #[test]
    fn malformed_entries_are_refused() {
        for option in [
            "bad",
            "ConnectTimeout=",
            "Connect-Timeout=3",
            "LogLevel=ERROR\nProxyCommand=x",
        ] {
            assert_eq!(check(option), Err(Refusal::Malformed), "{option:?}");
        }
    }
}
