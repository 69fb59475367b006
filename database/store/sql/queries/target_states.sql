SELECT name, last_tick, next_seq, acked_seq, applied_seq FROM teleport.target_state ORDER BY name
