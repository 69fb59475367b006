-- The columns of table $1 (a quoted, qualified name) in attnum order,
-- whether a foreign key of the table has an ON DELETE or ON UPDATE action,
-- and whether the table or one of its partitions has a trigger of its own
-- (not a foreign key's) that fires on origin or only on replica: one that
-- session_replication_role = replica would skip or start firing. The
-- table's facts are read once (MATERIALIZED), not once per column.
-- The cast raises 42P01 when the table does not exist.
WITH t AS MATERIALIZED (
    SELECT c.oid, c.relkind,
           EXISTS (SELECT 1 FROM pg_catalog.pg_constraint f
                   WHERE f.conrelid = c.oid AND f.contype = 'f'
                     AND (f.confdeltype <> 'a' AND f.confdeltype <> 'r'
                          OR f.confupdtype <> 'a' AND f.confupdtype <> 'r')) AS fk_actions,
           EXISTS (SELECT 1 FROM pg_catalog.pg_trigger g
                   WHERE (g.tgrelid = c.oid OR g.tgrelid IN (SELECT p.relid FROM pg_catalog.pg_partition_tree(c.oid) p))
                     AND NOT g.tgisinternal AND g.tgenabled IN ('O', 'R')) AS triggers
    FROM pg_catalog.pg_class c
    WHERE c.oid = $1::pg_catalog.regclass
)
SELECT t.relkind, a.attname, a.attgenerated <> '', a.attidentity = 'a',
       coalesce(a.attnum = ANY (i.indkey), false), t.fk_actions, t.triggers
FROM t
JOIN pg_catalog.pg_attribute a ON a.attrelid = t.oid AND a.attnum > 0 AND NOT a.attisdropped
LEFT JOIN pg_catalog.pg_index i ON i.indrelid = t.oid AND i.indisprimary
ORDER BY a.attnum
