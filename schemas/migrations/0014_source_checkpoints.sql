-- Prefix hashes of file sources at fixed points (issue 30, item 11).
--
-- A file source is named by its first line and verified by the hash of the bytes before its
-- stored position. With that alone, two ordinary cases looked like edits and were refused: two
-- different files that start with the same line (a start-up banner written at every rotation),
-- and an older snapshot of a growing file (an hourly upload) that is a prefix of what was stored.
-- Each run now records the hash of the file's bytes up to the first line end at or past 4 KiB,
-- 16 KiB, 64 KiB, ... (each four times the last). They are facts about the file's content, true
-- whatever was committed, so they are written outside the flushes, best effort. When the stored
-- prefix does not match, they tell the cases apart: differing before the first checkpoint is
-- another file (a new source); matching at every checkpoint it reaches and ending before the
-- stored position is a snapshot (already stored up to its end); anything else is an edit.
CREATE TABLE source_checkpoint (
    source      text   NOT NULL,
    "offset"    bigint NOT NULL CHECK ("offset" > 0),
    prefix_hash bigint NOT NULL,
    PRIMARY KEY (source, "offset")
);
REVOKE ALL ON source_checkpoint FROM PUBLIC;
GRANT SELECT, INSERT ON source_checkpoint TO audit_ingest;
