-- Readers who run their own SQL (issue 13, trust model). app.tenant_id protects an application
-- that sets it per request; a reader with a SQL prompt can set it to any tenant. A login role
-- listed here is bound to one tenant: for its sessions current_tenant_id() is that tenant,
-- whatever app.tenant_id says (SET ROLE cannot change session_user). Unlisted roles keep using
-- app.tenant_id. Only the schema owner writes this table.
CREATE TABLE tenant_login_role (
    role_name name PRIMARY KEY,
    tenant_id uuid NOT NULL REFERENCES tenant (id) ON DELETE CASCADE
);
CREATE INDEX idx_tenant_login_role_tenant ON tenant_login_role (tenant_id);

-- Called by every tenant-isolation policy; SECURITY DEFINER so readers need no right on
-- tenant_login_role (they cannot see which roles belong to which tenant).
CREATE OR REPLACE FUNCTION current_tenant_id() RETURNS uuid
    LANGUAGE sql STABLE SECURITY DEFINER
    AS $$
    SELECT CASE WHEN bound.tenant_id IS NOT NULL THEN bound.tenant_id
                ELSE NULLIF(current_setting('app.tenant_id', true), '')::uuid END
    FROM (SELECT (SELECT tenant_id FROM tenant_login_role WHERE role_name = session_user) AS tenant_id) bound
    $$;

DO $$
BEGIN
    EXECUTE format('ALTER FUNCTION current_tenant_id() SET search_path = %I, pg_temp', current_schema());
END
$$;
