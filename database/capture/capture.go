// Package capture installs the triggers that record row changes into
// teleport.event, and backfills tables captured after the fact.
package capture

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/lib/pq"

	"github.com/pagarme/teleport/database"
)

// captureTriggers are the triggers that capture a table's changes: name,
// then the rest of CREATE TRIGGER after "ON table".
var captureTriggers = []struct{ name, event, spec, function string }{
	{"teleport_capture_insert", "INSERT", "REFERENCING NEW TABLE AS changed_rows FOR EACH STATEMENT", "teleport.capture_rows"},
	{"teleport_capture_update", "UPDATE", "REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT", "teleport.capture_update"},
	{"teleport_capture_delete", "DELETE", "REFERENCING OLD TABLE AS changed_rows FOR EACH STATEMENT", "teleport.capture_rows"},
	{"teleport_capture_truncate", "TRUNCATE", "FOR EACH STATEMENT", "teleport.capture_truncate"},
}

// Table names a user table.
type Table struct {
	OID    uint32
	Schema string
	Name   string
}

func (t Table) String() string { return database.QuoteQualified(t.Schema, t.Name) }

// CaptureResult says what InstallCapture did.
type CaptureResult struct {
	Captured   []Table // matching tables with all capture triggers, before or now
	Installed  []Table // tables that got at least one trigger now
	Backfilled int64   // rows already in newly captured tables, recorded as inserts
}

// InstallCapture makes sure every table for which match returns true has
// all four capture triggers, creating the missing ones, each table in its
// own transaction. A matching table the role does not own is an error naming
// it and the statement that fixes it; the other tables are still processed,
// and every such table is reported at once.
//
// With backfill, a table that had no capture trigger at all also gets, in
// the same transaction, insert events for the rows it already holds: the
// triggers' lock keeps writers out until it commits, so every row is either
// in those events or captured by the triggers, never both, never neither.
// The ddlwatcher backfills the tables that appear while the instance runs;
// at start-up, rows already there are the initial load's. Partitions get
// triggers of their own, for statements addressed to them, and are never
// backfilled: rows routed through their parent are its events.
func InstallCapture(ctx context.Context, db *sql.DB, match func(schema, table string) bool, backfill bool) (CaptureResult, error) {
	var res CaptureResult
	type candidate struct {
		Table
		partition bool
		owned     bool
		existing  []string
		refs      []int64 // tables its foreign keys reference
	}
	rows, err := db.QueryContext(ctx, query("capture_tables"))
	if err != nil {
		return res, fmt.Errorf("list tables to capture: %w", err)
	}
	var cands []candidate
	for rows.Next() {
		var c candidate
		if err := rows.Scan(&c.OID, &c.Schema, &c.Name, &c.partition, &c.owned, pq.Array(&c.existing), pq.Array(&c.refs)); err != nil {
			rows.Close()
			return res, fmt.Errorf("list tables to capture: %w", err)
		}
		if match(c.Schema, c.Name) {
			cands = append(cands, c)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return res, fmt.Errorf("list tables to capture: %w", err)
	}

	// Referenced tables first: the rows a backfill records are applied in
	// the order the backfills commit, and a foreign key needs its row there.
	byOID := make(map[uint32]int, len(cands))
	for i, c := range cands {
		byOID[c.OID] = i
	}
	var ordered []candidate
	state := make([]int, len(cands)) // 0 new, 1 visiting, 2 done
	var visit func(i int)
	visit = func(i int) {
		if state[i] != 0 {
			return // done, or a cycle: its order is the catalog's
		}
		state[i] = 1
		for _, r := range cands[i].refs {
			if j, ok := byOID[uint32(r)]; ok {
				visit(j)
			}
		}
		state[i] = 2
		ordered = append(ordered, cands[i])
	}
	for i := range cands {
		visit(i)
	}

	var errs []error
	var user string
	for _, c := range ordered {
		var missing []int
		for i, tr := range captureTriggers {
			if !slices.Contains(c.existing, tr.name) {
				missing = append(missing, i)
			}
		}
		if len(missing) == 0 {
			res.Captured = append(res.Captured, c.Table)
			continue
		}
		if !c.owned {
			if user == "" {
				_ = db.QueryRowContext(ctx, `SELECT current_user`).Scan(&user) // only used to word the message
			}
			errs = append(errs, fmt.Errorf("role %s does not own table %s, so it cannot create the capture triggers: as its owner run ALTER TABLE %s OWNER TO %s",
				database.QuoteIdent(user), c.Table, c.Table, database.QuoteIdent(user)))
			continue
		}
		var rows int64
		err := database.InTx(ctx, db, func(tx *sql.Tx) error {
			for _, i := range missing {
				tr := captureTriggers[i]
				stmt := fmt.Sprintf("CREATE TRIGGER %s AFTER %s ON %s %s EXECUTE FUNCTION %s()",
					database.QuoteIdent(tr.name), tr.event, c.Table, tr.spec, tr.function)
				if _, err := tx.ExecContext(ctx, stmt); err != nil {
					return err
				}
			}
			// A partition's rows written through its parent were captured
			// there: backfilling it would record them twice.
			if !backfill || c.partition || len(missing) < len(captureTriggers) {
				return nil
			}
			q := strings.ReplaceAll(query("capture_backfill"), "teleport.backfill_source", c.Table.String())
			return tx.QueryRowContext(ctx, q, c.OID, c.Schema, c.Name).Scan(&rows)
		})
		if err != nil {
			errs = append(errs, fmt.Errorf("install capture triggers on %s: %w", c.Table, err))
			continue
		}
		res.Captured = append(res.Captured, c.Table)
		res.Installed = append(res.Installed, c.Table)
		res.Backfilled += rows
	}
	return res, errors.Join(errs...)
}
