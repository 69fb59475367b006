-- The id of the snapshot event target $1 was last diffed against, if any.
SELECT event_id FROM teleport.target_schema WHERE target = $1
