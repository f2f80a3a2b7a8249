//! The shipped `backup-postgres` and `restore-postgres` runbooks end to end: a real PostgreSQL
//! server from Debian's packages on loopback ([`TestPostgres`]), reached from a lab host over
//! TCP. A table of known rows is dumped, dropped and restored, and its row count and checksum
//! must match; also the store and its manifests, a password from the OS account's ~/.pgpass, `keep`,
//! `--check` of both runbooks and a restore by id.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use super::{count_status, shipped};
use crate::common::postgres::{ACCOUNT, open_path};
use crate::common::{Opsgate, TestLab, TestPostgres, file_names};

const DATABASE: &str = "opsgate_shop";

/// A role that needs a password over TCP, and its password.
const DUMPER: &str = "opsgate_dumper";
const PASSWORD: &str = "pw-7c1e5b90-never-shown";

/// The default store of `backup-postgres` for [`DATABASE`] on a lab host.
fn store(host: &opsgate::lab::LabHost) -> PathBuf {
    host.lab_root
        .join("var/backups/app/postgres")
        .join(DATABASE)
}

/// The dumps (not manifests) in the store, sorted.
fn dumps(store: &Path) -> Vec<String> {
    assert!(store.is_dir(), "the store {} exists", store.display());
    file_names(store)
        .into_iter()
        .filter(|name| !name.ends_with(".sha256"))
        .collect()
}

/// Row count and checksum of table `t`: what a restore must bring back exactly.
fn rows(postgres: &TestPostgres) -> String {
    postgres.query(
        DATABASE,
        "SELECT count(*) || ' ' || md5(string_agg(t::text, ',' ORDER BY id)) FROM t",
    )
}

fn table_exists(postgres: &TestPostgres) -> bool {
    postgres.query(DATABASE, "SELECT to_regclass('public.t') IS NOT NULL") == "t"
}

/// Runs a shipped runbook against the lab's one host and the test server.
fn pg_run(lab: &TestLab, postgres: &TestPostgres, runbook: &str, extra: &[&str]) -> Opsgate {
    let host = format!("host={}", postgres.host());
    let port = format!("port={}", postgres.port());
    let database = format!("database={DATABASE}");
    let mut args = vec!["run", runbook, "-p", &database, "-p", &host, "-p", &port];
    args.extend_from_slice(extra);
    lab.cli(&args)
}

#[test]
fn backup_postgres_then_restore_postgres_bring_back_a_dropped_table() {
    let postgres = TestPostgres::start();
    let lab = TestLab::start(1);
    let host = &lab.hosts()[0];
    // pg_dump and pg_restore run as `postgres`, which must reach the store in the lab's dir.
    open_path(lab.workspace(), &host.lab_root);
    let backup = shipped("backup-postgres");
    let restore = shipped("restore-postgres");

    postgres.execute("postgres", &format!("CREATE DATABASE {DATABASE}"));
    postgres.execute(
        DATABASE,
        "CREATE TABLE t (id integer PRIMARY KEY, name text NOT NULL, amount numeric(10, 2), \
         day date); \
         INSERT INTO t SELECT g, 'item ' || g || ', it''s \"quoted\" ' || md5(g::text), \
         g * 1.25, date '2026-01-01' + g FROM generate_series(1, 1000) AS g",
    );
    let original = rows(&postgres);
    assert!(original.starts_with("1000 "), "{original}");

    // As root the lab host has a filesystem of its own: --check must leave all of it alone.
    let digest = host.is_isolated().then(|| lab.host_digest(&host.name));
    pg_run(&lab, &postgres, &backup, &["--check"])
        .output_contains("would write")
        .run();
    assert!(!store(host).exists(), "--check created the store");
    if let Some(digest) = &digest {
        assert_eq!(
            &lab.host_digest(&host.name),
            digest,
            "--check changed the host"
        );
    }

    // A database name that would lead the store (created as root) out of the backup root.
    let escape = pg_run(&lab, &postgres, &backup, &["-p", "database=../../../etc"])
        .status(1)
        .output_contains("database name must not be empty, contain '/'")
        .run();
    assert_eq!(count_status(&escape, "changed"), 0, "{}", escape.text());

    // A role that needs a password: none on any command line, so without a ~/.pgpass of the
    // OS account the dump fails at once; with one (mode 0600, written inside the lab host) it
    // succeeds, and the password shows nowhere.
    postgres.create_password_role(DUMPER, PASSWORD);
    let user = format!("user={DUMPER}");
    let without = pg_run(&lab, &postgres, &backup, &["-p", &user])
        .status(1)
        .run();
    assert!(
        without.text().contains("no password supplied")
            && !without.text().contains("could not change directory"),
        "{}",
        without.text()
    );
    assert!(dumps(&store(host)).is_empty(), "a failed dump left a file");

    assert!(
        host.is_isolated(),
        "the .pgpass goes into the lab host's own home of `postgres`, which needs an isolated (root) lab"
    );
    lab.ssh_ok(
        &host.name,
        &format!(
            "home=$(getent passwd postgres | cut -d: -f6) && umask 077 && \
             printf '%s\\n' '*:*:*:{DUMPER}:{PASSWORD}' > \"$home/.pgpass\" && \
             chown postgres \"$home/.pgpass\""
        ),
    );
    let first = pg_run(&lab, &postgres, &backup, &["-p", &user]).run();
    // The audit records the run's params.
    let audit = lab
        .cli(&["audit", "export", "--jsonl"])
        .output_contains(DUMPER)
        .run();
    for (what, output) in [("run output", &first), ("audit export", &audit)] {
        assert!(
            !output.text().contains(PASSWORD),
            "{what}: {}",
            output.text()
        );
    }
    let names = dumps(&store(host));
    assert_eq!(names.len(), 1, "{names:?}");
    let first_id = names[0]
        .strip_suffix(".dump")
        .expect("a .dump file")
        .to_owned();
    assert!(
        first_id.starts_with(&format!("backup-postgres-{}-", host.name)),
        "{first_id}"
    );
    assert!(
        first.text().contains(&first_id),
        "the report names the dump: {}",
        first.text()
    );
    let check = Command::new("sha256sum")
        .args(["-c", &format!("{}.sha256", names[0])])
        .current_dir(store(host))
        .output()
        .expect("sha256sum -c");
    assert!(check.status.success(), "{check:?}");
    let owner = opsgate::os_account::uid_of(ACCOUNT).expect("postgres account");
    let directory = fs::metadata(store(host)).expect("stat store");
    assert_eq!(
        directory.uid(),
        owner,
        "the store belongs to the OS account"
    );
    assert_eq!(directory.permissions().mode() & 0o7777, 0o700);
    let dump = fs::metadata(store(host).join(&names[0])).expect("stat dump");
    assert_eq!(
        (dump.uid(), dump.permissions().mode() & 0o7777),
        (owner, 0o600),
        "dumps are private to the OS account"
    );

    // More rows, and a second run: a backup always writes a new dump and reports `changed`.
    postgres.execute(
        DATABASE,
        "INSERT INTO t SELECT g, 'later ' || g, g, NULL FROM generate_series(1001, 1500) AS g",
    );
    let grown = rows(&postgres);
    assert!(grown.starts_with("1500 "), "{grown}");
    let second = pg_run(&lab, &postgres, &backup, &[]).run();
    assert_eq!(count_status(&second, "changed"), 1, "{}", second.text());
    assert_eq!(dumps(&store(host)).len(), 2);

    postgres.execute(DATABASE, "DROP TABLE t");

    // --check verifies the dump and reports; the table stays dropped and the host unchanged.
    let digest = host.is_isolated().then(|| lab.host_digest(&host.name));
    let checked = pg_run(&lab, &postgres, &restore, &["--check"]).run();
    if let Some(digest) = &digest {
        assert_eq!(
            &lab.host_digest(&host.name),
            digest,
            "--check changed the host"
        );
    }
    assert!(
        checked.text().contains("verified; would have fed"),
        "{}",
        checked.text()
    );
    assert!(!table_exists(&postgres), "--check restored the table");

    pg_run(&lab, &postgres, &restore, &[]).run();
    assert_eq!(rows(&postgres), grown, "latest brings back the 1500 rows");

    // By id, over the existing table: --clean replaces it with the older contents.
    let from = format!("from={first_id}");
    pg_run(&lab, &postgres, &restore, &["-p", &from]).run();
    assert_eq!(
        rows(&postgres),
        original,
        "the first dump brings back 1000 rows"
    );

    // keep=1: the new dump stays, the two older ones go with their manifests.
    pg_run(&lab, &postgres, &backup, &["-p", "keep=1"])
        .output_contains("removed 2 old backups")
        .run();
    let left = dumps(&store(host));
    assert_eq!(left.len(), 1, "{left:?}");
    assert_ne!(left[0], format!("{first_id}.dump"));
    assert_eq!(
        fs::read_dir(store(host)).expect("store").count(),
        2,
        "one dump and its manifest"
    );
}
