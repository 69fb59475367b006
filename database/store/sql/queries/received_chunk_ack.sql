-- How far one source's batches are stored and applied. received_seq is the
-- end of the run of complete batches (last chunk and every chunk before it
-- stored) that follows applied_seq: a batch after a gap does not count, so
-- the source never takes a missing batch for stored.
SELECT a.applied_seq + (
           SELECT count(*)
           FROM (SELECT c.seq - row_number() OVER (ORDER BY c.seq) AS off
                 FROM teleport.received_chunk c
                 WHERE c.source = $1 AND c.seq > a.applied_seq
                 GROUP BY c.seq
                 HAVING bool_or(c.last) AND count(*) = max(c.chunk) + 1
                    AND coalesce(sum(c.events) = max(c.batch_events), true)
                    AND count(DISTINCT (c.from_tick, c.to_tick, c.batch_events)) FILTER (WHERE c.from_tick IS NOT NULL) <= 1) complete
           WHERE complete.off = a.applied_seq),
       a.applied_seq
FROM (SELECT coalesce(max(s.applied_seq), 0) AS applied_seq
      FROM teleport.source s WHERE s.name = $1) a
