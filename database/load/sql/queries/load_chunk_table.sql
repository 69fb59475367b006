-- Table ($2, $3) of source $1's load after one of its $5 chunks read in
-- snapshot $4 was copied: done, with that snapshot and the chunks' totals,
-- once all $5 are, and the chunks of other plans or snapshots forgotten
-- then; not done until then.
WITH plan AS (
    SELECT count(*) AS chunks, sum(nrows) AS nrows, sum(nbytes) AS nbytes
    FROM teleport.load_chunk
    WHERE source = $1 AND schema_name = $2 AND table_name = $3 AND snapshot::text = $4 AND chunks = $5
), done AS (
    UPDATE teleport.load_table t
    SET snapshot = CASE WHEN p.chunks = $5 THEN $4::pg_snapshot END,
        nrows = CASE WHEN p.chunks = $5 THEN p.nrows END,
        nbytes = CASE WHEN p.chunks = $5 THEN p.nbytes END,
        done_at = CASE WHEN p.chunks = $5 THEN pg_catalog.now() END
    FROM plan p
    WHERE t.source = $1 AND t.schema_name = $2 AND t.table_name = $3
)
DELETE FROM teleport.load_chunk c
WHERE (SELECT chunks FROM plan) = $5 AND c.source = $1 AND c.schema_name = $2 AND c.table_name = $3
  AND (c.snapshot::text <> $4 OR c.chunks <> $5)
