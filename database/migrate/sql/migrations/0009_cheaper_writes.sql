-- The check on teleport.event's op column is compiled afresh by every
-- INSERT that writes an event, that is once per captured statement: on
-- pgbench with capture it was about a twentieth of a backend's time. Only
-- Teleport's own trigger functions write this table, with constant ops, and
-- the target refuses an event whose op it does not know, so the check
-- guarded nothing a reader does not guard already.
ALTER TABLE teleport.event DROP CONSTRAINT event_op_check;

-- A received chunk's body is gzip already: storing it EXTERNAL keeps it out
-- of line without the compression attempt PostgreSQL would otherwise make,
-- and fail, on every chunk stored.
ALTER TABLE teleport.received_chunk ALTER COLUMN body SET STORAGE EXTERNAL;

-- The capture functions, cheaper per captured statement (see 0003 for how
-- they chunk). Measured on pgbench with capture, as the capture trigger's
-- share of a backend's busy time (perf, three alternating runs each):
--
-- * A statement that changed one row is written by one INSERT that finds
--   no second row, instead of a count followed by an INSERT: one SPI
--   statement and one executor start fewer, about 2 points of the share.
--   Any other statement (none, or more than one row) falls through to the
--   chunking INSERT as before.
-- * No SET search_path: a function with a SET clause saves and restores the
--   setting on every call, 3 points of the share (some 9% of the trigger's
--   cost). Every function, operator and table these bodies use is
--   schema-qualified, transition tables are resolved before any schema,
--   and casts, sort and group operators come from the catalogs, never from
--   search_path: a writer's own search_path cannot reach into them (see
--   TestCapture_SearchPathCannotHijack, which plants look-alikes of each).

CREATE OR REPLACE FUNCTION teleport.capture_rows() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER AS $$
DECLARE
    changed bigint;
BEGIN
    INSERT INTO teleport.event (relid, schema_name, table_name, op, origin, nrows, data)
    SELECT TG_RELID, TG_TABLE_SCHEMA, TG_TABLE_NAME, pg_catalog.left(TG_OP, 1),
           pg_catalog.current_setting('teleport.origin', true), 1,
           pg_catalog.json_build_array(pg_catalog.row_to_json(r.*))
    FROM changed_rows r
    WHERE NOT EXISTS (SELECT FROM changed_rows OFFSET 1);
    GET DIAGNOSTICS changed = ROW_COUNT;
    IF changed OPERATOR(pg_catalog.=) 1 THEN
        RETURN NULL;
    END IF;
    INSERT INTO teleport.event (relid, schema_name, table_name, op, origin, nrows, data)
    SELECT TG_RELID, TG_TABLE_SCHEMA, TG_TABLE_NAME, pg_catalog.left(TG_OP, 1),
           pg_catalog.current_setting('teleport.origin', true),
           pg_catalog.count(*), pg_catalog.json_agg(j ORDER BY rn)
    FROM (SELECT pg_catalog.row_to_json(r.*) AS j,
                 pg_catalog.row_number() OVER w AS rn,
                 pg_catalog.sum(pg_catalog.pg_column_size(r.*)) OVER w AS size
          FROM changed_rows r
          WINDOW w AS (ROWS UNBOUNDED PRECEDING)) numbered
    GROUP BY ((rn OPERATOR(pg_catalog.-) 1) OPERATOR(pg_catalog./) 1000)
             OPERATOR(pg_catalog.+) (size OPERATOR(pg_catalog./) 4194304)
    ORDER BY ((rn OPERATOR(pg_catalog.-) 1) OPERATOR(pg_catalog./) 1000)
             OPERATOR(pg_catalog.+) (size OPERATOR(pg_catalog./) 4194304);
    RETURN NULL;
END
$$;

-- UPDATE: the old and new transition tables list the updated rows in the
-- same order, so rows pair up by position (a primary key may have changed).
CREATE OR REPLACE FUNCTION teleport.capture_update() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER AS $$
DECLARE
    changed bigint;
BEGIN
    INSERT INTO teleport.event (relid, schema_name, table_name, op, origin, nrows, data)
    SELECT TG_RELID, TG_TABLE_SCHEMA, TG_TABLE_NAME, 'U',
           pg_catalog.current_setting('teleport.origin', true), 1,
           pg_catalog.json_build_array(pg_catalog.json_build_array(
               pg_catalog.row_to_json(o.*), pg_catalog.row_to_json(n.*)))
    FROM old_rows o, new_rows n
    WHERE NOT EXISTS (SELECT FROM new_rows OFFSET 1);
    GET DIAGNOSTICS changed = ROW_COUNT;
    IF changed OPERATOR(pg_catalog.=) 1 THEN
        RETURN NULL;
    END IF;
    INSERT INTO teleport.event (relid, schema_name, table_name, op, origin, nrows, data)
    SELECT TG_RELID, TG_TABLE_SCHEMA, TG_TABLE_NAME, 'U',
           pg_catalog.current_setting('teleport.origin', true),
           pg_catalog.count(*), pg_catalog.json_agg(pg_catalog.json_build_array(oj, nj) ORDER BY rn)
    FROM (SELECT pg_catalog.row_to_json(o.*) AS oj,
                 pg_catalog.row_number() OVER w AS rn,
                 pg_catalog.sum(pg_catalog.pg_column_size(o.*)) OVER w AS osize
          FROM old_rows o
          WINDOW w AS (ROWS UNBOUNDED PRECEDING)) olds
    JOIN (SELECT pg_catalog.row_to_json(n.*) AS nj,
                 pg_catalog.row_number() OVER w AS rn,
                 pg_catalog.sum(pg_catalog.pg_column_size(n.*)) OVER w AS nsize
          FROM new_rows n
          WINDOW w AS (ROWS UNBOUNDED PRECEDING)) news USING (rn)
    GROUP BY ((rn OPERATOR(pg_catalog.-) 1) OPERATOR(pg_catalog./) 1000)
             OPERATOR(pg_catalog.+) ((osize OPERATOR(pg_catalog.+) nsize) OPERATOR(pg_catalog./) 4194304)
    ORDER BY ((rn OPERATOR(pg_catalog.-) 1) OPERATOR(pg_catalog./) 1000)
             OPERATOR(pg_catalog.+) ((osize OPERATOR(pg_catalog.+) nsize) OPERATOR(pg_catalog./) 4194304);
    RETURN NULL;
END
$$;
