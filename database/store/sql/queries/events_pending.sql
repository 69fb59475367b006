-- Whether a batcher pass may have something to cut: a target whose last
-- tick is gone, or an event (committed or not) its last tick does not
-- hold. Through the xid index, from the tick's xmin: when nothing was
-- written since, it reads a few index entries.
SELECT EXISTS (
    SELECT 1
    FROM teleport.target_state g
    LEFT JOIN teleport.tick t ON t.id = g.last_tick
    WHERE t.id IS NULL
       OR EXISTS (SELECT 1 FROM teleport.event e
                  WHERE e.xid >= pg_catalog.pg_snapshot_xmin(t.snapshot)
                    AND NOT pg_catalog.pg_visible_in_snapshot(e.xid, t.snapshot)))
