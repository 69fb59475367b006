-- Records snapshot $3 (of event $2) as what target $1 has been sent.
INSERT INTO teleport.target_schema (target, event_id, snapshot) VALUES ($1, $2, $3::json)
ON CONFLICT (target) DO UPDATE SET event_id = excluded.event_id, snapshot = excluded.snapshot
