//! A real, throwaway OpenSSH server for the transport's tests.
//!
//! Each [`TestSshd`] gets a temporary directory with fresh ed25519 host and client keys, an
//! `sshd_config` that listens on 127.0.0.1 at a free port with key-only login and no PAM, and
//! a `known_hosts` file for its host key. sshd runs in the foreground (`-D -e`) as a child of the
//! test process, is killed by its PID on drop, and its log is available for failure messages.
//! A missing sshd fails the test with the install command; it never skips.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tokio::io::AsyncReadExt as _;

use super::SshTarget;

const SSHD: &str = "/usr/sbin/sshd";

/// A running sshd on 127.0.0.1, stopped on drop.
pub(crate) struct TestSshd {
    directory: tempfile::TempDir,
    child: Child,
    /// The port sshd listens on.
    pub(crate) port: u16,
    /// A `known_hosts` file holding this server's host key, as `[127.0.0.1]:PORT KEY`.
    pub(crate) known_hosts: PathBuf,
    /// The private key that the server accepts.
    pub(crate) client_key: PathBuf,
    /// The server's public host key, `ssh-ed25519 AAAA…`.
    pub(crate) host_public_key: String,
    /// The account the tests run as, which the server lets in.
    pub(crate) user: String,
}

impl TestSshd {
    /// Generates keys, writes the config, starts sshd and waits until it greets.
    pub(crate) async fn start() -> Self {
        assert!(
            Path::new(SSHD).exists(),
            "{SSHD} is missing: install it with `apt-get install openssh-server`"
        );
        // sshd refuses to start without its privilege separation directory.
        std::fs::create_dir_all("/run/sshd").expect("create /run/sshd");

        let directory = tempfile::Builder::new()
            .prefix("opsgate-sshd-")
            .tempdir()
            .expect("temp dir");
        let dir = directory.path();
        let host_key = dir.join("host_ed25519");
        let client_key = dir.join("client_ed25519");
        keygen(&host_key);
        keygen(&client_key);
        std::fs::copy(
            client_key.with_extension("pub"),
            dir.join("authorized_keys"),
        )
        .expect("write authorized_keys");
        let host_public_key = public_key(&host_key);

        let port = free_port();
        let config = dir.join("sshd_config");
        std::fs::write(
            &config,
            format!(
                "ListenAddress 127.0.0.1\n\
                 Port {port}\n\
                 HostKey {host_key}\n\
                 PidFile {pid}\n\
                 AuthorizedKeysFile {authorized}\n\
                 UsePAM no\n\
                 StrictModes no\n\
                 PermitRootLogin prohibit-password\n\
                 PasswordAuthentication no\n\
                 KbdInteractiveAuthentication no\n\
                 PubkeyAuthentication yes\n\
                 MaxSessions 10\n\
                 SetEnv SHLVL=1\n\
                 LogLevel VERBOSE\n",
                host_key = host_key.display(),
                pid = dir.join("sshd.pid").display(),
                authorized = dir.join("authorized_keys").display(),
            ),
        )
        .expect("write sshd_config");

        let known_hosts = dir.join("known_hosts");
        std::fs::write(
            &known_hosts,
            format!("[127.0.0.1]:{port} {host_public_key}\n"),
        )
        .expect("write known_hosts");

        let log = std::fs::File::create(dir.join("sshd.log")).expect("create sshd.log");
        let child = Command::new(SSHD)
            .arg("-D")
            .arg("-e")
            .arg("-f")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start sshd");
        let user = local_user();
        let mut server = Self {
            directory,
            child,
            port,
            known_hosts,
            client_key,
            host_public_key,
            user,
        };
        server.wait_until_ready().await;
        server
    }

    /// Settings that reach this server as `host`, with its `known_hosts` file and client key.
    pub(crate) fn target(&self, host: &str) -> SshTarget {
        SshTarget {
            port: Some(self.port),
            user: Some(self.user.clone()),
            identity_file: Some(self.client_key.clone()),
            known_hosts: Some(self.known_hosts.clone()),
            ..SshTarget::new(host, "127.0.0.1")
        }
    }

    /// A scratch directory inside this server's temporary directory.
    pub(crate) fn scratch(&self, name: &str) -> PathBuf {
        let path = self.directory.path().join(name);
        std::fs::create_dir_all(&path).expect("create scratch dir");
        path
    }

    /// The PID of the listening sshd.
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Everything sshd logged so far.
    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(self.directory.path().join("sshd.log")).unwrap_or_default()
    }

    async fn wait_until_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("sshd exited with {status}:\n{}", self.log());
            }
            if let Ok(mut stream) = tokio::net::TcpStream::connect(("127.0.0.1", self.port)).await {
                let mut banner = [0_u8; 4];
                if stream.read_exact(&mut banner).await.is_ok() && &banner == b"SSH-" {
                    return;
                }
            }
            assert!(
                Instant::now() < deadline,
                "sshd did not accept connections within 10s:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for TestSshd {
    fn drop(&mut self) {
        // SIGTERM lets sshd remove its pid file; the per-connection processes end with the
        // clients' connections.
        let pid = libc::pid_t::try_from(self.child.id()).expect("pid fits pid_t");
        // SAFETY: the PID is our own child, which has not been waited for yet.
        unsafe {
            libc::kill(pid, libc::SIGTERM);
        }
        let _ = self.child.wait();
    }
}

/// Creates an ed25519 key pair at `path` and `path.pub`.
pub(crate) fn keygen(path: &Path) {
    let status = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "opsgate-test", "-f"])
        .arg(path)
        .stdin(Stdio::null())
        .status()
        .expect("run ssh-keygen");
    assert!(status.success(), "ssh-keygen failed for {}", path.display());
}

/// `TYPE BASE64` of the public key next to the private key `path`.
pub(crate) fn public_key(path: &Path) -> String {
    let text = std::fs::read_to_string(path.with_extension("pub")).expect("read public key");
    text.split_whitespace()
        .take(2)
        .collect::<Vec<_>>()
        .join(" ")
}

/// A port on 127.0.0.1 that nothing listens on right now.
pub(crate) fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    listener.local_addr().expect("local address").port()
}

fn local_user() -> String {
    let output = Command::new("id").arg("-un").output().expect("run id -un");
    String::from_utf8(output.stdout)
        .expect("utf-8 user name")
        .trim()
        .to_owned()
}
