-- Every target of this source: how far its batches are cut, stored and
-- applied, and its lag in seconds on this database's clock, the clock its
-- ticks were taken on. The counts read only the batches past acked_seq,
-- through the primary key. teleport.event is read only when every cut batch
-- is applied, from the last tick's xmin on, and only until the first event
-- the target takes: such an event is a change the target has not seen, at
-- most as old as the last tick.
SELECT g.name,
       g.next_seq - 1,
       g.acked_seq,
       g.applied_seq,
       coalesce((SELECT sum(b.events) FROM teleport.batch b
                 WHERE b.target = g.name AND b.seq > g.acked_seq), 0),
       t.created_at,
       greatest(0, extract(epoch FROM pg_catalog.now() - CASE
           WHEN g.applied_seq < g.next_seq - 1 THEN
               coalesce((SELECT b.tick_time FROM teleport.batch b
                         WHERE b.target = g.name AND b.seq = g.applied_seq + 1), t.created_at)
           WHEN EXISTS (SELECT 1 FROM teleport.event e
                        WHERE e.xid >= pg_catalog.pg_snapshot_xmin(t.snapshot)
                          AND NOT pg_catalog.pg_visible_in_snapshot(e.xid, t.snapshot)
                          AND e.origin IS DISTINCT FROM g.name
                          AND e.schema_name ~ g.schema_regex AND e.table_name ~ g.table_regex) THEN
               t.created_at
           ELSE pg_catalog.now()
       END))::float8
FROM teleport.target_state g
JOIN teleport.tick t ON t.id = g.last_tick
ORDER BY g.name
