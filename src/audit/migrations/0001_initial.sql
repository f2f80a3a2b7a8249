-- 0001_initial: the event log, the derived run index, and the triggers that keep both
-- append-only. This file is embedded in the binary and hashed by a test: never edit it once
-- merged; change the schema with a new numbered migration.

-- One row per event, in chain order. `seq` runs 1, 2, 3 … without gaps.
CREATE TABLE entry (
    seq        INTEGER PRIMARY KEY,
    version    INTEGER NOT NULL,   -- canonical encoding version (audit::chain)
    at         INTEGER NOT NULL,   -- microseconds since the Unix epoch, UTC
    run_id     INTEGER,            -- seq of the run's run_requested event; NULL for catalog events
    kind       TEXT    NOT NULL,   -- audit::record kind name; new kinds need no migration
    uid        INTEGER NOT NULL,   -- audit::actor
    user_name  TEXT    NOT NULL,
    sudo_user  TEXT,
    login_uid  INTEGER,
    body       BLOB    NOT NULL,   -- canonical body of the record (audit::record)
    prev_hash  BLOB    NOT NULL,   -- 32 bytes
    hash       BLOB    NOT NULL    -- 32 bytes
) STRICT;

CREATE INDEX entry_by_run ON entry (run_id, seq);
CREATE INDEX entry_by_time ON entry (at);

CREATE TRIGGER entry_is_append_only_update BEFORE UPDATE ON entry
BEGIN
    SELECT RAISE(ABORT, 'audit events are append-only');
END;

CREATE TRIGGER entry_is_append_only_delete BEFORE DELETE ON entry
BEGIN
    SELECT RAISE(ABORT, 'audit events are append-only');
END;

-- Derived index: one row per run (audit::index). Rebuilt and compared by `audit verify`.
CREATE TABLE run (
    run_id          INTEGER PRIMARY KEY,
    requested_at    INTEGER NOT NULL,
    operator        TEXT    NOT NULL,
    runbook         TEXT    NOT NULL,
    runbook_sha256  TEXT    NOT NULL,
    pattern         TEXT    NOT NULL,
    host_count      INTEGER NOT NULL,
    check_mode      INTEGER NOT NULL,
    status          TEXT    NOT NULL,
    started_at      INTEGER,
    finished_at     INTEGER,
    message         TEXT
) STRICT;

CREATE INDEX run_by_operator ON run (operator, run_id);
CREATE INDEX run_by_runbook ON run (runbook, run_id);
CREATE INDEX run_by_status ON run (status, run_id);
CREATE INDEX run_by_time ON run (requested_at);

CREATE TABLE run_host (
    run_id    INTEGER NOT NULL,
    position  INTEGER NOT NULL,
    host      TEXT    NOT NULL,
    PRIMARY KEY (run_id, position)
) STRICT;

CREATE INDEX run_host_by_host ON run_host (host, run_id);

-- A run's row changes only while the run is live, and only in its mutable columns.
CREATE TRIGGER run_changes_only_while_live BEFORE UPDATE ON run
WHEN OLD.status NOT IN ('running', 'pending')
  OR NEW.run_id IS NOT OLD.run_id
  OR NEW.requested_at IS NOT OLD.requested_at
  OR NEW.operator IS NOT OLD.operator
  OR NEW.runbook IS NOT OLD.runbook
  OR NEW.runbook_sha256 IS NOT OLD.runbook_sha256
  OR NEW.pattern IS NOT OLD.pattern
  OR NEW.host_count IS NOT OLD.host_count
  OR NEW.check_mode IS NOT OLD.check_mode
BEGIN
    SELECT RAISE(ABORT, 'the audit run index changes only while a run is live');
END;

CREATE TRIGGER run_is_append_only_delete BEFORE DELETE ON run
BEGIN
    SELECT RAISE(ABORT, 'the audit run index is append-only');
END;

CREATE TRIGGER run_host_is_append_only_update BEFORE UPDATE ON run_host
BEGIN
    SELECT RAISE(ABORT, 'the audit run index is append-only');
END;

CREATE TRIGGER run_host_is_append_only_delete BEFORE DELETE ON run_host
BEGIN
    SELECT RAISE(ABORT, 'the audit run index is append-only');
END;
