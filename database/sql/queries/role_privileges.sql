SELECT current_user::text,
       current_database()::text,
       current_setting('server_version_num')::int,
       r.rolsuper,
       r.rolreplication,
       has_database_privilege(current_database(), 'CREATE'),
       n.oid IS NOT NULL,
       coalesce(pg_get_userbyid(n.nspowner)::text, ''),
       n.oid IS NOT NULL AND has_schema_privilege(n.oid, 'USAGE')
                         AND has_schema_privilege(n.oid, 'CREATE'),
       p.oid IS NULL OR has_schema_privilege(p.oid, 'CREATE')
FROM pg_catalog.pg_roles r
LEFT JOIN pg_catalog.pg_namespace n ON n.nspname = 'teleport'
LEFT JOIN pg_catalog.pg_namespace p ON p.nspname = 'public'
WHERE r.rolname = current_user
