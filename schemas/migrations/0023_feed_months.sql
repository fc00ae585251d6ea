-- The months each tenant's rows were written to, by transaction, so that a feed page scans only
-- the months written since its cursor (issue 29, item 11). The feed's index (tenant_id,
-- ingest_xid, id, "timestamp") is one per monthly partition: without a bound every page probed
-- every month, and one tenant's events spread over 2000-2026 (636 partitions) made every
-- tenant's feed page 118-261 ms instead of 4-6 ms. Now a page reads the months of its own tenant
-- that a transaction at or after its cursor's wrote to: its cost follows ingest order.
--
-- Append-only: each flush inserts one row per (tenant, month) its rows fall in, in its own
-- transaction, with pg_current_xact_id() (the rows' ingest_xid). A row is visible exactly when
-- the rows it stands for are, and the feed reads it after its horizon. No row is updated, so
-- writers of one month never wait for each other. compact_tenant_feed_months() (run by the
-- metrics rollup) keeps the newest row of each (tenant, month): a page without a cursor then
-- reads about one row per month of its tenant.
--
-- Months that held rows before this migration are in feed_legacy_month: scanned for every tenant
-- until they are pruned (listing their tenants would mean reading every row now).
--
-- Locking: new tables and functions.
CREATE TABLE tenant_feed_month (
    tenant_id uuid NOT NULL,
    month     date NOT NULL,
    last_xid  xid8 NOT NULL
);
CREATE INDEX tenant_feed_month_by_xid ON tenant_feed_month (tenant_id, last_xid) INCLUDE (month);
ALTER TABLE tenant_feed_month ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON tenant_feed_month USING (tenant_id = (SELECT current_tenant_id()));
GRANT INSERT ON tenant_feed_month TO audit_ingest;
GRANT SELECT ON tenant_feed_month TO audit_reader;

CREATE TABLE feed_legacy_month (month date PRIMARY KEY);
INSERT INTO feed_legacy_month
SELECT to_date(substring(c.relname FROM 'audit_log_([0-9]{4}_[0-9]{2})$'), 'YYYY_MM')
FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
WHERE i.inhparent = 'audit_log'::regclass AND c.relname ~ '^audit_log_[0-9]{4}_[0-9]{2}$';
GRANT SELECT ON feed_legacy_month TO audit_reader;

-- Keeps the newest row of each (tenant, month); returns how many it deleted. A page after any
-- cursor finds a month exactly when it did before: a deleted row's month has a newer row.
CREATE FUNCTION compact_tenant_feed_months() RETURNS bigint
    LANGUAGE sql SECURITY DEFINER
    AS $$
    WITH newest AS (
        SELECT tenant_id, month, max(last_xid) AS last_xid FROM tenant_feed_month GROUP BY 1, 2 HAVING count(*) > 1
    ), gone AS (
        DELETE FROM tenant_feed_month f USING newest n
        WHERE f.tenant_id = n.tenant_id AND f.month = n.month AND f.last_xid < n.last_xid
        RETURNING 1
    )
    SELECT count(*) FROM gone
$$;
DO $$
BEGIN
    EXECUTE format('ALTER FUNCTION compact_tenant_feed_months() SET search_path = %I, pg_temp', current_schema());
END $$;
GRANT EXECUTE ON FUNCTION compact_tenant_feed_months() TO audit_ingest;

-- For a writer other than audit-ingest (rows loaded by hand, a test): marks the months of the rows
-- this transaction wrote between `since` and `until` (only those months' partitions are read).
-- Call it before COMMIT, after `LOCK TABLE feed_writer IN ROW EXCLUSIVE MODE` and the rows.
CREATE FUNCTION record_feed_months(since timestamptz, until timestamptz) RETURNS bigint
    LANGUAGE sql
    AS $$
    WITH marked AS (
        INSERT INTO tenant_feed_month (tenant_id, month, last_xid)
        SELECT tenant_id, date_trunc('month', "timestamp" AT TIME ZONE 'UTC')::date, pg_current_xact_id()
        FROM audit_log
        WHERE "timestamp" >= since AND "timestamp" < until AND ingest_xid = pg_current_xact_id()
        GROUP BY 1, 2
        RETURNING 1
    )
    SELECT count(*) FROM marked
$$;
