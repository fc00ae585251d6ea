-- Exactly once under real operations (issue 12).

-- Event ids are unique per tenant, never across tenants: with (id, "timestamp") as the key, an
-- event of one tenant could make another tenant's event with the same id and timestamp a
-- duplicate. The key leads with tenant_id like every other index. A unique index on a
-- partitioned table must include the partition key, so an id is unique per tenant and timestamp:
-- the same id sent again with the same timestamp is a duplicate (dead-lettered, SQLSTATE 23505);
-- with another timestamp it is another event and both are stored.
ALTER TABLE audit_log DROP CONSTRAINT audit_log_pkey;
ALTER TABLE audit_log ADD PRIMARY KEY (tenant_id, id, "timestamp");

-- For files, a position is a byte offset and prefix_hash is a hash of the file's bytes before
-- next_offset: a later run verifies that this prefix is unchanged before it continues (appends
-- and renames continue, edits are refused). NULL for Kafka.
ALTER TABLE ingest_offsets ADD COLUMN prefix_hash bigint;

-- Which layout (set of shards) a row belongs to: a new id each time a run lays a partition's
-- shards out anew. A flush's compare-and-set checks it with the offset, so a process still
-- writing with a replaced layout is stopped even when a new shard starts at the very offset it
-- expected.
ALTER TABLE ingest_offsets ADD COLUMN layout bigint NOT NULL DEFAULT 0;

-- A shard-count change retires the old shards' positions here. New shards start where every old
-- shard had stored everything below; positions between that and the furthest old shard are
-- skipped when the retired layout (routing with shard_count shards) shows them stored. Rows are
-- deleted once every current shard has passed them.
CREATE TABLE ingest_offsets_retired (
    source      text    NOT NULL,
    "partition" integer NOT NULL,
    shard_count integer NOT NULL,
    shard       integer NOT NULL,
    next_offset bigint  NOT NULL,
    prefix_hash bigint,
    retired_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (source, "partition", shard_count, shard)
);
GRANT SELECT, INSERT, UPDATE, DELETE ON ingest_offsets, ingest_offsets_retired TO audit_ingest;
