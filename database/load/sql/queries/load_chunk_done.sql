-- Records chunk $4 of $5 of table ($2, $3) of source $1's load as copied by
-- run $6: the rows of key column $7 from $8 to before $9 (NULL: open), read
-- in snapshot $10, $11 rows and $12 bytes. It replaces what an earlier run
-- recorded of the chunk.
INSERT INTO teleport.load_chunk AS c
    (source, schema_name, table_name, chunk, chunks, run, key_column, lo, hi, snapshot, nrows, nbytes)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10::pg_snapshot, $11, $12)
ON CONFLICT (source, schema_name, table_name, chunk) DO UPDATE
SET chunks = $5, run = $6, key_column = $7, lo = $8, hi = $9, snapshot = $10::pg_snapshot,
    nrows = $11, nbytes = $12, done_at = pg_catalog.now()
