-- Reading the audit log (issue 10): the commit-ordered feed, ingest time, tenant tokens and the
-- key that signs read cursors.

-- The transaction that wrote each row. The feed returns rows in (ingest_xid, id, "timestamp")
-- order and only those whose transaction is below the oldest one still running
-- (pg_snapshot_xmin(pg_current_snapshot())): no transaction that could still commit can ever add
-- a row before what a poller has seen, whatever the events' own timestamps. pg_current_xact_id()
-- is the top-level transaction's id (also inside a savepoint) and is STABLE, so this ADD COLUMN
-- stores it once as the "missing value" of every existing row (no rewrite): rows stored before
-- this migration all carry the migration's transaction id. The ingest's COPY names its eleven
-- columns, so new rows take the default.
ALTER TABLE audit_log ADD COLUMN ingest_xid xid8 NOT NULL DEFAULT pg_current_xact_id();
CREATE INDEX idx_audit_tenant_feed ON audit_log (tenant_id, ingest_xid, id, "timestamp");

-- When the row was stored (the start of the writing transaction). NULL for rows stored before
-- this migration: their ingest time is not known.
ALTER TABLE audit_log ADD COLUMN ingested_at timestamptz;
ALTER TABLE audit_log ALTER COLUMN ingested_at SET DEFAULT now();

-- Per-tenant bearer tokens for the read API. Only the SHA-256 of a token is stored; the token
-- itself is shown once, by `tenant token create`. Readers and the ingest role have no right here:
-- the API looks tokens up as the role it connects with, before it becomes audit_reader.
CREATE TABLE tenant_api_token (
    id          uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id   uuid        NOT NULL REFERENCES tenant (id) ON DELETE CASCADE,
    name        text        NOT NULL DEFAULT '',
    token_hash  text        NOT NULL UNIQUE CHECK (token_hash ~ '^[0-9a-f]{64}$'),
    created_at  timestamptz NOT NULL DEFAULT now(),
    revoked_at  timestamptz
);
CREATE INDEX idx_tenant_api_token_tenant ON tenant_api_token (tenant_id);

-- The HMAC key of read cursors (search pages, feed positions), so a cursor cannot be forged or
-- moved to another tenant, and stays valid across restarts and between API processes. 244 bits
-- from gen_random_uuid() (pg_strong_random). One row.
CREATE TABLE read_cursor_key (
    only_row boolean PRIMARY KEY DEFAULT true CHECK (only_row),
    secret   text    NOT NULL
);
INSERT INTO read_cursor_key (secret) VALUES (gen_random_uuid()::text || gen_random_uuid()::text);

-- The API takes on audit_reader for each request (SET LOCAL ROLE): the role that runs migrate
-- (the schema owner the API connects as) must be a member. Superusers need no grant.
DO $$
BEGIN
    IF NOT (SELECT rolsuper FROM pg_roles WHERE rolname = current_user)
       AND NOT pg_has_role(current_user, 'audit_reader', 'MEMBER') THEN
        EXECUTE format('GRANT audit_reader TO %I', current_user);
    END IF;
END
$$;
