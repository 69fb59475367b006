-- Source side: everything written per event or per batch lives in one of
-- three slots, and a slot every party is done with is emptied with TRUNCATE,
-- as PgQ rotates its event tables. DELETE left dead rows that no vacuum may
-- remove while any snapshot older than them is open on the database (a
-- report, a pg_dump): a snapshot held for minutes grew teleport.event many
-- times over, and the one row per target, updated on every batch, piled up
-- thousands of dead versions. TRUNCATE needs no vacuum and waits for no
-- snapshot, and nothing in a slot is updated: a target's cursor and its
-- acknowledgements are rows added to teleport.cursor and teleport.ack, the
-- newest one counting.
--
-- The slot a row goes to is teleport.slot_seq's value modulo 3, read by
-- teleport.slot() as the row is written. A sequence is read outside
-- transactions: a REPEATABLE READ snapshot taken before a rotation sees the
-- new value. It moves only with setval, which is logged exactly (nextval
-- logs values ahead, and after a crash would come back further on). A slot
-- is emptied holding its tables exclusively, so no transaction that wrote
-- to it still runs, and only once every target has stored its events (see
-- store.VacuumSource); a row written to it after (by a statement that read
-- the slot just before the rotation) simply waits there for the next time.

CREATE SEQUENCE teleport.slot_seq MINVALUE 0 START 0 NO CYCLE;

CREATE FUNCTION teleport.slot() RETURNS smallint
    LANGUAGE plpgsql
    AS $$
BEGIN
    RETURN (SELECT (s.last_value OPERATOR(pg_catalog.%) 3)::smallint FROM teleport.slot_seq s);
END
$$;

-- One row per rotation: rotation n writes to slot n % 3.
CREATE TABLE teleport.rotation (
    n bigint PRIMARY KEY,
    started_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
    emptied_at timestamptz
);
INSERT INTO teleport.rotation (n) VALUES (0);

-- The old tables are copied into slot 0 under an exclusive lock: captured
-- writes wait for this migration, none is lost.
LOCK TABLE teleport.event, teleport.tick, teleport.target, teleport.batch, teleport.batch_ddl IN ACCESS EXCLUSIVE MODE;

ALTER TABLE teleport.event RENAME TO event_old;
ALTER INDEX teleport.event_xid_idx RENAME TO event_old_xid_idx;
CREATE TABLE teleport.event (
    id bigint GENERATED ALWAYS AS IDENTITY (SEQUENCE NAME teleport.event_id_seq_new),
    xid xid8 NOT NULL DEFAULT pg_catalog.pg_current_xact_id(),
    relid oid NOT NULL,
    schema_name text NOT NULL,
    table_name text NOT NULL,
    op "char" NOT NULL,
    origin text,
    nrows integer NOT NULL,
    data json,
    slot smallint NOT NULL DEFAULT teleport.slot()
) PARTITION BY LIST (slot);
CREATE TABLE teleport.event_0 PARTITION OF teleport.event FOR VALUES IN (0);
CREATE TABLE teleport.event_1 PARTITION OF teleport.event FOR VALUES IN (1);
CREATE TABLE teleport.event_2 PARTITION OF teleport.event FOR VALUES IN (2);
CREATE INDEX event_xid_idx ON teleport.event (xid);
INSERT INTO teleport.event (id, xid, relid, schema_name, table_name, op, origin, nrows, data, slot)
OVERRIDING SYSTEM VALUE
SELECT id, xid, relid, schema_name, table_name, op, origin, nrows, data, 0 FROM teleport.event_old;

ALTER TABLE teleport.tick RENAME TO tick_old;
ALTER TABLE teleport.target DROP CONSTRAINT target_last_tick_fkey;
CREATE TABLE teleport.tick (
    id bigint GENERATED ALWAYS AS IDENTITY (SEQUENCE NAME teleport.tick_id_seq_new),
    snapshot pg_snapshot NOT NULL,
    created_at timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp(),
    slot smallint NOT NULL DEFAULT teleport.slot()
) PARTITION BY LIST (slot);
CREATE TABLE teleport.tick_0 PARTITION OF teleport.tick FOR VALUES IN (0);
CREATE TABLE teleport.tick_1 PARTITION OF teleport.tick FOR VALUES IN (1);
CREATE TABLE teleport.tick_2 PARTITION OF teleport.tick FOR VALUES IN (2);
CREATE INDEX tick_id_idx ON teleport.tick (id);
INSERT INTO teleport.tick (id, snapshot, created_at, slot)
OVERRIDING SYSTEM VALUE
SELECT id, snapshot, created_at, 0 FROM teleport.tick_old;

-- Identities go on from where the old tables' were: event ids order the
-- stream, and tick ids are compared across the change.
DO $$
BEGIN
    PERFORM pg_catalog.setval('teleport.event_id_seq_new',
                              coalesce(pg_catalog.pg_sequence_last_value('teleport.event_id_seq'), 0) + 1, false);
    PERFORM pg_catalog.setval('teleport.tick_id_seq_new',
                              coalesce(pg_catalog.pg_sequence_last_value('teleport.tick_id_seq'), 0) + 1, false);
END
$$;
DROP TABLE teleport.event_old, teleport.tick_old;
ALTER SEQUENCE teleport.event_id_seq_new RENAME TO event_id_seq;
ALTER SEQUENCE teleport.tick_id_seq_new RENAME TO tick_id_seq;

-- Batches: kept until applied, never updated (sent_at went: nothing read
-- it). (target, seq) stays unique through the batcher, which cuts a
-- target's next number holding its teleport.target row.
ALTER TABLE teleport.batch_ddl RENAME TO batch_ddl_old;
ALTER TABLE teleport.batch RENAME TO batch_old;
CREATE TABLE teleport.batch (
    target text NOT NULL REFERENCES teleport.target (name) ON DELETE CASCADE,
    seq bigint NOT NULL,
    from_tick bigint NOT NULL,
    to_tick bigint NOT NULL,
    events integer NOT NULL,
    nrows bigint NOT NULL,
    chunk_rows integer NOT NULL,
    schema_regex text NOT NULL,
    table_regex text NOT NULL,
    tick_time timestamptz NOT NULL,
    created_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
    slot smallint NOT NULL DEFAULT teleport.slot()
) PARTITION BY LIST (slot);
CREATE TABLE teleport.batch_0 PARTITION OF teleport.batch FOR VALUES IN (0);
CREATE TABLE teleport.batch_1 PARTITION OF teleport.batch FOR VALUES IN (1);
CREATE TABLE teleport.batch_2 PARTITION OF teleport.batch FOR VALUES IN (2);
CREATE INDEX batch_target_seq_idx ON teleport.batch (target, seq);
INSERT INTO teleport.batch (target, seq, from_tick, to_tick, events, nrows, chunk_rows, schema_regex, table_regex, tick_time, created_at, slot)
SELECT target, seq, from_tick, to_tick, events, nrows, chunk_rows, schema_regex, table_regex, tick_time, created_at, 0
FROM teleport.batch_old;

CREATE TABLE teleport.batch_ddl (
    target text NOT NULL,
    seq bigint NOT NULL,
    pos integer NOT NULL,
    before_event bigint NOT NULL,
    ddl json NOT NULL,
    slot smallint NOT NULL DEFAULT teleport.slot()
) PARTITION BY LIST (slot);
CREATE TABLE teleport.batch_ddl_0 PARTITION OF teleport.batch_ddl FOR VALUES IN (0);
CREATE TABLE teleport.batch_ddl_1 PARTITION OF teleport.batch_ddl FOR VALUES IN (1);
CREATE TABLE teleport.batch_ddl_2 PARTITION OF teleport.batch_ddl FOR VALUES IN (2);
CREATE INDEX batch_ddl_target_seq_idx ON teleport.batch_ddl (target, seq, pos);
INSERT INTO teleport.batch_ddl (target, seq, pos, before_event, ddl, slot)
SELECT target, seq, pos, before_event, ddl, 0 FROM teleport.batch_ddl_old;
DROP TABLE teleport.batch_ddl_old, teleport.batch_old;

-- A target's cursor (the tick it is cut up to, the next sequence number)
-- and what it said it stored and applied: a row added per change, the
-- newest counting.
CREATE TABLE teleport.cursor (
    target text NOT NULL,
    tick bigint NOT NULL,
    next_seq bigint NOT NULL,
    slot smallint NOT NULL DEFAULT teleport.slot()
) PARTITION BY LIST (slot);
CREATE TABLE teleport.cursor_0 PARTITION OF teleport.cursor FOR VALUES IN (0);
CREATE TABLE teleport.cursor_1 PARTITION OF teleport.cursor FOR VALUES IN (1);
CREATE TABLE teleport.cursor_2 PARTITION OF teleport.cursor FOR VALUES IN (2);
CREATE INDEX cursor_target_tick_idx ON teleport.cursor (target, tick, next_seq);

CREATE TABLE teleport.ack (
    target text NOT NULL,
    acked_seq bigint NOT NULL,
    applied_seq bigint NOT NULL,
    at timestamptz NOT NULL DEFAULT pg_catalog.now(),
    slot smallint NOT NULL DEFAULT teleport.slot()
) PARTITION BY LIST (slot);
CREATE TABLE teleport.ack_0 PARTITION OF teleport.ack FOR VALUES IN (0);
CREATE TABLE teleport.ack_1 PARTITION OF teleport.ack FOR VALUES IN (1);
CREATE TABLE teleport.ack_2 PARTITION OF teleport.ack FOR VALUES IN (2);
CREATE INDEX ack_target_seq_idx ON teleport.ack (target, acked_seq, applied_seq);

INSERT INTO teleport.cursor (target, tick, next_seq, slot) SELECT name, last_tick, next_seq, 0 FROM teleport.target;
INSERT INTO teleport.ack (target, acked_seq, applied_seq, slot) SELECT name, acked_seq, applied_seq, 0 FROM teleport.target;
ALTER TABLE teleport.target
    DROP COLUMN last_tick,
    DROP COLUMN next_seq,
    DROP COLUMN acked_seq,
    DROP COLUMN applied_seq;

-- Where each target stands: its newest cursor and acknowledgement.
CREATE VIEW teleport.target_state AS
SELECT g.name, g.schema_regex, g.table_regex, c.tick AS last_tick, c.next_seq,
       coalesce(a.acked_seq, 0) AS acked_seq, coalesce(a.applied_seq, 0) AS applied_seq
FROM teleport.target g
CROSS JOIN LATERAL (SELECT c.tick, c.next_seq FROM teleport.cursor c
                    WHERE c.target = g.name
                    ORDER BY c.tick DESC, c.next_seq DESC LIMIT 1) c
LEFT JOIN LATERAL (SELECT a.acked_seq, a.applied_seq FROM teleport.ack a
                   WHERE a.target = g.name
                   ORDER BY a.acked_seq DESC, a.applied_seq DESC LIMIT 1) a ON true;

DO $$
BEGIN
    IF pg_catalog.current_setting('server_version_num')::int >= 140000 THEN
        -- On the parent for partitions made later, and on each one: a
        -- partition does not take it from its parent once made.
        EXECUTE 'ALTER TABLE teleport.event ALTER COLUMN data SET COMPRESSION lz4';
        EXECUTE 'ALTER TABLE teleport.event_0 ALTER COLUMN data SET COMPRESSION lz4';
        EXECUTE 'ALTER TABLE teleport.event_1 ALTER COLUMN data SET COMPRESSION lz4';
        EXECUTE 'ALTER TABLE teleport.event_2 ALTER COLUMN data SET COMPRESSION lz4';
    END IF;
EXCEPTION WHEN feature_not_supported THEN
    NULL;
END
$$;
