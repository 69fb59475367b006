-- Records that table ($2, $3) of source $1's load is copied, from snapshot $4.
UPDATE teleport.load_table
SET snapshot = $4::pg_snapshot, nrows = $5, nbytes = $6, done_at = pg_catalog.now()
WHERE source = $1 AND schema_name = $2 AND table_name = $3
