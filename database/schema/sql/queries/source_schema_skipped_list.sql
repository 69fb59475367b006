-- Every object of some source's schema this target left out, by source and object.
SELECT source, object, reason, first_seen, last_seen
FROM teleport.source_schema_skipped
ORDER BY source, object
