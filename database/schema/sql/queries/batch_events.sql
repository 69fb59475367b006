-- The events of batch ($1, $2), in id order: the filter of
-- batch_schema_points with the expression the batch was cut with.
SELECT e.id, e.xid::text::bigint, e.schema_name, e.table_name, e.op, e.nrows, e.data
FROM teleport.batch b, teleport.tick f, teleport.tick t, teleport.event e
WHERE b.target = $1 AND b.seq = $2 AND f.id = b.from_tick AND t.id = b.to_tick
  AND e.xid >= pg_catalog.pg_snapshot_xmin(f.snapshot)
  AND e.xid < pg_catalog.pg_snapshot_xmax(t.snapshot)
  AND pg_catalog.pg_visible_in_snapshot(e.xid, t.snapshot)
  AND NOT pg_catalog.pg_visible_in_snapshot(e.xid, f.snapshot)
  AND e.op <> 'S' AND e.origin IS DISTINCT FROM b.target
  AND e.schema_name ~ b.schema_regex AND e.table_name ~ b.table_regex
ORDER BY e.id
