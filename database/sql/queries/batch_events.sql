-- The events of one batch, in id order: the same filter as batch_count_events.
SELECT e.id, e.schema_name, e.table_name, e.op, e.nrows, e.data
FROM teleport.target g, teleport.tick f, teleport.tick t, teleport.event e
WHERE g.name = $1 AND f.id = $2 AND t.id = $3
  AND e.xid >= pg_catalog.pg_snapshot_xmin(f.snapshot)
  AND e.xid < pg_catalog.pg_snapshot_xmax(t.snapshot)
  AND pg_catalog.pg_visible_in_snapshot(e.xid, t.snapshot)
  AND NOT pg_catalog.pg_visible_in_snapshot(e.xid, f.snapshot)
  AND e.origin IS DISTINCT FROM g.name
  AND e.schema_name ~ g.schema_regex AND e.table_name ~ g.table_regex
ORDER BY e.id
