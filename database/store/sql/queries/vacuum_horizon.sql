-- The oldest tick some target still needs: the start of its oldest batch it
-- has not stored, or else its cursor. With no target, the newest tick.
SELECT t.id, pg_catalog.pg_snapshot_xmin(t.snapshot)::text
FROM teleport.tick t
WHERE t.id = coalesce(
    (SELECT min(coalesce((SELECT min(b.from_tick) FROM teleport.batch b
                          WHERE b.target = g.name AND b.seq > g.acked_seq), g.last_tick))
     FROM teleport.target_state g),
    (SELECT max(id) FROM teleport.tick))
