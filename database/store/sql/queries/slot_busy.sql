-- Whether another session holds a lock on one of the tables $1 other
-- than to read it: a transaction that wrote to the slot and has not ended.
SELECT EXISTS (
    SELECT 1 FROM pg_catalog.pg_locks l
    WHERE l.locktype = 'relation'
      AND l.database = (SELECT d.oid FROM pg_catalog.pg_database d WHERE d.datname = pg_catalog.current_database())
      AND l.relation = ANY ($1::text[]::pg_catalog.regclass[]::pg_catalog.oid[])
      AND l.mode <> 'AccessShareLock'
      AND l.pid <> pg_catalog.pg_backend_pid())
