-- The foreign keys that reference or belong to one of the tables $1 (regclass
-- texts), each once: those of partitions follow their parent's.
SELECT n.nspname::text, c.relname::text, con.conname::text,
       pg_catalog.pg_get_constraintdef(con.oid)
FROM pg_catalog.pg_constraint con
JOIN pg_catalog.pg_class c ON c.oid = con.conrelid
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE con.contype = 'f' AND con.conparentid = 0
  AND (con.conrelid = ANY ($1::text[]::regclass[]) OR con.confrelid = ANY ($1::text[]::regclass[]))
ORDER BY n.nspname, c.relname, con.conname
