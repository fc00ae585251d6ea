-- Month partitions, made in one place for the ingest engine, `partitions ensure` and operators.
-- Creates audit_log_YYYY_MM and tenant_metrics_YYYY_MM for the month containing `month` when
-- missing and returns how many it created. Serialised by an advisory lock (released at the end of
-- the caller's transaction) and re-checked after taking it, so concurrent callers never collide.
-- Each month is created as a plain table with a CHECK matching its bounds and then ATTACHed:
-- ATTACH takes only SHARE UPDATE EXCLUSIVE on the parent, so running COPYs are not blocked, and
-- the CHECK lets it skip the validation scan. There is never a DEFAULT partition.
CREATE FUNCTION ensure_month_partitions(month date) RETURNS integer
    LANGUAGE plpgsql
    AS $$
DECLARE
    first_day date := date_trunc('month', month)::date;
    next_day  date := (date_trunc('month', month) + interval '1 month')::date;
    suffix    text := to_char(date_trunc('month', month), 'YYYY_MM');
    low       text := to_char(date_trunc('month', month), 'YYYY-MM-DD') || ' 00:00:00+00';
    high      text := to_char(date_trunc('month', month) + interval '1 month', 'YYYY-MM-DD') || ' 00:00:00+00';
    created   integer := 0;
BEGIN
    PERFORM pg_advisory_xact_lock(7022629598042026612);  -- "auditprt"
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

-- Completes tenant_metrics for one UTC day, for every tenant, and returns the rows written.
-- audit_log_count is never touched here: the ingest transaction keeps it exact. Idempotent.
--   user_count, item_count: rows created before the end of the day
--   active_users:           distinct user_id with audit events that day
--   storage_used_mb:        an estimate of the tenant's audit_log footprint: for each month
--                           partition, the tenant's rows that month up to this day times the
--                           partition's bytes per row (its size incl. indexes and TOAST divided by
--                           its exact row count, both from audit_log_count), summed over months
CREATE FUNCTION rollup_tenant_metrics(day date) RETURNS integer
    LANGUAGE plpgsql
    AS $$
DECLARE
    day_start timestamptz := day::timestamp AT TIME ZONE 'UTC';
    day_end   timestamptz := (day + 1)::timestamp AT TIME ZONE 'UTC';
    written   integer;
BEGIN
    PERFORM ensure_month_partitions(day);
    WITH partition_bytes AS (
        SELECT to_date(substr(c.relname, length('audit_log_') + 1), 'YYYY_MM') AS month,
               pg_total_relation_size(c.oid)::float8 AS bytes
        FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
        WHERE i.inhparent = 'audit_log'::regclass
    ), month_rows AS (  -- exact rows per month partition, from the ingest's own counts
        SELECT date_trunc('month', "date")::date AS month, sum(audit_log_count)::float8 AS n
        FROM tenant_metrics GROUP BY 1
    ), storage AS (
        SELECT m.tenant_id,
               sum(m.audit_log_count * coalesce(b.bytes / nullif(r.n, 0), 0)) / 1048576.0 AS mb
        FROM tenant_metrics m
        JOIN month_rows r ON r.month = date_trunc('month', m."date")::date
        LEFT JOIN partition_bytes b ON b.month = r.month
        WHERE m."date" <= day
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
    FROM tenant tn
    ON CONFLICT (tenant_id, "date") DO UPDATE
        SET user_count = EXCLUDED.user_count, item_count = EXCLUDED.item_count,
            active_users = EXCLUDED.active_users, storage_used_mb = EXCLUDED.storage_used_mb, updated_at = now();
    GET DIAGNOSTICS written = ROW_COUNT;
    RETURN written;
END
$$;
