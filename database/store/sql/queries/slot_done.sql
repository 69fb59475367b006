-- Whether every target has stored the events of slot $1: the tick its
-- oldest batch not stored starts at (or its cursor, with none) leaves none
-- of them out. What else in the slot is still needed is carried out of it
-- before it is emptied (slot_carry.sql).
SELECT NOT EXISTS (
    SELECT 1
    FROM teleport.target_state g
    LEFT JOIN teleport.tick t ON t.id = coalesce(
        (SELECT min(b.from_tick) FROM teleport.batch b WHERE b.target = g.name AND b.seq > g.acked_seq),
        g.last_tick)
    WHERE t.id IS NULL
       OR EXISTS (SELECT 1 FROM teleport.event e
                  WHERE e.slot = $1::smallint
                    AND e.xid >= pg_catalog.pg_snapshot_xmin(t.snapshot)
                    AND NOT pg_catalog.pg_visible_in_snapshot(e.xid, t.snapshot)))
