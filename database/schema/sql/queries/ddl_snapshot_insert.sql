-- Writes snapshot $1 (JSON text) into the stream as an 'S' event, recording
-- it, with hash $2, as the last one written. Returns the event id.
WITH e AS (
    INSERT INTO teleport.event (relid, schema_name, table_name, op, origin, nrows, data)
    VALUES (0, '', '', 'S', NULL, 0, $1::json)
    RETURNING id
), s AS (
    INSERT INTO teleport.ddl_state (event_id, hash) SELECT id, $2 FROM e
    ON CONFLICT (id) DO UPDATE SET event_id = excluded.event_id, hash = excluded.hash
)
SELECT id FROM e
