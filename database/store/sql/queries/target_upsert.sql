-- A new target starts at the newest tick: it receives changes from now on
-- (the initial load copies what was there before).
INSERT INTO teleport.target (name, schema_regex, table_regex, last_tick)
VALUES ($1, $2, $3, $4)
ON CONFLICT (name) DO UPDATE SET schema_regex = excluded.schema_regex, table_regex = excluded.table_regex
