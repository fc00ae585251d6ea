-- Event counts without a per-flush upsert (issue 11).
--
-- Each flush used to add its rows to tenant_metrics.audit_log_count with an upsert of every
-- (tenant, day) its batch touched: a backfill of old months touches thousands per batch, and the
-- upsert cost PostgreSQL a third as much CPU as the COPY itself (measured on PostgreSQL 15). Now a flush appends
-- its counts to tenant_metrics_delta with COPY (no index, no row lock, in the same transaction as
-- the rows) and fold_tenant_metrics_deltas() moves them into tenant_metrics in one statement per
-- fold: the rollup folds first, and every ingest run folds when it ends.
--
-- Exact at every commit: tenant_metrics_current is tenant_metrics with the deltas not yet folded
-- added in. A fold deletes the deltas it adds in the same transaction, so any snapshot sees each
-- count exactly once, in one table or the other. tenant_metrics.audit_log_count on its own is
-- exact once folded (after a run ends, or a rollup).
CREATE TABLE tenant_metrics_delta (
    tenant_id       uuid   NOT NULL,
    "date"          date   NOT NULL,
    audit_log_count bigint NOT NULL
);
ALTER TABLE tenant_metrics_delta ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON tenant_metrics_delta USING (tenant_id = current_tenant_id());
REVOKE ALL ON tenant_metrics_delta FROM audit_ingest, audit_reader;
GRANT INSERT ON tenant_metrics_delta TO audit_ingest;
GRANT SELECT ON tenant_metrics_delta TO audit_reader;

-- Runs with the reader's rights and row-level security (security_invoker): a tenant sees its own
-- rows of both tables.
CREATE VIEW tenant_metrics_current WITH (security_invoker = true) AS
SELECT tenant_id, "date",
       coalesce(m.user_count, 0) AS user_count,
       coalesce(m.item_count, 0) AS item_count,
       coalesce(m.audit_log_count, 0) + coalesce(d.audit_log_count, 0) AS audit_log_count,
       coalesce(m.storage_used_mb, 0) AS storage_used_mb,
       coalesce(m.active_users, 0) AS active_users,
       m.updated_at
FROM tenant_metrics m
FULL JOIN (SELECT tenant_id, "date", sum(audit_log_count)::bigint AS audit_log_count
           FROM tenant_metrics_delta GROUP BY 1, 2) d USING (tenant_id, "date");
GRANT SELECT ON tenant_metrics_current TO audit_reader;

-- Moves the deltas into tenant_metrics.audit_log_count; returns how many delta rows it folded.
-- Deltas committed while it runs are not in its snapshot: they stay for the next fold. One fold
-- at a time: while another holds the lock (a fold, or a whole-day rollup_tenant_metrics, which
-- folds first and keeps it to its commit) this returns 0 at once instead of waiting behind it or
-- taking row locks in another order. Months a dropped tenant_metrics partition left missing are
-- made again first, so one such month cannot stop every later fold.
CREATE FUNCTION fold_tenant_metrics_deltas() RETURNS bigint
    LANGUAGE plpgsql SECURITY DEFINER
    AS $$
DECLARE
    folded bigint;
BEGIN
    IF NOT pg_try_advisory_xact_lock(7022629598042026613) THEN  -- "auditprt" + 1
        RETURN 0;
    END IF;
    PERFORM ensure_month_partitions(month)
    FROM (SELECT DISTINCT date_trunc('month', "date")::date AS month FROM tenant_metrics_delta) m
    WHERE to_regclass('tenant_metrics_' || to_char(month, 'YYYY_MM')) IS NULL;
    WITH moved AS (
        DELETE FROM tenant_metrics_delta RETURNING tenant_id, "date", audit_log_count
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
    SELECT coalesce(sum(deltas), 0) INTO folded FROM summed;
    RETURN folded;
END
$$;

-- The rollup folds before it apportions storage by audit_log_count.
CREATE OR REPLACE FUNCTION rollup_tenant_metrics(day date) RETURNS integer
    LANGUAGE plpgsql SECURITY DEFINER
    AS $$
DECLARE
    total integer := 0;
    cursor_tenant uuid;
    batch record;
BEGIN
    PERFORM fold_tenant_metrics_deltas();
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
    -- Definer functions resolve names only in this schema. CREATE OR REPLACE dropped the
    -- search_path 0007 gave rollup_tenant_metrics: set it again.
    EXECUTE format('ALTER FUNCTION fold_tenant_metrics_deltas() SET search_path = %I, pg_temp', current_schema());
    EXECUTE format('ALTER FUNCTION rollup_tenant_metrics(date) SET search_path = %I, pg_temp', current_schema());
END
$$;
REVOKE EXECUTE ON FUNCTION fold_tenant_metrics_deltas() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION fold_tenant_metrics_deltas() TO audit_ingest;

-- The flush no longer reads or writes tenant_metrics. (An audit-ingest older than this
-- migration, running as audit_ingest, cannot flush any more: stop it, migrate, start the new one.)
REVOKE SELECT (tenant_id, "date", audit_log_count), INSERT, UPDATE ON tenant_metrics FROM audit_ingest;
