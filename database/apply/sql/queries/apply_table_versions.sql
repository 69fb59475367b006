-- A version of each table named in $1 (quoted, qualified names) that
-- changes whenever what apply_table_columns.sql reads of it may have: its
-- oid and the xmin of every catalog row that query reads (the table, its
-- columns, indexes, foreign keys, and the triggers of it and its
-- partitions), since a catalog row that changes gets a new xmin. A name
-- that is no table has no row.
SELECT n.name,
       concat_ws('|', c.oid, c.xmin,
           (SELECT string_agg(a.xmin::text, ',' ORDER BY a.attnum)
            FROM pg_catalog.pg_attribute a WHERE a.attrelid = c.oid AND a.attnum > 0),
           (SELECT string_agg(i.indexrelid::text || ':' || i.xmin, ',' ORDER BY i.indexrelid)
            FROM pg_catalog.pg_index i WHERE i.indrelid = c.oid),
           (SELECT string_agg(f.oid::text || ':' || f.xmin, ',' ORDER BY f.oid)
            FROM pg_catalog.pg_constraint f WHERE f.conrelid = c.oid),
           (SELECT string_agg(g.oid::text || ':' || g.xmin, ',' ORDER BY g.oid)
            FROM pg_catalog.pg_trigger g
            WHERE g.tgrelid = c.oid OR g.tgrelid IN (SELECT p.relid FROM pg_catalog.pg_partition_tree(c.oid) p)))
FROM pg_catalog.unnest($1::text[]) AS n(name)
JOIN pg_catalog.pg_class c ON c.oid = pg_catalog.to_regclass(n.name)
