-- The chunks of batch ($1, $2) stored before chunk $3: how many, and their
-- events, so the last chunk can be checked against the batch's count.
SELECT count(*), coalesce(sum(events), 0)::bigint
FROM teleport.received_chunk
WHERE source = $1 AND seq = $2 AND chunk < $3
