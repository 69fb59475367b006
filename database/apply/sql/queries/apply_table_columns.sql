-- The columns of table $1 (a quoted, qualified name) in attnum order, and
-- whether a foreign key of the table has an ON DELETE or ON UPDATE action.
-- The cast raises 42P01 when the table does not exist.
SELECT c.relkind, a.attname, a.attgenerated <> '', a.attidentity = 'a',
       coalesce(a.attnum = ANY (i.indkey), false),
       EXISTS (SELECT 1 FROM pg_catalog.pg_constraint f
               WHERE f.conrelid = c.oid AND f.contype = 'f'
                 AND (f.confdeltype <> 'a' AND f.confdeltype <> 'r'
                      OR f.confupdtype <> 'a' AND f.confupdtype <> 'r'))
FROM pg_catalog.pg_class c
JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
LEFT JOIN pg_catalog.pg_index i ON i.indrelid = c.oid AND i.indisprimary
WHERE c.oid = $1::pg_catalog.regclass
ORDER BY a.attnum
