-- How far one target's batches have been cut, acknowledged and applied.
SELECT name, last_tick, next_seq, acked_seq, applied_seq FROM teleport.target_state WHERE name = $1
