-- Locks a source's row for the apply transaction, so two appliers on one
-- database take turns, and reads where it stands.
SELECT applied_seq FROM teleport.source WHERE name = $1 FOR UPDATE
