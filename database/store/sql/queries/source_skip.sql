-- Asks the applier to mark batch $2 applied without running it.
UPDATE teleport.source SET skip_seq = $2 WHERE name = $1 AND applied_seq < $2
