-- One partial index for every minimum severity the read API can be asked for above INFO, in place
-- of the (tenant_id, severity) composite.
--
-- A search's severity filter is a minimum (`severity=WARNING` means WARNING, ERROR and CRITICAL)
-- and its order is time: the composite, ordered by severity, only served a minimum whose events
-- are rare, by reading all of them and sorting. The partial index is in the search's order, so a
-- page reads only its rows; DEBUG and INFO (about 80% of a trail) are not in it, and a minimum of
-- DEBUG or INFO reads the tenant's time order anyway. It keeps the seed's name: ERROR and CRITICAL
-- are still served from it, now with WARNING beside them. Measured in docs/benchmarks.md: the
-- server's CPU per row ingested falls by about a tenth; a rare minimum still reads only its events.
-- idx_audit_tenant_action stays: a rare action is served by it, and read in time order it is not.
--
-- Locking: the new index is built before the old ones are dropped. Building holds a SHARE lock on
-- each month of audit_log until the migration commits: searches go on, while ingest's flushes wait
-- (they give up after lock_timeout and retry, losing nothing). Dropping takes an ACCESS EXCLUSIVE
-- lock just before the commit. The build has no statement timeout (docs/operations.md, "Upgrade
-- notes").
SET LOCAL statement_timeout = 0;
CREATE INDEX idx_audit_elevated_severity ON audit_log (tenant_id, "timestamp")
    WHERE severity IN ('WARNING', 'ERROR', 'CRITICAL');
DROP INDEX idx_audit_high_severity;
DROP INDEX idx_audit_tenant_severity;
ALTER INDEX idx_audit_elevated_severity RENAME TO idx_audit_high_severity;
