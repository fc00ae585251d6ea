-- Event proofs and the published checkpoint (docs/tamper-evidence.md, "Proofs for tenants").
--
-- The read API builds a tenant's inclusion proof: the tenant's rows as audit_reader (row-level
-- security, as every read), then the batch record, its groups and ranges and the log as the
-- API's own role, audit_api, which gets read access to those tables here. audit_reader does not:
-- audit_batch_group names every tenant of a batch, which no tenant may list.
--
-- Locking: grants only.
GRANT SELECT ON audit_batch, audit_batch_group, audit_batch_range, audit_checkpoint, audit_log_origin, audit_signing_key
    TO audit_api;
