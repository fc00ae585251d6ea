-- A dead letter per record of a delivery file (issue 30, item 1).
--
-- A CloudTrail delivery file is one message of many records, all at its position. A record that
-- could not be stored used to take the whole file with it, as one dead letter per position. Now
-- each record stands alone: those that fit are stored, and each that does not is a dead letter
-- of its own, told apart by its record number (1 for the first). 0 is a whole message (every
-- message of one event, and a delivery file that is not readable at all).
ALTER TABLE audit_dead_letter ADD COLUMN record integer NOT NULL DEFAULT 0 CHECK (record >= 0);
DO $$
DECLARE
    old_key name;
BEGIN
    SELECT conname INTO old_key FROM pg_constraint
    WHERE conrelid = 'audit_dead_letter'::regclass AND contype = 'u'
      AND conkey = ARRAY(SELECT attnum FROM pg_attribute
                         WHERE attrelid = 'audit_dead_letter'::regclass AND attname IN ('source', 'partition', 'offset')
                         ORDER BY array_position(ARRAY['source', 'partition', 'offset']::name[], attname));
    IF old_key IS NOT NULL THEN
        EXECUTE format('ALTER TABLE audit_dead_letter DROP CONSTRAINT %I', old_key);
    END IF;
END
$$;
ALTER TABLE audit_dead_letter ADD CONSTRAINT audit_dead_letter_position_record_key UNIQUE (source, "partition", "offset", record);
