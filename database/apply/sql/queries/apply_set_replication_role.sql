-- SET LOCAL session_replication_role = $1 ('replica' or 'origin'): in
-- replica mode PostgreSQL skips foreign key checks and actions and the
-- triggers that fire on origin, as its own logical replication does.
-- Only a superuser, or (PostgreSQL 15+) a role granted SET on the
-- parameter, may; others get 42501.
SELECT pg_catalog.set_config('session_replication_role', $1, true)
