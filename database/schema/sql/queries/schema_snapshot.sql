-- One catalog snapshot of every user schema (teleport's and PostgreSQL's
-- excepted), as JSON. Run it with search_path set to $1, the schema
-- definitions are written relative to: pg_get_* functions qualify only the
-- names that search_path does not reach. Objects that belong to an extension are left
-- out (the extension brings them). Everything is ordered, so an unchanged
-- catalog gives the same text.
WITH nsp AS (
    SELECT n.oid, n.nspname
    FROM pg_catalog.pg_namespace n
    WHERE n.nspname NOT IN ('teleport', 'information_schema')
      AND n.nspname !~ '^pg_'
),
member AS (  -- objects that belong to an extension
    SELECT d.classid, d.objid
    FROM pg_catalog.pg_depend d
    WHERE d.deptype = 'e'
),
rel AS (
    SELECT c.oid, n.nspname, c.relname, c.relkind, c.relpersistence, c.relispartition,
           pg_catalog.pg_has_role(c.relowner, 'USAGE') AS owned
    FROM pg_catalog.pg_class c
    JOIN nsp n ON n.oid = c.relnamespace
    WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S')
      AND NOT EXISTS (SELECT 1 FROM member m
                      WHERE m.classid = 'pg_catalog.pg_class'::pg_catalog.regclass AND m.objid = c.oid)
)
SELECT pg_catalog.json_build_object(
'search_path', $1::text,
'major', pg_catalog.current_setting('server_version_num')::int / 10000,
'schemas', (
    SELECT coalesce(pg_catalog.json_agg(pg_catalog.json_build_object(
               'oid', n.oid, 'name', n.nspname) ORDER BY n.nspname), '[]')
    FROM nsp n),
'extensions', (
    SELECT coalesce(pg_catalog.json_agg(pg_catalog.json_build_object(
               'oid', e.oid, 'name', e.extname, 'schema', n.nspname, 'version', e.extversion)
               ORDER BY e.extname), '[]')
    FROM pg_catalog.pg_extension e
    JOIN nsp n ON n.oid = e.extnamespace),
'types', (
    SELECT coalesce(pg_catalog.json_agg(pg_catalog.json_build_object(
               'oid', t.oid, 'schema', n.nspname, 'name', t.typname, 'kind', t.typtype,
               'labels', CASE WHEN t.typtype = 'e' THEN (
                   SELECT pg_catalog.json_agg(pg_catalog.json_build_object(
                              'oid', l.oid, 'label', l.enumlabel) ORDER BY l.enumsortorder)
                   FROM pg_catalog.pg_enum l WHERE l.enumtypid = t.oid) END,
               'attrs', CASE WHEN t.typtype = 'c' THEN (
                   SELECT pg_catalog.json_agg(pg_catalog.json_build_object(
                              'num', a.attnum, 'name', a.attname,
                              'type', pg_catalog.format_type(a.atttypid, a.atttypmod)) ORDER BY a.attnum)
                   FROM pg_catalog.pg_attribute a
                   WHERE a.attrelid = t.typrelid AND a.attnum > 0 AND NOT a.attisdropped) END,
               'base', CASE WHEN t.typtype = 'd' THEN pg_catalog.format_type(t.typbasetype, t.typtypmod) END,
               'not_null', t.typnotnull,
               'default', t.typdefault,
               'checks', CASE WHEN t.typtype = 'd' THEN (
                   SELECT pg_catalog.json_agg(pg_catalog.json_build_object(
                              'oid', k.oid, 'name', k.conname, 'type', k.contype,
                              'def', pg_catalog.pg_get_constraintdef(k.oid)) ORDER BY k.conname)
                   -- A domain's NOT NULL is not_null; 17 and later catalog it here too (contype 'n').
                   FROM pg_catalog.pg_constraint k WHERE k.contypid = t.oid AND k.contype <> 'n') END,
               'owned', pg_catalog.pg_has_role(t.typowner, 'USAGE'))
               ORDER BY n.nspname, t.typname), '[]')
    FROM pg_catalog.pg_type t
    JOIN nsp n ON n.oid = t.typnamespace
    WHERE (t.typtype IN ('e', 'd')
           OR t.typtype = 'c' AND (SELECT c.relkind FROM pg_catalog.pg_class c WHERE c.oid = t.typrelid) = 'c')
      AND NOT EXISTS (SELECT 1 FROM member m
                      WHERE m.classid = 'pg_catalog.pg_type'::pg_catalog.regclass AND m.objid = t.oid)),
'tables', (
    SELECT coalesce(pg_catalog.json_agg(pg_catalog.json_build_object(
               'oid', r.oid, 'schema', r.nspname, 'name', r.relname, 'kind', r.relkind,
               'unlogged', r.relpersistence = 'u', 'owned', r.owned,
               'options', (SELECT c.reloptions FROM pg_catalog.pg_class c WHERE c.oid = r.oid),
               'partition_key', CASE WHEN r.relkind = 'p' THEN pg_catalog.pg_get_partkeydef(r.oid) END,
               'parent', (SELECT i.inhparent FROM pg_catalog.pg_inherits i WHERE i.inhrelid = r.oid),
               'bound', CASE WHEN r.relispartition THEN
                   (SELECT pg_catalog.pg_get_expr(c.relpartbound, c.oid) FROM pg_catalog.pg_class c WHERE c.oid = r.oid) END,
               'columns', (
                   SELECT coalesce(pg_catalog.json_agg(pg_catalog.json_build_object(
                              'num', a.attnum, 'name', a.attname,
                              'type', pg_catalog.format_type(a.atttypid, a.atttypmod),
                              'not_null', a.attnotnull,
                              'default', CASE WHEN a.attgenerated = '' THEN pg_catalog.pg_get_expr(d.adbin, d.adrelid) END,
                              'generated', CASE WHEN a.attgenerated <> '' THEN pg_catalog.pg_get_expr(d.adbin, d.adrelid) END,
                              'virtual', a.attgenerated = 'v',  -- PostgreSQL 18's virtual generated columns
                              -- PostgreSQL 18 names NOT NULL constraints (contype 'n'); earlier majors have none.
                              'not_null_name', CASE WHEN a.attnotnull THEN (
                                  SELECT k.conname FROM pg_catalog.pg_constraint k
                                  WHERE k.conrelid = r.oid AND k.contype = 'n' AND k.conkey[1] = a.attnum) END,
                              'identity', a.attidentity,
                              'collation', CASE WHEN a.attcollation <> t.typcollation THEN
                                  (SELECT pg_catalog.quote_ident(cn.nspname) || '.' || pg_catalog.quote_ident(co.collname)
                                   FROM pg_catalog.pg_collation co
                                   JOIN pg_catalog.pg_namespace cn ON cn.oid = co.collnamespace
                                   WHERE co.oid = a.attcollation) END,
                              'local', a.attislocal) ORDER BY a.attnum), '[]')
                   FROM pg_catalog.pg_attribute a
                   JOIN pg_catalog.pg_type t ON t.oid = a.atttypid
                   LEFT JOIN pg_catalog.pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
                   WHERE a.attrelid = r.oid AND a.attnum > 0 AND NOT a.attisdropped),
               'constraints', (
                   SELECT coalesce(pg_catalog.json_agg(pg_catalog.json_build_object(
                              'oid', k.oid, 'name', k.conname, 'type', k.contype,
                              'def', pg_catalog.pg_get_constraintdef(k.oid),
                              'ref', CASE WHEN k.contype = 'f' THEN k.confrelid END,
                              'inherited', NOT k.conislocal OR k.conparentid <> 0)
                              ORDER BY k.contype, k.conname), '[]')
                   FROM pg_catalog.pg_constraint k
                   WHERE k.conrelid = r.oid AND k.contype IN ('p', 'u', 'c', 'f', 'x')),
               'indexes', (
                   SELECT coalesce(pg_catalog.json_agg(pg_catalog.json_build_object(
                              'oid', x.indexrelid, 'name', ic.relname,
                              'def', pg_catalog.pg_get_indexdef(x.indexrelid),
                              'prefix', 'CREATE ' || CASE WHEN x.indisunique THEN 'UNIQUE ' ELSE '' END
                                        || 'INDEX ' || pg_catalog.quote_ident(ic.relname) || ' ON '
                                        || CASE WHEN ic.relkind = 'I' AND r.relkind = 'p'
                                                 AND pg_catalog.strpos(pg_catalog.pg_get_indexdef(x.indexrelid), ' ON ONLY ') > 0
                                                THEN 'ONLY ' ELSE '' END
                                        || pg_catalog.quote_ident(r.nspname) || '.' || pg_catalog.quote_ident(r.relname)
                                        || ' USING ',
                              'inherited', EXISTS (SELECT 1 FROM pg_catalog.pg_inherits i WHERE i.inhrelid = x.indexrelid))
                              ORDER BY ic.relname), '[]')
                   FROM pg_catalog.pg_index x
                   JOIN pg_catalog.pg_class ic ON ic.oid = x.indexrelid
                   WHERE x.indrelid = r.oid
                     AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_constraint k
                                     WHERE k.conindid = x.indexrelid AND k.conrelid = r.oid
                                       AND k.contype IN ('p', 'u', 'x'))),
               'triggers', (
                   SELECT coalesce(pg_catalog.json_agg(pg_catalog.json_build_object(
                              'oid', g.oid, 'name', g.tgname,
                              'def', pg_catalog.pg_get_triggerdef(g.oid),
                              'on', ' ON ' || pg_catalog.quote_ident(r.nspname) || '.'
                                    || pg_catalog.quote_ident(r.relname) || ' ',
                              'enabled', g.tgenabled <> 'D')
                              ORDER BY g.tgname), '[]')
                   FROM pg_catalog.pg_trigger g
                   WHERE g.tgrelid = r.oid AND NOT g.tgisinternal AND g.tgparentid = 0
                     AND g.tgname !~ '^teleport_capture_'))
               ORDER BY r.nspname, r.relname), '[]')
    FROM rel r
    WHERE r.relkind IN ('r', 'p')),
'sequences', (
    SELECT coalesce(pg_catalog.json_agg(pg_catalog.json_build_object(
               'oid', r.oid, 'schema', r.nspname, 'name', r.relname,
               'type', pg_catalog.format_type(s.seqtypid, NULL),
               'start', s.seqstart, 'increment', s.seqincrement, 'min', s.seqmin, 'max', s.seqmax,
               'cache', s.seqcache, 'cycle', s.seqcycle,
               'last_value', v.last_value,
               'owner_table', d.refobjid, 'owner_column', d.refobjsubid,
               'identity', d.deptype = 'i')
               ORDER BY r.nspname, r.relname), '[]')
    FROM rel r
    JOIN pg_catalog.pg_sequence s ON s.seqrelid = r.oid
    LEFT JOIN pg_catalog.pg_sequences v ON v.schemaname = r.nspname AND v.sequencename = r.relname
    LEFT JOIN pg_catalog.pg_depend d ON d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass
          AND d.objid = r.oid AND d.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass
          AND d.deptype IN ('a', 'i')
    WHERE r.relkind = 'S'),
'views', (
    SELECT coalesce(pg_catalog.json_agg(pg_catalog.json_build_object(
               'oid', r.oid, 'schema', r.nspname, 'name', r.relname,
               'materialized', r.relkind = 'm',
               'def', pg_catalog.pg_get_viewdef(r.oid),
               'columns', (SELECT pg_catalog.json_agg(pg_catalog.json_build_object(
                                  'num', a.attnum, 'name', a.attname,
                                  'type', pg_catalog.format_type(a.atttypid, a.atttypmod)) ORDER BY a.attnum)
                           FROM pg_catalog.pg_attribute a
                           WHERE a.attrelid = r.oid AND a.attnum > 0 AND NOT a.attisdropped),
               'depends', (SELECT coalesce(pg_catalog.json_agg(DISTINCT d.refobjid), '[]')
                           FROM pg_catalog.pg_rewrite w
                           JOIN pg_catalog.pg_depend d ON d.classid = 'pg_catalog.pg_rewrite'::pg_catalog.regclass
                                AND d.objid = w.oid AND d.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass
                                AND d.refobjid <> r.oid
                           WHERE w.ev_class = r.oid),
               'indexes', CASE WHEN r.relkind = 'm' THEN (
                   SELECT pg_catalog.json_agg(pg_catalog.json_build_object(
                              'oid', x.indexrelid, 'name', ic.relname,
                              'def', pg_catalog.pg_get_indexdef(x.indexrelid),
                              'prefix', 'CREATE ' || CASE WHEN x.indisunique THEN 'UNIQUE ' ELSE '' END
                                        || 'INDEX ' || pg_catalog.quote_ident(ic.relname) || ' ON '
                                        || pg_catalog.quote_ident(r.nspname) || '.' || pg_catalog.quote_ident(r.relname)
                                        || ' USING ')
                              ORDER BY ic.relname)
                   FROM pg_catalog.pg_index x
                   JOIN pg_catalog.pg_class ic ON ic.oid = x.indexrelid
                   WHERE x.indrelid = r.oid) END)
               ORDER BY r.nspname, r.relname), '[]')
    FROM rel r
    WHERE r.relkind IN ('v', 'm')),
'functions', (
    SELECT coalesce(pg_catalog.json_agg(pg_catalog.json_build_object(
               'oid', p.oid, 'schema', n.nspname, 'name', p.proname, 'kind', p.prokind,
               'args', pg_catalog.pg_get_function_arguments(p.oid),
               'identity_args', pg_catalog.pg_get_function_identity_arguments(p.oid),
               'result', pg_catalog.pg_get_function_result(p.oid),
               'language', l.lanname, 'trusted', l.lanpltrusted,
               'body', p.prosrc,
               'def', CASE WHEN p.prokind IN ('f', 'p') AND l.lanname IN ('sql', 'plpgsql')
                           THEN pg_catalog.pg_get_functiondef(p.oid) END,
               'prefix', 'CREATE OR REPLACE ' || CASE WHEN p.prokind = 'p' THEN 'PROCEDURE' ELSE 'FUNCTION' END
                         || ' ' || pg_catalog.quote_ident(n.nspname) || '.' || pg_catalog.quote_ident(p.proname) || '(',
               'owned', pg_catalog.pg_has_role(p.proowner, 'USAGE'),
               'aggregate', CASE WHEN p.prokind = 'a' THEN (
                   SELECT pg_catalog.json_build_object(
                              'kind', g.aggkind,
                              'sfunc', g.aggtransfn::pg_catalog.regproc::text,
                              'stype', pg_catalog.format_type(g.aggtranstype, NULL),
                              'finalfunc', CASE WHEN g.aggfinalfn <> 0 THEN g.aggfinalfn::pg_catalog.regproc::text END,
                              'combinefunc', CASE WHEN g.aggcombinefn <> 0 THEN g.aggcombinefn::pg_catalog.regproc::text END,
                              'initcond', g.agginitval,
                              'sortop', CASE WHEN g.aggsortop <> 0 THEN g.aggsortop::pg_catalog.regoperator::text END)
                   FROM pg_catalog.pg_aggregate g WHERE g.aggfnoid = p.oid) END)
               ORDER BY n.nspname, p.proname, pg_catalog.pg_get_function_identity_arguments(p.oid)), '[]')
    FROM pg_catalog.pg_proc p
    JOIN nsp n ON n.oid = p.pronamespace
    JOIN pg_catalog.pg_language l ON l.oid = p.prolang
    WHERE NOT EXISTS (SELECT 1 FROM member m
                      WHERE m.classid = 'pg_catalog.pg_proc'::pg_catalog.regclass AND m.objid = p.oid))
)::text
