-- The tables of the load of source $1 with where each stands, and for a
-- table copied in chunks, the chunks of its latest plan (that of the chunk
-- done last): how many the plan cut it into, how many are done, their rows
-- and bytes.
SELECT t.schema_name, t.table_name, t.est_rows, t.est_bytes, t.snapshot::text,
       coalesce(t.nrows, 0), coalesce(t.nbytes, 0), t.done_at, t.partitions::text, t.in_run,
       coalesce(c.chunks, 0), coalesce(c.done, 0), coalesce(c.nrows, 0), coalesce(c.nbytes, 0)
FROM teleport.load_table t
LEFT JOIN LATERAL (
    SELECT max(k.chunks)::int AS chunks, count(*)::int AS done, sum(k.nrows)::bigint AS nrows, sum(k.nbytes)::bigint AS nbytes
    FROM teleport.load_chunk k
    JOIN (SELECT l.chunks, l.snapshot::text AS snapshot FROM teleport.load_chunk l
          WHERE l.source = t.source AND l.schema_name = t.schema_name AND l.table_name = t.table_name
          ORDER BY l.done_at DESC LIMIT 1) latest ON latest.chunks = k.chunks AND latest.snapshot = k.snapshot::text
    WHERE k.source = t.source AND k.schema_name = t.schema_name AND k.table_name = t.table_name
) c ON true
WHERE t.source = $1
ORDER BY t.schema_name, t.table_name
