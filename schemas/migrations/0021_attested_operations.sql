-- Attested deletions: an operation that removes sealed rows (today `partitions prune` of a
-- month) is recorded with what it removed and appended to the signed log like a batch
-- (docs/tamper-evidence.md, "Deletions are attested").
--
-- A prune writes its record in the transaction that drops the month: the table dropped, the
-- archive (file name, SHA-256, rows) and every (batch, tenant) group the table held. verify
-- accounts a group that is gone only when an operation names it, recomputes the operation's
-- digest from the groups' subroots, and checks the archive, when given, against them.
--
-- Months pruned before this migration stay accounted by audit_month_removed, which nothing
-- signs; new prunes no longer write it.
--
-- Locking: two new tables and a view.

CREATE TABLE audit_operation (
    id             bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind           text        NOT NULL CHECK (kind IN ('prune')),
    month          date        NOT NULL,
    table_name     text        NOT NULL,
    archive_file   text,
    archive_sha256 text        CHECK (archive_sha256 ~ '^[0-9a-f]{64}$'),
    archive_rows   bigint,
    recorded_at    timestamptz NOT NULL,
    digest         bytea       NOT NULL,
    -- NULL until the integrator appends the operation to the log, after every batch before it.
    log_index      bigint      UNIQUE
);

-- The groups an operation removed; their subroots stay in audit_batch_group.
CREATE TABLE audit_operation_group (
    operation_id bigint NOT NULL REFERENCES audit_operation (id),
    batch_id     bigint NOT NULL,
    tenant_id    uuid   NOT NULL,
    PRIMARY KEY (operation_id, batch_id, tenant_id)
);

-- The log's leaves in order: batches ("B") and operations ("O").
CREATE VIEW audit_log_leaf AS
    SELECT log_index, 'B'::text AS kind, id, digest FROM audit_batch WHERE log_index IS NOT NULL
    UNION ALL
    SELECT log_index, 'O'::text, id, digest FROM audit_operation WHERE log_index IS NOT NULL;

GRANT SELECT ON audit_operation, audit_operation_group, audit_log_leaf TO audit_api;
