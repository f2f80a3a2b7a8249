//! Fresh ed25519 key pairs from the system `ssh-keygen`, for host keys and the client key.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::error::{LabError, io_error};

/// The public half of a key as it appears in `known_hosts` and `authorized_keys`:
/// `ssh-ed25519 AAAA…`, without the comment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PublicKey(String);

impl PublicKey {
    /// The key type and base64 blob.
    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }
}

/// Writes a new passphrase-less ed25519 key to `path` (mode 0600) and `path.pub`, and returns
/// the public key.
pub(crate) fn generate(path: &Path, comment: &str) -> Result<PublicKey, LabError> {
    let output = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", comment, "-f"])
        .arg(path)
        .stdin(Stdio::null())
        .output()
        .map_err(|source| LabError::SshKeygenMissing { source })?;
    if !output.status.success() {
        return Err(LabError::KeyGeneration {
            path: path.to_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
        });
    }
    read_public(&public_path(path))
}

/// The `.pub` file beside a private key.
pub(crate) fn public_path(private: &Path) -> PathBuf {
    let mut name = private.as_os_str().to_owned();
    name.push(".pub");
    PathBuf::from(name)
}

fn read_public(path: &Path) -> Result<PublicKey, LabError> {
    let text = fs::read_to_string(path).map_err(io_error("read", path))?;
    let mut fields = text.split_whitespace();
    match (fields.next(), fields.next()) {
        (Some(kind), Some(blob)) => Ok(PublicKey(format!("{kind} {blob}"))),
        _ => Err(LabError::KeyGeneration {
            path: path.to_owned(),
            stderr: "the public key file is empty".to_owned(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::{generate, public_path};

    #[test]
    fn generate_writes_a_private_key_only_the_owner_reads() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("key");
        let public = generate(&path, "test").expect("ssh-keygen works");
        assert!(
            public.as_str().starts_with("ssh-ed25519 AAAA"),
            "{public:?}"
        );
        assert!(!public.as_str().contains("test"), "the comment is dropped");
        let mode = std::fs::metadata(&path)
            .expect("private key")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        assert!(public_path(&path).ends_with("key.pub"));
    }
}
