INSERT INTO teleport.tick (snapshot) VALUES ($1::text::pg_catalog.pg_snapshot)
RETURNING id, created_at
