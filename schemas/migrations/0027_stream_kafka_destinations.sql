-- Kafka topic destinations (docs/streaming.md): `audit-ingest stream` produces each event as one
-- message to url kafka://HOST:PORT[,HOST:PORT...]/TOPIC, keyed by tenant id, and moves the
-- cursor once the brokers acknowledged the whole batch. The secret reference, if any, names
-- the librdkafka properties (SASL, TLS) the streamer reads. Operators' only: a tenant never
-- names brokers the streamer's host can reach.
--
-- Locking: ALTER TABLE stream_destination takes ACCESS EXCLUSIVE on that small table for the
-- catalog change and the check of its rows (a streamer's read of it waits for it).
ALTER TABLE stream_destination
    DROP CONSTRAINT stream_destination_kind_check,
    ADD CONSTRAINT stream_destination_kind_check CHECK (kind IN ('webhook', 'splunk_hec', 'file', 'kafka')),
    DROP CONSTRAINT stream_destination_url_check,
    ADD CONSTRAINT stream_destination_url_check CHECK (
        CASE kind WHEN 'file' THEN url ~ '^file:///.'
                  WHEN 'kafka' THEN url ~ '^kafka://[^/]+/[A-Za-z0-9._-]{1,249}$'
                  ELSE url ~ '^https?://' END),
    ADD CONSTRAINT stream_destination_kafka_by_operator CHECK (kind <> 'kafka' OR managed_by = 'operator');
