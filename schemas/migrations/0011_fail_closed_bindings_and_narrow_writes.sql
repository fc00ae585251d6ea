-- What a tenant SQL login, an application login and the ingest credential may do, closed down
-- (issue 29, docs/security.md, "Trust model").
--
-- 1. Tenant bindings follow the role, not its name, and fail closed. current_tenant_id() used to
--    match tenant_login_role.role_name = session_user exactly: a member of a bound role (CREATE
--    ROLE bob LOGIN IN ROLE acme) or a bound role renamed was unbound and could set app.tenant_id
--    to any tenant. Now a binding names the role's OID, it covers every member of that role
--    (directly or through other roles), and a session bound to two tenants sees neither.
--    app.tenant_id is honoured only for application roles: members of audit_api (which the
--    schema owner and superusers are), the role a service that authenticates tenants itself
--    (the read API) logs in as. Any other reader sees nothing.
-- 2. The policies call current_tenant_id() once per statement ((SELECT ...), an InitPlan), not
--    once per row.
-- 3. The ingest role may insert only the eleven columns its COPY writes: ingest_xid and
--    ingested_at always come from the writing transaction, so no one holding the ingest
--    credential can plant a row before every feed cursor or with a forged ingest time.
-- 4. Counts appended to tenant_metrics_delta cannot be negative.
-- 5. ensure_month_partitions() refuses months no event can have: before 2000-01 (the decoder's
--    earliest timestamp) or 26 months or more after this one (the most premade, 24 months, plus
--    the largest future skew, a year). A compromised ingest credential cannot create year 1 or
--    2999.

DO $$
BEGIN
    BEGIN
        IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'audit_api') THEN
            CREATE ROLE audit_api NOLOGIN;
        END IF;
    EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
    END;
END
$$;
GRANT audit_reader TO audit_api;
-- The read API looks tokens up and signs cursors before it becomes audit_reader for a request.
GRANT SELECT ON tenant_api_token, read_cursor_key TO audit_api;
DO $$
BEGIN
    -- The schema owner is an application role (the CLI's `events` commands, a read API served as
    -- the owner). Superusers are members of every role already.
    IF NOT (SELECT rolsuper FROM pg_roles WHERE rolname = current_user)
       AND NOT pg_has_role(current_user, 'audit_api', 'MEMBER') THEN
        EXECUTE format('GRANT audit_api TO %I', current_user);
    END IF;
END
$$;

-- 1. Bindings by OID. role_name stays, as the name given (and shown); role_oid is what binds. An
-- INSERT naming only role_name still works: the trigger looks the role up, and refuses a name
-- that is no role (a binding that binds nothing would leave that login unbound).
ALTER TABLE tenant_login_role ADD COLUMN role_oid oid;
UPDATE tenant_login_role b SET role_oid = r.oid FROM pg_roles r WHERE r.rolname = b.role_name;
CREATE UNIQUE INDEX idx_tenant_login_role_oid ON tenant_login_role (role_oid);

CREATE FUNCTION tenant_login_role_resolve() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    IF NEW.role_oid IS NULL OR (TG_OP = 'UPDATE' AND NEW.role_name IS DISTINCT FROM OLD.role_name
                                AND NEW.role_oid IS NOT DISTINCT FROM OLD.role_oid) THEN
        NEW.role_oid := (SELECT oid FROM pg_roles WHERE rolname = NEW.role_name);
    END IF;
    IF NEW.role_oid IS NULL OR NOT EXISTS (SELECT FROM pg_roles WHERE oid = NEW.role_oid) THEN
        RAISE EXCEPTION 'no role %', NEW.role_name USING ERRCODE = 'undefined_object',
            HINT = 'create the login role first (CREATE ROLE ... LOGIN IN ROLE audit_reader), then bind it';
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER tenant_login_role_resolve BEFORE INSERT OR UPDATE ON tenant_login_role
    FOR EACH ROW EXECUTE FUNCTION tenant_login_role_resolve();

-- Every role session_user is a member of (itself included, through any chain of grants), their
-- bindings, and the answer: the one bound tenant; NULL when bound to more than one; else
-- app.tenant_id for an application role; else NULL (no rows).
CREATE OR REPLACE FUNCTION current_tenant_id() RETURNS uuid
    LANGUAGE sql STABLE SECURITY DEFINER
    AS $$
    WITH RECURSIVE member_of(oid) AS (
        SELECT oid FROM pg_roles WHERE rolname = session_user
        UNION
        SELECT m.roleid FROM pg_auth_members m JOIN member_of ON m.member = member_of.oid
    ), bound AS (
        SELECT DISTINCT b.tenant_id FROM tenant_login_role b JOIN member_of ON b.role_oid = member_of.oid
    )
    SELECT CASE
        WHEN (SELECT count(*) FROM bound) = 1 THEN (SELECT tenant_id FROM bound)
        WHEN (SELECT count(*) FROM bound) > 1 THEN NULL
        WHEN pg_has_role(session_user, 'audit_api', 'MEMBER') THEN NULLIF(current_setting('app.tenant_id', true), '')::uuid
        ELSE NULL
    END
    $$;
DO $$
BEGIN
    EXECUTE format('ALTER FUNCTION current_tenant_id() SET search_path = %I, pg_temp', current_schema());
    EXECUTE format('ALTER FUNCTION tenant_login_role_resolve() SET search_path = %I, pg_temp', current_schema());
END
$$;

-- 2. Once per statement.
ALTER POLICY tenant_isolation ON tenant               USING (id = (SELECT current_tenant_id()));
ALTER POLICY tenant_isolation ON "user"               USING (tenant_id = (SELECT current_tenant_id()));
ALTER POLICY tenant_isolation ON item                 USING (tenant_id = (SELECT current_tenant_id()));
ALTER POLICY tenant_isolation ON audit_log            USING (tenant_id = (SELECT current_tenant_id()));
ALTER POLICY tenant_isolation ON tenant_metrics       USING (tenant_id = (SELECT current_tenant_id()));
ALTER POLICY tenant_isolation ON tenant_metrics_delta USING (tenant_id = (SELECT current_tenant_id()));

-- 3. The COPY's columns only.
REVOKE INSERT ON audit_log FROM audit_ingest;
GRANT INSERT (id, tenant_id, user_id, action, resource_type, resource_id, severity, "timestamp", ip_address, user_agent,
              custom_metadata) ON audit_log TO audit_ingest;

-- 4. Counts only add.
ALTER TABLE tenant_metrics_delta ADD CONSTRAINT tenant_metrics_delta_count_not_negative CHECK (audit_log_count >= 0);

-- 5. 0007's ensure_month_partitions, with the window first.
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
    aside     text;
BEGIN
    IF first_day < date '2000-01-01' OR first_day > latest THEN
        RAISE EXCEPTION 'no partition for %: months run from 2000-01 to %', to_char(first_day, 'YYYY-MM'), to_char(latest, 'YYYY-MM')
            USING ERRCODE = 'datetime_field_overflow',
                  HINT = 'an event this old or this far ahead is refused by the decoder; check where the month came from';
    END IF;
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
DO $$
BEGIN
    EXECUTE format('ALTER FUNCTION ensure_month_partitions(date) SET search_path = %I, pg_temp', current_schema());
END
$$;

-- 6. The feed's horizon, held back only by writers (docs/read-api.md). The feed
-- used to stop at the oldest transaction running anywhere on the server
-- (pg_snapshot_xmin(pg_current_snapshot())), so any login, a tenant analyst included, could
-- freeze every tenant's feed with `BEGIN; SELECT pg_current_xact_id(); SELECT pg_sleep(1e6)`.
-- Now a transaction that writes audit_log first takes ROW EXCLUSIVE on feed_writer, before it
-- has a transaction id (the flush's first statement; see feed_horizon()). Only audit_ingest and
-- the owner may: LOCK TABLE in that mode needs INSERT on the table, and nobody else has it.
CREATE TABLE feed_writer (never_written boolean PRIMARY KEY CHECK (false));
REVOKE ALL ON feed_writer FROM PUBLIC;
GRANT INSERT ON feed_writer TO audit_ingest;

-- Below the returned id every audit_log row is final: its transaction has ended. It is the
-- oldest transaction still running that may write audit_log, else the next id to be assigned.
-- A running transaction is known not to write when its session does not hold feed_writer's lock
-- (a writer takes it before its id exists, and keeps it to its end); every other running
-- transaction (its session's locks not yet visible, a prepared transaction) counts as a writer.
-- Read in one statement, before the rows in the next, so every transaction below it that ended
-- is visible there. Readers may read pg_locks; no privilege is needed.
CREATE FUNCTION feed_horizon() RETURNS xid8
    LANGUAGE sql STABLE
    AS $$
    WITH snapshot AS (SELECT pg_current_snapshot() AS s),
    writers AS (
        SELECT pid FROM pg_locks
        WHERE locktype = 'relation' AND relation = 'feed_writer'::regclass AND granted
          AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
    ),
    not_writing AS (
        SELECT transactionid FROM pg_locks
        WHERE locktype = 'transactionid' AND mode = 'ExclusiveLock' AND granted AND pid IS NOT NULL
          AND pid NOT IN (SELECT pid FROM writers)
    )
    SELECT coalesce((SELECT min(running) FROM pg_snapshot_xip(s) AS running
                     WHERE xid(running) NOT IN (SELECT transactionid FROM not_writing)),
                    pg_snapshot_xmax(s))
    FROM snapshot
    $$;
DO $$
BEGIN
    EXECUTE format('ALTER FUNCTION feed_horizon() SET search_path = %I, pg_temp', current_schema());
END
$$;
GRANT EXECUTE ON FUNCTION feed_horizon() TO audit_reader;

-- Every INSERT or COPY into audit_log takes the lock itself, so a single-statement write needs
-- nothing more. A transaction that wrote something else first (and so had an id before it
-- announced itself) is announced only from here on: until then the horizon may pass it. Writers
-- of several statements take the lock first, as the flush does. (Rows written straight into a
-- month partition bypass this trigger: write the parent.)
CREATE FUNCTION audit_log_feed_writer_check() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    AS $$
BEGIN
    LOCK TABLE feed_writer IN ROW EXCLUSIVE MODE;
    RETURN NULL;
END
$$;
DO $$
BEGIN
    EXECUTE format('ALTER FUNCTION audit_log_feed_writer_check() SET search_path = %I, pg_temp', current_schema());
END
$$;
REVOKE EXECUTE ON FUNCTION audit_log_feed_writer_check() FROM PUBLIC;
CREATE TRIGGER audit_log_feed_writer BEFORE INSERT ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_feed_writer_check();
