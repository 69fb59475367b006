-- The load of source $1, locked: its run and whether it finished.
SELECT run, finished_at FROM teleport.load WHERE source = $1 FOR UPDATE
