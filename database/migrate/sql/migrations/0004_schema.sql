-- Schema replication: catalog snapshots travel in the event stream as 'S'
-- events written by the ddlwatcher; the batcher diffs them per target into
-- DDL that the batch carries, in order with its row changes.

ALTER TABLE teleport.event DROP CONSTRAINT event_op_check;
ALTER TABLE teleport.event ADD CONSTRAINT event_op_check
    CHECK (op IN ('I', 'U', 'D', 'T', 'S')) NOT VALID;
ALTER TABLE teleport.event VALIDATE CONSTRAINT event_op_check;

-- The last snapshot written to the stream, so an unchanged catalog writes
-- nothing.
CREATE TABLE teleport.ddl_state (
    id       boolean PRIMARY KEY DEFAULT true CHECK (id),
    event_id bigint NOT NULL,
    hash     text NOT NULL
);

-- Per target, the snapshot its DDL was last diffed against: what the target
-- has been sent.
CREATE TABLE teleport.target_schema (
    target   text PRIMARY KEY REFERENCES teleport.target (name) ON DELETE CASCADE,
    event_id bigint NOT NULL,   -- the 'S' event the snapshot came from
    snapshot json NOT NULL
);

-- The DDL a batch carries, computed when the batch is cut so a resend is
-- identical: applied before the batch's first event with an id of at least
-- before_event (after its last event when no event is that late).
CREATE TABLE teleport.batch_ddl (
    target       text NOT NULL,
    seq          bigint NOT NULL,
    pos          integer NOT NULL,
    before_event bigint NOT NULL,
    ddl          json NOT NULL,   -- {"search_path": ..., "items": [{"key", "sql", "adopt"}]}
    PRIMARY KEY (target, seq, pos),
    FOREIGN KEY (target, seq) REFERENCES teleport.batch (target, seq) ON DELETE CASCADE
);

-- Target side: schema changes applied ahead of the batch that carries them,
-- to release an earlier batch held for want of them. The k-th schema change
-- of batch (source, seq) is skipped when the batch is applied.
CREATE TABLE teleport.ddl_applied_ahead (
    source text NOT NULL,
    seq    bigint NOT NULL,
    k      integer NOT NULL,
    PRIMARY KEY (source, seq, k)
);
