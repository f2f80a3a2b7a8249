-- 0003_store_id: the store's identity, a random id created with the store (or on the first open
-- after upgrading to this migration) and never changed. Signed approvals name it, so an approval
-- signed for one store cannot be replayed into another (SPEC §4.6). opsgate inserts the one row
-- right after this migration, with an id from the OS random source. Never edit this file once
-- merged; change the schema with a new numbered migration.
CREATE TABLE store_identity (
    singleton INTEGER PRIMARY KEY CHECK (singleton = 1),
    id        TEXT    NOT NULL CHECK (length(id) = 32 AND id NOT GLOB '*[^0-9a-f]*')
) STRICT;

CREATE TRIGGER store_identity_never_changes BEFORE UPDATE ON store_identity
BEGIN
    SELECT RAISE(ABORT, 'the store id never changes');
END;

CREATE TRIGGER store_identity_is_never_deleted BEFORE DELETE ON store_identity
BEGIN
    SELECT RAISE(ABORT, 'the store id never changes');
END;
