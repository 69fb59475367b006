-- Every capture trigger: the table, qualified and quoted, the trigger, and
-- whether the role may drop it ('t': it is a member of the table's owner).
SELECT pg_catalog.quote_ident(n.nspname) || '.' || pg_catalog.quote_ident(c.relname), t.tgname::text, pg_catalog.pg_has_role(c.relowner, 'USAGE')::text::char
FROM pg_catalog.pg_trigger t
JOIN pg_catalog.pg_class c ON c.oid = t.tgrelid
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE t.tgname LIKE 'teleport\_capture\_%' AND NOT t.tgisinternal
ORDER BY 1, 2
