INSERT INTO teleport.ddl_applied_ahead (source, seq, k) VALUES ($1, $2, $3)
