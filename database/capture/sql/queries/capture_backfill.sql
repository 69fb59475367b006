-- The rows a newly captured table already holds, as insert events chunked
-- like the capture triggers chunk them. The FROM names a placeholder for
-- the table's quoted name, put in by InstallCapture. Returns the rows.
WITH chunks AS (
    INSERT INTO teleport.event (relid, schema_name, table_name, op, origin, nrows, data)
    SELECT $1::oid, $2, $3, 'I', NULL, count(*), json_agg(j ORDER BY rn)
    FROM (SELECT row_to_json(r.*) AS j,
                 row_number() OVER w AS rn,
                 sum(pg_column_size(r.*)) OVER w AS size
          FROM teleport.backfill_source r
          WINDOW w AS (ROWS UNBOUNDED PRECEDING)) numbered
    GROUP BY (rn - 1) / 1000 + size / 4194304
    ORDER BY (rn - 1) / 1000 + size / 4194304
    RETURNING nrows
)
SELECT coalesce(sum(nrows), 0) FROM chunks
