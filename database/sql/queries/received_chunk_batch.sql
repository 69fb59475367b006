-- One received batch, if it is complete: its last chunk and every chunk
-- before it are stored.
SELECT count(*), sum(events), sum(nrows)::bigint, max(tick_time)
FROM teleport.received_chunk
WHERE source = $1 AND seq = $2
HAVING bool_or(last) AND count(*) = max(chunk) + 1
