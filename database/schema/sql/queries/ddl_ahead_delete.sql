-- Forgets what was applied ahead of batch ($1, $2), once it is applied.
DELETE FROM teleport.ddl_applied_ahead WHERE source = $1 AND seq = $2
