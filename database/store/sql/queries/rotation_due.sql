-- The current rotation, and whether writes may move on from it: it began
-- at least $1 seconds ago and the slot after it, two rotations back, is
-- emptied (or was never used).
SELECT r.n,
       r.started_at <= pg_catalog.now() - $1 * interval '1 second'
       AND coalesce((SELECT p.emptied_at IS NOT NULL FROM teleport.rotation p WHERE p.n = r.n - 2), r.n < 2)
FROM teleport.rotation r
WHERE r.n = (SELECT s.last_value FROM teleport.slot_seq s)
