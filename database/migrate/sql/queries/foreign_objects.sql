-- The objects of schema teleport that are not Teleport's (their names are
-- not in $1) and that ALTER ... SET SCHEMA moves: tables, views, sequences
-- no column owns, types, functions, and extensions (their members move
-- with them, so they are not listed). Their kind as ALTER names it, their
-- name, and their identity within the schema, quoted.
SELECT kind, name, identity FROM (
    SELECT CASE c.relkind WHEN 'v' THEN 'VIEW' WHEN 'm' THEN 'MATERIALIZED VIEW' WHEN 'S' THEN 'SEQUENCE'
                          WHEN 'f' THEN 'FOREIGN TABLE' WHEN 'c' THEN 'TYPE' ELSE 'TABLE' END AS kind,
           c.relname::text AS name, pg_catalog.quote_ident(c.relname) AS identity, c.oid AS oid,
           'pg_catalog.pg_class'::pg_catalog.regclass AS catalog
    FROM pg_catalog.pg_class c
    WHERE c.relnamespace = 'teleport'::pg_catalog.regnamespace
      AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f', 'c')
      AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d
                      WHERE d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass AND d.objid = c.oid
                        AND d.deptype IN ('a', 'i') AND d.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass)
    UNION ALL
    SELECT 'TYPE', t.typname::text, pg_catalog.quote_ident(t.typname), t.oid, 'pg_catalog.pg_type'::pg_catalog.regclass
    FROM pg_catalog.pg_type t
    WHERE t.typnamespace = 'teleport'::pg_catalog.regnamespace
      AND t.typtype IN ('e', 'd', 'r', 'b')
      AND t.typelem = 0
    UNION ALL
    SELECT CASE p.prokind WHEN 'p' THEN 'PROCEDURE' WHEN 'a' THEN 'AGGREGATE' ELSE 'FUNCTION' END,
           p.proname::text, pg_catalog.quote_ident(p.proname) || '(' || pg_catalog.pg_get_function_identity_arguments(p.oid) || ')',
           p.oid, 'pg_catalog.pg_proc'::pg_catalog.regclass
    FROM pg_catalog.pg_proc p
    WHERE p.pronamespace = 'teleport'::pg_catalog.regnamespace
    UNION ALL
    SELECT 'EXTENSION', e.extname::text, pg_catalog.quote_ident(e.extname), e.oid, 'pg_catalog.pg_extension'::pg_catalog.regclass
    FROM pg_catalog.pg_extension e
    WHERE e.extnamespace = 'teleport'::pg_catalog.regnamespace
) o
WHERE NOT (name = ANY ($1::text[]))
  AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d
                  WHERE d.classid = o.catalog AND d.objid = o.oid AND d.deptype = 'e')
ORDER BY kind = 'EXTENSION' DESC, kind, name
