-- Table ($2, $3) of source $1's load after one of its $5 chunks of run $4
-- was copied: done, with the chunks' snapshot and totals, once all $5 are,
-- and the chunks of earlier runs forgotten then; not done until then.
-- Returns the run's chunks copied and how many snapshots they were read in
-- (one: the run's).
WITH run AS (
    SELECT count(*) AS chunks, count(DISTINCT snapshot::text) AS snapshots,
           min(snapshot::text) AS snapshot, sum(nrows) AS nrows, sum(nbytes) AS nbytes
    FROM teleport.load_chunk
    WHERE source = $1 AND schema_name = $2 AND table_name = $3 AND run = $4 AND chunks = $5
), done AS (
    UPDATE teleport.load_table t
    SET snapshot = CASE WHEN r.chunks = $5 THEN r.snapshot::pg_snapshot END,
        nrows = CASE WHEN r.chunks = $5 THEN r.nrows END,
        nbytes = CASE WHEN r.chunks = $5 THEN r.nbytes END,
        done_at = CASE WHEN r.chunks = $5 THEN pg_catalog.now() END
    FROM run r
    WHERE t.source = $1 AND t.schema_name = $2 AND t.table_name = $3
), forgotten AS (
    DELETE FROM teleport.load_chunk c
    WHERE (SELECT chunks FROM run) = $5 AND c.source = $1 AND c.schema_name = $2 AND c.table_name = $3
      AND (c.run <> $4 OR c.chunks <> $5)
)
SELECT chunks, snapshots FROM run
