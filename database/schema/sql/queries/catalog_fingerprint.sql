-- What a schema change modifies, cheaply: for each catalog a snapshot or
-- the capture of new tables reads, its rows and the sum of their xmin (a
-- change writes new row versions; a drop removes rows), and role
-- memberships (a snapshot records what the role may own). Relations in
-- the teleport and pg_toast schemas are left out: emptying a slot with
-- TRUNCATE writes their pg_class rows, and no snapshot shows them. Equal
-- fingerprints: the catalog did not change. Then the last event id
-- captured, as sequences move with the rows written.
SELECT pg_catalog.concat_ws(' ',
           (SELECT pg_catalog.count(*) || ':' || coalesce(pg_catalog.sum(xmin::text::bigint), 0) FROM pg_catalog.pg_namespace),
           (SELECT pg_catalog.count(*) || ':' || coalesce(pg_catalog.sum(xmin::text::bigint), 0) FROM pg_catalog.pg_class
            WHERE relnamespace <> ALL (ARRAY['teleport'::pg_catalog.regnamespace, 'pg_toast'::pg_catalog.regnamespace]::pg_catalog.oid[])),
           (SELECT pg_catalog.count(*) || ':' || coalesce(pg_catalog.sum(xmin::text::bigint), 0) FROM pg_catalog.pg_attribute),
           (SELECT pg_catalog.count(*) || ':' || coalesce(pg_catalog.sum(xmin::text::bigint), 0) FROM pg_catalog.pg_attrdef),
           (SELECT pg_catalog.count(*) || ':' || coalesce(pg_catalog.sum(xmin::text::bigint), 0) FROM pg_catalog.pg_type),
           (SELECT pg_catalog.count(*) || ':' || coalesce(pg_catalog.sum(xmin::text::bigint), 0) FROM pg_catalog.pg_enum),
           (SELECT pg_catalog.count(*) || ':' || coalesce(pg_catalog.sum(xmin::text::bigint), 0) FROM pg_catalog.pg_constraint),
           (SELECT pg_catalog.count(*) || ':' || coalesce(pg_catalog.sum(xmin::text::bigint), 0) FROM pg_catalog.pg_index),
           (SELECT pg_catalog.count(*) || ':' || coalesce(pg_catalog.sum(xmin::text::bigint), 0) FROM pg_catalog.pg_inherits),
           (SELECT pg_catalog.count(*) || ':' || coalesce(pg_catalog.sum(xmin::text::bigint), 0) FROM pg_catalog.pg_trigger),
           (SELECT pg_catalog.count(*) || ':' || coalesce(pg_catalog.sum(xmin::text::bigint), 0) FROM pg_catalog.pg_rewrite),
           (SELECT pg_catalog.count(*) || ':' || coalesce(pg_catalog.sum(xmin::text::bigint), 0) FROM pg_catalog.pg_proc),
           (SELECT pg_catalog.count(*) || ':' || coalesce(pg_catalog.sum(xmin::text::bigint), 0) FROM pg_catalog.pg_aggregate),
           (SELECT pg_catalog.count(*) || ':' || coalesce(pg_catalog.sum(xmin::text::bigint), 0) FROM pg_catalog.pg_sequence),
           (SELECT pg_catalog.count(*) || ':' || coalesce(pg_catalog.sum(xmin::text::bigint), 0) FROM pg_catalog.pg_depend),
           (SELECT pg_catalog.count(*) || ':' || coalesce(pg_catalog.sum(xmin::text::bigint), 0) FROM pg_catalog.pg_extension),
           (SELECT pg_catalog.count(*) || ':' || coalesce(pg_catalog.sum(xmin::text::bigint), 0) FROM pg_catalog.pg_auth_members)),
       coalesce(pg_catalog.pg_sequence_last_value('teleport.event_id_seq'::pg_catalog.regclass), 0)
