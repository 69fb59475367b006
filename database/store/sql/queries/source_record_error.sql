-- Records why batch $2 is held. error_at keeps the time the batch was first
-- held with this error.
UPDATE teleport.source
SET error_at = CASE WHEN error IS DISTINCT FROM $3 OR error_seq IS DISTINCT FROM $2
                    THEN pg_catalog.now() ELSE error_at END,
    error = $3,
    error_seq = $2
WHERE name = $1
