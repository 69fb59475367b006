-- Today's teleport schema, as the migrations in sql/migrations leave it
-- (pg_dump --schema-only --schema teleport), for reading. Written by
-- TELEPORT_UPDATE_SCHEMA_SQL=1 go test -run TestSchemaSQL ./database/migrate/
-- and checked against the migrations by the same test without it.
-- On 14 and later, a server built with lz4 also has
-- ALTER TABLE teleport.event ALTER COLUMN data SET COMPRESSION lz4 (0008).

CREATE SCHEMA teleport;

COMMENT ON SCHEMA teleport IS 'Teleport replication state: captured events, batches, apply progress. Managed by teleport; do not edit.';

CREATE FUNCTION teleport.capture_rows() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    AS $$
DECLARE
    changed bigint;
BEGIN
    INSERT INTO teleport.event (relid, schema_name, table_name, op, origin, nrows, data)
    SELECT TG_RELID, TG_TABLE_SCHEMA, TG_TABLE_NAME, pg_catalog.left(TG_OP, 1),
           pg_catalog.current_setting('teleport.origin', true), 1,
           pg_catalog.json_build_array(pg_catalog.row_to_json(r.*))
    FROM changed_rows r
    WHERE NOT EXISTS (SELECT FROM changed_rows OFFSET 1);
    GET DIAGNOSTICS changed = ROW_COUNT;
    IF changed OPERATOR(pg_catalog.=) 1 THEN
        RETURN NULL;
    END IF;
    INSERT INTO teleport.event (relid, schema_name, table_name, op, origin, nrows, data)
    SELECT TG_RELID, TG_TABLE_SCHEMA, TG_TABLE_NAME, pg_catalog.left(TG_OP, 1),
           pg_catalog.current_setting('teleport.origin', true),
           pg_catalog.count(*), pg_catalog.json_agg(j ORDER BY rn)
    FROM (SELECT pg_catalog.row_to_json(r.*) AS j,
                 pg_catalog.row_number() OVER w AS rn,
                 pg_catalog.sum(pg_catalog.pg_column_size(r.*)) OVER w AS size
          FROM changed_rows r
          WINDOW w AS (ROWS UNBOUNDED PRECEDING)) numbered
    GROUP BY ((rn OPERATOR(pg_catalog.-) 1) OPERATOR(pg_catalog./) 1000)
             OPERATOR(pg_catalog.+) (size OPERATOR(pg_catalog./) 4194304)
    ORDER BY ((rn OPERATOR(pg_catalog.-) 1) OPERATOR(pg_catalog./) 1000)
             OPERATOR(pg_catalog.+) (size OPERATOR(pg_catalog./) 4194304);
    RETURN NULL;
END
$$;

CREATE FUNCTION teleport.capture_truncate() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
BEGIN
    INSERT INTO teleport.event (relid, schema_name, table_name, op, origin, nrows, data)
    VALUES (TG_RELID, TG_TABLE_SCHEMA, TG_TABLE_NAME, 'T',
            pg_catalog.current_setting('teleport.origin', true), 0, NULL);
    RETURN NULL;
END
$$;

CREATE FUNCTION teleport.capture_update() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    AS $$
DECLARE
    changed bigint;
BEGIN
    INSERT INTO teleport.event (relid, schema_name, table_name, op, origin, nrows, data)
    SELECT TG_RELID, TG_TABLE_SCHEMA, TG_TABLE_NAME, 'U',
           pg_catalog.current_setting('teleport.origin', true), 1,
           pg_catalog.json_build_array(pg_catalog.json_build_array(
               pg_catalog.row_to_json(o.*), pg_catalog.row_to_json(n.*)))
    FROM old_rows o, new_rows n
    WHERE NOT EXISTS (SELECT FROM new_rows OFFSET 1);
    GET DIAGNOSTICS changed = ROW_COUNT;
    IF changed OPERATOR(pg_catalog.=) 1 THEN
        RETURN NULL;
    END IF;
    INSERT INTO teleport.event (relid, schema_name, table_name, op, origin, nrows, data)
    SELECT TG_RELID, TG_TABLE_SCHEMA, TG_TABLE_NAME, 'U',
           pg_catalog.current_setting('teleport.origin', true),
           pg_catalog.count(*), pg_catalog.json_agg(pg_catalog.json_build_array(oj, nj) ORDER BY rn)
    FROM (SELECT pg_catalog.row_to_json(o.*) AS oj,
                 pg_catalog.row_number() OVER w AS rn,
                 pg_catalog.sum(pg_catalog.pg_column_size(o.*)) OVER w AS osize
          FROM old_rows o
          WINDOW w AS (ROWS UNBOUNDED PRECEDING)) olds
    JOIN (SELECT pg_catalog.row_to_json(n.*) AS nj,
                 pg_catalog.row_number() OVER w AS rn,
                 pg_catalog.sum(pg_catalog.pg_column_size(n.*)) OVER w AS nsize
          FROM new_rows n
          WINDOW w AS (ROWS UNBOUNDED PRECEDING)) news USING (rn)
    GROUP BY ((rn OPERATOR(pg_catalog.-) 1) OPERATOR(pg_catalog./) 1000)
             OPERATOR(pg_catalog.+) ((osize OPERATOR(pg_catalog.+) nsize) OPERATOR(pg_catalog./) 4194304)
    ORDER BY ((rn OPERATOR(pg_catalog.-) 1) OPERATOR(pg_catalog./) 1000)
             OPERATOR(pg_catalog.+) ((osize OPERATOR(pg_catalog.+) nsize) OPERATOR(pg_catalog./) 4194304);
    RETURN NULL;
END
$$;

CREATE SEQUENCE teleport.slot_seq
    START WITH 0
    INCREMENT BY 1
    MINVALUE 0
    NO MAXVALUE
    CACHE 1;

CREATE TABLE teleport.ack (
    target text NOT NULL,
    acked_seq bigint NOT NULL,
    applied_seq bigint NOT NULL,
    at timestamp with time zone DEFAULT now() NOT NULL,
    slot smallint DEFAULT ((COALESCE(pg_sequence_last_value('teleport.slot_seq'::regclass), (0)::bigint) % (3)::bigint))::smallint NOT NULL
)
PARTITION BY LIST (slot);

CREATE TABLE teleport.ack_0 (
    target text NOT NULL,
    acked_seq bigint NOT NULL,
    applied_seq bigint NOT NULL,
    at timestamp with time zone DEFAULT now() NOT NULL,
    slot smallint DEFAULT ((COALESCE(pg_sequence_last_value('teleport.slot_seq'::regclass), (0)::bigint) % (3)::bigint))::smallint NOT NULL
);

CREATE TABLE teleport.ack_1 (
    target text NOT NULL,
    acked_seq bigint NOT NULL,
    applied_seq bigint NOT NULL,
    at timestamp with time zone DEFAULT now() NOT NULL,
    slot smallint DEFAULT ((COALESCE(pg_sequence_last_value('teleport.slot_seq'::regclass), (0)::bigint) % (3)::bigint))::smallint NOT NULL
);

CREATE TABLE teleport.ack_2 (
    target text NOT NULL,
    acked_seq bigint NOT NULL,
    applied_seq bigint NOT NULL,
    at timestamp with time zone DEFAULT now() NOT NULL,
    slot smallint DEFAULT ((COALESCE(pg_sequence_last_value('teleport.slot_seq'::regclass), (0)::bigint) % (3)::bigint))::smallint NOT NULL
);

CREATE TABLE teleport.batch (
    target text NOT NULL,
    seq bigint NOT NULL,
    from_tick bigint NOT NULL,
    to_tick bigint NOT NULL,
    events integer NOT NULL,
    nrows bigint NOT NULL,
    chunk_rows integer NOT NULL,
    schema_regex text NOT NULL,
    table_regex text NOT NULL,
    tick_time timestamp with time zone NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    slot smallint DEFAULT ((COALESCE(pg_sequence_last_value('teleport.slot_seq'::regclass), (0)::bigint) % (3)::bigint))::smallint NOT NULL
)
PARTITION BY LIST (slot);

CREATE TABLE teleport.batch_0 (
    target text NOT NULL,
    seq bigint NOT NULL,
    from_tick bigint NOT NULL,
    to_tick bigint NOT NULL,
    events integer NOT NULL,
    nrows bigint NOT NULL,
    chunk_rows integer NOT NULL,
    schema_regex text NOT NULL,
    table_regex text NOT NULL,
    tick_time timestamp with time zone NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    slot smallint DEFAULT ((COALESCE(pg_sequence_last_value('teleport.slot_seq'::regclass), (0)::bigint) % (3)::bigint))::smallint NOT NULL
);

CREATE TABLE teleport.batch_1 (
    target text NOT NULL,
    seq bigint NOT NULL,
    from_tick bigint NOT NULL,
    to_tick bigint NOT NULL,
    events integer NOT NULL,
    nrows bigint NOT NULL,
    chunk_rows integer NOT NULL,
    schema_regex text NOT NULL,
    table_regex text NOT NULL,
    tick_time timestamp with time zone NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    slot smallint DEFAULT ((COALESCE(pg_sequence_last_value('teleport.slot_seq'::regclass), (0)::bigint) % (3)::bigint))::smallint NOT NULL
);

CREATE TABLE teleport.batch_2 (
    target text NOT NULL,
    seq bigint NOT NULL,
    from_tick bigint NOT NULL,
    to_tick bigint NOT NULL,
    events integer NOT NULL,
    nrows bigint NOT NULL,
    chunk_rows integer NOT NULL,
    schema_regex text NOT NULL,
    table_regex text NOT NULL,
    tick_time timestamp with time zone NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    slot smallint DEFAULT ((COALESCE(pg_sequence_last_value('teleport.slot_seq'::regclass), (0)::bigint) % (3)::bigint))::smallint NOT NULL
);

CREATE TABLE teleport.batch_ddl (
    target text NOT NULL,
    seq bigint NOT NULL,
    pos integer NOT NULL,
    before_event bigint NOT NULL,
    ddl json NOT NULL,
    slot smallint DEFAULT ((COALESCE(pg_sequence_last_value('teleport.slot_seq'::regclass), (0)::bigint) % (3)::bigint))::smallint NOT NULL
)
PARTITION BY LIST (slot);

CREATE TABLE teleport.batch_ddl_0 (
    target text NOT NULL,
    seq bigint NOT NULL,
    pos integer NOT NULL,
    before_event bigint NOT NULL,
    ddl json NOT NULL,
    slot smallint DEFAULT ((COALESCE(pg_sequence_last_value('teleport.slot_seq'::regclass), (0)::bigint) % (3)::bigint))::smallint NOT NULL
);

CREATE TABLE teleport.batch_ddl_1 (
    target text NOT NULL,
    seq bigint NOT NULL,
    pos integer NOT NULL,
    before_event bigint NOT NULL,
    ddl json NOT NULL,
    slot smallint DEFAULT ((COALESCE(pg_sequence_last_value('teleport.slot_seq'::regclass), (0)::bigint) % (3)::bigint))::smallint NOT NULL
);

CREATE TABLE teleport.batch_ddl_2 (
    target text NOT NULL,
    seq bigint NOT NULL,
    pos integer NOT NULL,
    before_event bigint NOT NULL,
    ddl json NOT NULL,
    slot smallint DEFAULT ((COALESCE(pg_sequence_last_value('teleport.slot_seq'::regclass), (0)::bigint) % (3)::bigint))::smallint NOT NULL
);

CREATE TABLE teleport.cursor (
    target text NOT NULL,
    tick bigint NOT NULL,
    next_seq bigint NOT NULL,
    slot smallint DEFAULT ((COALESCE(pg_sequence_last_value('teleport.slot_seq'::regclass), (0)::bigint) % (3)::bigint))::smallint NOT NULL
)
PARTITION BY LIST (slot);

CREATE TABLE teleport.cursor_0 (
    target text NOT NULL,
    tick bigint NOT NULL,
    next_seq bigint NOT NULL,
    slot smallint DEFAULT ((COALESCE(pg_sequence_last_value('teleport.slot_seq'::regclass), (0)::bigint) % (3)::bigint))::smallint NOT NULL
);

CREATE TABLE teleport.cursor_1 (
    target text NOT NULL,
    tick bigint NOT NULL,
    next_seq bigint NOT NULL,
    slot smallint DEFAULT ((COALESCE(pg_sequence_last_value('teleport.slot_seq'::regclass), (0)::bigint) % (3)::bigint))::smallint NOT NULL
);

CREATE TABLE teleport.cursor_2 (
    target text NOT NULL,
    tick bigint NOT NULL,
    next_seq bigint NOT NULL,
    slot smallint DEFAULT ((COALESCE(pg_sequence_last_value('teleport.slot_seq'::regclass), (0)::bigint) % (3)::bigint))::smallint NOT NULL
);

CREATE TABLE teleport.ddl_applied_ahead (
    source text NOT NULL,
    seq bigint NOT NULL,
    k integer NOT NULL
);

CREATE TABLE teleport.ddl_state (
    id boolean DEFAULT true NOT NULL,
    event_id bigint NOT NULL,
    hash text NOT NULL,
    CONSTRAINT ddl_state_id_check CHECK (id)
);

CREATE TABLE teleport.event (
    id bigint NOT NULL,
    xid xid8 DEFAULT pg_current_xact_id() NOT NULL,
    relid oid NOT NULL,
    schema_name text NOT NULL,
    table_name text NOT NULL,
    op "char" NOT NULL,
    origin text,
    nrows integer NOT NULL,
    data json,
    slot smallint DEFAULT ((COALESCE(pg_sequence_last_value('teleport.slot_seq'::regclass), (0)::bigint) % (3)::bigint))::smallint NOT NULL
)
PARTITION BY LIST (slot);

CREATE TABLE teleport.event_0 (
    id bigint NOT NULL,
    xid xid8 DEFAULT pg_current_xact_id() NOT NULL,
    relid oid NOT NULL,
    schema_name text NOT NULL,
    table_name text NOT NULL,
    op "char" NOT NULL,
    origin text,
    nrows integer NOT NULL,
    data json,
    slot smallint DEFAULT ((COALESCE(pg_sequence_last_value('teleport.slot_seq'::regclass), (0)::bigint) % (3)::bigint))::smallint NOT NULL
);

CREATE TABLE teleport.event_1 (
    id bigint NOT NULL,
    xid xid8 DEFAULT pg_current_xact_id() NOT NULL,
    relid oid NOT NULL,
    schema_name text NOT NULL,
    table_name text NOT NULL,
    op "char" NOT NULL,
    origin text,
    nrows integer NOT NULL,
    data json,
    slot smallint DEFAULT ((COALESCE(pg_sequence_last_value('teleport.slot_seq'::regclass), (0)::bigint) % (3)::bigint))::smallint NOT NULL
);

CREATE TABLE teleport.event_2 (
    id bigint NOT NULL,
    xid xid8 DEFAULT pg_current_xact_id() NOT NULL,
    relid oid NOT NULL,
    schema_name text NOT NULL,
    table_name text NOT NULL,
    op "char" NOT NULL,
    origin text,
    nrows integer NOT NULL,
    data json,
    slot smallint DEFAULT ((COALESCE(pg_sequence_last_value('teleport.slot_seq'::regclass), (0)::bigint) % (3)::bigint))::smallint NOT NULL
);

ALTER TABLE teleport.event ALTER COLUMN id ADD GENERATED ALWAYS AS IDENTITY (
    SEQUENCE NAME teleport.event_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);

CREATE TABLE teleport.instance (
    id uuid DEFAULT gen_random_uuid() NOT NULL,
    one boolean DEFAULT true NOT NULL,
    CONSTRAINT instance_one_check CHECK (one)
);

CREATE TABLE teleport.load (
    source text NOT NULL,
    run text NOT NULL,
    started_at timestamp with time zone DEFAULT now() NOT NULL,
    resumed_at timestamp with time zone,
    finished_at timestamp with time zone
);

CREATE TABLE teleport.load_chunk (
    source text NOT NULL,
    schema_name text NOT NULL,
    table_name text NOT NULL,
    chunk integer NOT NULL,
    chunks integer NOT NULL,
    run text NOT NULL,
    key_column text NOT NULL,
    lo bigint,
    hi bigint,
    snapshot pg_snapshot NOT NULL,
    nrows bigint NOT NULL,
    nbytes bigint NOT NULL,
    done_at timestamp with time zone DEFAULT now() NOT NULL
);

CREATE TABLE teleport.load_fk (
    source text NOT NULL,
    schema_name text NOT NULL,
    table_name text NOT NULL,
    name text NOT NULL,
    definition text NOT NULL
);

CREATE TABLE teleport.load_table (
    source text NOT NULL,
    schema_name text NOT NULL,
    table_name text NOT NULL,
    est_rows bigint NOT NULL,
    est_bytes bigint NOT NULL,
    snapshot pg_snapshot,
    nrows bigint,
    nbytes bigint,
    done_at timestamp with time zone,
    partitions jsonb DEFAULT '[]'::jsonb NOT NULL,
    in_run boolean DEFAULT true NOT NULL
);

CREATE TABLE teleport.received_chunk (
    source text NOT NULL,
    seq bigint NOT NULL,
    chunk integer NOT NULL,
    last boolean NOT NULL,
    events integer NOT NULL,
    nrows bigint NOT NULL,
    tick_time timestamp with time zone NOT NULL,
    body bytea NOT NULL,
    received_at timestamp with time zone DEFAULT now() NOT NULL,
    from_tick bigint,
    to_tick bigint,
    batch_events integer,
    checksum bytea
);
ALTER TABLE ONLY teleport.received_chunk ALTER COLUMN body SET STORAGE EXTERNAL;

CREATE TABLE teleport.rotation (
    n bigint NOT NULL,
    started_at timestamp with time zone DEFAULT now() NOT NULL,
    emptied_at timestamp with time zone
);

CREATE TABLE teleport.schema_migration (
    version integer NOT NULL,
    name text NOT NULL,
    applied_at timestamp with time zone DEFAULT now() NOT NULL
);

CREATE TABLE teleport.schema_skipped (
    target text NOT NULL,
    object text NOT NULL,
    reason text NOT NULL,
    first_seen timestamp with time zone DEFAULT now() NOT NULL,
    last_seen timestamp with time zone DEFAULT now() NOT NULL
);

CREATE TABLE teleport.source (
    name text NOT NULL,
    applied_seq bigint DEFAULT 0 NOT NULL,
    applied_at timestamp with time zone,
    tick_time timestamp with time zone,
    error text,
    error_seq bigint,
    error_at timestamp with time zone,
    skip_seq bigint,
    instance uuid,
    part_seq bigint,
    part_ddl integer,
    part_item integer,
    part_deferred integer[]
);

CREATE TABLE teleport.source_schema_skipped (
    source text NOT NULL,
    object text NOT NULL,
    reason text NOT NULL,
    first_seen timestamp with time zone DEFAULT now() NOT NULL,
    last_seen timestamp with time zone DEFAULT now() NOT NULL
);

CREATE TABLE teleport.target (
    name text NOT NULL,
    schema_regex text NOT NULL,
    table_regex text NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL
);

CREATE TABLE teleport.target_schema (
    target text NOT NULL,
    event_id bigint NOT NULL,
    snapshot json NOT NULL
);

CREATE VIEW teleport.target_state AS
 SELECT g.name,
    g.schema_regex,
    g.table_regex,
    c.tick AS last_tick,
    c.next_seq,
    COALESCE(a.acked_seq, (0)::bigint) AS acked_seq,
    COALESCE(a.applied_seq, (0)::bigint) AS applied_seq
   FROM ((teleport.target g
     CROSS JOIN LATERAL ( SELECT c_1.tick,
            c_1.next_seq
           FROM teleport.cursor c_1
          WHERE (c_1.target = g.name)
          ORDER BY c_1.tick DESC, c_1.next_seq DESC
         LIMIT 1) c)
     LEFT JOIN LATERAL ( SELECT a_1.acked_seq,
            a_1.applied_seq
           FROM teleport.ack a_1
          WHERE (a_1.target = g.name)
          ORDER BY a_1.acked_seq DESC, a_1.applied_seq DESC
         LIMIT 1) a ON (true));

CREATE TABLE teleport.tick (
    id bigint NOT NULL,
    snapshot pg_snapshot NOT NULL,
    created_at timestamp with time zone DEFAULT clock_timestamp() NOT NULL,
    slot smallint DEFAULT ((COALESCE(pg_sequence_last_value('teleport.slot_seq'::regclass), (0)::bigint) % (3)::bigint))::smallint NOT NULL
)
PARTITION BY LIST (slot);

CREATE TABLE teleport.tick_0 (
    id bigint NOT NULL,
    snapshot pg_snapshot NOT NULL,
    created_at timestamp with time zone DEFAULT clock_timestamp() NOT NULL,
    slot smallint DEFAULT ((COALESCE(pg_sequence_last_value('teleport.slot_seq'::regclass), (0)::bigint) % (3)::bigint))::smallint NOT NULL
);

CREATE TABLE teleport.tick_1 (
    id bigint NOT NULL,
    snapshot pg_snapshot NOT NULL,
    created_at timestamp with time zone DEFAULT clock_timestamp() NOT NULL,
    slot smallint DEFAULT ((COALESCE(pg_sequence_last_value('teleport.slot_seq'::regclass), (0)::bigint) % (3)::bigint))::smallint NOT NULL
);

CREATE TABLE teleport.tick_2 (
    id bigint NOT NULL,
    snapshot pg_snapshot NOT NULL,
    created_at timestamp with time zone DEFAULT clock_timestamp() NOT NULL,
    slot smallint DEFAULT ((COALESCE(pg_sequence_last_value('teleport.slot_seq'::regclass), (0)::bigint) % (3)::bigint))::smallint NOT NULL
);

ALTER TABLE teleport.tick ALTER COLUMN id ADD GENERATED ALWAYS AS IDENTITY (
    SEQUENCE NAME teleport.tick_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);

ALTER TABLE ONLY teleport.ack ATTACH PARTITION teleport.ack_0 FOR VALUES IN ('0');

ALTER TABLE ONLY teleport.ack ATTACH PARTITION teleport.ack_1 FOR VALUES IN ('1');

ALTER TABLE ONLY teleport.ack ATTACH PARTITION teleport.ack_2 FOR VALUES IN ('2');

ALTER TABLE ONLY teleport.batch ATTACH PARTITION teleport.batch_0 FOR VALUES IN ('0');

ALTER TABLE ONLY teleport.batch ATTACH PARTITION teleport.batch_1 FOR VALUES IN ('1');

ALTER TABLE ONLY teleport.batch ATTACH PARTITION teleport.batch_2 FOR VALUES IN ('2');

ALTER TABLE ONLY teleport.batch_ddl ATTACH PARTITION teleport.batch_ddl_0 FOR VALUES IN ('0');

ALTER TABLE ONLY teleport.batch_ddl ATTACH PARTITION teleport.batch_ddl_1 FOR VALUES IN ('1');

ALTER TABLE ONLY teleport.batch_ddl ATTACH PARTITION teleport.batch_ddl_2 FOR VALUES IN ('2');

ALTER TABLE ONLY teleport.cursor ATTACH PARTITION teleport.cursor_0 FOR VALUES IN ('0');

ALTER TABLE ONLY teleport.cursor ATTACH PARTITION teleport.cursor_1 FOR VALUES IN ('1');

ALTER TABLE ONLY teleport.cursor ATTACH PARTITION teleport.cursor_2 FOR VALUES IN ('2');

ALTER TABLE ONLY teleport.event ATTACH PARTITION teleport.event_0 FOR VALUES IN ('0');

ALTER TABLE ONLY teleport.event ATTACH PARTITION teleport.event_1 FOR VALUES IN ('1');

ALTER TABLE ONLY teleport.event ATTACH PARTITION teleport.event_2 FOR VALUES IN ('2');

ALTER TABLE ONLY teleport.tick ATTACH PARTITION teleport.tick_0 FOR VALUES IN ('0');

ALTER TABLE ONLY teleport.tick ATTACH PARTITION teleport.tick_1 FOR VALUES IN ('1');

ALTER TABLE ONLY teleport.tick ATTACH PARTITION teleport.tick_2 FOR VALUES IN ('2');

ALTER TABLE ONLY teleport.ddl_applied_ahead
    ADD CONSTRAINT ddl_applied_ahead_pkey PRIMARY KEY (source, seq, k);

ALTER TABLE ONLY teleport.ddl_state
    ADD CONSTRAINT ddl_state_pkey PRIMARY KEY (id);

ALTER TABLE ONLY teleport.instance
    ADD CONSTRAINT instance_one_key UNIQUE (one);

ALTER TABLE ONLY teleport.instance
    ADD CONSTRAINT instance_pkey PRIMARY KEY (id);

ALTER TABLE ONLY teleport.load_chunk
    ADD CONSTRAINT load_chunk_pkey PRIMARY KEY (source, schema_name, table_name, chunk);

ALTER TABLE ONLY teleport.load_fk
    ADD CONSTRAINT load_fk_pkey PRIMARY KEY (source, schema_name, table_name, name);

ALTER TABLE ONLY teleport.load
    ADD CONSTRAINT load_pkey PRIMARY KEY (source);

ALTER TABLE ONLY teleport.load_table
    ADD CONSTRAINT load_table_pkey PRIMARY KEY (source, schema_name, table_name);

ALTER TABLE ONLY teleport.received_chunk
    ADD CONSTRAINT received_chunk_pkey PRIMARY KEY (source, seq, chunk);

ALTER TABLE ONLY teleport.rotation
    ADD CONSTRAINT rotation_pkey PRIMARY KEY (n);

ALTER TABLE ONLY teleport.schema_migration
    ADD CONSTRAINT schema_migration_pkey PRIMARY KEY (version);

ALTER TABLE ONLY teleport.schema_skipped
    ADD CONSTRAINT schema_skipped_pkey PRIMARY KEY (target, object);

ALTER TABLE ONLY teleport.source
    ADD CONSTRAINT source_pkey PRIMARY KEY (name);

ALTER TABLE ONLY teleport.source_schema_skipped
    ADD CONSTRAINT source_schema_skipped_pkey PRIMARY KEY (source, object);

ALTER TABLE ONLY teleport.target
    ADD CONSTRAINT target_pkey PRIMARY KEY (name);

ALTER TABLE ONLY teleport.target_schema
    ADD CONSTRAINT target_schema_pkey PRIMARY KEY (target);

CREATE INDEX ack_target_seq_idx ON ONLY teleport.ack USING btree (target, acked_seq, applied_seq);

CREATE INDEX ack_0_target_acked_seq_applied_seq_idx ON teleport.ack_0 USING btree (target, acked_seq, applied_seq);

CREATE INDEX ack_1_target_acked_seq_applied_seq_idx ON teleport.ack_1 USING btree (target, acked_seq, applied_seq);

CREATE INDEX ack_2_target_acked_seq_applied_seq_idx ON teleport.ack_2 USING btree (target, acked_seq, applied_seq);

CREATE INDEX batch_target_seq_idx ON ONLY teleport.batch USING btree (target, seq);

CREATE INDEX batch_0_target_seq_idx ON teleport.batch_0 USING btree (target, seq);

CREATE INDEX batch_1_target_seq_idx ON teleport.batch_1 USING btree (target, seq);

CREATE INDEX batch_2_target_seq_idx ON teleport.batch_2 USING btree (target, seq);

CREATE INDEX batch_ddl_target_seq_idx ON ONLY teleport.batch_ddl USING btree (target, seq, pos);

CREATE INDEX batch_ddl_0_target_seq_pos_idx ON teleport.batch_ddl_0 USING btree (target, seq, pos);

CREATE INDEX batch_ddl_1_target_seq_pos_idx ON teleport.batch_ddl_1 USING btree (target, seq, pos);

CREATE INDEX batch_ddl_2_target_seq_pos_idx ON teleport.batch_ddl_2 USING btree (target, seq, pos);

CREATE INDEX cursor_target_tick_idx ON ONLY teleport.cursor USING btree (target, tick, next_seq);

CREATE INDEX cursor_0_target_tick_next_seq_idx ON teleport.cursor_0 USING btree (target, tick, next_seq);

CREATE INDEX cursor_1_target_tick_next_seq_idx ON teleport.cursor_1 USING btree (target, tick, next_seq);

CREATE INDEX cursor_2_target_tick_next_seq_idx ON teleport.cursor_2 USING btree (target, tick, next_seq);

CREATE INDEX event_xid_idx ON ONLY teleport.event USING btree (xid);

CREATE INDEX event_0_xid_idx ON teleport.event_0 USING btree (xid);

CREATE INDEX event_1_xid_idx ON teleport.event_1 USING btree (xid);

CREATE INDEX event_2_xid_idx ON teleport.event_2 USING btree (xid);

CREATE INDEX tick_id_idx ON ONLY teleport.tick USING btree (id);

CREATE INDEX tick_0_id_idx ON teleport.tick_0 USING btree (id);

CREATE INDEX tick_1_id_idx ON teleport.tick_1 USING btree (id);

CREATE INDEX tick_2_id_idx ON teleport.tick_2 USING btree (id);

ALTER INDEX teleport.ack_target_seq_idx ATTACH PARTITION teleport.ack_0_target_acked_seq_applied_seq_idx;

ALTER INDEX teleport.ack_target_seq_idx ATTACH PARTITION teleport.ack_1_target_acked_seq_applied_seq_idx;

ALTER INDEX teleport.ack_target_seq_idx ATTACH PARTITION teleport.ack_2_target_acked_seq_applied_seq_idx;

ALTER INDEX teleport.batch_target_seq_idx ATTACH PARTITION teleport.batch_0_target_seq_idx;

ALTER INDEX teleport.batch_target_seq_idx ATTACH PARTITION teleport.batch_1_target_seq_idx;

ALTER INDEX teleport.batch_target_seq_idx ATTACH PARTITION teleport.batch_2_target_seq_idx;

ALTER INDEX teleport.batch_ddl_target_seq_idx ATTACH PARTITION teleport.batch_ddl_0_target_seq_pos_idx;

ALTER INDEX teleport.batch_ddl_target_seq_idx ATTACH PARTITION teleport.batch_ddl_1_target_seq_pos_idx;

ALTER INDEX teleport.batch_ddl_target_seq_idx ATTACH PARTITION teleport.batch_ddl_2_target_seq_pos_idx;

ALTER INDEX teleport.cursor_target_tick_idx ATTACH PARTITION teleport.cursor_0_target_tick_next_seq_idx;

ALTER INDEX teleport.cursor_target_tick_idx ATTACH PARTITION teleport.cursor_1_target_tick_next_seq_idx;

ALTER INDEX teleport.cursor_target_tick_idx ATTACH PARTITION teleport.cursor_2_target_tick_next_seq_idx;

ALTER INDEX teleport.event_xid_idx ATTACH PARTITION teleport.event_0_xid_idx;

ALTER INDEX teleport.event_xid_idx ATTACH PARTITION teleport.event_1_xid_idx;

ALTER INDEX teleport.event_xid_idx ATTACH PARTITION teleport.event_2_xid_idx;

ALTER INDEX teleport.tick_id_idx ATTACH PARTITION teleport.tick_0_id_idx;

ALTER INDEX teleport.tick_id_idx ATTACH PARTITION teleport.tick_1_id_idx;

ALTER INDEX teleport.tick_id_idx ATTACH PARTITION teleport.tick_2_id_idx;

ALTER TABLE teleport.batch
    ADD CONSTRAINT batch_target_fkey1 FOREIGN KEY (target) REFERENCES teleport.target(name) ON DELETE CASCADE;

ALTER TABLE ONLY teleport.load_chunk
    ADD CONSTRAINT load_chunk_source_schema_name_table_name_fkey FOREIGN KEY (source, schema_name, table_name) REFERENCES teleport.load_table(source, schema_name, table_name) ON DELETE CASCADE;

ALTER TABLE ONLY teleport.load_fk
    ADD CONSTRAINT load_fk_source_fkey FOREIGN KEY (source) REFERENCES teleport.load(source) ON DELETE CASCADE;

ALTER TABLE ONLY teleport.load_table
    ADD CONSTRAINT load_table_source_fkey FOREIGN KEY (source) REFERENCES teleport.load(source) ON DELETE CASCADE;

ALTER TABLE ONLY teleport.schema_skipped
    ADD CONSTRAINT schema_skipped_target_fkey FOREIGN KEY (target) REFERENCES teleport.target(name) ON DELETE CASCADE;

ALTER TABLE ONLY teleport.source_schema_skipped
    ADD CONSTRAINT source_schema_skipped_source_fkey FOREIGN KEY (source) REFERENCES teleport.source(name) ON DELETE CASCADE;

ALTER TABLE ONLY teleport.target_schema
    ADD CONSTRAINT target_schema_target_fkey FOREIGN KEY (target) REFERENCES teleport.target(name) ON DELETE CASCADE;
