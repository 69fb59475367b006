DELETE FROM teleport.batch b USING teleport.target g
WHERE b.target = g.name AND b.seq < g.applied_seq
