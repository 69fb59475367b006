-- Every source with how far it is stored and applied; received_seq as in
-- received_chunk_ack.
SELECT s.name,
       s.applied_seq + (
           SELECT count(*)
           FROM (SELECT c.seq - row_number() OVER (ORDER BY c.seq) AS off
                 FROM teleport.received_chunk c
                 WHERE c.source = s.name AND c.seq > s.applied_seq
                 GROUP BY c.seq
                 HAVING bool_or(c.last) AND count(*) = max(c.chunk) + 1
                    AND coalesce(sum(c.events) = max(c.batch_events), true)
                    AND count(DISTINCT (c.from_tick, c.to_tick, c.batch_events)) FILTER (WHERE c.from_tick IS NOT NULL) <= 1) complete
           WHERE complete.off = s.applied_seq),
       s.applied_seq, s.applied_at, s.tick_time,
       s.error, s.error_seq, s.error_at, s.skip_seq
FROM teleport.source s
ORDER BY s.name
