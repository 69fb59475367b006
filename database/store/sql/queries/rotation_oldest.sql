-- The oldest rotation whose slot is not emptied, if writes have moved on
-- from it.
SELECT r.n
FROM teleport.rotation r
WHERE r.emptied_at IS NULL AND r.n < (SELECT s.last_value FROM teleport.slot_seq s)
ORDER BY r.n
LIMIT 1
