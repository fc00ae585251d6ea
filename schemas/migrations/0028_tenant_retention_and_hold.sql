-- Tenants' own rules (docs/retention.md): a retention per tenant, shorter than the global
-- month-level prune, and legal holds that keep a tenant's events from any removal.
--
-- `tenant retention apply` (and `partitions prune`, before it drops months) deletes a tenant's
-- rows older than its retention from months other tenants share. It removes whole sealed
-- groups only (one batch's rows of one tenant in one month), those whose newest event is past
-- the retention, and records each month's removal as an attested operation of kind
-- 'retention' (0021), in the transaction that deletes the rows, so `verify` accounts every
-- row that is gone and the next checkpoint signs the record into the log.
--
-- A hold (with an optional range of event times) keeps everything of its tenant in that range:
-- retention skips the groups it touches, and `partitions prune` keeps a month holding such
-- rows, and says so.
--
-- Locking: two new tables; ALTER TABLE audit_operation takes ACCESS EXCLUSIVE on that small
-- table for the catalog change and the check of its rows (a checkpoint's integrator waits).

CREATE TABLE tenant_retention (
    tenant_id  uuid        PRIMARY KEY REFERENCES tenant (id) ON DELETE CASCADE,
    days       integer     NOT NULL CHECK (days BETWEEN 1 AND 36500),
    updated_at timestamptz NOT NULL DEFAULT now(),
    updated_by text        NOT NULL DEFAULT current_user
);

CREATE TABLE tenant_legal_hold (
    id           bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id    uuid        NOT NULL REFERENCES tenant (id),
    reason       text        NOT NULL CHECK (length(reason) BETWEEN 1 AND 500),
    -- Event times held: [events_from, events_until); either end open when NULL.
    events_from  timestamptz,
    events_until timestamptz,
    placed_at    timestamptz NOT NULL DEFAULT now(),
    placed_by    text        NOT NULL DEFAULT current_user,
    released_at  timestamptz,
    released_by  text,
    CHECK (events_from IS NULL OR events_until IS NULL OR events_from < events_until),
    CHECK ((released_at IS NULL) = (released_by IS NULL))
);
CREATE INDEX tenant_legal_hold_active ON tenant_legal_hold (tenant_id) WHERE released_at IS NULL;

ALTER TABLE audit_operation
    DROP CONSTRAINT audit_operation_kind_check,
    ADD CONSTRAINT audit_operation_kind_check CHECK (kind IN ('prune', 'retention'));
