-- Target side: what the schema changes of a source asked for that this
-- target's PostgreSQL major cannot take (a target older than its source),
-- and what it does without, so /status can show it as well as the log.
CREATE TABLE teleport.source_schema_skipped (
    source     text NOT NULL REFERENCES teleport.source (name) ON DELETE CASCADE,
    object     text NOT NULL,
    reason     text NOT NULL,
    first_seen timestamptz NOT NULL DEFAULT pg_catalog.now(),
    last_seen  timestamptz NOT NULL DEFAULT pg_catalog.now(),
    PRIMARY KEY (source, object)
);
