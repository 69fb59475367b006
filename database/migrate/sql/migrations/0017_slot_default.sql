-- Source side: the slot a row is written to is read by the column default
-- itself, with pg_sequence_last_value, instead of by teleport.slot(), a
-- PL/pgSQL function running a query. Every captured statement's event row
-- evaluated that default, and the call with its query was a sixth to a
-- quarter of what capture added to a one-row statement. The value is the
-- same: the sequence's last value modulo 3, read outside the transaction's
-- snapshot. pg_sequence_last_value is NULL for a sequence never set, as
-- teleport.slot_seq is until its first rotation: slot 0, as before. (A row
-- in an unexpected slot is safe: a slot is emptied only once its own
-- events are stored by every target, see slot_done.sql.) SET DEFAULT on a
-- partitioned table sets it on its partitions too.
DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['event', 'tick', 'batch', 'batch_ddl', 'cursor', 'ack'] LOOP
        EXECUTE pg_catalog.format('ALTER TABLE teleport.%I ALTER COLUMN slot SET DEFAULT %s', t,
            $d$(COALESCE(pg_catalog.pg_sequence_last_value('teleport.slot_seq'::pg_catalog.regclass), 0) OPERATOR(pg_catalog.%) 3)::smallint$d$);
    END LOOP;
END
$$;
DROP FUNCTION teleport.slot();
