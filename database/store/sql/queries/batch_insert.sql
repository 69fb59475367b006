INSERT INTO teleport.batch (target, seq, from_tick, to_tick, events, nrows, chunk_rows, tick_time, schema_regex, table_regex)
SELECT $1, $2, $3, $4, $5, $6, $7, $8, g.schema_regex, g.table_regex
FROM teleport.target g WHERE g.name = $1
