-- Capture trigger functions. They are statement-level, reading the
-- statement's transition tables, and write one teleport.event row per chunk
-- of up to 1000 rows or about 4 MB, in the statement's row order.
--
-- SECURITY DEFINER: any role that writes a replicated table records its
-- change, though only teleport's owner may write the teleport schema.
-- search_path is pinned and every name qualified, so objects in user schemas
-- cannot hijack them. An error here fails the user's statement: a change is
-- never lost silently. Rows are referred to as alias.* only, so a user
-- column named like an alias cannot shadow the whole row.

CREATE FUNCTION teleport.capture_insert() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    INSERT INTO teleport.event (relid, schema_name, table_name, op, origin, nrows, data)
    SELECT TG_RELID, TG_TABLE_SCHEMA, TG_TABLE_NAME, 'I',
           nullif(current_setting('teleport.origin', true), ''),
           count(*), json_agg(j ORDER BY rn)
    FROM (SELECT j, rn, (rn - 1) / 1000 + sum(size) OVER (ORDER BY rn) / 4194304 AS chunk
          FROM (SELECT row_to_json(r.*) AS j, pg_column_size(r.*) AS size, row_number() OVER () AS rn
                FROM new_rows r) numbered) chunked
    GROUP BY chunk
    ORDER BY chunk;
    RETURN NULL;
END
$$;

CREATE FUNCTION teleport.capture_delete() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    INSERT INTO teleport.event (relid, schema_name, table_name, op, origin, nrows, data)
    SELECT TG_RELID, TG_TABLE_SCHEMA, TG_TABLE_NAME, 'D',
           nullif(current_setting('teleport.origin', true), ''),
           count(*), json_agg(j ORDER BY rn)
    FROM (SELECT j, rn, (rn - 1) / 1000 + sum(size) OVER (ORDER BY rn) / 4194304 AS chunk
          FROM (SELECT row_to_json(r.*) AS j, pg_column_size(r.*) AS size, row_number() OVER () AS rn
                FROM old_rows r) numbered) chunked
    GROUP BY chunk
    ORDER BY chunk;
    RETURN NULL;
END
$$;

-- The old and new transition tables list the updated rows in the same order,
-- so rows pair up by position (a primary key may have changed).
CREATE FUNCTION teleport.capture_update() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    INSERT INTO teleport.event (relid, schema_name, table_name, op, origin, nrows, data)
    SELECT TG_RELID, TG_TABLE_SCHEMA, TG_TABLE_NAME, 'U',
           nullif(current_setting('teleport.origin', true), ''),
           count(*), json_agg(json_build_array(oj, nj) ORDER BY rn)
    FROM (SELECT oj, nj, rn, (rn - 1) / 1000 + sum(osize + nsize) OVER (ORDER BY rn) / 4194304 AS chunk
          FROM (SELECT row_to_json(o.*) AS oj, pg_column_size(o.*) AS osize, row_number() OVER () AS rn
                FROM old_rows o) olds
          JOIN (SELECT row_to_json(n.*) AS nj, pg_column_size(n.*) AS nsize, row_number() OVER () AS rn
                FROM new_rows n) news USING (rn)) chunked
    GROUP BY chunk
    ORDER BY chunk;
    RETURN NULL;
END
$$;

CREATE FUNCTION teleport.capture_truncate() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    INSERT INTO teleport.event (relid, schema_name, table_name, op, origin, nrows, data)
    VALUES (TG_RELID, TG_TABLE_SCHEMA, TG_TABLE_NAME, 'T',
            nullif(current_setting('teleport.origin', true), ''), 0, NULL);
    RETURN NULL;
END
$$;

REVOKE ALL ON FUNCTION teleport.capture_insert(), teleport.capture_delete(),
                       teleport.capture_update(), teleport.capture_truncate() FROM PUBLIC;
