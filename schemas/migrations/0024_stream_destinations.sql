-- Streaming out (docs/streaming.md): destinations that `audit-ingest stream` delivers every
-- event to, in the feed's order (commit order per tenant), at least once, with a cursor per
-- (destination, tenant) stored after each delivered batch.
--
-- A destination is one tenant's (tenant_id set) or every tenant's (NULL). Its secret is never
-- stored: secret_ref names where the streamer reads it (env:NAME or file:PATH). A failing
-- destination is retried with backoff; once it has failed for fail_after it is marked 'failed'
-- with its cursor kept, and nothing is skipped until an operator resumes or rewinds it.
--
-- Locking: new tables and functions.
CREATE TABLE stream_destination (
    id           uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    name         text        NOT NULL CHECK (name ~ '^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$'),
    tenant_id    uuid        REFERENCES tenant (id),
    kind         text        NOT NULL CHECK (kind IN ('webhook', 'splunk_hec')),
    url          text        NOT NULL CHECK (url ~ '^https?://'),
    secret_ref   text        CHECK (secret_ref ~ '^(env:[A-Za-z_][A-Za-z0-9_]*|file:/.+)$'),
    batch_size   integer     NOT NULL DEFAULT 500 CHECK (batch_size BETWEEN 1 AND 1000),
    fail_after   interval    NOT NULL DEFAULT '1 hour' CHECK (fail_after >= '1 second'),
    -- Every tenant's cursor starts after this transaction id (NULL: from the first event).
    start_xid    xid8,
    state        text        NOT NULL DEFAULT 'active' CHECK (state IN ('active', 'paused', 'failed')),
    state_reason text,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX stream_destination_name ON stream_destination (coalesce(tenant_id, '00000000-0000-0000-0000-000000000000'), name);

-- The last event delivered, as the feed's key (ingest_xid, id, "timestamp"). drained: that
-- delivery's page was not full, so it held every final row after the cursor then, the rest of
-- the cursor's own transaction included: only a later transaction can add rows after it.
CREATE TABLE stream_cursor (
    destination_id  uuid        NOT NULL REFERENCES stream_destination (id) ON DELETE CASCADE,
    tenant_id       uuid        NOT NULL,
    after_xid       xid8        NOT NULL,
    after_id        uuid        NOT NULL,
    after_timestamp timestamptz NOT NULL,
    drained         boolean     NOT NULL DEFAULT false,
    delivered       bigint      NOT NULL DEFAULT 0 CHECK (delivered >= 0),
    delivered_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (destination_id, tenant_id)
);

-- The tenants a destination may have events to deliver to: those with rows written after their
-- cursor's transaction, or by it when its last page was full (tenant_feed_month, 0023), and every
-- tenant while months from before 0023 remain (feed_legacy_month lists no tenants). A tenant
-- that is caught up costs no page query.
CREATE FUNCTION stream_pending_tenants(destination uuid) RETURNS SETOF uuid
    LANGUAGE sql STABLE SECURITY DEFINER
    AS $$
    WITH d AS (SELECT tenant_id, start_xid FROM stream_destination WHERE id = destination)
    SELECT DISTINCT m.tenant_id
    FROM tenant_feed_month m CROSS JOIN d
    LEFT JOIN stream_cursor c ON c.destination_id = destination AND c.tenant_id = m.tenant_id
    WHERE (d.tenant_id IS NULL OR m.tenant_id = d.tenant_id)
      AND CASE WHEN c.after_xid IS NULL THEN m.last_xid >= coalesce(d.start_xid, '0'::xid8)
               WHEN c.drained THEN m.last_xid > c.after_xid
               ELSE m.last_xid >= c.after_xid END
    UNION
    SELECT t FROM d, ingest_tenant_ids() t
    WHERE EXISTS (SELECT FROM feed_legacy_month) AND (d.tenant_id IS NULL OR t = d.tenant_id)
    $$;

-- The smallest transaction id of the rows ingested at or after `since`, for a rewind to a time
-- (reads every row's ingested_at once). NULL when none was.
CREATE FUNCTION stream_first_xid_since(since timestamptz) RETURNS xid8
    LANGUAGE sql STABLE SECURITY DEFINER
    AS $$ SELECT min(ingest_xid) FROM audit_log WHERE ingested_at >= since $$;

DO $$
BEGIN
    EXECUTE format('ALTER FUNCTION stream_pending_tenants(uuid) SET search_path = %I, pg_temp', current_schema());
    EXECUTE format('ALTER FUNCTION stream_first_xid_since(timestamptz) SET search_path = %I, pg_temp', current_schema());
END $$;
REVOKE EXECUTE ON FUNCTION stream_pending_tenants(uuid), stream_first_xid_since(timestamptz) FROM PUBLIC;

-- The streamer's role: reads as any tenant (an application role, audit_api), moves cursors and
-- marks destinations failed; it cannot create or repoint a destination.
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'audit_stream') THEN
        CREATE ROLE audit_stream NOLOGIN;
    END IF;
END $$;
GRANT audit_api TO audit_stream;
GRANT SELECT ON stream_destination TO audit_stream;
GRANT UPDATE (state, state_reason, updated_at) ON stream_destination TO audit_stream;
GRANT SELECT, INSERT, UPDATE, DELETE ON stream_cursor TO audit_stream;
GRANT EXECUTE ON FUNCTION stream_pending_tenants(uuid) TO audit_stream;
