-- The connected role, the database, and the search_path the role's new
-- sessions in it start with when set by ALTER ROLE or ALTER DATABASE (the
-- most specific wins); NULL when neither sets it.
SELECT current_user, pg_catalog.current_database(),
       (SELECT pg_catalog.substr(c.setting, pg_catalog.length('search_path=') + 1)
        FROM pg_catalog.pg_db_role_setting s
             JOIN pg_catalog.pg_database d ON d.datname = pg_catalog.current_database()
             CROSS JOIN LATERAL pg_catalog.unnest(s.setconfig) AS c(setting)
        WHERE c.setting LIKE 'search\_path=%'
          AND ((s.setrole = (SELECT oid FROM pg_catalog.pg_roles WHERE rolname = current_user) AND s.setdatabase IN (0, d.oid))
               OR (s.setrole = 0 AND s.setdatabase = d.oid))
        ORDER BY s.setrole <> 0 DESC, s.setdatabase <> 0 DESC
        LIMIT 1)
