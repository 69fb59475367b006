-- The schema changes of batch ($1, $2), in order.
SELECT before_event, ddl::text FROM teleport.batch_ddl WHERE target = $1 AND seq = $2 ORDER BY pos
