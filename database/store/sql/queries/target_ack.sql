-- Records that target $1 stored the batches up to $2 and applied those up
-- to $3, as a row added only when it moves either forward.
INSERT INTO teleport.ack (target, acked_seq, applied_seq)
SELECT $1, greatest(coalesce(a.acked_seq, 0), $2), greatest(coalesce(a.applied_seq, 0), $3)
FROM (SELECT 1) one
LEFT JOIN LATERAL (SELECT a.acked_seq, a.applied_seq FROM teleport.ack a
                   WHERE a.target = $1
                   ORDER BY a.acked_seq DESC, a.applied_seq DESC LIMIT 1) a ON true
WHERE $2 > coalesce(a.acked_seq, 0) OR $3 > coalesce(a.applied_seq, 0)
