-- One received batch, if it is complete: its last chunk and every chunk
-- before it are stored, they agree on the batch they belong to and add up
-- to its event count.
SELECT count(*), sum(events), sum(nrows)::bigint, max(tick_time)
FROM teleport.received_chunk
WHERE source = $1 AND seq = $2
HAVING bool_or(last) AND count(*) = max(chunk) + 1
       AND coalesce(sum(events) = max(batch_events), true)
       AND count(DISTINCT (from_tick, to_tick, batch_events)) FILTER (WHERE from_tick IS NOT NULL) <= 1
