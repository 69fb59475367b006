-- Every target's name, its row locked until the transaction ends so two
-- batchers never cut the same sequence number. Its state is read after
-- (target_states.sql), in a statement whose snapshot follows the lock.
SELECT name FROM teleport.target ORDER BY name FOR UPDATE
