-- Target side: a big table of a load is copied in chunks, ranges of its
-- integer key, several at once. Each chunk goes in in one transaction that
-- empties its range, copies it and records it here; the table is done, in
-- teleport.load_table, when every chunk of the run copying it is. A chunk
-- done in the run stays done when the copy of another chunk fails.
CREATE TABLE teleport.load_chunk (
    source      text NOT NULL,
    schema_name text NOT NULL,
    table_name  text NOT NULL,
    chunk       integer NOT NULL,    -- from 0
    chunks      integer NOT NULL,    -- how many the run cut the table into
    run         text NOT NULL,       -- the load run that copied it
    key_column  text NOT NULL,
    lo          bigint,              -- first key of the range; NULL: from the lowest
    hi          bigint,              -- first key after it; NULL: to the highest
    snapshot    pg_snapshot NOT NULL,
    nrows       bigint NOT NULL,
    nbytes      bigint NOT NULL,
    done_at     timestamptz NOT NULL DEFAULT pg_catalog.now(),
    PRIMARY KEY (source, schema_name, table_name, chunk),
    FOREIGN KEY (source, schema_name, table_name) REFERENCES teleport.load_table ON DELETE CASCADE
);
