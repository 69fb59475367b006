-- Which schema changes of batch ($1, $2) were applied ahead of it.
SELECT k FROM teleport.ddl_applied_ahead WHERE source = $1 AND seq = $2
