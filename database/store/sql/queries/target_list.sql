SELECT name, last_tick, next_seq, acked_seq, applied_seq FROM teleport.target ORDER BY name FOR UPDATE
