//! `facts.*`: what a host is, gathered once per host with one remote command, on first use.

use serde_json::{Value, json};

use crate::transport::{Program, RemoteCommand, Transport, TransportError};

/// One line per fact, in a fixed order, so parsing needs no delimiter escaping.
const SCRIPT: &str = r#". /etc/os-release 2>/dev/null
printf '%s\n' "${ID:-unknown}" "${VERSION_ID:-}" "${ID_LIKE:-}" "$(uname -m)" "$(hostname)" "$(cat /proc/sys/kernel/random/boot_id 2>/dev/null)"
for manager in apt-get dnf yum apk; do
  if command -v "$manager" >/dev/null 2>&1; then echo "$manager"; exit 0; fi
done
echo unknown"#;

/// Why facts could not be gathered.
#[derive(Debug, thiserror::Error)]
pub(super) enum FactsError {
    /// The host is gone.
    #[error(transparent)]
    Transport(#[from] TransportError),
    /// The probe ran but did not succeed.
    #[error("the fact probe failed: {0}")]
    Probe(String),
}

/// Runs the fact script on the host.
pub(super) async fn gather<T: Transport>(transport: &T) -> Result<Value, FactsError> {
    let output = transport
        .run(&RemoteCommand {
            program: Program::Script {
                text: SCRIPT.to_owned(),
                executable: None,
            },
            become_user: None,
            env: vec![],
            stdin: None,
            timeout: Some(std::time::Duration::from_secs(30)),
            conceal: false,
        })
        .await?;
    if !output.success() {
        return Err(FactsError::Probe(output.failure()));
    }
    Ok(parse(&String::from_utf8_lossy(&output.stdout)))
}

fn parse(text: &str) -> Value {
    let mut lines = text.lines().map(str::trim);
    let mut next = || lines.next().unwrap_or_default().to_owned();
    let (id, version, like, arch, hostname, boot_id, manager) =
        (next(), next(), next(), next(), next(), next(), next());
    let family_of = |word: &str| match word {
        "debian" | "ubuntu" => Some("debian"),
        "rhel" | "fedora" | "centos" | "rocky" | "almalinux" => Some("redhat"),
        "alpine" => Some("alpine"),
        "arch" => Some("arch"),
        "suse" | "opensuse" | "sles" => Some("suse"),
        _ => None,
    };
    let os_family = std::iter::once(id.as_str())
        .chain(like.split_whitespace())
        .find_map(family_of)
        .unwrap_or(id.as_str())
        .to_owned();
    let pkg_manager = match manager.as_str() {
        "apt-get" => "apt",
        "dnf" | "yum" => "dnf",
        "apk" => "apk",
        _ => "unknown",
    };
    json!({
        "os_family": os_family,
        "distribution": id,
        "version": version,
        "arch": arch,
        "hostname": hostname,
        "boot_id": boot_id,
        "pkg_manager": pkg_manager,
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn debian_derivatives_are_debian_family() {
        let facts = super::parse("ubuntu\n24.04\ndebian\nx86_64\nweb1\nabc\napt-get\n");
        assert_eq!(facts["os_family"], "debian");
        assert_eq!(facts["distribution"], "ubuntu");
        assert_eq!(facts["pkg_manager"], "apt");
        assert_eq!(facts["hostname"], "web1");
    }
}
