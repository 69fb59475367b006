-- What chunk $3 of batch ($1, $2) must agree with: whether source $1 is
-- known, the instance its chunks come from (NULL before the first that
-- names one), and what is stored of the batch: the chunk itself, if one
-- with its number is, and chunk 0. One row at least, chunk columns NULL
-- when nothing is stored.
SELECT s.name IS NOT NULL, s.instance::text, c.chunk, c.last, c.events, c.nrows, c.tick_time,
       c.from_tick, c.to_tick, c.batch_events, c.checksum
FROM (SELECT 1) one
LEFT JOIN teleport.source s ON s.name = $1
LEFT JOIN teleport.received_chunk c ON c.source = $1 AND c.seq = $2 AND c.chunk IN ($3, 0)
