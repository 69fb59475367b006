-- Events of the transactions visible in tick $3 and not in tick $2 that
-- target $1 takes. The xid bounds let the xid index serve the scan.
SELECT count(*), coalesce(sum(e.nrows), 0)
FROM teleport.target g, teleport.tick f, teleport.tick t, teleport.event e
WHERE g.name = $1 AND f.id = $2 AND t.id = $3
  AND e.xid >= pg_catalog.pg_snapshot_xmin(f.snapshot)
  AND e.xid < pg_catalog.pg_snapshot_xmax(t.snapshot)
  AND pg_catalog.pg_visible_in_snapshot(e.xid, t.snapshot)
  AND NOT pg_catalog.pg_visible_in_snapshot(e.xid, f.snapshot)
  AND e.op <> 'S' AND e.origin IS DISTINCT FROM g.name
  AND e.schema_name ~ g.schema_regex AND e.table_name ~ g.table_regex
