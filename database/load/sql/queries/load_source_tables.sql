-- Every user table an initial load may copy (as capture_tables.sql: partitioned
-- parents, not their partitions), with its kind, the columns COPY reads
-- (generated ones are computed again on the target), the estimated rows and
-- on-disk size of its leaves, its partitions at every level, and the tables
-- it shares a foreign key with, and the column of its primary key when that
-- is one column of an integer type (a big table is copied in ranges of it;
-- '' when there is none). pg_partition_tree lists nothing for a table
-- that is not partitioned: such a table is its own leaf.
SELECT c.oid, n.nspname::text, c.relname::text, c.relkind::text,
       ARRAY(SELECT a.attname::text FROM pg_catalog.pg_attribute a
             WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = ''
             ORDER BY a.attnum),
       (SELECT coalesce(sum(greatest(k.reltuples, 0)), 0)::bigint FROM pg_catalog.pg_class k
        WHERE (k.oid = c.oid AND c.relkind = 'r')
           OR k.oid IN (SELECT p.relid FROM pg_catalog.pg_partition_tree(c.oid) p WHERE p.isleaf)),
       (SELECT coalesce(sum(pg_catalog.pg_table_size(k.oid)), 0)::bigint FROM pg_catalog.pg_class k
        WHERE (k.oid = c.oid AND c.relkind = 'r')
           OR k.oid IN (SELECT p.relid FROM pg_catalog.pg_partition_tree(c.oid) p WHERE p.isleaf)),
       (SELECT coalesce(pg_catalog.json_agg(pg_catalog.json_build_array(pn.nspname, pc.relname) ORDER BY pn.nspname, pc.relname), '[]')
        FROM pg_catalog.pg_partition_tree(c.oid) p
        JOIN pg_catalog.pg_class pc ON pc.oid = p.relid
        JOIN pg_catalog.pg_namespace pn ON pn.oid = pc.relnamespace
        WHERE p.relid <> c.oid)::text,
       ARRAY(SELECT f.confrelid::bigint FROM pg_catalog.pg_constraint f
             WHERE f.conrelid = c.oid AND f.contype = 'f'
             UNION
             SELECT f.conrelid::bigint FROM pg_catalog.pg_constraint f
             WHERE f.confrelid = c.oid AND f.contype = 'f'),
       coalesce((SELECT a.attname::text FROM pg_catalog.pg_index i
                 JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
                 WHERE i.indrelid = c.oid AND i.indisprimary AND i.indnkeyatts = 1
                   AND a.atttypid IN ('pg_catalog.int2'::pg_catalog.regtype, 'pg_catalog.int4'::pg_catalog.regtype, 'pg_catalog.int8'::pg_catalog.regtype)), '')
FROM pg_catalog.pg_class c
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition
  AND n.nspname NOT IN ('teleport', 'pg_catalog', 'information_schema')
  AND n.nspname !~ '^pg_(toast|temp_)'
ORDER BY n.nspname, c.relname
