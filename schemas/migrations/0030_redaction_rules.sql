-- Redaction at write time (docs/redaction.md): rules, per tenant or for every tenant, that drop,
-- mask or replace by a keyed HMAC a field of each event before it is stored. The field is
-- ip_address, user_agent or custom_metadata.PATH (a dot path of keys). A tenant's rule wins
-- over a rule for every tenant (tenant_id NULL) on the same field.
--
-- An hmac rule records the id of the redaction key it was made under (key_id, the first 8
-- bytes of SHA-256 of the key, never the key): ingest refuses to run it under another key or
-- none, so every value of a field is hashed under one key, and `tenant redaction hash` finds it.
-- ingest reads the rules at start and again every 10 s (with the tenant list).
--
-- Locking: a new table; nothing else is touched.

CREATE TABLE redaction_rule (
    id         bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id  uuid        REFERENCES tenant (id) ON DELETE CASCADE,
    field      text        NOT NULL CHECK (field IN ('ip_address', 'user_agent') OR field ~ '^custom_metadata(\.[^.]+)+$'),
    action     text        NOT NULL CHECK (action IN ('drop', 'mask', 'hmac')),
    key_id     text        CHECK (key_id ~ '^[0-9a-f]{16}$'),
    created_at timestamptz NOT NULL DEFAULT now(),
    created_by text        NOT NULL DEFAULT current_user,
    CHECK ((action = 'hmac') = (key_id IS NOT NULL)),
    CHECK (NOT (field = 'ip_address' AND action = 'hmac'))
);
-- One rule per field for each tenant, and one for every tenant.
CREATE UNIQUE INDEX redaction_rule_field ON redaction_rule
    (coalesce(tenant_id, '00000000-0000-0000-0000-000000000000'::uuid), field);

GRANT SELECT ON redaction_rule TO audit_ingest;
