-- The log's tree, stored: one row per perfect subtree (docs/tamper-evidence.md, "Proofs for
-- tenants"), so that an inclusion or consistency proof reads O(log² n) nodes instead of every
-- leaf of the log.
--
-- Node (level, index) is the root of the leaves [index·2^level, (index+1)·2^level); level 0
-- holds the leaves. The integrator writes the nodes each append completes in its round's
-- transaction, and fills them for a log begun before this migration in its first round. They are
-- derived: a changed node gives a proof that does not verify against the signed root, never a
-- proof of something else.
--
-- Locking: a new table.
CREATE TABLE audit_log_node (
    level smallint NOT NULL CHECK (level BETWEEN 0 AND 62),
    index bigint   NOT NULL CHECK (index >= 0),
    hash  bytea    NOT NULL,
    PRIMARY KEY (level, index)
);

GRANT SELECT ON audit_log_node TO audit_api;
