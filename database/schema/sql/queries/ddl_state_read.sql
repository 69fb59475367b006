-- The last snapshot written to the stream: its event and hash.
SELECT event_id, hash FROM teleport.ddl_state
