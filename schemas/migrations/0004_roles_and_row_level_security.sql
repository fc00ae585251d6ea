-- Two roles (cluster-wide, so created only when missing):
--   audit_ingest: writes; owns nothing, but may COPY because it bypasses row-level security.
--   audit_reader: reads, and sees only the rows of current_setting('app.tenant_id').
-- Grant them to login roles: GRANT audit_reader TO some_app_user;
-- Roles belong to the whole cluster, while migrate's advisory lock is per database: migrations of
-- two databases of one cluster may run this block at the same moment. Each step is therefore
-- skipped when already done, and a concurrent session doing the same step is not an error.
DO $$
BEGIN
    BEGIN
        IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'audit_ingest') THEN
            CREATE ROLE audit_ingest NOLOGIN;
        END IF;
    EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
    END;
    BEGIN
        IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'audit_reader') THEN
            CREATE ROLE audit_reader NOLOGIN;
        END IF;
    EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
    END;
    -- COPY FROM is refused on a table with RLS for roles it applies to: the writer bypasses it.
    -- Only a superuser may grant BYPASSRLS; otherwise run the ingest as the tables' owner.
    IF NOT (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN
        RAISE NOTICE 'not a superuser: audit_ingest was not given BYPASSRLS; ingest as the table owner';
    ELSIF NOT (SELECT rolbypassrls FROM pg_roles WHERE rolname = 'audit_ingest') THEN
        BEGIN
            ALTER ROLE audit_ingest BYPASSRLS;
        EXCEPTION WHEN internal_error THEN NULL;  -- "tuple concurrently updated": another session did it
        END;
    END IF;
END
$$;

GRANT SELECT ON tenant, "user", item, audit_log, tenant_metrics TO audit_reader;
GRANT SELECT, INSERT, UPDATE ON tenant, "user", item, tenant_metrics TO audit_ingest;
GRANT SELECT, INSERT ON audit_log, audit_dead_letter TO audit_ingest;
GRANT SELECT, INSERT, UPDATE ON ingest_offsets TO audit_ingest;

-- The tenant a reader acts for; NULL (no rows) when unset or empty.
CREATE FUNCTION current_tenant_id() RETURNS uuid
    LANGUAGE sql STABLE
    AS $$ SELECT NULLIF(current_setting('app.tenant_id', true), '')::uuid $$;

ALTER TABLE tenant         ENABLE ROW LEVEL SECURITY;
ALTER TABLE "user"         ENABLE ROW LEVEL SECURITY;
ALTER TABLE item           ENABLE ROW LEVEL SECURITY;
ALTER TABLE audit_log      ENABLE ROW LEVEL SECURITY;
ALTER TABLE tenant_metrics ENABLE ROW LEVEL SECURITY;

CREATE POLICY tenant_isolation ON tenant         USING (id = current_tenant_id());
CREATE POLICY tenant_isolation ON "user"         USING (tenant_id = current_tenant_id());
CREATE POLICY tenant_isolation ON item           USING (tenant_id = current_tenant_id());
CREATE POLICY tenant_isolation ON audit_log      USING (tenant_id = current_tenant_id());
CREATE POLICY tenant_isolation ON tenant_metrics USING (tenant_id = current_tenant_id());
