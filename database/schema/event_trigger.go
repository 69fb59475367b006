package schema

import (
	"context"
	"database/sql"
	"fmt"
	"strings"

	"github.com/lib/pq"
	"github.com/lib/pq/pqerror"

	"github.com/pagarme/teleport/database"
)

// eventTrigger is the name of the event trigger use_event_triggers installs.
const eventTrigger = "teleport_ddl"

// SetEventTriggers installs, with on, an event trigger that writes a
// catalog snapshot into the stream at the end of every DDL command, in the
// command's own transaction: the schema change then sits exactly where it
// happened among the row changes, instead of where the ddlwatcher's next
// pass finds it. searchPath is the schema snapshots name objects relative to
// (see TakeSnapshot). Without on, it drops the trigger if there is one.
// PostgreSQL lets only superusers create event triggers.
func SetEventTriggers(ctx context.Context, db *sql.DB, on bool, searchPath string) error {
	if !on {
		if _, err := db.ExecContext(ctx, `DROP EVENT TRIGGER IF EXISTS `+eventTrigger); err != nil {
			return fmt.Errorf("use_event_triggers is false, and event trigger %s, left by an earlier run, cannot be dropped: %w "+
				"(as a superuser run DROP EVENT TRIGGER %s)", eventTrigger, err, eventTrigger)
		}
		return nil
	}
	path := "pg_catalog, pg_temp"
	if searchPath != "" {
		path = database.QuoteIdent(searchPath)
	}
	snapshotQuery := query("schema_snapshot")
	const tag = "$teleport_snapshot$"
	if strings.Contains(snapshotQuery, tag) {
		return fmt.Errorf("the snapshot query holds %s", tag) // cannot happen: the query is ours
	}
	stmts := []string{
		// The ddlwatcher's query, as a function with the search_path
		// TakeSnapshot sets, so both write the same text and hash.
		`CREATE OR REPLACE FUNCTION teleport.catalog_snapshot(text) RETURNS text
		 LANGUAGE sql STABLE SET search_path TO ` + path + ` AS ` + tag + "SELECT (\n" + strings.TrimRight(strings.TrimSpace(snapshotQuery), ";") + "\n)::text" + tag,
		`CREATE OR REPLACE FUNCTION teleport.capture_ddl() RETURNS event_trigger
		 LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
		 DECLARE
		     snap text;
		     h text;
		 BEGIN
		     -- Teleport's own applied changes are not sent back.
		     IF coalesce(pg_catalog.current_setting('teleport.origin', true), '') OPERATOR(pg_catalog.<>) '' THEN
		         RETURN;
		     END IF;
		     -- Temporary objects are never replicated.
		     IF EXISTS (SELECT 1 FROM pg_catalog.pg_event_trigger_ddl_commands())
		        AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_event_trigger_ddl_commands() c
		                        WHERE c.schema_name IS NULL OR c.schema_name OPERATOR(pg_catalog.!~) '^pg_temp') THEN
		         RETURN;
		     END IF;
		     PERFORM pg_catalog.pg_advisory_xact_lock(` + fmt.Sprint(ddlLockKey) + `);
		     snap := teleport.catalog_snapshot(` + pq.QuoteLiteral(searchPath) + `);
		     h := pg_catalog.encode(pg_catalog.sha256(pg_catalog.convert_to(snap, 'UTF8')), 'hex');
		     IF h IS DISTINCT FROM (SELECT s.hash FROM teleport.ddl_state s) THEN
		         WITH e AS (
		             INSERT INTO teleport.event (relid, schema_name, table_name, op, origin, nrows, data)
		             VALUES (0, '', '', 'S', NULL, 0, snap::pg_catalog.json)
		             RETURNING id)
		         INSERT INTO teleport.ddl_state (event_id, hash) SELECT e.id, h FROM e
		         ON CONFLICT (id) DO UPDATE SET event_id = excluded.event_id, hash = excluded.hash;
		     END IF;
		 END
		 $$`,
		`REVOKE ALL ON FUNCTION teleport.catalog_snapshot(text), teleport.capture_ddl() FROM PUBLIC`,
	}
	err := database.InTx(ctx, db, func(tx *sql.Tx) error {
		for _, s := range stmts {
			if _, err := tx.ExecContext(ctx, s); err != nil {
				return err
			}
		}
		var exists bool
		if err := tx.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_event_trigger WHERE evtname = $1)`, eventTrigger).Scan(&exists); err != nil {
			return err
		}
		if exists {
			return nil
		}
		_, err := tx.ExecContext(ctx, `CREATE EVENT TRIGGER `+eventTrigger+` ON ddl_command_end EXECUTE FUNCTION teleport.capture_ddl()`)
		return err
	})
	switch {
	case database.SQLState(err) == pqerror.InsufficientPrivilege:
		return fmt.Errorf("use_event_triggers is true, but this role may not create event triggers (PostgreSQL allows superusers only; "+
			"on RDS, members of rds_superuser): run the instance as such a role, or set use_event_triggers: false, "+
			"and schema changes are found by the ddlwatcher every processing_intervals.ddlwatcher (%w)", err)
	case err != nil:
		return fmt.Errorf("install event trigger %s: %w", eventTrigger, err)
	}
	return nil
}
