-- Source side -------------------------------------------------------------

-- One row per captured statement chunk: up to 1000 rows (or about 4 MB) of
-- one statement on one table. xid is the writing transaction's top-level id;
-- batches are cut by snapshot visibility of xid, never by id, so a
-- transaction that began early and committed late is not skipped.
CREATE TABLE teleport.event (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    xid         xid8 NOT NULL DEFAULT pg_catalog.pg_current_xact_id(),
    relid       oid NOT NULL,
    schema_name text NOT NULL,
    table_name  text NOT NULL,
    op          "char" NOT NULL CHECK (op IN ('I', 'U', 'D', 'T')),
    origin      text,           -- teleport.origin of the writer: the source a change was applied from
    nrows       integer NOT NULL,
    data        json            -- I, D: array of rows; U: array of [old, new]; T: null
);
CREATE INDEX event_xid_idx ON teleport.event (xid);

-- A tick is a snapshot taken by the batcher. The events of the transactions
-- visible in one tick and not in the one before form the next batch.
CREATE TABLE teleport.tick (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    snapshot   pg_snapshot NOT NULL,
    created_at timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp()
);

-- One row per target of this source: how far the batcher has cut.
CREATE TABLE teleport.target (
    name         text PRIMARY KEY,
    schema_regex text NOT NULL,      -- target_expression, as two anchored regexes
    table_regex  text NOT NULL,
    last_tick    bigint NOT NULL REFERENCES teleport.tick (id),
    next_seq     bigint NOT NULL DEFAULT 1,
    acked_seq    bigint NOT NULL DEFAULT 0,  -- highest seq the target has stored
    applied_seq  bigint NOT NULL DEFAULT 0,  -- highest seq the target has applied
    created_at   timestamptz NOT NULL DEFAULT pg_catalog.now()
);

-- A batch is a small record, not a copy of its events: its payload is built
-- from the events when it is sent, the same way every time.
CREATE TABLE teleport.batch (
    target     text NOT NULL REFERENCES teleport.target (name) ON DELETE CASCADE,
    seq        bigint NOT NULL,
    from_tick  bigint NOT NULL,
    to_tick    bigint NOT NULL,
    events     integer NOT NULL,
    nrows      bigint NOT NULL,
    chunk_rows integer NOT NULL,     -- max_events_per_batch when cut, so resends chunk the same way
    schema_regex text NOT NULL,      -- the target's expression when cut, so a changed
    table_regex  text NOT NULL,      -- target_expression never changes a cut batch
    tick_time  timestamptz NOT NULL, -- when to_tick was taken, on the source's clock
    created_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
    sent_at    timestamptz,
    PRIMARY KEY (target, seq)
);

-- Target side -------------------------------------------------------------

-- One row per source that sends here: how far it has been applied.
CREATE TABLE teleport.source (
    name        text PRIMARY KEY,
    applied_seq bigint NOT NULL DEFAULT 0,
    applied_at  timestamptz,
    tick_time   timestamptz,         -- source clock time of the last applied batch
    error       text,                -- why the next batch is held, if it is
    error_seq   bigint,
    error_at    timestamptz,
    skip_seq    bigint               -- an operator asked to skip this batch
);

-- Received chunks of batches, stored before the request is answered.
CREATE TABLE teleport.received_chunk (
    source      text NOT NULL,
    seq         bigint NOT NULL,
    chunk       integer NOT NULL,
    last        boolean NOT NULL,
    events      integer NOT NULL,
    nrows       bigint NOT NULL,
    tick_time   timestamptz NOT NULL,
    body        bytea NOT NULL,      -- gzip of the JSON array of events
    received_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
    PRIMARY KEY (source, seq, chunk)
);
