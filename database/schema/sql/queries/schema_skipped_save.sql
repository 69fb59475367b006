-- Replaces what target $1's diff leaves out with the objects $2 and their
-- reasons $3 (arrays of one length): an object no longer left out is
-- forgotten; one still left out for the same reason keeps its first_seen.
WITH gone AS (
    DELETE FROM teleport.schema_skipped
    WHERE target = $1 AND object <> ALL ($2::text[])
)
INSERT INTO teleport.schema_skipped (target, object, reason)
SELECT $1, u.object, u.reason FROM unnest($2::text[], $3::text[]) AS u(object, reason)
ON CONFLICT (target, object) DO UPDATE
SET reason = excluded.reason, last_seen = pg_catalog.now(),
    first_seen = CASE WHEN schema_skipped.reason = excluded.reason THEN schema_skipped.first_seen ELSE pg_catalog.now() END
