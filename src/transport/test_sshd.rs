//! A real, throwaway OpenSSH server for the transport's tests: one lab host.
//!
//! There is one sshd harness for all tests, the lab's (`crate::lab`): the integration tests
//! start whole labs through `opsgate::lab::up` (`tests/common/lab.rs`), and [`TestSshd`] starts
//! a single host with the same pieces — the lab's key generation, `sshd_config`, detached
//! start, readiness check and verified stop (`lab::harness`). It differs from `lab up` only in
//! what a unit test needs: the host listens on 127.0.0.1, shares the machine's filesystem even
//! as root (no overlay to set up, so it starts as fast as a bare sshd), and writes no lab state,
//! inventory or `ssh_config`: the tests build their own [`SshTarget`]s. sshd is a child of the
//! test process, stopped on drop, and its log is available for failure messages. A missing sshd
//! fails the test with the install command; it never skips.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::Child;

use super::SshTarget;
use crate::lab::harness::{self, HostFiles, Launch, ServerConfig, StartFailure};

/// The name of the one host in a [`TestSshd`]'s directory (and in its log and errors).
const HOST: &str = "test";

/// Attempts when another process takes the chosen port before sshd binds it.
const START_ATTEMPTS: usize = 5;

/// A running sshd on 127.0.0.1, stopped on drop.
pub(crate) struct TestSshd {
    directory: tempfile::TempDir,
    files: HostFiles,
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
    #[expect(
        clippy::unused_async,
        reason = "callers are tokio tests; the lab's start blocks for well under a second"
    )]
    pub(crate) async fn start() -> Self {
        let directory = tempfile::Builder::new()
            .prefix("opsgate-sshd-")
            .tempdir()
            .expect("temp dir");
        let dir = directory.path();
        let files = HostFiles::new(dir, HOST);
        std::fs::create_dir_all(files.lab_root()).expect("create the host's directory");
        let host_public_key = keygen(&files.host_key());
        let client_key = dir.join("client_ed25519");
        let authorized_keys = dir.join("authorized_keys");
        std::fs::write(&authorized_keys, format!("{}\n", keygen(&client_key)))
            .expect("write authorized_keys");
        harness::ensure_privilege_separation_dir(crate::os_account::effective_uid() == 0)
            .unwrap_or_else(|error| panic!("{error}"));

        let (child, port) = start_sshd(&files, &authorized_keys);
        let known_hosts = dir.join("known_hosts");
        std::fs::write(
            &known_hosts,
            format!("[127.0.0.1]:{port} {host_public_key}\n"),
        )
        .expect("write known_hosts");
        Self {
            directory,
            files,
            child,
            port,
            known_hosts,
            client_key,
            host_public_key,
            user: local_user(),
        }
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
        std::fs::read_to_string(self.files.log()).unwrap_or_default()
    }
}

impl Drop for TestSshd {
    fn drop(&mut self) {
        // SIGTERM, then SIGKILL, only while the PID is still this sshd; the per-connection
        // processes end with the clients' connections.
        if let Err(error) = harness::stop(HOST, self.child.id(), &self.files.sshd_config()) {
            // Not a panic: this may run while a failing test unwinds.
            let _ =
                std::io::Write::write_all(&mut std::io::stderr(), format!("{error}\n").as_bytes());
        }
    }
}

/// Starts the lab's sshd for this host on 127.0.0.1, retrying with another port when a
/// neighbour took the chosen one, as `lab up` does.
fn start_sshd(files: &HostFiles, authorized_keys: &Path) -> (Child, u16) {
    let address = Ipv4Addr::LOCALHOST;
    for _ in 0..START_ATTEMPTS {
        let port = harness::free_port(address).unwrap_or_else(|error| panic!("{error}"));
        let config = ServerConfig {
            host: HOST,
            address,
            port,
            files,
            authorized_keys,
        };
        std::fs::write(files.sshd_config(), config.render()).expect("write sshd_config");
        let _ = std::fs::remove_file(files.pid_file());
        let mut child = harness::spawn(files, Launch::Shared).unwrap_or_else(|error| {
            panic!("{error} (install it with `apt-get install openssh-server`)")
        });
        match harness::wait_ready(&mut child, HOST, files, address, port) {
            Ok(()) => return (child, port),
            Err(StartFailure::PortTaken) => {}
            Err(StartFailure::Failed(error)) => panic!("starting the test sshd: {error}"),
        }
    }
    panic!("no free port for the test sshd after {START_ATTEMPTS} attempts");
}

/// Creates an ed25519 key pair at `path` and `path.pub` with the lab's key generation and
/// returns the public key, `TYPE BASE64`.
pub(crate) fn keygen(path: &Path) -> String {
    harness::generate(path, "opsgate-test")
        .unwrap_or_else(|error| panic!("{error}"))
        .as_str()
        .to_owned()
}

/// A port on 127.0.0.1 that nothing listens on right now.
pub(crate) fn free_port() -> u16 {
    harness::free_port(Ipv4Addr::LOCALHOST).unwrap_or_else(|error| panic!("{error}"))
}

fn local_user() -> String {
    let output = std::process::Command::new("id")
        .arg("-un")
        .output()
        .expect("run id -un");
    String::from_utf8(output.stdout)
        .expect("utf-8 user name")
        .trim()
        .to_owned()
}
