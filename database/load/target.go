// Package load is the initial load, both sides: the source's plan and
// COPY out under an exported snapshot, the target's COPY in, foreign keys
// dropped and put back, and the filter that hands the stream over.
package load

import (
	"bytes"
	"context"
	"database/sql"
	"database/sql/driver"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/lib/pq"

	"github.com/pagarme/teleport/database"
	"github.com/pagarme/teleport/server/wire"
)

// ErrLoadRefused wraps why a target declines to begin, resume or finish a
// load: the message says what to do. The server answers it with 409.
var ErrLoadRefused = errors.New("load refused")

// ErrLoadNotReady means the target cannot begin a load yet, and will once
// replication brought it the tables: the server answers it with 503.
var ErrLoadNotReady = errors.New("not ready for the load")

func refused(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrLoadRefused, fmt.Sprintf(format, args...))
}

// BeginLoad begins the load of plan, or resumes the one of its source that
// is under way. A fresh load needs every table present (the schema reaches
// the target through replication) and, unless plan.Overwrite, a target with
// no rows in them and no finished load; it drops the foreign keys touching
// the tables, recorded to be added back by FinishLoad. From its commit on,
// the applier holds the source's batches that touch the tables or change
// the schema until the load finishes.
func BeginLoad(ctx context.Context, db *sql.DB, plan wire.LoadPlan) (wire.LoadBegun, error) {
	var begun wire.LoadBegun
	err := database.InTx(ctx, db, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, query("load_source_lock"), plan.Source); err != nil {
			return fmt.Errorf("lock source %s: %w", plan.Source, err)
		}
		names := make([]string, len(plan.Tables))
		var missing []string
		for i, t := range plan.Tables {
			names[i] = database.QuoteQualified(t.Schema, t.Table)
			var ok bool
			if err := tx.QueryRowContext(ctx, `SELECT pg_catalog.to_regclass($1) IS NOT NULL`, names[i]).Scan(&ok); err != nil {
				return fmt.Errorf("look up %s: %w", names[i], err)
			}
			if !ok {
				missing = append(missing, names[i])
			}
		}
		if len(missing) > 0 {
			why := "the schema comes through replication, so the source instance must run; the load goes on once its first batch is applied here"
			var seq int64
			var held string
			err := tx.QueryRowContext(ctx, `SELECT error_seq, error FROM teleport.source WHERE name = $1 AND error IS NOT NULL`, plan.Source).Scan(&seq, &held)
			switch {
			case err == nil:
				why = fmt.Sprintf("they come with batch %d of %s or after it, which this database holds: %s (see /status and the README's Conflicts)", seq, plan.Source, held)
			case !errors.Is(err, sql.ErrNoRows):
				return fmt.Errorf("read the state of source %s: %w", plan.Source, err)
			}
			return fmt.Errorf("%w: %s not on this database yet: %s", ErrLoadNotReady, listSome(missing), why)
		}
		var run string
		var finished sql.NullTime
		err := tx.QueryRowContext(ctx, query("load_read"), plan.Source).Scan(&run, &finished)
		switch {
		case errors.Is(err, sql.ErrNoRows):
		case err != nil:
			return fmt.Errorf("read load of %s: %w", plan.Source, err)
		case !finished.Valid:
			begun.Resumed = true
			return resumeLoad(ctx, tx, plan, &begun)
		case plan.Resync: // replaces its tables: that is what it is for
		case !plan.Overwrite:
			return refused("this database already holds a load from %s, finished %s: loading again empties "+
				"its %d tables and copies them again; run again with -overwrite to do that",
				plan.Source, finished.Time.Format(time.RFC3339), len(plan.Tables))
		}
		if plan.Resync {
			return resync(ctx, tx, plan, names)
		}
		if !plan.Overwrite {
			var full []string
			for _, n := range names {
				var has bool
				if err := tx.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM `+n+`)`).Scan(&has); err != nil {
					return fmt.Errorf("look into %s: %w", n, err)
				}
				if has {
					full = append(full, n)
				}
			}
			if len(full) > 0 {
				return refused("%s already %s rows on this database: a load empties the tables it copies; "+
					"run again with -overwrite to replace them", listSome(full), map[bool]string{true: "has", false: "have"}[len(full) == 1])
			}
		}
		return freshLoad(ctx, tx, plan, names)
	})
	return begun, err
}

func freshLoad(ctx context.Context, tx *sql.Tx, plan wire.LoadPlan, names []string) error {
	if _, err := tx.ExecContext(ctx, `DELETE FROM teleport.load WHERE source = $1`, plan.Source); err != nil {
		return fmt.Errorf("forget the previous load of %s: %w", plan.Source, err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO teleport.load (source, run) VALUES ($1, $2)`, plan.Source, plan.Run); err != nil {
		return fmt.Errorf("record load of %s: %w", plan.Source, err)
	}
	if err := saveLoadTables(ctx, tx, plan); err != nil {
		return err
	}
	return dropFKs(ctx, tx, plan.Source, names)
}

// resync begins a load of plan's tables only: the source's other tables
// keep what their load recorded, and their events go on being applied
// while it runs. The tables' earlier copies are forgotten.
func resync(ctx context.Context, tx *sql.Tx, plan wire.LoadPlan, names []string) error {
	if _, err := tx.ExecContext(ctx, `INSERT INTO teleport.load (source, run) VALUES ($1, $2)
		ON CONFLICT (source) DO UPDATE SET run = $2, started_at = pg_catalog.now(), resumed_at = NULL, finished_at = NULL`,
		plan.Source, plan.Run); err != nil {
		return fmt.Errorf("record resync of %s: %w", plan.Source, err)
	}
	schemas, tables := planNames(plan)
	if _, err := tx.ExecContext(ctx, `UPDATE teleport.load_table SET in_run = false WHERE source = $1`, plan.Source); err != nil {
		return fmt.Errorf("record resync of %s: %w", plan.Source, err)
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM teleport.load_table WHERE source = $1
		AND (schema_name, table_name) IN (SELECT * FROM unnest($2::text[], $3::text[]))`, plan.Source, pq.Array(schemas), pq.Array(tables)); err != nil {
		return fmt.Errorf("forget the earlier copies of the tables to resync: %w", err)
	}
	if err := saveLoadTables(ctx, tx, plan); err != nil {
		return err
	}
	return dropFKs(ctx, tx, plan.Source, names)
}

// dropFKs drops the foreign keys of or to the tables names, recorded for
// FinishLoad to add back.
func dropFKs(ctx context.Context, tx *sql.Tx, source string, names []string) error {
	rows, err := tx.QueryContext(ctx, query("load_fks"), pq.Array(names))
	if err != nil {
		return fmt.Errorf("list foreign keys of the loaded tables: %w", err)
	}
	type fk struct{ schema, table, name, def string }
	var fks []fk
	for rows.Next() {
		var f fk
		if err := rows.Scan(&f.schema, &f.table, &f.name, &f.def); err != nil {
			rows.Close()
			return fmt.Errorf("list foreign keys of the loaded tables: %w", err)
		}
		fks = append(fks, f)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("list foreign keys of the loaded tables: %w", err)
	}
	for _, f := range fks {
		if _, err := tx.ExecContext(ctx, `INSERT INTO teleport.load_fk (source, schema_name, table_name, name, definition)
			VALUES ($1, $2, $3, $4, $5)`, source, f.schema, f.table, f.name, f.def); err != nil {
			return fmt.Errorf("record foreign key %s: %w", f.name, err)
		}
		if _, err := tx.ExecContext(ctx, `ALTER TABLE `+database.QuoteQualified(f.schema, f.table)+` DROP CONSTRAINT `+database.QuoteIdent(f.name)); err != nil {
			return fmt.Errorf("drop foreign key %s of %s while the load runs: %w", f.name, database.QuoteQualified(f.schema, f.table), err)
		}
	}
	return nil
}

func resumeLoad(ctx context.Context, tx *sql.Tx, plan wire.LoadPlan, begun *wire.LoadBegun) error {
	if plan.Resync {
		// A resync resumes only the one under way: another set of tables
		// would leave that one's tables held with no run to finish them.
		tables, err := LoadTables(ctx, tx, plan.Source)
		if err != nil {
			return err
		}
		var under []string
		for _, t := range tables {
			if t.InRun {
				under = append(under, t.String())
			}
		}
		var asked []string
		for _, t := range plan.Tables {
			asked = append(asked, database.QuoteQualified(t.Schema, t.Table))
		}
		slices.Sort(under)
		slices.Sort(asked)
		if !slices.Equal(under, asked) {
			return refused("a load of %d tables from %s is under way here (%s) and holds their changes until it finishes: "+
				"finish it first (run the same resync again, or an initial load without -tables, which also finishes it), then resync",
				len(under), plan.Source, listSome(under))
		}
	}
	if _, err := tx.ExecContext(ctx, `UPDATE teleport.load SET run = $2, resumed_at = pg_catalog.now() WHERE source = $1`,
		plan.Source, plan.Run); err != nil {
		return fmt.Errorf("resume load of %s: %w", plan.Source, err)
	}
	if err := saveLoadTables(ctx, tx, plan); err != nil {
		return err
	}
	tables, err := LoadTables(ctx, tx, plan.Source)
	if err != nil {
		return err
	}
	for _, t := range tables {
		if !t.DoneAt.IsZero() {
			lt := t.LoadTable
			lt.Snapshot = t.Snapshot
			begun.Done = append(begun.Done, lt)
		}
	}
	rows, err := tx.QueryContext(ctx, query("load_chunks_done"), plan.Source)
	if err != nil {
		return fmt.Errorf("read the chunks done of %s's load: %w", plan.Source, err)
	}
	defer rows.Close()
	for rows.Next() {
		var c wire.LoadChunk
		if err := rows.Scan(&c.Schema, &c.Table, &c.Chunk, &c.Chunks, &c.Lo, &c.Hi, &c.Snapshot); err != nil {
			return fmt.Errorf("read the chunks done of %s's load: %w", plan.Source, err)
		}
		begun.DoneChunks = append(begun.DoneChunks, c)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read the chunks done of %s's load: %w", plan.Source, err)
	}
	return nil
}

// saveLoadTables makes the load's tables those of plan, keeping what is
// recorded of the ones it already had.
func saveLoadTables(ctx context.Context, tx *sql.Tx, plan wire.LoadPlan) error {
	for _, t := range plan.Tables {
		if t.Partitions == nil {
			t.Partitions = [][2]string{} // stored as [], not null
		}
		parts, err := json.Marshal(t.Partitions)
		if err != nil {
			return fmt.Errorf("record table %s of the load: %w", database.QuoteQualified(t.Schema, t.Table), err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO teleport.load_table (source, schema_name, table_name, est_rows, est_bytes, partitions)
			VALUES ($1, $2, $3, $4, $5, $6)
			ON CONFLICT (source, schema_name, table_name) DO UPDATE SET est_rows = $4, est_bytes = $5, partitions = $6, in_run = true`,
			plan.Source, t.Schema, t.Table, t.EstRows, t.EstBytes, string(parts)); err != nil {
			return fmt.Errorf("record table %s of the load: %w", database.QuoteQualified(t.Schema, t.Table), err)
		}
	}
	if plan.Resync {
		return nil // the source's other tables keep their load
	}
	schemas, tables := planNames(plan)
	if _, err := tx.ExecContext(ctx, `DELETE FROM teleport.load_table l WHERE l.source = $1
		AND (l.schema_name, l.table_name) NOT IN (SELECT * FROM unnest($2::text[], $3::text[]))`,
		plan.Source, pq.Array(schemas), pq.Array(tables)); err != nil {
		return fmt.Errorf("forget tables no longer in the load: %w", err)
	}
	return nil
}

// planNames returns the schemas and names of plan's tables, in two lists.
func planNames(plan wire.LoadPlan) (schemas, tables []string) {
	for _, t := range plan.Tables {
		schemas = append(schemas, t.Schema)
		tables = append(tables, t.Table)
	}
	return schemas, tables
}

// LoadTableState is a table of a load and where it stands.
type LoadTableState struct {
	wire.LoadTable
	Snapshot string // the source snapshot it was copied in; "" until done
	InRun    bool   // copied by the source's latest load run, not by an earlier one a resync left
	Rows     int64
	Bytes    int64
	DoneAt   time.Time
	// Of a table copied in chunks by the load's run, while it is: how
	// many chunks (0 until one is done), how many are done, and their rows
	// and bytes.
	Chunks, ChunksDone    int
	ChunkRows, ChunkBytes int64
}

func (t LoadTableState) String() string { return database.QuoteQualified(t.Schema, t.Table) }

// LoadTables returns the tables of source's load, by name.
func LoadTables(ctx context.Context, q database.Querier, source string) ([]LoadTableState, error) {
	rows, err := q.QueryContext(ctx, query("load_tables"), source)
	if err != nil {
		return nil, fmt.Errorf("read load tables of %s: %w", source, err)
	}
	defer rows.Close()
	var out []LoadTableState
	for rows.Next() {
		var t LoadTableState
		var snap sql.NullString
		var done sql.NullTime
		var parts string
		if err := rows.Scan(&t.Schema, &t.Table, &t.EstRows, &t.EstBytes, &snap, &t.Rows, &t.Bytes, &done, &parts, &t.InRun,
			&t.Chunks, &t.ChunksDone, &t.ChunkRows, &t.ChunkBytes); err != nil {
			return nil, fmt.Errorf("read load tables of %s: %w", source, err)
		}
		if err := json.Unmarshal([]byte(parts), &t.Partitions); err != nil {
			return nil, fmt.Errorf("read load tables of %s: partitions of %s: %w", source, t, err)
		}
		t.Snapshot, t.DoneAt = snap.String, done.Time
		out = append(out, t)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read load tables of %s: %w", source, err)
	}
	return out, nil
}

// CopySpec is one table's copy as the source sends it.
type CopySpec struct {
	Source   string
	Run      string
	Schema   string   // as on the target
	Table    string   // as on the target
	Columns  []string // the columns of the COPY text, in order
	Snapshot string   // the source snapshot the rows were read in
	// Chunk, when not nil, makes this copy one chunk of the table: the
	// rows of one range of its key.
	Chunk *ChunkSpec
}

// ChunkSpec is one chunk of a table's copy.
type ChunkSpec struct {
	No, Of int    // chunk No of Of, from 0
	Key    string // the integer column the ranges are of
	Range  KeyRange
}

// CopyIn empties spec's table and fills it from r, the COPY text format,
// in one transaction that also records the table as done with its snapshot:
// a table is done whole or not at all. progress, if not nil, is called with
// the rows and bytes so far as they go in. The load must be under way in
// spec.Run.
func CopyIn(ctx context.Context, db *sql.DB, spec CopySpec, r io.Reader, progress func(rows, bytes int64)) (rows, n int64, err error) {
	name := database.QuoteQualified(spec.Schema, spec.Table)
	conn, err := db.Conn(ctx)
	if err != nil {
		return 0, 0, fmt.Errorf("copy into %s: %w", name, err)
	}
	defer conn.Close()
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return 0, 0, fmt.Errorf("copy into %s: begin: %w", name, err)
	}
	defer tx.Rollback() //nolint:errcheck // after Commit it is a no-op; a failed copy's error is the one to report
	var run string
	var finished sql.NullTime
	var inLoad bool
	err = tx.QueryRowContext(ctx, `SELECT l.run, l.finished_at, EXISTS (SELECT 1 FROM teleport.load_table t
		WHERE t.source = l.source AND t.schema_name = $2 AND t.table_name = $3 AND t.in_run)
		FROM teleport.load l WHERE l.source = $1 FOR SHARE`, spec.Source, spec.Schema, spec.Table).Scan(&run, &finished, &inLoad)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return 0, 0, refused("no load from %s is under way on this database", spec.Source)
	case err != nil:
		return 0, 0, fmt.Errorf("copy into %s: read load: %w", name, err)
	case finished.Valid:
		return 0, 0, refused("the load from %s finished at %s", spec.Source, finished.Time.Format(time.RFC3339))
	case run != spec.Run:
		return 0, 0, refused("the load from %s is now run %s, not %s: another initial-load took it over", spec.Source, run, spec.Run)
	case !inLoad:
		return 0, 0, refused("%s is not a table of the load from %s", name, spec.Source)
	}
	if err := database.SetApplyOrigin(ctx, tx, spec.Source); err != nil {
		return 0, 0, err
	}
	if c := spec.Chunk; c != nil {
		// A chunk copied already, same range in the same snapshot (its
		// answer lost, or the run before was stopped), is answered again,
		// not copied twice.
		err := tx.QueryRowContext(ctx, query("load_chunk_read"), spec.Source, spec.Schema, spec.Table, c.No, c.Of,
			c.Range.Lo, c.Range.Hi, spec.Snapshot).Scan(&rows, &n)
		switch {
		case errors.Is(err, sql.ErrNoRows):
		case err != nil:
			return 0, 0, fmt.Errorf("copy into %s: read chunk %d: %w", name, c.No, err)
		default:
			// It makes the table done if that was all it lacked.
			if err := chunkTable(ctx, tx, spec); err != nil {
				return rows, n, fmt.Errorf("record %s as loaded: %w", name, err)
			}
			if err := tx.Commit(); err != nil {
				return rows, n, fmt.Errorf("copy into %s: commit: %w", name, err)
			}
			return rows, n, nil
		}
		where := c.Range.Where(c.Key)
		if where == "" {
			where = "true"
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM `+name+` WHERE `+where); err != nil {
			return 0, 0, fmt.Errorf("empty chunk %d of %s (%s) before copying it: %w", c.No, name, where, err)
		}
	} else if _, err := tx.ExecContext(ctx, `TRUNCATE `+name); err != nil {
		return 0, 0, fmt.Errorf("empty %s before copying it: %w", name, err)
	}
	cols := make([]string, len(spec.Columns))
	for i, c := range spec.Columns {
		cols[i] = database.QuoteIdent(c)
	}
	stmt := `COPY ` + name + ` (` + strings.Join(cols, ", ") + `) FROM STDIN`
	err = conn.Raw(func(dc any) error {
		rows, n, err = copyRaw(ctx, dc, stmt, r, progress)
		return err
	})
	if err != nil {
		return rows, n, fmt.Errorf("copy into %s: %w", name, err)
	}
	if spec.Chunk != nil {
		err = chunkDone(ctx, tx, spec, rows, n)
	} else {
		_, err = tx.ExecContext(ctx, query("load_table_done"), spec.Source, spec.Schema, spec.Table, spec.Snapshot, rows, n)
	}
	if err != nil {
		return rows, n, fmt.Errorf("record %s as loaded: %w", name, err)
	}
	if err := tx.Commit(); err != nil {
		return rows, n, fmt.Errorf("copy into %s: commit: %w", name, err)
	}
	return rows, n, nil
}

// chunkDone records, in the chunk's transaction, that spec's chunk is
// copied, and the table as done when every chunk of its plan is, in the
// same snapshot, or as not done while some are not (a table an earlier run
// copied is copied again).
func chunkDone(ctx context.Context, tx *sql.Tx, spec CopySpec, rows, n int64) error {
	c := spec.Chunk
	if _, err := tx.ExecContext(ctx, query("load_chunk_done"), spec.Source, spec.Schema, spec.Table, c.No, c.Of, spec.Run,
		c.Key, c.Range.Lo, c.Range.Hi, spec.Snapshot, rows, n); err != nil {
		return err
	}
	return chunkTable(ctx, tx, spec)
}

// chunkTable marks spec's table done when every chunk of spec's plan is,
// and not done otherwise. It locks the table's row first: of two chunks
// ending at once, the one that commits last sees the other.
func chunkTable(ctx context.Context, tx *sql.Tx, spec CopySpec) error {
	if _, err := tx.ExecContext(ctx, `SELECT 1 FROM teleport.load_table WHERE source = $1 AND schema_name = $2 AND table_name = $3 FOR NO KEY UPDATE`,
		spec.Source, spec.Schema, spec.Table); err != nil {
		return err
	}
	_, err := tx.ExecContext(ctx, query("load_chunk_table"), spec.Source, spec.Schema, spec.Table, spec.Snapshot, spec.Chunk.Of)
	return err
}

// copyBuf is how much COPY text goes to the server at a time, unless a
// single row is longer.
const copyBuf = 256 << 10

// copyData is lib/pq's COPY FROM STDIN statement: CopyData sends text
// as it is, adding a newline.
type copyData interface {
	CopyData(ctx context.Context, line string) (driver.Result, error)
}

// copyRaw runs stmt, a COPY FROM STDIN, on the lib/pq connection dc, feeding
// it r whole rows at a time, and returns the rows and bytes it sent. Memory
// holds copyBuf bytes, or one row when a row is longer.
func copyRaw(ctx context.Context, dc any, stmt string, r io.Reader, progress func(rows, bytes int64)) (rows, n int64, err error) {
	prep, ok := dc.(driver.ConnPrepareContext)
	if !ok {
		return 0, 0, errors.New("the driver cannot prepare COPY")
	}
	st, err := prep.PrepareContext(ctx, stmt)
	if err != nil {
		return 0, 0, err
	}
	defer st.Close()
	cd, ok := st.(copyData)
	if !ok {
		return 0, 0, errors.New("the driver cannot send raw COPY data")
	}
	buf := make([]byte, 0, copyBuf)
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)] // a row longer than the buffer: grow it
		}
		m, rerr := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+m]
		if end := bytes.LastIndexByte(buf, '\n'); end >= 0 {
			if _, err := cd.CopyData(ctx, string(buf[:end])); err != nil {
				return rows, n, err
			}
			rows += int64(bytes.Count(buf[:end+1], []byte{'\n'}))
			n += int64(end + 1)
			buf = buf[:copy(buf, buf[end+1:])]
			if progress != nil {
				progress(rows, n)
			}
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			return rows, n, fmt.Errorf("read the rows sent: %w", rerr)
		}
	}
	if len(buf) > 0 {
		return rows, n, fmt.Errorf("the rows sent end with %d bytes of an unfinished row", len(buf))
	}
	// An Exec with no values ends the COPY and reports its errors.
	ex, ok := st.(driver.Stmt)
	if !ok {
		return rows, n, errors.New("the driver cannot end COPY")
	}
	if _, err := ex.Exec(nil); err != nil { //nolint:staticcheck // lib/pq ends a COPY with Exec(nil)
		return rows, n, err
	}
	return rows, n, nil
}

// FinishLoad ends source's load run: every table must be done. It adds the
// dropped foreign keys back, validated, and marks the load finished, in one
// transaction; from then on the applier applies the events each table's
// copy did not see and skips the ones it did.
func FinishLoad(ctx context.Context, db *sql.DB, source, run string) error {
	return database.InTx(ctx, db, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, query("load_source_lock"), source); err != nil {
			return fmt.Errorf("lock source %s: %w", source, err)
		}
		var cur string
		var finished sql.NullTime
		err := tx.QueryRowContext(ctx, query("load_read"), source).Scan(&cur, &finished)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			return refused("no load from %s is under way on this database", source)
		case err != nil:
			return fmt.Errorf("read load of %s: %w", source, err)
		case finished.Valid:
			return nil // finished already: a repeated request
		case cur != run:
			return refused("the load from %s is now run %s, not %s: another initial-load took it over", source, cur, run)
		}
		tables, err := LoadTables(ctx, tx, source)
		if err != nil {
			return err
		}
		var left []string
		for _, t := range tables {
			if t.DoneAt.IsZero() {
				left = append(left, t.String())
			}
		}
		if len(left) > 0 {
			return refused("%s not copied yet", listSome(left))
		}
		rows, err := tx.QueryContext(ctx, query("load_fk_list"), source)
		if err != nil {
			return fmt.Errorf("read the foreign keys to add back: %w", err)
		}
		var stmts []string
		for rows.Next() {
			var schema, table, name, def string
			if err := rows.Scan(&schema, &table, &name, &def); err != nil {
				rows.Close()
				return fmt.Errorf("read the foreign keys to add back: %w", err)
			}
			stmts = append(stmts, `ALTER TABLE `+database.QuoteQualified(schema, table)+` ADD CONSTRAINT `+database.QuoteIdent(name)+` `+def)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("read the foreign keys to add back: %w", err)
		}
		for _, s := range stmts {
			if _, err := tx.ExecContext(ctx, s); err != nil {
				return fmt.Errorf("add back a foreign key after the load (%s): %w", s, err)
			}
		}
		if _, err := tx.ExecContext(ctx, query("load_finish"), source); err != nil {
			return fmt.Errorf("mark load of %s finished: %w", source, err)
		}
		return nil
	})
}

// listSome names up to three items and counts the rest.
func listSome(items []string) string {
	const most = 3
	if len(items) <= most {
		return strings.Join(items, ", ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(items[:most], ", "), len(items)-most)
}

// LoadState is a load on this database, for /status.
type LoadState struct {
	Source     string
	Run        string
	StartedAt  time.Time
	ResumedAt  time.Time // zero when never resumed
	FinishedAt time.Time // zero while under way
	Tables     []LoadTableState
}

// LoadStates returns every load on this database, by source.
func LoadStates(ctx context.Context, q database.Querier) ([]LoadState, error) {
	rows, err := q.QueryContext(ctx, `SELECT source, run, started_at, resumed_at, finished_at FROM teleport.load ORDER BY source`)
	if err != nil {
		return nil, fmt.Errorf("read loads: %w", err)
	}
	var out []LoadState
	for rows.Next() {
		var l LoadState
		var resumed, finished sql.NullTime
		if err := rows.Scan(&l.Source, &l.Run, &l.StartedAt, &resumed, &finished); err != nil {
			rows.Close()
			return nil, fmt.Errorf("read loads: %w", err)
		}
		l.ResumedAt, l.FinishedAt = resumed.Time, finished.Time
		out = append(out, l)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read loads: %w", err)
	}
	for i := range out {
		if out[i].Tables, err = LoadTables(ctx, q, out[i].Source); err != nil {
			return nil, err
		}
	}
	return out, nil
}
