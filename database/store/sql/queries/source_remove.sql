-- Removes source $1 and everything stored for it on this database: its
-- chunks, its schema changes applied ahead, its load, its row (and with it
-- the schema changes its batches could not bring here). Returns the chunks
-- deleted and the batches it had applied; no row when it was not known.
WITH chunks AS (DELETE FROM teleport.received_chunk WHERE source = $1 RETURNING 1),
     ahead AS (DELETE FROM teleport.ddl_applied_ahead WHERE source = $1),
     loads AS (DELETE FROM teleport.load WHERE source = $1),
     src AS (DELETE FROM teleport.source WHERE name = $1 RETURNING applied_seq)
SELECT (SELECT count(*) FROM chunks), src.applied_seq
FROM src
