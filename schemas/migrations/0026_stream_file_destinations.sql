-- NDJSON file destinations (docs/streaming.md): `audit-ingest stream` appends each delivered
-- batch to an open segment in a directory (url file:///DIR), fsyncs it before the cursor moves,
-- and renames the segment to a finished *.ndjson file once it holds rotate_bytes or is
-- rotate_seconds old: the files a SIEM agent or a bucket sync picks up. Operators' only: a
-- tenant never names a path on the streamer's host.
--
-- Locking: ALTER TABLE stream_destination takes ACCESS EXCLUSIVE on that small table for the
-- catalog change and the check of its rows (a streamer's read of it waits for it).
ALTER TABLE stream_destination
    DROP CONSTRAINT stream_destination_kind_check,
    ADD CONSTRAINT stream_destination_kind_check CHECK (kind IN ('webhook', 'splunk_hec', 'file')),
    DROP CONSTRAINT stream_destination_url_check,
    ADD CONSTRAINT stream_destination_url_check CHECK (url ~ '^https?://' OR (kind = 'file' AND url ~ '^file:///.')),
    ADD COLUMN rotate_bytes   bigint  CHECK (rotate_bytes BETWEEN 1024 AND 1099511627776),
    ADD COLUMN rotate_seconds integer CHECK (rotate_seconds BETWEEN 1 AND 86400),
    ADD CONSTRAINT stream_destination_file_settings
        CHECK ((kind = 'file') = (rotate_bytes IS NOT NULL AND rotate_seconds IS NOT NULL)),
    ADD CONSTRAINT stream_destination_file_by_operator CHECK (kind <> 'file' OR (managed_by = 'operator' AND secret_ref IS NULL));
