-- The tables a target with schema regex $1 and table regex $2 takes, as
-- capture_tables.sql finds them (partitioned parents, not their
-- partitions): the columns to compare (every column but generated ones,
-- which the target computes again), the primary key's columns in key
-- order, the estimated rows of its leaves and the size of their data (a
-- table that is not partitioned is its own leaf: pg_partition_tree lists
-- nothing for it).
SELECT n.nspname::text, c.relname::text, c.relkind = 'p',
       ARRAY(SELECT a.attname::text FROM pg_catalog.pg_attribute a
             WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = ''
             ORDER BY a.attnum),
       ARRAY(SELECT a.attname::text
             FROM pg_catalog.pg_index i
             CROSS JOIN LATERAL pg_catalog.unnest(i.indkey) WITH ORDINALITY k(attnum, ord)
             JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.attnum
             WHERE i.indrelid = c.oid AND i.indisprimary
             ORDER BY k.ord),
       (SELECT coalesce(sum(greatest(l.reltuples, 0)), 0)::bigint FROM pg_catalog.pg_class l
        WHERE (l.oid = c.oid AND c.relkind = 'r')
           OR l.oid IN (SELECT p.relid FROM pg_catalog.pg_partition_tree(c.oid) p WHERE p.isleaf)),
       (SELECT coalesce(sum(pg_catalog.pg_relation_size(l.oid)), 0)::bigint FROM pg_catalog.pg_class l
        WHERE (l.oid = c.oid AND c.relkind = 'r')
           OR l.oid IN (SELECT p.relid FROM pg_catalog.pg_partition_tree(c.oid) p WHERE p.isleaf))
FROM pg_catalog.pg_class c
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition
  AND n.nspname NOT IN ('teleport', 'pg_catalog', 'information_schema')
  AND n.nspname !~ '^pg_(toast|temp_)'
  AND n.nspname ~ $1 AND c.relname ~ $2
ORDER BY n.nspname, c.relname
