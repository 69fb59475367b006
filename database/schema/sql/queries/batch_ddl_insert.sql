INSERT INTO teleport.batch_ddl (target, seq, pos, before_event, ddl) VALUES ($1, $2, $3, $4, $5::json)
