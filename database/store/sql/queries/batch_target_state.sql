-- How far one target's batches have been cut, acknowledged and applied.
SELECT name, last_tick, next_seq, acked_seq, applied_seq FROM teleport.target WHERE name = $1
