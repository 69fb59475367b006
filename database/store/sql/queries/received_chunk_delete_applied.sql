-- Deletes up to $1 chunks of batches already applied.
DELETE FROM teleport.received_chunk
WHERE ctid = ANY (ARRAY(
    SELECT c.ctid
    FROM teleport.received_chunk c
    JOIN teleport.source s ON s.name = c.source
    WHERE c.seq <= s.applied_seq
    LIMIT $1))
