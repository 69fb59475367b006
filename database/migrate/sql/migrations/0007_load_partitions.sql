-- The partitions of a loaded partitioned table, as [[schema, table], ...]:
-- their copy is the table's, and so is the snapshot that decides which of
-- the events written to them directly the copy already holds.
ALTER TABLE teleport.load_table ADD COLUMN partitions jsonb NOT NULL DEFAULT '[]';
