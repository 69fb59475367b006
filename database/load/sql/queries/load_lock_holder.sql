-- Who holds the lock of load_lock.sql: the process, its client and since when.
SELECT a.pid, coalesce(a.client_addr::text, 'local'), a.backend_start
FROM pg_catalog.pg_locks l
JOIN pg_catalog.pg_stat_activity a ON a.pid = l.pid
WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
  AND l.classid = $1::bigint::oid
  AND l.objid = (pg_catalog.hashtext($2)::bigint OPERATOR(pg_catalog.&) 4294967295)::oid
