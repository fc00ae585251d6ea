-- Least privilege that works for login roles granted audit_ingest / audit_reader (issue 13).
--
-- audit_ingest may do exactly what ingestion needs:
--   COPY into audit_log (INSERT on the parent; rows are routed to the month partitions) and into
--   audit_dead_letter (INSERT only: it cannot read dead letters back), read and move its offsets,
--   add to tenant_metrics.audit_log_count, read the tenant ids (ingest_tenant_ids()), create
--   months (ensure_month_partitions()) and run the rollup (rollup_tenant_metrics_batch()) through
--   SECURITY DEFINER functions owned by the schema owner. Nothing on tenant, "user" or item.
-- COPY FROM is refused on a table with row-level security for a role it applies to, and only the
-- table owner or a BYPASSRLS role is exempt. BYPASSRLS is a role attribute and not inherited, so
-- a login role granted audit_ingest takes audit_ingest's identity for its ingest sessions
-- (audit-ingest does `SET ROLE audit_ingest` itself; see docs/security.md). BYPASSRLS gives
-- audit_ingest no rows it has no privilege on: it can read none of the tenant tables.
--
-- FORCE ROW LEVEL SECURITY on tenant, "user" and item: the owner's own sessions (the admin tenant
-- report) see only the tenant they set. audit_log and tenant_metrics stay ENABLE without FORCE:
-- an owner that ingests writes every tenant's rows in bulk, and COPY FROM is refused under
-- forced row-level security. Readers are still isolated on all five tables.

DO $$
BEGIN
    -- Cluster-wide and maybe done by another database's migration: skip when done.
    IF (SELECT rolsuper FROM pg_roles WHERE rolname = current_user)
       AND NOT (SELECT rolbypassrls FROM pg_roles WHERE rolname = 'audit_ingest') THEN
        BEGIN
            ALTER ROLE audit_ingest BYPASSRLS;
        EXCEPTION WHEN internal_error THEN NULL;  -- "tuple concurrently updated": another session did it
        END;
    END IF;

    -- The owner's sessions obey the policies (FORCE); its definer functions below need every
    -- tenant and say so with audit.scope = 'system' for their own duration (enter_system_scope).
    -- The policy names the owner: a reader setting audit.scope gains nothing.
    EXECUTE format('CREATE POLICY owner_system_scope ON tenant TO %I USING (current_setting(''audit.scope'', true) = ''system'')', current_user);
    EXECUTE format('CREATE POLICY owner_system_scope ON "user" TO %I USING (current_setting(''audit.scope'', true) = ''system'')', current_user);
    EXECUTE format('CREATE POLICY owner_system_scope ON item TO %I USING (current_setting(''audit.scope'', true) = ''system'')', current_user);
END
$$;

ALTER TABLE tenant FORCE ROW LEVEL SECURITY;
ALTER TABLE "user" FORCE ROW LEVEL SECURITY;
ALTER TABLE item   FORCE ROW LEVEL SECURITY;

REVOKE ALL ON tenant, "user", item, audit_log, tenant_metrics, audit_dead_letter, ingest_offsets FROM audit_ingest;
GRANT INSERT ON audit_log, audit_dead_letter TO audit_ingest;
GRANT SELECT, INSERT, UPDATE, DELETE ON ingest_offsets TO audit_ingest;
-- The flush's upsert of audit_log_count reads only these columns.
GRANT SELECT (tenant_id, "date", audit_log_count), INSERT, UPDATE ON tenant_metrics TO audit_ingest;
DO $$
BEGIN
    IF to_regclass('ingest_offsets_retired') IS NOT NULL THEN
        GRANT SELECT, INSERT, UPDATE, DELETE ON ingest_offsets_retired TO audit_ingest;
    END IF;
END
$$;

-- Readers read their tenant's rows and nothing else (no dead letters, offsets or migrations).
REVOKE ALL ON tenant, "user", item, audit_log, tenant_metrics, audit_dead_letter, ingest_offsets FROM audit_reader;
GRANT SELECT ON tenant, "user", item, audit_log, tenant_metrics TO audit_reader;

-- ensure_month_partitions (0005) also when a month's table exists but is not attached (a prune
-- of an earlier version failed after DETACH): it is renamed audit_log_YYYY_MM_detached (the next
-- `partitions prune` archives and drops it) and a fresh month is made, instead of leaving every
-- later event of that month to fail with 23514.
CREATE OR REPLACE FUNCTION ensure_month_partitions(month date) RETURNS integer
    LANGUAGE plpgsql SECURITY DEFINER
    AS $$
DECLARE
    first_day date := date_trunc('month', month)::date;
    next_day  date := (date_trunc('month', month) + interval '1 month')::date;
    suffix    text := to_char(date_trunc('month', month), 'YYYY_MM');
    low       text := to_char(date_trunc('month', month), 'YYYY-MM-DD') || ' 00:00:00+00';
    high      text := to_char(date_trunc('month', month) + interval '1 month', 'YYYY-MM-DD') || ' 00:00:00+00';
    created   integer := 0;
    aside     text;
BEGIN
    PERFORM pg_advisory_xact_lock(7022629598042026612);  -- "auditprt"
    IF to_regclass('audit_log_' || suffix) IS NOT NULL
       AND NOT EXISTS (SELECT FROM pg_inherits WHERE inhrelid = to_regclass('audit_log_' || suffix)) THEN
        SELECT n INTO aside FROM (SELECT 'audit_log_' || suffix || '_detached' || CASE WHEN i = 1 THEN '' ELSE '_' || i END AS n, i
                                  FROM generate_series(1, 1000) i) c
        WHERE to_regclass(quote_ident(n)) IS NULL ORDER BY i LIMIT 1;
        EXECUTE format('ALTER TABLE %I RENAME TO %I', 'audit_log_' || suffix, aside);
    END IF;
    IF to_regclass('audit_log_' || suffix) IS NULL THEN
        EXECUTE format('CREATE TABLE %I (LIKE audit_log INCLUDING DEFAULTS INCLUDING STORAGE, '
                       'CONSTRAINT %I CHECK ("timestamp" >= %L::timestamptz AND "timestamp" < %L::timestamptz))',
                       'audit_log_' || suffix, 'audit_log_' || suffix || '_bounds', low, high);
        EXECUTE format('ALTER TABLE audit_log ATTACH PARTITION %I FOR VALUES FROM (%L) TO (%L)',
                       'audit_log_' || suffix, low, high);
        created := created + 1;
    END IF;
    IF to_regclass('tenant_metrics_' || suffix) IS NULL THEN
        EXECUTE format('CREATE TABLE %I (LIKE tenant_metrics INCLUDING DEFAULTS INCLUDING STORAGE, '
                       'CONSTRAINT %I CHECK ("date" >= %L::date AND "date" < %L::date))',
                       'tenant_metrics_' || suffix, 'tenant_metrics_' || suffix || '_bounds', first_day, next_day);
        EXECUTE format('ALTER TABLE tenant_metrics ATTACH PARTITION %I FOR VALUES FROM (%L) TO (%L)',
                       'tenant_metrics_' || suffix, first_day, next_day);
        created := created + 1;
    END IF;
    RETURN created;
END
$$;

-- The owner's "system" scope for the duration of a definer function: set, then restored by the
-- caller with the returned previous value. (ALTER FUNCTION ... SET of a custom setting needs a
-- superuser; set_config does not.) Transactional: an error rolls it back with the statement.
CREATE FUNCTION enter_system_scope() RETURNS text
    LANGUAGE plpgsql
    AS $$
DECLARE
    previous text := coalesce(current_setting('audit.scope', true), '');
BEGIN
    PERFORM set_config('audit.scope', 'system', true);
    RETURN previous;
END
$$;

-- The registered tenant ids (no names, codes or settings) for the unknown-tenant rule.
CREATE FUNCTION ingest_tenant_ids() RETURNS SETOF uuid
    LANGUAGE plpgsql SECURITY DEFINER
    AS $$
DECLARE
    previous text := enter_system_scope();
BEGIN
    RETURN QUERY SELECT id FROM tenant;
    PERFORM set_config('audit.scope', previous, true);
END
$$;

-- The codes of tenants whose estimated storage exceeds their quota (the rollup's alert).
CREATE FUNCTION tenants_over_storage_quota(day date) RETURNS SETOF text
    LANGUAGE plpgsql SECURITY DEFINER
    AS $$
DECLARE
    previous text := enter_system_scope();
BEGIN
    RETURN QUERY
    SELECT t.code::text FROM tenant t
    JOIN LATERAL (SELECT storage_used_mb FROM tenant_metrics m
                  WHERE m.tenant_id = t.id AND m."date" <= day
                  ORDER BY "date" DESC LIMIT 1) m ON true
    WHERE m.storage_used_mb > t.max_storage_gb * 1024.0 ORDER BY 1;
    PERFORM set_config('audit.scope', previous, true);
END
$$;

-- Bytes per audit_log row of each month partition, as of a rollup day: computed by the first
-- batch of a rollup (a scan of all tenant_metrics) and read by the following ones. Unlogged: a
-- cache that a crash may empty (the next batch recomputes it).
CREATE UNLOGGED TABLE tenant_metrics_rollup_months (
    rollup_day    date   NOT NULL,
    month         date   NOT NULL,
    bytes_per_row float8 NOT NULL,
    PRIMARY KEY (rollup_day, month)
);

-- rollup_tenant_metrics(day) for the tenants after `after_tenant` (NULL: from the first), at most
-- `max_tenants` of them in id order, so 100k tenants are rolled up in short transactions that
-- hold the flushers' row locks on tenant_metrics only briefly. Returns the last tenant id done
-- (NULL when there was none left) and how many rows were written.
CREATE FUNCTION rollup_tenant_metrics_batch(day date, after_tenant uuid, max_tenants integer,
                                            OUT last_tenant uuid, OUT written integer)
    LANGUAGE plpgsql SECURITY DEFINER
    AS $$
DECLARE
    previous  text := enter_system_scope();
    day_start timestamptz := day::timestamp AT TIME ZONE 'UTC';
    day_end   timestamptz := (day + 1)::timestamp AT TIME ZONE 'UTC';
    batch     uuid[];
BEGIN
    IF after_tenant IS NULL THEN
        PERFORM ensure_month_partitions(day);
    END IF;
    IF after_tenant IS NULL OR NOT EXISTS (SELECT FROM tenant_metrics_rollup_months WHERE rollup_day = day) THEN
        DELETE FROM tenant_metrics_rollup_months WHERE rollup_day < day - 7;
        WITH partition_bytes AS (
            SELECT to_date(substr(c.relname, length('audit_log_') + 1), 'YYYY_MM') AS month,
                   pg_total_relation_size(c.oid)::float8 AS bytes
            FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
            WHERE i.inhparent = 'audit_log'::regclass
        ), month_rows AS (  -- exact rows per month partition, from the ingest's own counts
            SELECT date_trunc('month', "date")::date AS month, sum(audit_log_count)::float8 AS n
            FROM tenant_metrics GROUP BY 1
        )
        INSERT INTO tenant_metrics_rollup_months AS c (rollup_day, month, bytes_per_row)
        SELECT day, r.month, coalesce(b.bytes / nullif(r.n, 0), 0)
        FROM month_rows r LEFT JOIN partition_bytes b ON b.month = r.month
        ON CONFLICT (rollup_day, month) DO UPDATE SET bytes_per_row = EXCLUDED.bytes_per_row;
    END IF;
    SELECT array_agg(id ORDER BY id) INTO batch
    FROM (SELECT id FROM tenant WHERE after_tenant IS NULL OR id > after_tenant ORDER BY id LIMIT max_tenants) t;
    IF batch IS NULL THEN
        last_tenant := NULL;
        written := 0;
        PERFORM set_config('audit.scope', previous, true);
        RETURN;
    END IF;
    last_tenant := batch[array_length(batch, 1)];
    WITH storage AS (
        SELECT m.tenant_id, sum(m.audit_log_count * coalesce(c.bytes_per_row, 0)) / 1048576.0 AS mb
        FROM tenant_metrics m
        LEFT JOIN tenant_metrics_rollup_months c ON c.rollup_day = day AND c.month = date_trunc('month', m."date")::date
        WHERE m."date" <= day AND m.tenant_id = ANY (batch)
        GROUP BY m.tenant_id
    )
    INSERT INTO tenant_metrics AS t (tenant_id, "date", user_count, item_count, active_users, storage_used_mb, updated_at)
    SELECT tn.id, day,
           (SELECT count(*) FROM "user" u WHERE u.tenant_id = tn.id AND u.created_at < day_end),
           (SELECT count(*) FROM item it WHERE it.tenant_id = tn.id AND it.created_at < day_end),
           (SELECT count(DISTINCT a.user_id) FROM audit_log a
             WHERE a.tenant_id = tn.id AND a."timestamp" >= day_start AND a."timestamp" < day_end),
           coalesce((SELECT round(s.mb::numeric, 3)::float8 FROM storage s WHERE s.tenant_id = tn.id), 0),
           now()
    FROM unnest(batch) AS tn(id)
    ORDER BY tn.id  -- one lock order with the flushers' sorted upserts
    ON CONFLICT (tenant_id, "date") DO UPDATE
        SET user_count = EXCLUDED.user_count, item_count = EXCLUDED.item_count,
            active_users = EXCLUDED.active_users, storage_used_mb = EXCLUDED.storage_used_mb, updated_at = now();
    GET DIAGNOSTICS written = ROW_COUNT;
    PERFORM set_config('audit.scope', previous, true);
END
$$;

-- The whole day at once, as before (0005), now batch by batch in the caller's transaction.
CREATE OR REPLACE FUNCTION rollup_tenant_metrics(day date) RETURNS integer
    LANGUAGE plpgsql SECURITY DEFINER
    AS $$
DECLARE
    total integer := 0;
    cursor_tenant uuid;
    batch record;
BEGIN
    LOOP
        SELECT * INTO batch FROM rollup_tenant_metrics_batch(day, cursor_tenant, 1000);
        EXIT WHEN batch.last_tenant IS NULL;
        total := total + batch.written;
        cursor_tenant := batch.last_tenant;
    END LOOP;
    RETURN total;
END
$$;

DO $$
BEGIN
    -- Definer functions resolve names only in this schema (after pg_catalog; pg_temp last: no
    -- temp-table hijack).
    EXECUTE format('ALTER FUNCTION ensure_month_partitions(date) SET search_path = %I, pg_temp', current_schema());
    EXECUTE format('ALTER FUNCTION rollup_tenant_metrics(date) SET search_path = %I, pg_temp', current_schema());
    EXECUTE format('ALTER FUNCTION ingest_tenant_ids() SET search_path = %I, pg_temp', current_schema());
    EXECUTE format('ALTER FUNCTION tenants_over_storage_quota(date) SET search_path = %I, pg_temp', current_schema());
    EXECUTE format('ALTER FUNCTION rollup_tenant_metrics_batch(date, uuid, integer) SET search_path = %I, pg_temp',
                   current_schema());
END
$$;

REVOKE EXECUTE ON FUNCTION ensure_month_partitions(date), rollup_tenant_metrics(date), ingest_tenant_ids(),
    tenants_over_storage_quota(date), rollup_tenant_metrics_batch(date, uuid, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION ensure_month_partitions(date), rollup_tenant_metrics(date), ingest_tenant_ids(),
    tenants_over_storage_quota(date), rollup_tenant_metrics_batch(date, uuid, integer) TO audit_ingest;
