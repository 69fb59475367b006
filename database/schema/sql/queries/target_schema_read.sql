-- The snapshot target $1 was last diffed against, if any.
SELECT event_id, snapshot::text FROM teleport.target_schema WHERE target = $1
