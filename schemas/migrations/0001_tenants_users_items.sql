-- Tenants and the tenant-scoped application tables (seed document, "Schema Design").
-- btree_gin lets a GIN index lead with tenant_id (trusted extension: a database owner may create it).
CREATE EXTENSION IF NOT EXISTS btree_gin;

CREATE TABLE tenant (
    id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name             varchar(255) NOT NULL CHECK (length(name) >= 1),
    code             varchar(50)  NOT NULL UNIQUE CHECK (length(code) >= 1),
    status           text         NOT NULL DEFAULT 'active'
                     CHECK (status IN ('active', 'suspended', 'inactive')),
    max_users        integer      NOT NULL DEFAULT 100,
    max_storage_gb   integer      NOT NULL DEFAULT 10,
    features_enabled jsonb        NOT NULL DEFAULT '{}'::jsonb,
    created_at       timestamptz  NOT NULL DEFAULT now(),
    updated_at       timestamptz  NOT NULL DEFAULT now()
);
CREATE INDEX idx_tenant_name ON tenant (name);
CREATE INDEX idx_tenant_status ON tenant (status);
CREATE INDEX idx_tenant_created_at ON tenant (created_at);

-- "user" is a reserved word: always quoted.
CREATE TABLE "user" (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id     uuid         NOT NULL REFERENCES tenant (id) ON DELETE CASCADE,
    email         varchar(255) NOT NULL,
    full_name     varchar(255),
    role          text         NOT NULL DEFAULT 'member',
    is_active     boolean      NOT NULL DEFAULT true,
    last_login_at timestamptz,
    created_at    timestamptz  NOT NULL DEFAULT now(),
    updated_at    timestamptz  NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, email)
);
CREATE INDEX idx_user_tenant_email_active ON "user" (tenant_id, email, is_active);
CREATE INDEX idx_user_tenant_role_active  ON "user" (tenant_id, role, is_active);
CREATE INDEX idx_user_tenant_last_login   ON "user" (tenant_id, last_login_at DESC);
CREATE INDEX idx_user_active_only         ON "user" (tenant_id, email) WHERE is_active = true;

CREATE TABLE item (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id   uuid         NOT NULL REFERENCES tenant (id) ON DELETE CASCADE,
    owner_id    uuid         REFERENCES "user" (id) ON DELETE SET NULL,
    title       varchar(255) NOT NULL,
    description text,
    created_at  timestamptz  NOT NULL DEFAULT now(),
    updated_at  timestamptz  NOT NULL DEFAULT now()
);
CREATE INDEX idx_item_tenant_created_desc  ON item (tenant_id, created_at DESC);
CREATE INDEX idx_item_tenant_owner_created ON item (tenant_id, owner_id, created_at DESC);
-- The seed's idx_item_title_tenant (title, tenant_id) reversed: every index leads with tenant_id
-- (DESIGN invariant 5), which serves the same title lookups within a tenant.
CREATE INDEX idx_item_tenant_title ON item (tenant_id, title);
-- Full-text search. The seed wrote "(tenant_id, title) USING gin(...)"; USING goes before the
-- column list, and a GIN index over (tenant_id, tsvector) needs btree_gin for the uuid column.
CREATE INDEX idx_item_tenant_title_search ON item
    USING gin (tenant_id, to_tsvector('english', title));
CREATE INDEX idx_item_description_search ON item
    USING gin (to_tsvector('english', coalesce(description, '')));
