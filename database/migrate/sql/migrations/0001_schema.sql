-- The teleport schema holds Teleport's own state. Nobody but its owner needs
-- to see it: capture triggers run as the writing user but are SECURITY
-- DEFINER, so no grant to PUBLIC is needed.
REVOKE ALL ON SCHEMA teleport FROM PUBLIC;
COMMENT ON SCHEMA teleport IS 'Teleport replication state: captured events, batches, apply progress. Managed by teleport; do not edit.';
