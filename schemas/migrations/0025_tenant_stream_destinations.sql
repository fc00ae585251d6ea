-- Tenants manage their own stream destinations with their tokens (docs/streaming.md).
--
-- A tenant-managed destination (managed_by 'tenant') holds its secret sealed: AES-256-GCM under
-- the operator's stream secret key, which only the admin server and the streamer read from a
-- file (secret_key_id names the key by fingerprint, so a wrong key is reported as such). It
-- never holds a reference (env:, file:), which would let a tenant read the streamer's
-- environment or files out to its URL.
--
-- The read API's login may write no table (ReadLogin), so tenants change destinations only
-- through the functions below. Each acts for current_tenant_id() (the tenant the API set for the
-- transaction), on that tenant's own tenant-managed destinations only, and takes the
-- destination's delivery lock (the advisory lock the streamer holds while a batch is in flight)
-- so that pause, rewind and delete return once that batch is done.
--
-- Locking: ALTER TABLE stream_destination takes ACCESS EXCLUSIVE on that small table for the
-- time of the catalog change (a streamer's read of it waits for it); new functions.
ALTER TABLE stream_destination
    ADD COLUMN managed_by    text  NOT NULL DEFAULT 'operator' CHECK (managed_by IN ('operator', 'tenant')),
    ADD COLUMN secret_sealed bytea,
    ADD COLUMN secret_key_id text  CHECK (secret_key_id ~ '^[0-9a-f]{16}$'),
    ADD CONSTRAINT stream_destination_one_secret CHECK (secret_ref IS NULL OR secret_sealed IS NULL),
    ADD CONSTRAINT stream_destination_sealed_key CHECK ((secret_sealed IS NULL) = (secret_key_id IS NULL)),
    ADD CONSTRAINT stream_destination_tenant_managed
        CHECK (managed_by = 'operator' OR (tenant_id IS NOT NULL AND secret_ref IS NULL));

-- The tenant these functions act for; refuses when none is set.
CREATE FUNCTION stream_acting_tenant() RETURNS uuid
    LANGUAGE plpgsql STABLE SECURITY DEFINER
    AS $$
DECLARE
    acting uuid := current_tenant_id();
BEGIN
    IF acting IS NULL THEN
        RAISE EXCEPTION 'no tenant is set for this session' USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN acting;
END
$$;

-- The destination's managed_by, or NULL when the acting tenant has no such destination
-- (another tenant's is as unknown as a missing one). For one the tenant manages, first waits
-- for its batch in flight and then holds its delivery lock to the end of the transaction (the
-- caller's lock_timeout bounds the wait); no other destination is ever locked.
CREATE FUNCTION stream_tenant_destination_lock(destination uuid) RETURNS text
    LANGUAGE plpgsql SECURITY DEFINER
    AS $$
DECLARE
    managed text := (SELECT managed_by FROM stream_destination WHERE id = destination AND tenant_id = stream_acting_tenant());
BEGIN
    IF managed = 'tenant' THEN
        PERFORM pg_advisory_xact_lock(hashtextextended('audit-ingest stream ' || destination::text, 0));
    END IF;
    RETURN managed;
END
$$;

CREATE FUNCTION tenant_stream_destination_create(
    destination uuid, name text, kind text, url text, secret_sealed bytea, secret_key_id text,
    batch_size integer, fail_after_seconds bigint, from_now boolean) RETURNS void
    LANGUAGE plpgsql SECURITY DEFINER
    AS $$
DECLARE
    acting uuid := stream_acting_tenant();
BEGIN
    -- One tenant cannot fill the streamer with workers.
    PERFORM pg_advisory_xact_lock(hashtextextended('audit-ingest stream tenant ' || acting::text, 0));
    IF (SELECT count(*) FROM stream_destination d WHERE d.tenant_id = acting) >= 20 THEN
        RAISE EXCEPTION 'a tenant has at most 20 stream destinations' USING ERRCODE = 'program_limit_exceeded';
    END IF;
    INSERT INTO stream_destination (id, name, tenant_id, kind, url, secret_sealed, secret_key_id, batch_size, fail_after,
                                    start_xid, managed_by)
    VALUES (destination, name, acting, kind, url, secret_sealed, secret_key_id, batch_size,
            make_interval(secs => fail_after_seconds), CASE WHEN from_now THEN feed_horizon() END, 'tenant');
END
$$;

-- 'active' (resume, from the cursor) or 'paused'. Returns the destination's managed_by (NULL:
-- none of this tenant's); only a tenant-managed one is changed.
CREATE FUNCTION tenant_stream_destination_set_state(destination uuid, new_state text) RETURNS text
    LANGUAGE plpgsql SECURITY DEFINER
    AS $$
DECLARE
    managed text := stream_tenant_destination_lock(destination);
BEGIN
    IF new_state NOT IN ('active', 'paused') THEN
        RAISE EXCEPTION 'a tenant may set a destination active or paused, not %', new_state USING ERRCODE = 'check_violation';
    END IF;
    IF managed = 'tenant' THEN
        UPDATE stream_destination SET state = new_state, updated_at = now(),
            state_reason = CASE WHEN new_state = 'paused' THEN 'paused by the tenant' END
        WHERE id = destination;
    END IF;
    RETURN managed;
END
$$;

-- Every event of the tenant ingested at or after `since` (NULL: every stored event) is delivered
-- again. Reads the ingested_at of the tenant's own rows only, once.
CREATE FUNCTION tenant_stream_destination_rewind(destination uuid, since timestamptz) RETURNS text
    LANGUAGE plpgsql SECURITY DEFINER
    AS $$
DECLARE
    managed text := stream_tenant_destination_lock(destination);
BEGIN
    IF managed = 'tenant' THEN
        UPDATE stream_destination SET updated_at = now(),
            start_xid = CASE WHEN since IS NULL THEN NULL ELSE coalesce(
                (SELECT min(a.ingest_xid) FROM audit_log a WHERE a.tenant_id = stream_acting_tenant() AND a.ingested_at >= since),
                feed_horizon()) END
        WHERE id = destination;
        DELETE FROM stream_cursor WHERE destination_id = destination;
    END IF;
    RETURN managed;
END
$$;

CREATE FUNCTION tenant_stream_destination_delete(destination uuid) RETURNS text
    LANGUAGE plpgsql SECURITY DEFINER
    AS $$
DECLARE
    managed text := stream_tenant_destination_lock(destination);
BEGIN
    IF managed = 'tenant' THEN
        DELETE FROM stream_destination WHERE id = destination;
    END IF;
    RETURN managed;
END
$$;

-- The acting tenant's destinations (its own and those its operator made for it; never an
-- every-tenant one), with the sealed secret for a test-send, never a reference's target.
CREATE FUNCTION tenant_stream_destinations()
    RETURNS TABLE (id uuid, name text, kind text, url text, secret_ref text, secret_sealed bytea, secret_key_id text,
                   batch_size integer, fail_after_seconds bigint, start_xid xid8, state text, state_reason text,
                   managed_by text, delivered bigint, last_delivery timestamptz)
    LANGUAGE sql STABLE SECURITY DEFINER
    AS $$
    SELECT d.id, d.name, d.kind, d.url, d.secret_ref, d.secret_sealed, d.secret_key_id, d.batch_size,
           extract(epoch FROM d.fail_after)::bigint, d.start_xid, d.state, d.state_reason, d.managed_by,
           coalesce(sum(c.delivered), 0)::bigint, max(c.delivered_at)
    FROM stream_destination d LEFT JOIN stream_cursor c ON c.destination_id = d.id
    WHERE d.tenant_id = stream_acting_tenant()
    GROUP BY d.id
    ORDER BY d.name
    $$;

DO $$
DECLARE
    f text;
BEGIN
    FOREACH f IN ARRAY ARRAY['stream_acting_tenant()', 'stream_tenant_destination_lock(uuid)',
        'tenant_stream_destination_create(uuid, text, text, text, bytea, text, integer, bigint, boolean)',
        'tenant_stream_destination_set_state(uuid, text)', 'tenant_stream_destination_rewind(uuid, timestamptz)',
        'tenant_stream_destination_delete(uuid)', 'tenant_stream_destinations()'] LOOP
        EXECUTE format('ALTER FUNCTION %s SET search_path = %I, pg_temp', f, current_schema());
        EXECUTE format('REVOKE EXECUTE ON FUNCTION %s FROM PUBLIC', f);
    END LOOP;
END $$;

-- The read API's login (a member of audit_api) calls these; a tenant's own SQL login (a member
-- of audit_reader only) cannot, so every tenant change passes the API's checks (the URL's
-- address among them).
GRANT EXECUTE ON FUNCTION tenant_stream_destination_create(uuid, text, text, text, bytea, text, integer, bigint, boolean),
    tenant_stream_destination_set_state(uuid, text), tenant_stream_destination_rewind(uuid, timestamptz),
    tenant_stream_destination_delete(uuid), tenant_stream_destinations() TO audit_api;
