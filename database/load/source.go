package load

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
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
	// ChunkKey is its primary key's column when that is one column of an
	// integer type: a big table is copied in ranges of it. "" otherwise.
	ChunkKey string
}

// KeyRange is a range of a table's ChunkKey: the keys from Lo on and below
// Hi. A nil bound is open: from the lowest key, to the highest.
type KeyRange struct {
	Lo, Hi *int64
}

// maxChunks bounds how many chunks one table is cut into.
const maxChunks = 1000

// PlanChunks cuts t into ranges of its ChunkKey of about chunkBytes each,
// by its size on disk and the lowest and highest key it holds now: even
// ranges of keys, the first open below and the last open above, so that
// together they hold every key whatever is written after. A table smaller
// than two chunks, or without a ChunkKey, or partitioned, is one range.
//
// chunks, when above 0, is the number of chunks instead: the plan of an
// earlier run, in the same snapshot, cuts the same ranges.
func PlanChunks(ctx context.Context, q database.Querier, t SourceTable, chunkBytes int64, chunks int) ([]KeyRange, error) {
	whole := []KeyRange{{}}
	if t.ChunkKey == "" || t.Partitioned || chunks == 1 || chunks <= 0 && (chunkBytes <= 0 || t.EstBytes < 2*chunkBytes) {
		return whole, nil
	}
	key := database.QuoteIdent(t.ChunkKey)
	var lo, hi sql.NullInt64
	if err := q.QueryRowContext(ctx, `SELECT min(`+key+`), max(`+key+`) FROM ONLY `+t.String()).Scan(&lo, &hi); err != nil {
		return nil, fmt.Errorf("plan the chunks of %s: %w", t, err)
	}
	if !lo.Valid {
		return whole, nil
	}
	n := int64(chunks)
	if n <= 0 {
		n = min((t.EstBytes+chunkBytes-1)/chunkBytes, maxChunks)
	}
	// The span as uint64: hi - lo of two int64s may not fit in an int64.
	span := uint64(hi.Int64-lo.Int64) + 1
	if span != 0 && uint64(n) > span {
		n = int64(span)
	}
	if n < 2 {
		return whole, nil
	}
	step := span / uint64(n)
	if span == 0 { // every int64: 2^64 keys
		step = ^uint64(0)/uint64(n) + 1
	}
	out := make([]KeyRange, n)
	for i := int64(1); i < n; i++ {
		b := lo.Int64 + int64(step*uint64(i))
		out[i-1].Hi = &b
		out[i].Lo = &b
	}
	return out, nil
}

// Where returns the condition of r on column key, "" for the whole table.
func (r KeyRange) Where(key string) string {
	var conds []string
	if r.Lo != nil {
		conds = append(conds, database.QuoteIdent(key)+" >= "+strconv.FormatInt(*r.Lo, 10))
	}
	if r.Hi != nil {
		conds = append(conds, database.QuoteIdent(key)+" < "+strconv.FormatInt(*r.Hi, 10))
	}
	return strings.Join(conds, " AND ")
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
		if err := rows.Scan(&t.OID, &t.Schema, &t.Name, &kind, pq.Array(&t.Columns), &t.EstRows, &t.EstBytes, &parts, pq.Array(&peers), &t.ChunkKey); err != nil {
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

// Snapshot is an exported snapshot of the source, alive while the
// transaction that exported it is open.
type Snapshot struct {
	ID   string // for SET TRANSACTION SNAPSHOT
	Text string // its pg_snapshot text, the load's position in the event stream
	conn *sql.Conn
	tx   *sql.Tx
}

// ExportSnapshot opens a read-only repeatable-read transaction and exports
// its snapshot, so CopyReaders read every table as of one instant. The
// snapshot lives until Release.
func ExportSnapshot(ctx context.Context, db *sql.DB) (*Snapshot, error) {
	conn, err := db.Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("export snapshot: %w", err)
	}
	tx, err := conn.BeginTx(ctx, &sql.TxOptions{Isolation: sql.LevelRepeatableRead, ReadOnly: true})
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("export snapshot: %w", err)
	}
	s := &Snapshot{conn: conn, tx: tx}
	if err := tx.QueryRowContext(ctx, `SELECT pg_catalog.pg_export_snapshot(), pg_catalog.pg_current_snapshot()::text`).Scan(&s.ID, &s.Text); err != nil {
		s.Release()
		return nil, fmt.Errorf("export snapshot: %w", err)
	}
	return s, nil
}

// Release ends the transaction that keeps the snapshot alive.
func (s *Snapshot) Release() {
	_ = s.tx.Rollback()
	s.conn.Close()
}

// alive reports whether the exporting transaction is still open (a
// restart of the database, or idle_in_transaction_session_timeout, ends it).
func (s *Snapshot) alive(ctx context.Context) bool {
	var one int
	return s.tx.QueryRowContext(ctx, `SELECT 1`).Scan(&one) == nil
}

// InSnapshot runs fn in a read-only transaction that reads in the exported
// snapshot id.
func InSnapshot(ctx context.Context, db *sql.DB, id string, fn func(tx *sql.Tx) error) error {
	tx, err := db.BeginTx(ctx, &sql.TxOptions{Isolation: sql.LevelRepeatableRead, ReadOnly: true})
	if err != nil {
		return err
	}
	defer tx.Rollback() //nolint:errcheck // read-only: nothing to keep
	if _, err := tx.ExecContext(ctx, `SET TRANSACTION SNAPSHOT `+pq.QuoteLiteral(id)); err != nil {
		return fmt.Errorf("read in the load's snapshot: %w", err)
	}
	return fn(tx)
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
// text format, one transaction per call: those of the range of t.ChunkKey
// r selects, all of them for the zero KeyRange.
func (r *CopyReader) CopyTable(ctx context.Context, snapshotID string, t SourceTable, keys KeyRange, w io.Writer) error {
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
	where := keys.Where(t.ChunkKey)
	if where != "" {
		where = " WHERE " + where
	}
	_, err := r.conn.CopyTo(ctx, w, `COPY (SELECT `+strings.Join(cols, ", ")+` FROM `+only+t.String()+where+`) TO STDOUT`)
	if err != nil {
		_ = r.conn.Exec(ctx, `ROLLBACK`).Close()
		return fmt.Errorf("read %s: %w", t, err)
	}
	if err := r.conn.Exec(ctx, `COMMIT`).Close(); err != nil {
		return fmt.Errorf("read %s: %w", t, err)
	}
	return nil
}
