-- The events of batch ($1, $2), in id order: the filter of
-- batch_schema_points with the expression the batch was cut with. The
-- events are read in a lateral subquery kept apart (OFFSET 0), so they are
-- always found through the xid index from the batch's bounds: joined
-- freely, a planner without statistics on a fresh event table (no
-- autovacuum has analysed it yet) scanned the whole table for every batch.
SELECT e.id, e.xid::text::bigint, e.schema_name, e.table_name, e.op, e.nrows, e.data
FROM teleport.batch b
JOIN teleport.tick f ON f.id = b.from_tick
JOIN teleport.tick t ON t.id = b.to_tick
CROSS JOIN LATERAL (
    SELECT e.id, e.xid, e.schema_name, e.table_name, e.op, e.nrows, e.data
    FROM teleport.event e
    WHERE e.xid >= pg_catalog.pg_snapshot_xmin(f.snapshot)
      AND e.xid < pg_catalog.pg_snapshot_xmax(t.snapshot)
      AND pg_catalog.pg_visible_in_snapshot(e.xid, t.snapshot)
      AND NOT pg_catalog.pg_visible_in_snapshot(e.xid, f.snapshot)
      AND e.op <> 'S' AND e.origin IS DISTINCT FROM b.target
      AND e.schema_name ~ b.schema_regex AND e.table_name ~ b.table_regex
    OFFSET 0
) e
WHERE b.target = $1 AND b.seq = $2
ORDER BY e.id
