-- What follows a file source's first line (issue 30, item 4).
--
-- A file source is named by its first line. Editing that line therefore made the file a new
-- source, and every line after it became a duplicate dead letter, without the refusal any other
-- edit gets. Each run that reads a file from its start now records a fingerprint of its body:
-- the hash of the first line after the head (to find candidates) and the hash of the complete
-- lines that follow the head, up to the first line end at or past 4 KiB after it. A file whose
-- first line is new but whose body matches a stored source's is that source edited, and is
-- refused like any other edit (backfill --if-changed new-source ingests it anyway). Bodies of
-- fewer than two lines are not recorded: too little to tell an edit from a lookalike.
CREATE TABLE source_body (
    source           text   PRIMARY KEY,
    second_line_hash bigint NOT NULL,
    body_length      bigint NOT NULL CHECK (body_length > 0),
    body_hash        bigint NOT NULL
);
CREATE INDEX source_body_second_line ON source_body (second_line_hash);
REVOKE ALL ON source_body FROM PUBLIC;
GRANT SELECT, INSERT ON source_body TO audit_ingest;
