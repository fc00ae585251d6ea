-- A destination's failing time survives a streamer's restart (docs/streaming.md): the first
-- failed delivery of a run of failures sets failing_since, a delivery that succeeds (or the
-- destination being marked failed) clears it, and `--fail-after` is counted from it. Before,
-- each streamer counted from its own first failure, so one restarted more often than its
-- fail-after never marked a destination failed.
--
-- Locking: ALTER TABLE stream_destination takes ACCESS EXCLUSIVE on that small table for the
-- catalog change only (a nullable column without a default: no rewrite).
ALTER TABLE stream_destination ADD COLUMN failing_since timestamptz;
GRANT UPDATE (failing_since) ON stream_destination TO audit_stream;
