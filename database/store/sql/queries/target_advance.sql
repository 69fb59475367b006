-- Moves target $1's cursor to tick $2 and next sequence number $3: a row
-- added, the newest counting (see teleport.target_state).
INSERT INTO teleport.cursor (target, tick, next_seq) VALUES ($1, $2, $3)
