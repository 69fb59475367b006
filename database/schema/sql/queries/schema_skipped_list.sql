-- Every object left out of some target's schema, by target and object.
SELECT target, object, reason, first_seen, last_seen
FROM teleport.schema_skipped
ORDER BY target, object
