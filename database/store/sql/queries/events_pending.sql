-- Whether a batcher pass may have something to cut: a target whose last
-- tick is gone, or a committed event its last tick does not hold, which
-- is one of a transaction that was running at the tick (in its xip list)
-- or began after it (at or past its xmax). Each is a look of a few entries
-- into the xid index: the events written since the tick's xmin, however
-- many a long transaction lets pile up, are not read.
SELECT EXISTS (
    SELECT 1
    FROM teleport.target_state g
    LEFT JOIN teleport.tick t ON t.id = g.last_tick
    WHERE t.id IS NULL
       OR EXISTS (SELECT 1 FROM teleport.event e
                  WHERE e.xid >= pg_catalog.pg_snapshot_xmax(t.snapshot))
       OR EXISTS (SELECT 1 FROM teleport.event e
                  WHERE e.xid = ANY (ARRAY(SELECT pg_catalog.pg_snapshot_xip(t.snapshot)))))
