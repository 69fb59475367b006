-- The start of an apply transaction: SET LOCAL teleport.origin = $1, so
-- capture triggers on this database record where the changes came from and
-- never send them back there, and, when $2, SET LOCAL
-- session_replication_role = replica (see apply_set_replication_role.sql).
SELECT pg_catalog.set_config('teleport.origin', $1, true),
       CASE WHEN $2 THEN pg_catalog.set_config('session_replication_role', 'replica', true) END
