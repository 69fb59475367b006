-- Records the rotation teleport.slot_seq is at, if it is not yet (a
-- rotation cut short by a crash is recorded by the next pass).
INSERT INTO teleport.rotation (n)
SELECT s.last_value FROM teleport.slot_seq s
ON CONFLICT (n) DO NOTHING
