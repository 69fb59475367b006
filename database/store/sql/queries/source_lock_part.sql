-- Locks source $1's row for the apply transaction, as source_lock.sql, and
-- reads where it stands and how far batch $2 has got when applied in parts
-- (NULLs when it is not, or another batch was).
SELECT applied_seq,
       CASE WHEN part_seq = $2 THEN part_ddl END,
       CASE WHEN part_seq = $2 THEN part_item END,
       CASE WHEN part_seq = $2 THEN part_deferred END
FROM teleport.source WHERE name = $1
FOR UPDATE
