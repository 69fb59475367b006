-- Records that this target left out object $2 of source $1's schema for reason $3.
INSERT INTO teleport.source_schema_skipped (source, object, reason) VALUES ($1, $2, $3)
ON CONFLICT (source, object) DO UPDATE
SET reason = excluded.reason, last_seen = pg_catalog.now(),
    first_seen = CASE WHEN source_schema_skipped.reason = excluded.reason
                      THEN source_schema_skipped.first_seen ELSE pg_catalog.now() END
