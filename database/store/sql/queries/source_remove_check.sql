-- Locks source $1's row, as the applier does, and counts the foreign keys
-- an unfinished initial load from it dropped and has yet to put back.
SELECT (SELECT count(*) FROM teleport.load_fk f WHERE f.source = $1)
FROM teleport.source s WHERE s.name = $1
FOR UPDATE OF s
