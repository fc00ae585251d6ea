-- The audit log: range-partitioned by month on "timestamp". Children are named audit_log_YYYY_MM
-- and created on demand by the ingest engine (PartitionManager) or `partitions ensure`.
-- There is deliberately no DEFAULT partition: it would hide missing months and later block
-- creating them.
CREATE TABLE audit_log (
    id              uuid        NOT NULL,
    tenant_id       uuid        NOT NULL,
    user_id         uuid,
    action          text        NOT NULL,
    resource_type   text,
    resource_id     text,
    severity        text        NOT NULL,
    "timestamp"     timestamptz NOT NULL,
    ip_address      inet,
    user_agent      text,
    custom_metadata jsonb,
    PRIMARY KEY (id, "timestamp")  -- a unique index on a partitioned table must include the key
) PARTITION BY RANGE ("timestamp");
-- No foreign key to tenant: rows arrive by COPY at high rate and unknown tenants are handled by
-- the ingest engine (dead-lettered, or accepted on the operator's request).

CREATE INDEX idx_audit_tenant_timestamp ON audit_log (tenant_id, "timestamp");
CREATE INDEX idx_audit_tenant_action    ON audit_log (tenant_id, action);
CREATE INDEX idx_audit_tenant_severity  ON audit_log (tenant_id, severity);
-- The seed's idx_audit_recent ("WHERE timestamp > NOW() - INTERVAL '30 days'") cannot exist:
-- an index predicate must be immutable. Monthly partitions replace it: a query on the last
-- 30 days is pruned to at most two partitions and uses idx_audit_tenant_timestamp there.
CREATE INDEX idx_audit_high_severity    ON audit_log (tenant_id, "timestamp")
    WHERE severity IN ('ERROR', 'CRITICAL');
CREATE INDEX idx_audit_metadata_search  ON audit_log USING gin (custom_metadata);

-- Events that could not be stored, with why. Every source position lands exactly once in
-- audit_log or here (DESIGN invariant 1).
CREATE TABLE audit_dead_letter (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    source      text        NOT NULL,
    "partition" integer     NOT NULL,
    "offset"    bigint      NOT NULL,
    tenant_id   uuid,
    raw_payload bytea,
    reason      text        NOT NULL,
    sqlstate    text,
    detail      text,
    received_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (source, "partition", "offset")
);
CREATE INDEX idx_dead_letter_received ON audit_dead_letter (received_at);
CREATE INDEX idx_dead_letter_reason   ON audit_dead_letter (reason);

-- How far each flusher shard has committed each source partition: written in the same
-- transaction as the rows (DESIGN invariant 2). next_offset is the first position not yet stored.
CREATE TABLE ingest_offsets (
    source      text    NOT NULL,
    "partition" integer NOT NULL,
    shard       integer NOT NULL,
    next_offset bigint  NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (source, "partition", shard)
);
