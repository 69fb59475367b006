INSERT INTO teleport.batch (target, seq, from_tick, to_tick, events, nrows, chunk_rows, tick_time)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
