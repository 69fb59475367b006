-- Initial load, target side. A load copies a source's tables with COPY,
-- each read in a snapshot of the source that is recorded with it: the
-- events that snapshot already saw are skipped, the later ones applied after
-- the copy. While a load is under way, batches that touch its tables, or
-- change the schema, wait for it.
CREATE TABLE teleport.load (
    source      text PRIMARY KEY,
    run         text NOT NULL,       -- the load command run that began or last resumed it
    started_at  timestamptz NOT NULL DEFAULT pg_catalog.now(),
    resumed_at  timestamptz,
    finished_at timestamptz          -- NULL while the load is under way
);

-- The tables of a load, named as on this database.
CREATE TABLE teleport.load_table (
    source      text NOT NULL REFERENCES teleport.load (source) ON DELETE CASCADE,
    schema_name text NOT NULL,
    table_name  text NOT NULL,
    est_rows    bigint NOT NULL,     -- the source's estimate, for progress
    est_bytes   bigint NOT NULL,
    snapshot    pg_snapshot,         -- the source snapshot of the copy; NULL until it is done
    nrows       bigint,
    nbytes      bigint,
    done_at     timestamptz,
    PRIMARY KEY (source, schema_name, table_name)
);

-- Foreign keys that touch the tables of a load: dropped while they load
-- (tables copy in parallel, in any order) and added back, validated, when
-- the load finishes.
CREATE TABLE teleport.load_fk (
    source      text NOT NULL REFERENCES teleport.load (source) ON DELETE CASCADE,
    schema_name text NOT NULL,
    table_name  text NOT NULL,
    name        text NOT NULL,
    definition  text NOT NULL,       -- pg_get_constraintdef, names qualified
    PRIMARY KEY (source, schema_name, table_name, name)
);
