//! [`TestPostgres`]: a throwaway PostgreSQL cluster for a test, from Debian's server packages,
//! stopped on drop.
//!
//! The cluster lives in its own temp dir owned by the `postgres` OS account (data directory,
//! Unix socket, server log), listens on a random 127.0.0.x address and a port found free by
//! binding it, and never touches the system cluster (`/var/lib/postgresql`, port 5432). Every
//! server program runs as `postgres` through `runuser`, so the test process must be root (CI
//! is). Authentication: `trust` on the socket and on loopback, except members of
//! [`PASSWORD_GROUP`], who need their password (`scram-sha-256`) over TCP.
//!
//! A missing PostgreSQL fails the test with the setup command; it never skips.

use std::collections::hash_map::RandomState;
use std::fs;
use std::hash::{BuildHasher, Hasher};
use std::net::{Ipv4Addr, TcpListener};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use tempfile::TempDir;

/// The OS account that owns the cluster, as on Debian.
pub const ACCOUNT: &str = "postgres";

/// Roles in this group authenticate with a password over TCP; everyone else is trusted.
pub const PASSWORD_GROUP: &str = "opsgate_password";

/// Where Debian's `postgresql-NN` packages put the server programs.
const SERVER_ROOT: &str = "/usr/lib/postgresql";

/// Attempts when another process takes the chosen port before the server binds it.
const START_ATTEMPTS: usize = 5;

/// A running cluster: `TestPostgres::start()`, then [`TestPostgres::execute`] and
/// [`TestPostgres::query`].
pub struct TestPostgres {
    /// `/usr/lib/postgresql/<version>/bin`.
    bin: PathBuf,
    /// Owned by [`ACCOUNT`]: `data/`, the socket, `server.log`.
    dir: TempDir,
    address: Ipv4Addr,
    port: u16,
}

impl TestPostgres {
    /// Creates and starts a cluster; panics with the reason (and the server log) when that
    /// fails, including when PostgreSQL is not installed.
    #[must_use]
    pub fn start() -> Self {
        assert_eq!(
            opsgate::os_account::effective_uid(),
            0,
            "the PostgreSQL tests run the server as `{ACCOUNT}` through runuser and need root \
             (CI runs as root)"
        );
        let bin = server_bin().unwrap_or_else(|| {
            panic!(
                "PostgreSQL is not installed: no {SERVER_ROOT}/*/bin/initdb. \
                 Run scripts/setup.sh as root (it installs Debian's `postgresql` package), \
                 or `apt-get install postgresql`"
            )
        });
        let uid = opsgate::os_account::uid_of(ACCOUNT).unwrap_or_else(|| {
            panic!("no `{ACCOUNT}` OS account; reinstall the `postgresql-common` package")
        });
        // Under /tmp, so the socket path stays within the 107 bytes a Unix socket allows.
        let dir = tempfile::Builder::new()
            .prefix("og-pg")
            .tempdir_in("/tmp")
            .expect("temp dir for the cluster");
        std::os::unix::fs::chown(dir.path(), Some(uid), None).expect("chown the cluster dir");
        let mut cluster = Self {
            bin,
            dir,
            address: Ipv4Addr::LOCALHOST,
            port: 0,
        };
        cluster.initdb();
        cluster.listen();
        cluster.execute("postgres", &format!("CREATE ROLE {PASSWORD_GROUP} NOLOGIN"));
        cluster
    }

    /// The address the server listens on, as a `-p host=…` value.
    #[must_use]
    pub fn host(&self) -> String {
        self.address.to_string()
    }

    /// The server's port.
    #[must_use]
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Runs statements in `database` as the `postgres` role over the socket; panics at the first
    /// error.
    pub fn execute(&self, database: &str, sql: &str) {
        self.psql(database, sql);
    }

    /// Runs a query like [`TestPostgres::execute`] and returns its rows, unaligned and without
    /// headers, without the last newline.
    #[must_use]
    pub fn query(&self, database: &str, sql: &str) -> String {
        self.psql(database, sql)
    }

    fn psql(&self, database: &str, sql: &str) -> String {
        let output = self
            .as_account(&self.bin.join("psql"))
            .args(["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h"])
            .arg(self.dir.path())
            .args(["-p", &self.port.to_string(), "-d", database, "-c", sql])
            .output()
            .expect("running psql");
        assert!(
            output.status.success(),
            "psql -d {database} -c {sql:?} failed:\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout)
            .trim_end_matches('\n')
            .to_owned()
    }

    /// Creates a superuser `name` that must log in over TCP with `password`.
    pub fn create_password_role(&self, name: &str, password: &str) {
        self.execute(
            "postgres",
            &format!(
                "CREATE ROLE {name} LOGIN SUPERUSER PASSWORD '{}' IN ROLE {PASSWORD_GROUP}",
                password.replace('\'', "''")
            ),
        );
    }

    /// The server log, for a failing test's output.
    #[must_use]
    pub fn log(&self) -> String {
        fs::read_to_string(self.log_path()).unwrap_or_else(|error| error.to_string())
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("server.log")
    }

    /// `program` run as [`ACCOUNT`], in the cluster's directory (`postgres` may not enter the
    /// test's own working directory).
    fn as_account(&self, program: &Path) -> Command {
        let mut command = Command::new("runuser");
        command
            .args(["-u", ACCOUNT, "--"])
            .arg(program)
            .current_dir(self.dir.path())
            .stdin(Stdio::null());
        command
    }

    fn initdb(&self) {
        let output = self
            .as_account(&self.bin.join("initdb"))
            .arg("-D")
            .arg(self.data())
            .args([
                "-U",
                "postgres",
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--locale=C",
                "-N",
            ])
            .output()
            .expect("running initdb");
        assert_success("initdb", &output);
        let hba = format!(
            "local all all trust\n\
             host all +{PASSWORD_GROUP} 127.0.0.0/8 scram-sha-256\n\
             host all all 127.0.0.0/8 trust\n"
        );
        fs::write(self.data().join("pg_hba.conf"), hba).expect("write pg_hba.conf");
        let mut conf =
            fs::read_to_string(self.data().join("postgresql.conf")).expect("read postgresql.conf");
        conf.push_str("\ninclude 'opsgate-test.conf'\n");
        fs::write(self.data().join("postgresql.conf"), conf).expect("write postgresql.conf");
    }

    /// Starts the server on a random loopback address and a free port, retrying when the port
    /// is taken between finding it and binding it.
    fn listen(&mut self) {
        let random = RandomState::new();
        for attempt in 0..START_ATTEMPTS {
            let mut hasher = random.build_hasher();
            hasher.write_usize(attempt);
            hasher.write_u32(std::process::id());
            // 253 choices: 127.0.0.2 – 127.0.0.254, as the lab picks them.
            self.address = Ipv4Addr::new(127, 0, 0, 2 + (hasher.finish() % 253) as u8);
            self.port = TcpListener::bind((self.address, 0))
                .and_then(|listener| listener.local_addr())
                .expect("finding a free port")
                .port();
            let settings = format!(
                "listen_addresses = '{}'\nport = {}\nunix_socket_directories = '{}'\n\
                 fsync = off\nlogging_collector = off\n",
                self.address,
                self.port,
                self.dir.path().display()
            );
            fs::write(self.data().join("opsgate-test.conf"), settings)
                .expect("write opsgate-test.conf");
            let output = self
                .as_account(&self.bin.join("pg_ctl"))
                .args(["start", "-w", "-D"])
                .arg(self.data())
                .arg("-l")
                .arg(self.log_path())
                .output()
                .expect("running pg_ctl start");
            if output.status.success() {
                return;
            }
            let retry = self.log().contains("could not bind") && attempt + 1 < START_ATTEMPTS;
            assert!(
                retry,
                "pg_ctl start failed: {}{}\n--- server log ---\n{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr),
                self.log()
            );
        }
    }
}

impl Drop for TestPostgres {
    fn drop(&mut self) {
        if std::thread::panicking() {
            report(&format!(
                "PostgreSQL test cluster in {} at the time of the failure:\n{}",
                self.dir.path().display(),
                self.log()
            ));
        }
        // pg_ctl stops the server named by the cluster's own postmaster.pid, nothing else.
        if !self.data().join("postmaster.pid").exists() {
            return;
        }
        let stopped = self
            .as_account(&self.bin.join("pg_ctl"))
            .args(["stop", "-m", "fast", "-w", "-D"])
            .arg(self.data())
            .output();
        match stopped {
            Ok(output) if output.status.success() => {}
            Ok(output) => report(&format!(
                "pg_ctl stop failed: {}",
                String::from_utf8_lossy(&output.stderr)
            )),
            Err(error) => report(&format!("pg_ctl stop failed: {error}")),
        }
    }
}

/// Adds search permission for others to `path` and each of its ancestors inside `top`, so that
/// the [`ACCOUNT`] can reach `path` in a root-owned temp dir (temp dirs are created 0700).
pub fn open_path(top: &Path, path: &Path) {
    for directory in path
        .ancestors()
        .filter(|ancestor| ancestor.starts_with(top))
    {
        let mode = fs::metadata(directory)
            .expect("stat a directory on the way")
            .permissions()
            .mode();
        fs::set_permissions(directory, fs::Permissions::from_mode(mode | 0o001))
            .expect("chmod o+x");
    }
}

/// The newest `/usr/lib/postgresql/<version>/bin` that holds `initdb`.
fn server_bin() -> Option<PathBuf> {
    let mut versions: Vec<(u32, PathBuf)> = fs::read_dir(SERVER_ROOT)
        .ok()?
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let version = entry.file_name().to_string_lossy().parse::<u32>().ok()?;
            let bin = entry.path().join("bin");
            bin.join("initdb").is_file().then_some((version, bin))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, bin)| bin)
}

fn assert_success(what: &str, output: &Output) {
    assert!(
        output.status.success(),
        "{what} failed: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[expect(
    clippy::print_stderr,
    reason = "a test fixture reporting from Drop, where it cannot panic"
)]
fn report(text: &str) {
    eprintln!("{text}");
}
