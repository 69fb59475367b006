-- The foreign keys the load of source $1 dropped, to add back.
SELECT schema_name, table_name, name, definition
FROM teleport.load_fk WHERE source = $1
ORDER BY schema_name, table_name, name
