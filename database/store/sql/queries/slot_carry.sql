-- Writes again, into the current slot, what slot $1 holds that is still
-- needed, before it is emptied: the batches not stored on their target
-- (the transmitter reads them) with their schema changes and the ticks
-- they start and end at, the batch after the last applied (its tick time
-- is the target's lag), every tick from the oldest cursor on (a batcher
-- may cut up to it next), and each target's newest cursor and
-- acknowledgement. A target that stored a long backlog it has not applied
-- (a held batch) leaves nothing to carry but one batch. Run holding the
-- targets' rows, so no batch is being cut.
WITH g AS (SELECT * FROM teleport.target_state),
     kept AS (SELECT b.* FROM teleport.batch b JOIN g ON g.name = b.target
              WHERE b.seq > g.acked_seq OR b.seq = g.applied_seq + 1),
     ticks AS (
         INSERT INTO teleport.tick (id, snapshot, created_at) OVERRIDING SYSTEM VALUE
         SELECT t.id, t.snapshot, t.created_at FROM teleport.tick t
         WHERE t.slot = $1::smallint
           AND (t.id >= (SELECT min(g.last_tick) FROM g)
                OR t.id IN (SELECT k.from_tick FROM kept k UNION ALL SELECT k.to_tick FROM kept k))
     ),
     batches AS (
         INSERT INTO teleport.batch (target, seq, from_tick, to_tick, events, nrows, chunk_rows,
                                     schema_regex, table_regex, tick_time, created_at)
         SELECT k.target, k.seq, k.from_tick, k.to_tick, k.events, k.nrows, k.chunk_rows,
                k.schema_regex, k.table_regex, k.tick_time, k.created_at
         FROM kept k WHERE k.slot = $1::smallint
     ),
     ddls AS (
         INSERT INTO teleport.batch_ddl (target, seq, pos, before_event, ddl)
         SELECT d.target, d.seq, d.pos, d.before_event, d.ddl
         FROM teleport.batch_ddl d JOIN g ON g.name = d.target
         WHERE d.slot = $1::smallint AND d.seq > g.acked_seq
     ),
     cursors AS (
         INSERT INTO teleport.cursor (target, tick, next_seq)
         SELECT g.name, g.last_tick, g.next_seq FROM g
         WHERE EXISTS (SELECT 1 FROM teleport.cursor c
                       WHERE c.slot = $1::smallint AND c.target = g.name
                         AND c.tick = g.last_tick AND c.next_seq = g.next_seq)
     )
INSERT INTO teleport.ack (target, acked_seq, applied_seq)
SELECT g.name, g.acked_seq, g.applied_seq FROM g
WHERE EXISTS (SELECT 1 FROM teleport.ack a
              WHERE a.slot = $1::smallint AND a.target = g.name
                AND a.acked_seq = g.acked_seq AND a.applied_seq = g.applied_seq)
