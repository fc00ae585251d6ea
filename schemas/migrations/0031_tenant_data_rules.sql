-- A tenant sees the rules its events are kept under (docs/read-api.md, "The tenant's rules"):
-- its own retention, the legal holds in place on it, and the redaction rules that apply to it
-- (its own and those for every tenant). tenant_data_rules() answers for the acting tenant
-- (current_tenant_id(), set by the read API for its transaction) and nothing else. A hold's
-- reason and who placed it are not shown: they may name a matter the tenant is not told of.
--
-- Locking: new functions only.

CREATE FUNCTION tenant_data_rules(OUT kind text, OUT field text, OUT action text, OUT scope text,
                                  OUT days integer, OUT hold_id bigint, OUT events_from timestamptz,
                                  OUT events_until timestamptz, OUT since timestamptz)
    RETURNS SETOF record
    LANGUAGE sql STABLE SECURITY DEFINER
    AS $$
        SELECT 'retention', NULL, NULL, NULL, r.days, NULL, NULL, NULL, r.updated_at
        FROM tenant_retention r WHERE r.tenant_id = current_tenant_id()
        UNION ALL
        SELECT 'hold', NULL, NULL, NULL, NULL, h.id, h.events_from, h.events_until, h.placed_at
        FROM tenant_legal_hold h WHERE h.tenant_id = current_tenant_id() AND h.released_at IS NULL
        UNION ALL
        SELECT 'redaction', x.field, x.action, CASE WHEN x.tenant_id IS NULL THEN 'all_tenants' ELSE 'tenant' END,
               NULL, NULL, NULL, NULL, x.created_at
        FROM redaction_rule x
        WHERE current_tenant_id() IS NOT NULL AND (x.tenant_id = current_tenant_id()
              OR (x.tenant_id IS NULL AND NOT EXISTS (
                  SELECT FROM redaction_rule own WHERE own.tenant_id = current_tenant_id() AND own.field = x.field)))
    $$;

DO $$
BEGIN
    EXECUTE format('ALTER FUNCTION tenant_data_rules() SET search_path = %I, pg_temp', current_schema());
END $$;
REVOKE EXECUTE ON FUNCTION tenant_data_rules() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION tenant_data_rules() TO audit_reader;
