SELECT b.seq, b.from_tick, b.to_tick, b.events, b.nrows, b.chunk_rows, b.tick_time
FROM teleport.batch b JOIN teleport.target_state g ON g.name = b.target
WHERE b.target = $1 AND b.seq > g.acked_seq
ORDER BY b.seq
LIMIT $2
