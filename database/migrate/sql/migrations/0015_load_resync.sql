-- Target side: a resync (initial-load -tables) copies some tables of a
-- source again while the others keep the load that brought them. in_run
-- marks the tables of the source's latest load run: while it is under way
-- the applier holds the batches that touch them, and only them; the others
-- keep the snapshot their copy was taken in, which the events still
-- arriving are past.
ALTER TABLE teleport.load_table ADD COLUMN in_run boolean DEFAULT true NOT NULL;
