package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/pagarme/teleport/batcher"
	"github.com/pagarme/teleport/config"
	"github.com/pagarme/teleport/database/store"
	"github.com/pagarme/teleport/database/verify"
	"github.com/pagarme/teleport/server/wire"
	"github.com/pagarme/teleport/transmitter"
)

// verifyReport is what -mode verify prints with -json.
type verifyReport struct {
	Target string        `json:"target"`
	Seq    int64         `json:"seq"`  // the batch both sides were read at
	Tick   int64         `json:"tick"` // the source's tick it ends at
	Tables []tableResult `json:"tables"`
	Equal  bool          `json:"equal"`
}

// tableResult is one table's verdict.
type tableResult struct {
	Table      string    `json:"table"` // as on the source
	SourceRows int64     `json:"source_rows"`
	TargetRows int64     `json:"target_rows"`
	Result     string    `json:"result"` // equal, differs, or why it could not be compared
	Seconds    float64   `json:"seconds"`
	Rows       []rowDiff `json:"rows,omitempty"` // of a table that differs, the first maxDiffs rows that do
	More       bool      `json:"more,omitempty"` // more rows differ than Rows shows
}

// rowDiff is a row that differs: its key (a table without a key: the row),
// as PostgreSQL prints a row of the key's columns, and what differs.
type rowDiff struct {
	Key     string `json:"key"`
	Problem string `json:"problem"` // missing on target, extra on target, values differ
}

// maxDiffs is how many differing rows of a table verify names.
const maxDiffs = 20

// maxDiffRows bounds the rows of the differing buckets read on each side.
const maxDiffRows = 100000

// mismatch is -mode verify's verdict that a table differs: exit status 2,
// its report printed already.
type mismatch struct{ tables []string }

func (m mismatch) Error() string { return "tables differ: " + strings.Join(m.tables, ", ") }

// verifyOptions are the choices of one -mode verify.
type verifyOptions struct {
	target   string
	only     []string  // -tables; none: every table
	json     bool      // print JSON
	live     io.Writer // the terminal a live progress line is drawn on, or nil
	parallel int       // connections that hash a long table at once
	logEvery time.Duration
}

// verifyStopFor is how long the target is asked to hold its applier before
// the batch the verify compares at is cut: long enough to cut it.
const verifyStopFor = 30 * time.Second

// runVerify compares every table target takes (or those of only) on the
// source with the target, each side read at exactly the same point of the
// stream while writes go on: the source in a snapshot, the target after
// applying exactly the batches up to a tick of that snapshot.
func runVerify(ctx context.Context, db *sql.DB, cfg config.Config, o verifyOptions, stdout io.Writer, log *slog.Logger) error {
	target := o.target
	tc, ok := cfg.Targets[target]
	if !ok {
		return fmt.Errorf("-target %q: the configuration has no such target (targets: %s)", target, strings.Join(targetNames(cfg), ", "))
	}
	if err := requireSchema(ctx, db, cfg); err != nil {
		return err
	}
	send, err := transmitter.New(db, cfg.Database.Name, cfg.Targets, time.Second, log)
	if err != nil {
		return err
	}
	spec, err := store.GetTargetState(ctx, db, target)
	if err != nil {
		return fmt.Errorf("%w: has the instance run with this target?", err)
	}
	expr := tc.Expression()
	tables, err := verify.Tables(ctx, db, expr.SchemaRegex(), expr.TableRegex())
	if err != nil {
		return err
	}
	tables, err = pick(tables, o.only)
	if err != nil {
		return err
	}
	// The target applies nothing past what is cut now until told which
	// batch to stop at, so it cannot be past it when asked.
	if _, err := send.StopTarget(ctx, target, spec.NextSeq-1, verifyStopFor); err != nil {
		return err
	}
	snap, tick, seq, err := cutSnapshot(ctx, db, cfg, target)
	if err != nil {
		return err
	}
	defer snap.Rollback() //nolint:errcheck // read only
	readers, err := verify.JoinReaders(ctx, db, snap, o.parallel)
	if err != nil {
		return err
	}
	defer readers.Close()
	rep := verifyReport{Target: target, Seq: seq, Tick: tick.ID, Tables: make([]tableResult, len(tables))}
	req := wire.VerifyRequest{Seq: rep.Seq, Tables: make([]wire.VerifyTable, len(tables))}
	for i, t := range tables {
		schemaName := t.Schema
		if tc.ApplySchema != "" {
			schemaName = tc.ApplySchema
		}
		req.Tables[i] = wire.VerifyTable{Schema: schemaName, Table: t.Name, Columns: t.Columns, Key: t.Key}
	}
	log.Info("verifying", "target", target, "seq", rep.Seq, "tick", tick.ID, "tables", len(tables))
	var (
		wg     sync.WaitGroup
		ans    wire.VerifyAnswer
		ansErr error
	)
	wg.Go(func() { ans, ansErr = send.VerifyTarget(ctx, target, req) })
	src := make([]wire.TableHash, len(tables))
	took := make([]time.Duration, len(tables))
	prog := &verifyProgress{target: target, tables: len(tables), start: time.Now()}
	for _, t := range tables {
		prog.size += t.Bytes
	}
	stopProgress := prog.report(o.live, log, o.logEvery)
	for i, t := range tables {
		start := time.Now()
		prog.begin(t.Schema+"."+t.Name, t.Bytes)
		src[i].Rows, src[i].Sum, err = readers.Hash(ctx, t, prog.step)
		prog.end()
		took[i] = time.Since(start)
		if err != nil {
			stopProgress()
			wg.Wait()
			return err
		}
	}
	wg.Wait()
	stopProgress()
	if ansErr != nil {
		return ansErr
	}
	defer send.VerifyRows(context.WithoutCancel(ctx), target, wire.VerifyRowsRequest{Session: ans.Session, Done: true}) //nolint:errcheck // the target closes it after a while anyway
	if len(ans.Tables) != len(tables) || ans.Seq != rep.Seq {
		return fmt.Errorf("verify on %s: answered for batch %d with %d tables, asked batch %d with %d", target, ans.Seq, len(ans.Tables), rep.Seq, len(tables))
	}
	var differ []string
	for i, t := range tables {
		dst := ans.Tables[i]
		r := tableResult{Table: t.Schema + "." + t.Name, SourceRows: src[i].Rows, TargetRows: dst.Rows, Seconds: took[i].Seconds()}
		switch {
		case dst.Error != "":
			r.Result = dst.Error
		case dst.Rows == src[i].Rows && dst.Sum == src[i].Sum:
			r.Result = "equal"
		default:
			r.Result = "differs"
			start := time.Now()
			if err := narrow(ctx, send, target, ans.Session, snap, i, t, &r); err != nil {
				return err
			}
			r.Seconds += time.Since(start).Seconds()
		}
		if r.Result != "equal" {
			differ = append(differ, r.Table)
		}
		rep.Tables[i] = r
	}
	rep.Equal = len(differ) == 0
	if err := printVerify(stdout, rep, o.json); err != nil {
		return err
	}
	if !rep.Equal {
		return mismatch{tables: differ}
	}
	return nil
}

// narrow finds the rows of table i that differ: both sides hash it again
// into buckets, each in its snapshot, and read the rows of the buckets
// that differ.
func narrow(ctx context.Context, send *transmitter.Worker, target, session string, snap *sql.Tx, i int, t verify.Table, r *tableResult) error {
	buckets := verify.Buckets(t.EstRows)
	srcB, err := verify.HashBuckets(ctx, snap, t, buckets)
	if err != nil {
		return err
	}
	dst, err := send.VerifyRows(ctx, target, wire.VerifyRowsRequest{Session: session, Table: i, Split: buckets, Sums: true})
	if err != nil {
		return err
	}
	diff := differingBuckets(srcB, dst.Buckets)
	if len(diff) == 0 {
		return nil // only if the differing rows collide in 64 bits: reported with no row named
	}
	srcRows, err := verify.Rows(ctx, snap, t, buckets, diff, maxDiffRows)
	if err != nil {
		return err
	}
	dstRows, err := send.VerifyRows(ctx, target, wire.VerifyRowsRequest{Session: session, Table: i, Split: buckets, Buckets: diff, Limit: maxDiffRows})
	if err != nil {
		return err
	}
	r.Rows, r.More = diffRows(srcRows, dstRows.Rows, len(t.Key) > 0)
	r.More = r.More || len(srcRows) == maxDiffRows || len(dstRows.Rows) == maxDiffRows
	return nil
}

// differingBuckets are the buckets whose rows or hash sums differ.
func differingBuckets(a, b []wire.BucketHash) []int {
	m := map[int]wire.BucketHash{}
	for _, x := range a {
		m[x.Bucket] = x
	}
	var out []int
	for _, y := range b {
		if x, ok := m[y.Bucket]; !ok || x.Rows != y.Rows || x.Sum != y.Sum {
			out = append(out, y.Bucket)
		}
		delete(m, y.Bucket)
	}
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// diffRows compares the rows of the differing buckets, read on each side
// in key order: by key, a key on one side only is missing or extra and a
// key on both with other hashes has other values; without a key, a row
// more often on one side is missing or extra. It returns the first
// maxDiffs differences and whether there are more.
func diffRows(src, dst []wire.KeyHash, keyed bool) ([]rowDiff, bool) {
	type seen struct {
		hash     string
		src, dst int64
	}
	rows := map[string]*seen{}
	var keys []string
	add := func(r wire.KeyHash, onSrc bool) {
		k := r.Key
		if !keyed {
			k += "\x00" + r.Hash
		}
		s := rows[k]
		if s == nil {
			s = &seen{}
			rows[k] = s
			keys = append(keys, k)
		}
		if onSrc {
			s.src += r.N
			s.hash = r.Hash
		} else {
			s.dst += r.N
			if s.src > 0 && s.hash != r.Hash {
				s.hash = "" // values differ
			}
		}
	}
	for _, r := range src {
		add(r, true)
	}
	for _, r := range dst {
		add(r, false)
	}
	slices.Sort(keys)
	var out []rowDiff
	more := false
	for _, k := range keys {
		s := rows[k]
		key, _, _ := strings.Cut(k, "\x00")
		var problem string
		switch {
		case s.dst == 0:
			problem = "missing on target"
		case s.src == 0:
			problem = "extra on target"
		case keyed && s.hash == "":
			problem = "values differ"
		case s.src > s.dst:
			problem = fmt.Sprintf("%d more on the source", s.src-s.dst)
		case s.dst > s.src:
			problem = fmt.Sprintf("%d more on the target", s.dst-s.src)
		default:
			continue
		}
		if len(out) == maxDiffs {
			more = true
			break
		}
		out = append(out, rowDiff{Key: key, Problem: problem})
	}
	return out, more
}

// cutSnapshot opens the source's snapshot a verify reads and cuts, before
// any other tick can be taken, every target's batch up to a tick of exactly
// that snapshot. It returns the snapshot's transaction, open, the tick, and
// target's last batch at that tick, read before the cut commits: the
// batcher may cut the next one as soon as it has.
func cutSnapshot(ctx context.Context, db *sql.DB, cfg config.Config, target string) (snap *sql.Tx, tick store.Tick, seq int64, err error) {
	cut, err := db.BeginTx(ctx, nil)
	if err != nil {
		return nil, tick, 0, fmt.Errorf("begin cut: %w", err)
	}
	defer cut.Rollback() //nolint:errcheck // committed below
	if err := store.LockTicks(ctx, cut); err != nil {
		return nil, tick, 0, err
	}
	snap, err = verify.Begin(ctx, db)
	if err != nil {
		return nil, tick, 0, err
	}
	var text string
	if err := snap.QueryRowContext(ctx, `SELECT pg_catalog.pg_current_snapshot()::text`).Scan(&text); err != nil {
		snap.Rollback() //nolint:errcheck // its error is the one to report
		return nil, tick, 0, fmt.Errorf("take snapshot: %w", err)
	}
	tick, err = store.InsertTickOf(ctx, cut, text)
	if err == nil {
		_, err = batcher.New(db, cfg, nil, slog.New(slog.DiscardHandler)).CutAt(ctx, cut, tick)
	}
	var state store.TargetState
	if err == nil {
		state, err = store.GetTargetState(ctx, cut, target)
	}
	if err == nil {
		err = cut.Commit()
	}
	if err != nil {
		snap.Rollback() //nolint:errcheck // as above
		return nil, tick, 0, fmt.Errorf("cut batches at the verify's snapshot: %w", err)
	}
	return snap, tick, state.NextSeq - 1, nil
}

// pick keeps the tables named in only (schema.table, or table in any
// schema); all of them when only is empty. A name that matches none is an
// error.
func pick(tables []verify.Table, only []string) ([]verify.Table, error) {
	if len(only) == 0 {
		return tables, nil
	}
	var out []verify.Table
	for _, name := range only {
		found := false
		for _, t := range tables {
			if config.NamesTable(name, t.Schema, t.Name) {
				out = append(out, t)
				found = true
			}
		}
		if !found {
			return nil, fmt.Errorf("-tables: %q is not a table this target takes", name)
		}
	}
	return out, nil
}

// printVerify prints rep as a table, or as JSON.
func printVerify(w io.Writer, rep verifyReport, jsonOut bool) error {
	if jsonOut {
		if rep.Tables == nil {
			rep.Tables = []tableResult{}
		}
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	fmt.Fprintf(w, "verify of %s at batch %d (source tick %d)\n", rep.Target, rep.Seq, rep.Tick)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TABLE\tSOURCE ROWS\tTARGET ROWS\tRESULT\tTIME")
	for _, t := range rep.Tables {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%.2fs\n", t.Table, t.SourceRows, t.TargetRows, t.Result, t.Seconds)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, t := range rep.Tables {
		if len(t.Rows) == 0 {
			continue
		}
		fmt.Fprintf(w, "%s:\n", t.Table)
		for _, r := range t.Rows {
			fmt.Fprintf(w, "  %s  %s\n", r.Key, r.Problem)
		}
		if t.More {
			fmt.Fprintln(w, "  ... and more")
		}
	}
	if rep.Equal {
		fmt.Fprintf(w, "%d tables equal\n", len(rep.Tables))
	} else {
		n := 0
		for _, t := range rep.Tables {
			if t.Result != "equal" {
				n++
			}
		}
		fmt.Fprintf(w, "%d of %d tables differ\n", n, len(rep.Tables))
	}
	return nil
}
