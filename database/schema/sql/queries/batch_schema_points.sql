-- What the batcher cuts target $1's batch of the ticks ($2, $3] from, in
-- one scan of its events: every snapshot event after event $4, and for row
-- events, each distinct table (oid and name) and set of column names with
-- the first event that shows it and how many events and rows show it.
-- Ordered by that first event. The events are read in a lateral subquery
-- kept apart (OFFSET 0), so the xid index serves the scan from the ticks'
-- bounds whatever the statistics (see batch_events.sql).
WITH ev AS (
    SELECT e.id, e.op, e.relid, e.schema_name, e.table_name, e.nrows, e.data
    FROM teleport.target g
    JOIN teleport.tick f ON f.id = $2
    JOIN teleport.tick t ON t.id = $3
    CROSS JOIN LATERAL (
        SELECT e.id, e.op, e.relid, e.schema_name, e.table_name, e.nrows, e.data
        FROM teleport.event e
        WHERE e.xid >= pg_catalog.pg_snapshot_xmin(f.snapshot)
          AND e.xid < pg_catalog.pg_snapshot_xmax(t.snapshot)
          AND pg_catalog.pg_visible_in_snapshot(e.xid, t.snapshot)
          AND NOT pg_catalog.pg_visible_in_snapshot(e.xid, f.snapshot)
          AND (e.op = 'S' AND e.id > $4
               OR e.op <> 'S' AND e.origin IS DISTINCT FROM g.name
                  AND e.schema_name ~ g.schema_regex AND e.table_name ~ g.table_regex)
        OFFSET 0
    ) e
    WHERE g.name = $1
)
SELECT id, op = 'S', relid, schema_name, table_name, keys, data, events, nrows
FROM (
    SELECT id, op, relid, schema_name, table_name, NULL::text[] AS keys, data::text AS data,
           0::bigint AS events, 0::bigint AS nrows
    FROM ev WHERE op = 'S'
    UNION ALL
    SELECT min(id), 'R', relid, schema_name, table_name, keys, NULL, count(*), sum(nrows)
    FROM (SELECT id, relid, schema_name, table_name, nrows,
                 CASE op WHEN 'T' THEN NULL
                         ELSE ARRAY(SELECT pg_catalog.json_object_keys(
                                  CASE op WHEN 'U' THEN data -> 0 -> 1 ELSE data -> 0 END)) END AS keys
          FROM ev WHERE op <> 'S') r
    GROUP BY relid, schema_name, table_name, keys
) p
ORDER BY id
