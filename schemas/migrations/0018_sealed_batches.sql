-- Sealed batches: tamper evidence for every flush (docs/tamper-evidence.md).
--
-- Each flush seals what it commits, in its own transaction: one Merkle subroot per (tenant, month)
-- run of its rows and one over its dead letters (audit_batch_group), a root over those groups,
-- and a digest over the root, the counts and the source ranges it moved (audit_batch,
-- audit_batch_range). Every row and dead letter names its batch. The digest is chained into
-- batch_hash of each ingest_offsets row the flush moves, in the statement that moves it: the row
-- the compare-and-set already locks, so sealing takes no lock of its own.
-- `audit-ingest verify` recomputes all of it from the stored rows.
--
-- Locking: adding a column with a constant default rewrites nothing; each ALTER takes its
-- table's ACCESS EXCLUSIVE lock for a moment.

CREATE TABLE audit_batch (
    id              bigint      PRIMARY KEY,
    shard           integer     NOT NULL,
    row_count       integer     NOT NULL CHECK (row_count >= 0),
    dead_letter_count integer   NOT NULL CHECK (dead_letter_count >= 0),
    root            bytea       NOT NULL,
    digest          bytea       NOT NULL,
    committed_at    timestamptz NOT NULL DEFAULT now()
);
CREATE SEQUENCE audit_batch_id_seq AS bigint OWNED BY audit_batch.id;

-- kind: 'R' the rows of one tenant in one month, 'D' the batch's dead letters (tenant and month NULL).
CREATE TABLE audit_batch_group (
    batch_id   bigint  NOT NULL REFERENCES audit_batch (id),
    ordinal    integer NOT NULL,
    kind       "char"  NOT NULL CHECK (kind IN ('R', 'D')),
    tenant_id  uuid,
    month      date,
    leaf_count integer NOT NULL CHECK (leaf_count > 0),
    subroot    bytea   NOT NULL,
    PRIMARY KEY (batch_id, ordinal),
    CHECK ((kind = 'R') = (tenant_id IS NOT NULL AND month IS NOT NULL))
);

-- The positions [first_offset, next_offset) of one source partition that a batch moved one
-- shard's ingest_offsets row across, and that row's chain head after it.
CREATE TABLE audit_batch_range (
    batch_id     bigint  NOT NULL REFERENCES audit_batch (id),
    source       text    NOT NULL,
    "partition"  integer NOT NULL,
    shard        integer NOT NULL,
    layout       bigint  NOT NULL,
    first_offset bigint  NOT NULL,
    next_offset  bigint  NOT NULL,
    head         bytea   NOT NULL,
    PRIMARY KEY (source, "partition", shard, layout, first_offset)
);
CREATE INDEX idx_batch_range_batch ON audit_batch_range (batch_id);

-- 0: stored before sealing began (this migration). No index: verify reads partitions whole,
-- and the hot path pays no B-tree for it.
ALTER TABLE audit_log ADD COLUMN batch_id bigint NOT NULL DEFAULT 0;
ALTER TABLE audit_dead_letter ADD COLUMN batch_id bigint NOT NULL DEFAULT 0;
-- The chain head: SHA-256(head || digest) per batch, from 32 zero bytes.
ALTER TABLE ingest_offsets ADD COLUMN batch_hash bytea NOT NULL DEFAULT '\x0000000000000000000000000000000000000000000000000000000000000000';

-- Months that existed before sealing: rows with batch 0 there are older than sealing, not forged.
CREATE TABLE audit_unsealed_month (month date PRIMARY KEY);
INSERT INTO audit_unsealed_month
SELECT to_date(substring(c.relname FROM 'audit_log_([0-9]{4}_[0-9]{2})$'), 'YYYY_MM')
FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
WHERE i.inhparent = 'audit_log'::regclass AND c.relname ~ '^audit_log_[0-9]{4}_[0-9]{2}$';

-- Months `partitions prune` took out of audit_log (detached, archived when asked, dropped): their
-- groups are accounted as removed, not missing.
CREATE TABLE audit_month_removed (
    month      date        NOT NULL,
    removed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (month, removed_at)
);

REVOKE INSERT ON audit_log FROM audit_ingest;
GRANT INSERT (id, tenant_id, user_id, action, resource_type, resource_id, severity, "timestamp", ip_address, user_agent,
              custom_metadata, batch_id) ON audit_log TO audit_ingest;
GRANT INSERT ON audit_batch, audit_batch_group, audit_batch_range TO audit_ingest;
GRANT USAGE ON SEQUENCE audit_batch_id_seq TO audit_ingest;
