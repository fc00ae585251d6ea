-- Signed checkpoints: the sealed batches appended to one Merkle log, and signed notes of its
-- root that leave the database (docs/tamper-evidence.md, `audit-ingest checkpoint`).
--
-- The integrator (one at a time, under an advisory lock) gives each committed batch the next
-- log position, in the order it finds them, and signs a checkpoint (C2SP tlog-checkpoint in a
-- signed note, Ed25519) of the tree over the batches' log leaves. The rows here say what was
-- signed; the trust is in the copies held elsewhere (--checkpoint-dir) and in the public key.
--
-- Locking: audit_batch gains a nullable column (no rewrite) and two indexes on a table of one
-- row per flush.

-- NULL until the integrator appends the batch to the log.
ALTER TABLE audit_batch ADD COLUMN log_index bigint UNIQUE;
CREATE INDEX idx_batch_not_integrated ON audit_batch (id) WHERE log_index IS NULL;

-- The log's name, the checkpoints' first line: unique to this database.
CREATE TABLE audit_log_origin (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    origin    text    NOT NULL
);
INSERT INTO audit_log_origin (origin) VALUES ('audit-ingest/' || gen_random_uuid());

-- One row per tree size signed; an idle log's republished checkpoint replaces its row's note.
-- frontier: the roots of the tree's perfect subtrees, largest first, 32 bytes each, from which
-- the next checkpoint continues.
CREATE TABLE audit_checkpoint (
    tree_size bigint      PRIMARY KEY CHECK (tree_size >= 0),
    root      bytea       NOT NULL,
    frontier  bytea       NOT NULL,
    note      text        NOT NULL,
    signed_at timestamptz NOT NULL
);

-- Every key that signed a checkpoint, and when: the key history. verify trusts the keys it is
-- given, not these.
CREATE TABLE audit_signing_key (
    verifier_key text        PRIMARY KEY,
    first_signed timestamptz NOT NULL,
    last_signed  timestamptz NOT NULL
);
