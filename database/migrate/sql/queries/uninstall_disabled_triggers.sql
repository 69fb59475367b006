-- The triggers replication created disabled on a target: every disabled
-- trigger of a table the role owns (it created them) outside PostgreSQL's
-- schemas. The table, qualified and quoted, and the trigger.
SELECT pg_catalog.quote_ident(n.nspname) || '.' || pg_catalog.quote_ident(c.relname), t.tgname::text, ''
FROM pg_catalog.pg_trigger t
JOIN pg_catalog.pg_class c ON c.oid = t.tgrelid
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE NOT t.tgisinternal AND t.tgenabled = 'D'
  AND c.relowner = (SELECT oid FROM pg_catalog.pg_roles WHERE rolname = current_user)
  AND n.nspname <> 'information_schema' AND n.nspname !~ '^pg_'
ORDER BY 1, 2
