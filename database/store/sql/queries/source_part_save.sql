-- Records where the next part of batch $2 of source $1 starts: the batch
-- goes on, so an error it was held by is cleared.
UPDATE teleport.source
SET part_seq = $2, part_ddl = $3, part_item = $4, part_deferred = $5,
    error = NULL, error_seq = NULL, error_at = NULL
WHERE name = $1 AND applied_seq = $2 - 1
