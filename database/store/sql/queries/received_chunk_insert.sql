-- Stores one received chunk, creating its source's row on first contact. A
-- chunk already stored, or one of a batch already applied (its chunks may be
-- vacuumed by now), is left alone: a resend changes nothing. The source row
-- is inserted only when it is not there: an INSERT that meets it waits for
-- the transaction applying that source, which updates the row, and storing
-- must not wait for applying.
WITH new_source AS (
    INSERT INTO teleport.source (name, instance)
    SELECT $1, $9::uuid WHERE NOT EXISTS (SELECT 1 FROM teleport.source WHERE name = $1)
    ON CONFLICT (name) DO NOTHING
)
INSERT INTO teleport.received_chunk (source, seq, chunk, last, events, nrows, tick_time, body,
                                     from_tick, to_tick, batch_events, checksum)
SELECT $1, $2, $3, $4, $5, $6, $7, $8, $10, $11, $12, $13
WHERE NOT EXISTS (SELECT 1 FROM teleport.source s WHERE s.name = $1 AND s.applied_seq >= $2)
ON CONFLICT (source, seq, chunk) DO NOTHING
