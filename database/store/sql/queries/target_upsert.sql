-- A new target starts at tick $4: it receives changes from then on (the
-- initial load copies what was there before). A target whose expression
-- changed forgets the schema it was sent, which was diffed within the old
-- expression: its next batch sends it every object of the new one,
-- adoptable, so tables it now takes are created before their rows.
WITH old AS (
    SELECT schema_regex, table_regex FROM teleport.target WHERE name = $1
), g AS (
    INSERT INTO teleport.target (name, schema_regex, table_regex)
    VALUES ($1, $2, $3)
    ON CONFLICT (name) DO UPDATE SET schema_regex = excluded.schema_regex, table_regex = excluded.table_regex
), forget AS (
    DELETE FROM teleport.target_schema s
    WHERE s.target = $1 AND EXISTS (SELECT 1 FROM old WHERE (old.schema_regex, old.table_regex) IS DISTINCT FROM ($2, $3))
)
INSERT INTO teleport.cursor (target, tick, next_seq)
SELECT $1, $4, 1
WHERE NOT EXISTS (SELECT 1 FROM teleport.cursor c WHERE c.target = $1)
