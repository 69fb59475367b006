-- SET LOCAL teleport.origin = $1: capture triggers on this database record
-- the origin, so the change is not sent back to the source it came from.
SELECT pg_catalog.set_config('teleport.origin', $1, true)
