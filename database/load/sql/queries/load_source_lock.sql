-- Creates the source's row if it has none and locks it, as the applier does
-- (source_lock.sql), so beginning or finishing a load never interleaves with
-- a batch being applied.
WITH new_source AS (
    INSERT INTO teleport.source (name) VALUES ($1) ON CONFLICT (name) DO NOTHING
)
SELECT 1 FROM teleport.source WHERE name = $1 FOR UPDATE
