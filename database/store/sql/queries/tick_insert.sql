INSERT INTO teleport.tick (snapshot) VALUES (pg_catalog.pg_current_snapshot())
RETURNING id, created_at
