-- Records that target $1's diff left out object $2 for reason $3.
INSERT INTO teleport.schema_skipped (target, object, reason) VALUES ($1, $2, $3)
ON CONFLICT (target, object) DO UPDATE
SET reason = excluded.reason, last_seen = pg_catalog.now(),
    first_seen = CASE WHEN schema_skipped.reason = excluded.reason THEN schema_skipped.first_seen ELSE pg_catalog.now() END
