-- Stray month tables (issue 30, items 10 and 13).
--
-- A table under a month partition's name that is not that partition ("tenant_metrics_2026_05"
-- left from a restore, "audit_log_2026_05" made by hand) used to be handled for audit_log only,
-- and then as if it were audit data: renamed audit_log_YYYY_MM_detached, which the next
-- `partitions prune` archives and drops. A stray tenant_metrics_YYYY_MM was not moved at all, so
-- every fold and rollup failed from then on, for every tenant.
--
-- Now both parents are treated alike. A table that was this month's partition once (it carries
-- the bounds constraint this function gives every partition: an earlier version's prune that
-- failed after DETACH) is audit_log_YYYY_MM_detached as before, for prune to finish. Any other
-- table is renamed <name>_stray (or _stray_2, ...), kept, never pruned, with a WARNING that
-- names it; a fresh partition is made in its place.
CREATE OR REPLACE FUNCTION ensure_month_partitions(month date) RETURNS integer
    LANGUAGE plpgsql SECURITY DEFINER
    AS $$
DECLARE
    first_day date := date_trunc('month', month)::date;
    next_day  date := (date_trunc('month', month) + interval '1 month')::date;
    suffix    text := to_char(date_trunc('month', month), 'YYYY_MM');
    low       text := to_char(date_trunc('month', month), 'YYYY-MM-DD') || ' 00:00:00+00';
    high      text := to_char(date_trunc('month', month) + interval '1 month', 'YYYY-MM-DD') || ' 00:00:00+00';
    latest    date := (date_trunc('month', now() AT TIME ZONE 'UTC') + interval '25 months')::date;
    created   integer := 0;
    parent    text;
    name      text;
    aside     text;
    kind      text;
BEGIN
    IF first_day < date '2000-01-01' OR first_day > latest THEN
        RAISE EXCEPTION 'no partition for %: months run from 2000-01 to %', to_char(first_day, 'YYYY-MM'), to_char(latest, 'YYYY-MM')
            USING ERRCODE = 'datetime_field_overflow',
                  HINT = 'an event this old or this far ahead is refused by the decoder; check where the month came from';
    END IF;
    PERFORM pg_advisory_xact_lock(7022629598042026612);  -- "auditprt"
    FOREACH parent IN ARRAY ARRAY['audit_log', 'tenant_metrics'] LOOP
        name := parent || '_' || suffix;
        IF to_regclass(quote_ident(name)) IS NOT NULL
           AND NOT EXISTS (SELECT FROM pg_inherits
                           WHERE inhrelid = to_regclass(quote_ident(name)) AND inhparent = to_regclass(quote_ident(parent))) THEN
            kind := CASE WHEN parent = 'audit_log'
                          AND EXISTS (SELECT FROM pg_constraint
                                      WHERE conrelid = to_regclass(quote_ident(name)) AND conname = name || '_bounds')
                         THEN '_detached' ELSE '_stray' END;
            SELECT n INTO aside FROM (SELECT name || kind || CASE WHEN i = 1 THEN '' ELSE '_' || i END AS n, i
                                      FROM generate_series(1, 1000) i) c
            WHERE to_regclass(quote_ident(n)) IS NULL ORDER BY i LIMIT 1;
            EXECUTE format('ALTER TABLE %I RENAME TO %I', name, aside);
            IF kind = '_stray' THEN
                RAISE WARNING 'table % is not a partition of %: renamed % and kept (never pruned); a new partition takes its name',
                    name, parent, aside
                    USING HINT = 'look at what it holds, then drop it or move its rows into ' || parent;
            END IF;
        END IF;
    END LOOP;
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

-- The fold, one month at a time. A month that cannot be folded (its partition missing, not
-- attached, locked past the lock timeout, ...) keeps its deltas, exact in tenant_metrics_current,
-- and gives a WARNING naming its table; the other months are folded. Months whose partition is
-- missing or is a stray table are made first.
CREATE OR REPLACE FUNCTION fold_tenant_metrics_deltas() RETURNS bigint
    LANGUAGE plpgsql SECURITY DEFINER
    AS $$
DECLARE
    folded bigint := 0;
    in_month bigint;
    month date;
BEGIN
    IF NOT pg_try_advisory_xact_lock(7022629598042026613) THEN  -- "auditprt" + 1
        RETURN 0;
    END IF;
    FOR month IN SELECT DISTINCT date_trunc('month', "date")::date FROM tenant_metrics_delta ORDER BY 1 LOOP
        BEGIN
            IF NOT EXISTS (SELECT FROM pg_inherits
                           WHERE inhrelid = to_regclass('tenant_metrics_' || to_char(month, 'YYYY_MM'))
                             AND inhparent = 'tenant_metrics'::regclass) THEN
                PERFORM ensure_month_partitions(month);
            END IF;
            WITH moved AS (
                DELETE FROM tenant_metrics_delta
                WHERE "date" >= month AND "date" < (month + interval '1 month')::date
                RETURNING tenant_id, "date", audit_log_count
            ), summed AS (
                SELECT tenant_id, "date", sum(audit_log_count)::bigint AS n, count(*) AS deltas
                FROM moved GROUP BY 1, 2
            ), upserted AS (
                INSERT INTO tenant_metrics AS t (tenant_id, "date", audit_log_count)
                SELECT tenant_id, "date", n FROM summed
                ORDER BY tenant_id, "date"  -- one lock order with the rollup
                ON CONFLICT (tenant_id, "date") DO UPDATE
                    SET audit_log_count = t.audit_log_count + EXCLUDED.audit_log_count, updated_at = now()
            )
            SELECT coalesce(sum(deltas), 0) INTO in_month FROM summed;
            folded := folded + in_month;
        EXCEPTION WHEN OTHERS THEN
            RAISE WARNING 'could not fold the counts of % into tenant_metrics_%: % (SQLSTATE %); they stay in tenant_metrics_delta',
                to_char(month, 'YYYY-MM'), to_char(month, 'YYYY_MM'), SQLERRM, SQLSTATE;
        END;
    END LOOP;
    RETURN folded;
END
$$;

DO $$
BEGIN
    -- Definer functions resolve names only in this schema; CREATE OR REPLACE keeps no SET.
    EXECUTE format('ALTER FUNCTION ensure_month_partitions(date) SET search_path = %I, pg_temp', current_schema());
    EXECUTE format('ALTER FUNCTION fold_tenant_metrics_deltas() SET search_path = %I, pg_temp', current_schema());
END
$$;
