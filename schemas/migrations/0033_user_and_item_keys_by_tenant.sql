-- "user" and item are keyed by (tenant_id, id), as audit_log and tenant_metrics already are, and an
-- item's owner is a user of the same tenant.
--
-- Why: every tenant-scoped table then has a key that leads with tenant_id, so each can be
-- distributed by tenant (a distributed table's unique constraints must contain its distribution
-- column, docs/scale-out.md), and an item can no longer name a user of another tenant as its owner.
-- Ids stay random UUIDs from gen_random_uuid(): unique in practice, now enforced within a tenant.
--
-- The owner's foreign key becomes (tenant_id, owner_id) -> "user" (tenant_id, id). Deleting a user
-- still sets only owner_id to null (PostgreSQL 15's column list): the item keeps its tenant.
--
-- Existing data: an item whose owner belongs to another tenant cannot keep that owner under the
-- new key. The migration stops before changing anything and names how many there are; the operator
-- decides (clear those owner_ids, or move the items) and runs `migrate` again.
--
-- Locking: ACCESS EXCLUSIVE on "user" and item until commit, while their key indexes are rebuilt
-- and the foreign key is checked. Both are small application tables that ingest never writes;
-- audit_log is not touched. A million users and a million items took 7.3 s here
-- (docs/operations.md).
SET LOCAL statement_timeout = 0;

DO $$
DECLARE
    crossing bigint;
BEGIN
    SELECT count(*) INTO crossing
      FROM item i JOIN "user" u ON u.id = i.owner_id
     WHERE u.tenant_id <> i.tenant_id;
    IF crossing > 0 THEN
        RAISE EXCEPTION '% item(s) have an owner in another tenant', crossing
            USING HINT = 'Find them with: SELECT i.id, i.tenant_id, u.tenant_id AS owner_tenant FROM item i JOIN "user" u ON u.id = i.owner_id WHERE u.tenant_id <> i.tenant_id; clear their owner_id or move them, then run migrate again.';
    END IF;
END
$$;

ALTER TABLE item DROP CONSTRAINT item_owner_id_fkey;
ALTER TABLE "user" DROP CONSTRAINT user_pkey;
ALTER TABLE "user" ADD CONSTRAINT user_pkey PRIMARY KEY (tenant_id, id);
ALTER TABLE item DROP CONSTRAINT item_pkey;
ALTER TABLE item ADD CONSTRAINT item_pkey PRIMARY KEY (tenant_id, id);
ALTER TABLE item ADD CONSTRAINT item_owner_fkey FOREIGN KEY (tenant_id, owner_id)
    REFERENCES "user" (tenant_id, id) ON DELETE SET NULL (owner_id);
