-- The chunks done of the tables of source $1's load run that are not done.
SELECT c.schema_name, c.table_name, c.chunk, c.chunks, c.lo, c.hi, c.snapshot::text
FROM teleport.load_chunk c
JOIN teleport.load_table t USING (source, schema_name, table_name)
WHERE c.source = $1 AND t.in_run AND t.done_at IS NULL
ORDER BY c.schema_name, c.table_name, c.chunk
