-- This database's identity as a source.
SELECT id::text FROM teleport.instance
