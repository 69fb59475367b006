-- Records batch $2 as applied, only if it is the one after applied_seq.
UPDATE teleport.source
SET applied_seq = $2,
    tick_time = $3,
    applied_at = pg_catalog.now(),
    error = NULL,
    error_seq = NULL,
    error_at = NULL,
    skip_seq = CASE WHEN skip_seq <= $2 THEN NULL ELSE skip_seq END,
    part_seq = NULL,
    part_ddl = NULL,
    part_item = NULL,
    part_deferred = NULL
WHERE name = $1 AND applied_seq = $2 - 1
