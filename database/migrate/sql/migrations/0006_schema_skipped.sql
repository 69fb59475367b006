-- Source side: the objects a target's schema diff left out and why, so
-- /status can show them as well as the log.
CREATE TABLE teleport.schema_skipped (
    target     text NOT NULL REFERENCES teleport.target (name) ON DELETE CASCADE,
    object     text NOT NULL,
    reason     text NOT NULL,
    first_seen timestamptz NOT NULL DEFAULT pg_catalog.now(),
    last_seen  timestamptz NOT NULL DEFAULT pg_catalog.now(),
    PRIMARY KEY (target, object)
);
