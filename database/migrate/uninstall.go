package migrate

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/pagarme/teleport/database"
	"github.com/pagarme/teleport/database/store"
)

// Removal is what Uninstall removed, or would have to wait for.
type Removal struct {
	Triggers        []string // capture triggers dropped, "table trigger"
	EventTrigger    bool     // the event trigger use_event_triggers made was dropped
	Schema          bool     // schema teleport was dropped, with Teleport's state and functions
	EnabledTriggers []string // triggers replication had created disabled, enabled
	// Unfinished lists what replication has not finished: Uninstall
	// refuses while it is not empty, unless forced.
	Unfinished []string
	// SearchPath is the role's search_path in the database, set by
	// Teleport (see KeepOutOfSearchPath), left as it is; "" when none is set.
	SearchPath string
}

// Nothing reports whether r removed nothing.
func (r Removal) Nothing() bool {
	return len(r.Triggers) == 0 && !r.EventTrigger && !r.Schema && len(r.EnabledTriggers) == 0
}

// ErrUnfinished means Uninstall refused: replication has work in flight
// that removing Teleport would lose (see Removal.Unfinished).
var ErrUnfinished = errors.New("replication has not finished")

// Uninstall removes Teleport from the database: the capture triggers from
// every table (each table in a transaction of its own, as big catalogs
// need), the event trigger, and schema teleport with everything in it.
// With enableTriggers it also enables the triggers replication created
// disabled on the tables of a target (those of tables the role owns). It
// refuses, with ErrUnfinished, while a target has not applied every change
// captured here or this database has batches it stored and not applied,
// unless force. Before it drops anything it checks that it can drop
// everything (the role owns every captured table, may drop the event
// trigger, and schema teleport holds nothing but Teleport's), so it never
// stops half-way with some tables no longer captured. Run again, it finds
// nothing to remove.
func Uninstall(ctx context.Context, db *sql.DB, force, enableTriggers bool) (Removal, error) {
	var r Removal
	installed, err := Current(ctx, db)
	if err != nil && !force {
		return r, err
	}
	if installed {
		r.Unfinished, err = unfinished(ctx, db)
		switch {
		case force: // what is lost, as far as it can be told
		case err != nil:
			return r, err
		case len(r.Unfinished) > 0:
			return r, ErrUnfinished
		}
	}
	triggers, err := listPairs(ctx, db, query("uninstall_capture_triggers"))
	if err != nil {
		return r, fmt.Errorf("list the capture triggers: %w", err)
	}
	var blockers []string
	var drops []string // of the table whose triggers the role may not drop
	for i, t := range triggers {
		if t[2] == "t" {
			continue
		}
		drops = append(drops, "DROP TRIGGER "+database.QuoteIdent(t[1])+" ON "+t[0])
		if i+1 == len(triggers) || triggers[i+1][0] != t[0] {
			blockers = append(blockers, fmt.Sprintf("table %s: the role is not a member of its owner, so it cannot drop its capture triggers: "+
				"as its owner, run %s", t[0], strings.Join(drops, "; ")))
			drops = nil
		}
	}
	var eventTrigger, superuser bool
	if err := db.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_event_trigger WHERE evtname = 'teleport_ddl'),
		(SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user)`).Scan(&eventTrigger, &superuser); err != nil {
		return r, err
	}
	if eventTrigger && !superuser {
		blockers = append(blockers, "event trigger teleport_ddl: only a superuser may drop it (as one, run DROP EVENT TRIGGER teleport_ddl)")
	}
	if installed {
		foreign, err := foreignContents(ctx, db)
		if err != nil {
			return r, err
		}
		for _, f := range foreign {
			blockers = append(blockers, f+" is in schema teleport but is not Teleport's, and dropping the schema would drop it: move it out first")
		}
	}
	if len(blockers) > 0 {
		return r, fmt.Errorf("nothing removed:\n%s", strings.Join(blockers, "\n"))
	}

	for _, t := range triggers {
		stmt := "DROP TRIGGER IF EXISTS " + database.QuoteIdent(t[1]) + " ON " + t[0]
		if _, err := db.ExecContext(ctx, stmt); err != nil {
			return r, fmt.Errorf("%s: %w (the tables whose triggers are dropped already are no longer captured: "+
				"run this again to finish, or reload them if replication is to go on)", stmt, err)
		}
		r.Triggers = append(r.Triggers, t[0]+" "+t[1])
	}
	if eventTrigger {
		if _, err := db.ExecContext(ctx, `DROP EVENT TRIGGER teleport_ddl`); err != nil {
			return r, fmt.Errorf("DROP EVENT TRIGGER teleport_ddl: %w", err)
		}
		r.EventTrigger = true
	}
	if installed {
		if _, err := db.ExecContext(ctx, `DROP SCHEMA teleport CASCADE`); err != nil {
			return r, fmt.Errorf("DROP SCHEMA teleport CASCADE: %w", err)
		}
		r.Schema = true
	}
	if enableTriggers {
		disabled, err := listPairs(ctx, db, query("uninstall_disabled_triggers"))
		if err != nil {
			return r, fmt.Errorf("list the disabled triggers: %w", err)
		}
		for _, t := range disabled {
			stmt := "ALTER TABLE " + t[0] + " ENABLE TRIGGER " + database.QuoteIdent(t[1])
			if _, err := db.ExecContext(ctx, stmt); err != nil {
				return r, fmt.Errorf("%s: %w", stmt, err)
			}
			r.EnabledTriggers = append(r.EnabledTriggers, t[0]+" "+t[1])
		}
	}
	err = db.QueryRowContext(ctx, `SELECT coalesce((SELECT pg_catalog.array_to_string(s.setconfig, ', ') FROM pg_catalog.pg_db_role_setting s
		WHERE s.setrole = (SELECT oid FROM pg_catalog.pg_roles WHERE rolname = current_user)
		  AND s.setdatabase = (SELECT oid FROM pg_catalog.pg_database WHERE datname = pg_catalog.current_database())
		  AND pg_catalog.array_to_string(s.setconfig, ',') LIKE '%search\_path=%'), '')`).Scan(&r.SearchPath)
	return r, err
}

// foreignContents names what schema teleport holds that is not Teleport's:
// the objects moveForeignObjects would move, and extensions.
func foreignContents(ctx context.Context, db *sql.DB) ([]string, error) {
	objs, err := foreignObjects(ctx, db)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, o := range objs {
		out = append(out, strings.ToLower(o.kind)+" "+database.QuoteQualified(database.OwnSchema, o.name))
	}
	return out, nil
}

// Installed reports whether Teleport's schema is in the database.
func Installed(ctx context.Context, q database.Querier) (bool, error) {
	var ok bool
	if err := q.QueryRowContext(ctx, `SELECT pg_catalog.to_regclass('teleport.schema_migration') IS NOT NULL`).Scan(&ok); err != nil {
		return false, fmt.Errorf("look for the teleport schema: %w", err)
	}
	return ok, nil
}

// unfinished lists what replication through this database has not
// finished: changes a target has not applied, batches stored here and not
// applied, an initial load under way.
func unfinished(ctx context.Context, db *sql.DB) ([]string, error) {
	var out []string
	targets, err := store.TargetStatuses(ctx, db)
	if err != nil {
		return nil, err
	}
	for _, t := range targets {
		switch {
		case t.AppliedSeq < t.LastSeq:
			out = append(out, fmt.Sprintf("target %s has not applied %s (as it last said)", t.Name, batches(t.AppliedSeq+1, t.LastSeq)))
		case t.Lag > 0:
			out = append(out, fmt.Sprintf("target %s has not been sent the changes written since the last batch", t.Name))
		}
	}
	sources, err := store.SourceStates(ctx, db)
	if err != nil {
		return nil, err
	}
	for _, s := range sources {
		if s.ReceivedSeq > s.AppliedSeq {
			out = append(out, fmt.Sprintf("source %s: %s stored here, not applied", s.Name, batches(s.AppliedSeq+1, s.ReceivedSeq)))
		}
	}
	var loads []string
	rows, err := db.QueryContext(ctx, `SELECT source FROM teleport.load WHERE finished_at IS NULL ORDER BY source`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return nil, err
		}
		loads = append(loads, fmt.Sprintf("source %s: an initial load is under way", s))
	}
	return append(out, loads...), rows.Err()
}

// batches names the batches from to to.
func batches(from, to int64) string {
	if from == to {
		return fmt.Sprintf("batch %d", from)
	}
	return fmt.Sprintf("batches %d to %d", from, to)
}

// listPairs runs q, which returns rows of three texts (a table, quoted,
// a trigger, and a third the query says).
func listPairs(ctx context.Context, db *sql.DB, q string) ([][3]string, error) {
	rows, err := db.QueryContext(ctx, q)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out [][3]string
	for rows.Next() {
		var p [3]string
		if err := rows.Scan(&p[0], &p[1], &p[2]); err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, rows.Err()
}
