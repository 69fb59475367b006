-- The columns of table $1 (a quoted, qualified name) in attnum order,
-- whether a foreign key of the table has an ON DELETE or ON UPDATE action,
-- and whether the table or one of its partitions has a trigger of its own
-- (not a foreign key's) that fires on origin or only on replica: one that
-- session_replication_role = replica would skip or start firing.
-- The cast raises 42P01 when the table does not exist.
SELECT c.relkind, a.attname, a.attgenerated <> '', a.attidentity = 'a',
       coalesce(a.attnum = ANY (i.indkey), false),
       EXISTS (SELECT 1 FROM pg_catalog.pg_constraint f
               WHERE f.conrelid = c.oid AND f.contype = 'f'
                 AND (f.confdeltype <> 'a' AND f.confdeltype <> 'r'
                      OR f.confupdtype <> 'a' AND f.confupdtype <> 'r')),
       EXISTS (SELECT 1 FROM pg_catalog.pg_trigger g
               WHERE (g.tgrelid = c.oid OR g.tgrelid IN (SELECT p.relid FROM pg_catalog.pg_partition_tree(c.oid) p))
                 AND NOT g.tgisinternal AND g.tgenabled IN ('O', 'R'))
FROM pg_catalog.pg_class c
JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
LEFT JOIN pg_catalog.pg_index i ON i.indrelid = c.oid AND i.indisprimary
WHERE c.oid = $1::pg_catalog.regclass
ORDER BY a.attnum
