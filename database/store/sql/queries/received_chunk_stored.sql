-- The chunks of batch ($1, $2) stored, in order, with their checksums and
-- sizes, so a source can resume an interrupted batch where it stopped.
SELECT chunk, checksum, octet_length(body), received_at
FROM teleport.received_chunk
WHERE source = $1 AND seq = $2
ORDER BY chunk
