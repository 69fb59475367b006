-- A new target starts at tick $4: it receives changes from then on (the
-- initial load copies what was there before).
WITH g AS (
    INSERT INTO teleport.target (name, schema_regex, table_regex)
    VALUES ($1, $2, $3)
    ON CONFLICT (name) DO UPDATE SET schema_regex = excluded.schema_regex, table_regex = excluded.table_regex
)
INSERT INTO teleport.cursor (target, tick, next_seq)
SELECT $1, $4, 1
WHERE NOT EXISTS (SELECT 1 FROM teleport.cursor c WHERE c.target = $1)
