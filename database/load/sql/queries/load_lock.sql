-- Takes the session lock that one initial load of target $2 holds while it
-- runs; $1 is the key space. False: another load of that target holds it.
SELECT pg_catalog.pg_try_advisory_lock(($1::bigint OPERATOR(pg_catalog.<<) 32)
       OPERATOR(pg_catalog.|) (pg_catalog.hashtext($2)::bigint OPERATOR(pg_catalog.&) 4294967295))
