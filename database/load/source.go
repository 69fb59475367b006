package load

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/lib/pq"

	"github.com/pagarme/teleport/config"
	"github.com/pagarme/teleport/database"
	"github.com/pagarme/teleport/database/capture"
)

// SourceTable is a table an initial load copies, as the source sees it.
type SourceTable struct {
	capture.Table
	Partitioned bool
	Columns     []string // what COPY reads, in order: every column but generated ones
	EstRows     int64
	EstBytes    int64       // on disk, its partitions' included
	Partitions  [][2]string // schema and name of its partitions, every level
	FKPeers     []uint32    // tables it shares a foreign key with, either way
}

// LoadSourceTables returns the tables for which match returns true, with
// what a load needs to know of them.
func LoadSourceTables(ctx context.Context, q database.Querier, match func(schema, table string) bool) ([]SourceTable, error) {
	rows, err := q.QueryContext(ctx, query("load_source_tables"))
	if err != nil {
		return nil, fmt.Errorf("list tables to load: %w", err)
	}
	defer rows.Close()
	var out []SourceTable
	for rows.Next() {
		var t SourceTable
		var kind, parts string
		var peers []int64
		if err := rows.Scan(&t.OID, &t.Schema, &t.Name, &kind, pq.Array(&t.Columns), &t.EstRows, &t.EstBytes, &parts, pq.Array(&peers)); err != nil {
			return nil, fmt.Errorf("list tables to load: %w", err)
		}
		if err := json.Unmarshal([]byte(parts), &t.Partitions); err != nil {
			return nil, fmt.Errorf("list tables to load: partitions of %s: %w", t.Table, err)
		}
		if !match(t.Schema, t.Name) {
			continue
		}
		t.Partitioned = kind == "p"
		for _, p := range peers {
			if uint32(p) != t.OID {
				t.FKPeers = append(t.FKPeers, uint32(p))
			}
		}
		out = append(out, t)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list tables to load: %w", err)
	}
	return out, nil
}

// loadLockKey is the advisory-lock key space of initial loads, one lock per
// target inside it.
const loadLockKey = 0x746c6f61 // "tloa"

// LockLoad takes, on a connection of its own, the lock a load of target
// holds while it runs, so a second load of the same target is refused
// saying who runs the first. Call release when the load ends.
func LockLoad(ctx context.Context, db *sql.DB, target string) (release func(), err error) {
	conn, err := db.Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("lock initial load of %s: %w", target, err)
	}
	var ok bool
	if err := conn.QueryRowContext(ctx, query("load_lock"), loadLockKey, target).Scan(&ok); err != nil {
		conn.Close()
		return nil, fmt.Errorf("lock initial load of %s: %w", target, err)
	}
	if !ok {
		defer conn.Close()
		var pid int
		var client string
		var since time.Time
		err := conn.QueryRowContext(ctx, query("load_lock_holder"), loadLockKey, target).Scan(&pid, &client, &since)
		if err != nil {
			return nil, fmt.Errorf("an initial load of %s is already running on this database: wait for it to end, or stop it, and run again", target)
		}
		return nil, fmt.Errorf("an initial load of %s is already running on this database (backend pid %d, from %s, since %s): "+
			"wait for it to end, or stop it, and run again", target, pid, client, since.Format(time.RFC3339))
	}
	return func() {
		// The connection goes back to the pool: the lock must not go with it.
		_, _ = conn.ExecContext(context.WithoutCancel(ctx), `SELECT pg_catalog.pg_advisory_unlock_all()`)
		conn.Close()
	}, nil
}

// ExportSnapshot opens a read-only repeatable-read transaction and exports
// its snapshot, so CopyReaders read every table as of one instant. It
// returns the snapshot's id for SET TRANSACTION SNAPSHOT and its
// pg_snapshot text, the load's position in the event stream. The snapshot
// lives until release.
func ExportSnapshot(ctx context.Context, db *sql.DB) (id, snapshot string, release func(), err error) {
	conn, err := db.Conn(ctx)
	if err != nil {
		return "", "", nil, fmt.Errorf("export snapshot: %w", err)
	}
	tx, err := conn.BeginTx(ctx, &sql.TxOptions{Isolation: sql.LevelRepeatableRead, ReadOnly: true})
	if err != nil {
		conn.Close()
		return "", "", nil, fmt.Errorf("export snapshot: %w", err)
	}
	if err := tx.QueryRowContext(ctx, `SELECT pg_catalog.pg_export_snapshot(), pg_catalog.pg_current_snapshot()::text`).Scan(&id, &snapshot); err != nil {
		_ = tx.Rollback()
		conn.Close()
		return "", "", nil, fmt.Errorf("export snapshot: %w", err)
	}
	return id, snapshot, func() { _ = tx.Rollback(); conn.Close() }, nil
}

// CopyReader reads tables with COPY TO STDOUT in an exported snapshot, on a
// connection of its own. lib/pq has no COPY TO, so it speaks through pgx's
// pgconn, which streams the rows to a writer as the server sends them.
type CopyReader struct {
	conn *pgconn.PgConn
}

// OpenCopyReader connects to the database c describes.
func OpenCopyReader(ctx context.Context, c config.Database, appName string) (*CopyReader, error) {
	pc, err := pgconn.ParseConfig(database.ConnString(c, appName))
	if err != nil {
		return nil, fmt.Errorf("connect to database %q on %s:%d: %w", c.Database, c.Hostname, c.Port, err)
	}
	// COPY text is read back by the target: pin every setting its format
	// depends on.
	for k, v := range map[string]string{"DateStyle": "ISO, MDY", "IntervalStyle": "postgres",
		"extra_float_digits": "3", "client_encoding": "UTF8", "bytea_output": "hex"} {
		pc.RuntimeParams[k] = v
	}
	conn, err := pgconn.ConnectConfig(ctx, pc)
	if err != nil {
		return nil, fmt.Errorf("connect to database %q on %s:%d as %q: %w", c.Database, c.Hostname, c.Port, c.Username, err)
	}
	return &CopyReader{conn: conn}, nil
}

// Close closes the connection.
func (r *CopyReader) Close() { _ = r.conn.Close(context.Background()) }

// CopyTable writes t's rows as of the exported snapshot to w, in the COPY
// text format, one transaction per call.
func (r *CopyReader) CopyTable(ctx context.Context, snapshotID string, t SourceTable, w io.Writer) error {
	if r.conn.IsClosed() {
		return errors.New("connection closed")
	}
	cols := make([]string, len(t.Columns))
	for i, c := range t.Columns {
		cols[i] = database.QuoteIdent(c)
	}
	only := "ONLY "
	if t.Partitioned {
		only = "" // its rows are its partitions'
	}
	begin := `BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; SET TRANSACTION SNAPSHOT ` + pq.QuoteLiteral(snapshotID)
	if err := r.conn.Exec(ctx, begin).Close(); err != nil {
		return fmt.Errorf("read %s in the load's snapshot: %w", t, err)
	}
	_, err := r.conn.CopyTo(ctx, w, `COPY (SELECT `+strings.Join(cols, ", ")+` FROM `+only+t.String()+`) TO STDOUT`)
	if err != nil {
		_ = r.conn.Exec(ctx, `ROLLBACK`).Close()
		return fmt.Errorf("read %s: %w", t, err)
	}
	if err := r.conn.Exec(ctx, `COMMIT`).Close(); err != nil {
		return fmt.Errorf("read %s: %w", t, err)
	}
	return nil
}
