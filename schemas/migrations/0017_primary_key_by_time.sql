-- audit_log's primary key ordered by time within a tenant: (tenant_id, "timestamp", id).
--
-- The same uniqueness as (tenant_id, id, "timestamp"): an id is unique per tenant and timestamp.
-- With random (v4) ids the old order put each insert on a random page of the tenant's key range;
-- by time, a tenant's events arriving as they happen go to the right edge of its range, the pages
-- a month keeps writing stay few and cached, and the index grows without reading old pages back.
--
-- The key now also serves every search: its leading columns are idx_audit_tenant_timestamp's, and
-- its order is the search's (timestamp, then id). That index is dropped: one B-tree less to
-- maintain per row. A lookup by event id alone reads the tenant's part of each month's key
-- instead of one entry; give the event's timestamp (every event has it) and it is one entry again.
--
-- Locking: the key is rebuilt on every month of audit_log while the migration holds an ACCESS
-- EXCLUSIVE lock on them until it commits: ingest's flushes and searches wait (flushes give up
-- after lock_timeout and retry, losing nothing). The old key is dropped in the same transaction,
-- so uniqueness never lapses. The rebuild has no statement timeout (docs/operations.md, "Upgrade
-- notes", says how long it takes).
SET LOCAL statement_timeout = 0;
ALTER TABLE audit_log DROP CONSTRAINT audit_log_pkey;
ALTER TABLE audit_log ADD PRIMARY KEY (tenant_id, "timestamp", id);
DROP INDEX idx_audit_tenant_timestamp;
