-- 0002_backup_index: `opsgate backups` reads the `backup_created` events only. A partial index
-- holds just those rows, so the listing does not scan the whole event log. Never edit this file
-- once merged; change the schema with a new numbered migration.
CREATE INDEX entry_backups ON entry (seq) WHERE kind = 'backup_created';
