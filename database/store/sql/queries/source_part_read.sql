-- How far batch $2 of source $1 has got when applied in parts (NULLs when
-- it is not, or another batch was).
SELECT CASE WHEN part_seq = $2 THEN part_ddl END,
       CASE WHEN part_seq = $2 THEN part_item END,
       CASE WHEN part_seq = $2 THEN part_deferred END
FROM teleport.source WHERE name = $1
