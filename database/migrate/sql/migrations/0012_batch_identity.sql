-- Target side: what identifies the batch a chunk belongs to, as its source
-- cut it (its tick range and event count), and the SHA-256 of the chunk's
-- JSON. Every chunk of a batch must agree on the first three, a resent
-- chunk must have the checksum of the stored one, and a batch whose chunks
-- do not add up to its event count is never taken as complete. NULL in
-- chunks from a source that does not send them.
ALTER TABLE teleport.received_chunk
    ADD COLUMN from_tick    bigint,
    ADD COLUMN to_tick      bigint,
    ADD COLUMN batch_events integer,
    ADD COLUMN checksum     bytea;
