-- The columns of table $1 (a quoted, qualified name) in attnum order. The
-- cast raises 42P01 when the table does not exist.
SELECT c.relkind, a.attname, a.attgenerated <> '', a.attidentity = 'a',
       coalesce(a.attnum = ANY (i.indkey), false)
FROM pg_catalog.pg_class c
JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
LEFT JOIN pg_catalog.pg_index i ON i.indrelid = c.oid AND i.indisprimary
WHERE c.oid = $1::pg_catalog.regclass
ORDER BY a.attnum
