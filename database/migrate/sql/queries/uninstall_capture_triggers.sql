-- Every capture trigger: the table, qualified and quoted, and the trigger.
SELECT t.tgrelid::pg_catalog.regclass::text, t.tgname::text
FROM pg_catalog.pg_trigger t
WHERE t.tgname LIKE 'teleport\_capture\_%' AND NOT t.tgisinternal
ORDER BY 1, 2
