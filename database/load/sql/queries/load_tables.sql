-- The tables of the load of source $1 with where each stands.
SELECT schema_name, table_name, est_rows, est_bytes, snapshot::text,
       coalesce(nrows, 0), coalesce(nbytes, 0), done_at, partitions::text, in_run
FROM teleport.load_table
WHERE source = $1
ORDER BY schema_name, table_name
