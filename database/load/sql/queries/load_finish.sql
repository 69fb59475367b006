-- Marks the load of source $1 finished; its foreign keys are back.
WITH fks AS (DELETE FROM teleport.load_fk WHERE source = $1)
UPDATE teleport.load SET finished_at = pg_catalog.now() WHERE source = $1
