-- What is stored of batch ($1, $2) that chunk $3 must agree with: the chunk
-- itself, if a chunk with its number is stored, and chunk 0's tick time.
SELECT c.chunk, c.last, c.events, c.nrows, c.tick_time
FROM teleport.received_chunk c
WHERE c.source = $1 AND c.seq = $2 AND c.chunk IN ($3, 0)
