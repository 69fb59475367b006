-- Target side: how far the batch after applied_seq has got when a schema
-- change too big for one transaction (the lock table holds only so many
-- locks) is applied in parts, each committed with its place here: every
-- event before the part_ddl-th schema change of batch part_seq is applied,
-- and of that change's items, those before part_item except part_deferred
-- (which wait for an object a later item makes). Cleared when the batch is
-- applied.
ALTER TABLE teleport.source
    ADD COLUMN part_seq      bigint,
    ADD COLUMN part_ddl      integer,
    ADD COLUMN part_item     integer,
    ADD COLUMN part_deferred integer[];
