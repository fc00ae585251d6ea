-- The metadata search index as jsonb_path_ops.
--
-- The one query on custom_metadata is containment, `custom_metadata @> $1` (the read API's
-- metadata filter). A jsonb_path_ops GIN index serves it with one entry per path to a value,
-- where the default jsonb_ops keeps one per key and one per value: a smaller index, and less
-- work for PostgreSQL on every row ingested (docs/benchmarks.md). It cannot serve the key-exists
-- operators (?, ?| and ?&), which nothing here uses.
--
-- Locking: the new index is built before the old one is dropped. Building holds a SHARE lock on
-- each month of audit_log until the migration commits: searches go on, while ingest's flushes
-- wait (they give up after lock_timeout and retry, losing nothing). Dropping the old index takes
-- an ACCESS EXCLUSIVE lock just before the commit. The build has no statement timeout: it takes
-- as long as the table needs (docs/operations.md, "Upgrade notes").
SET LOCAL statement_timeout = 0;
CREATE INDEX idx_audit_metadata_path_search ON audit_log USING gin (custom_metadata jsonb_path_ops);
DROP INDEX idx_audit_metadata_search;
ALTER INDEX idx_audit_metadata_path_search RENAME TO idx_audit_metadata_search;
