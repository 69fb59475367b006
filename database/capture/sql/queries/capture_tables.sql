-- Every user table, partitioned tables and their partitions included (a
-- statement on a partitioned table fires its own statement triggers only,
-- its transition tables holding the rows of every partition; a statement
-- addressed to a partition fires the partition's), with whether it is a
-- partition, whether the role owns it, which capture triggers it already
-- has, and the tables its foreign keys reference.
SELECT c.oid, n.nspname::text, c.relname::text, c.relispartition,
       pg_catalog.pg_has_role(c.relowner, 'USAGE'),
       coalesce(array_agg(t.tgname::text) FILTER (WHERE t.tgname IS NOT NULL), '{}'),
       ARRAY(SELECT DISTINCT f.confrelid::bigint FROM pg_catalog.pg_constraint f
             WHERE f.conrelid = c.oid AND f.contype = 'f' AND f.confrelid <> c.oid)
FROM pg_catalog.pg_class c
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_catalog.pg_trigger t ON t.tgrelid = c.oid AND t.tgname LIKE 'teleport\_capture\_%'
WHERE c.relkind IN ('r', 'p')
  AND n.nspname NOT IN ('teleport', 'pg_catalog', 'information_schema')
  AND n.nspname !~ '^pg_(toast|temp_)'
GROUP BY c.oid, n.nspname, c.relname, c.relispartition, c.relowner  -- all of them: PostgreSQL 13 has no primary key on pg_class
ORDER BY n.nspname, c.relname
