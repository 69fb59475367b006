-- Forgets the targets not in $1: their batches, schema changes, cursor
-- and acknowledgements go with them.
WITH c AS (DELETE FROM teleport.cursor WHERE target <> ALL ($1::text[])),
     a AS (DELETE FROM teleport.ack WHERE target <> ALL ($1::text[])),
     d AS (DELETE FROM teleport.batch_ddl WHERE target <> ALL ($1::text[]))
DELETE FROM teleport.target WHERE name <> ALL ($1::text[]) RETURNING name
