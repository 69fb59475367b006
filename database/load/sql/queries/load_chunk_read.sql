-- The rows and bytes of chunk $4 of $5 of table ($2, $3) of source $1's
-- load, if it is done with the keys from $6 to before $7 (NULL: open) in
-- snapshot $8; no row otherwise.
SELECT nrows, nbytes
FROM teleport.load_chunk
WHERE source = $1 AND schema_name = $2 AND table_name = $3 AND chunk = $4 AND chunks = $5
  AND lo IS NOT DISTINCT FROM $6::bigint AND hi IS NOT DISTINCT FROM $7::bigint AND snapshot::text = $8
