package transmitter

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pagarme/teleport/config"
	"github.com/pagarme/teleport/database/capture"
	"github.com/pagarme/teleport/database/load"
	"github.com/pagarme/teleport/database/store"
	"github.com/pagarme/teleport/server/wire"
)

// LoadOptions are the choices of one initial load.
type LoadOptions struct {
	Target    string // a name under targets:
	Parallel  int    // tables copied at once
	Overwrite bool   // empty and reload tables the target already has rows in
	// Tables, when not empty, makes the load a resync of these tables
	// (schema.table or table) and those linked to them by foreign keys:
	// only they are copied again, the others' stream goes on.
	Tables []string
	// Progress, when not nil, gets a live progress line, redrawn in place:
	// the load command passes its terminal.
	Progress io.Writer
	LogEvery time.Duration // how often progress is logged
	// ChunkBytes is the size on disk from which a table with a one-column
	// integer primary key is copied in chunks of about this size, several
	// at once; 0 copies every table whole.
	ChunkBytes int64
}

// LoadResult is what a load copied.
type LoadResult struct {
	Tables  int // copied in this run
	Skipped int // done by an earlier run
	Rows    int64
	Bytes   int64
	Took    time.Duration
}

// tableAttempts is how often a table's copy is tried before the load gives
// up; the load can be run again and resumes.
const tableAttempts = 3

// Load copies every table target takes from the source database db to the
// target's instance: each with COPY, read in one snapshot exported for the
// whole run and written on the target in one transaction per table that
// records that snapshot, so the target skips the events the copy holds and
// applies the later ones after it. A load interrupted anywhere resumes when
// run again: tables done stay done. cfg is the source's configuration.
func Load(ctx context.Context, db *sql.DB, cfg config.Config, opts LoadOptions, log *slog.Logger) (LoadResult, error) {
	start := time.Now()
	var res LoadResult
	t, ok := cfg.Targets[opts.Target]
	if !ok {
		return res, fmt.Errorf("no target %q in the configuration", opts.Target)
	}
	log = log.With("target", opts.Target)
	release, err := load.LockLoad(ctx, db, opts.Target)
	if err != nil {
		return res, err
	}
	defer release()
	// Changes made after the snapshot must be captured: the triggers go on
	// first. The rows already there are the load's to copy, not backfill's.
	if _, err := capture.InstallCapture(ctx, db, t.Match, false); err != nil {
		return res, err
	}
	tables, err := load.LoadSourceTables(ctx, db, t.Match)
	if err != nil {
		return res, err
	}
	if len(tables) == 0 {
		return res, fmt.Errorf("target_expression %q of %s matches no table of this database", t.TargetExpression, opts.Target)
	}
	if len(opts.Tables) > 0 {
		var linked []string
		if tables, linked, err = resyncTables(tables, opts.Tables, opts.Target); err != nil {
			return res, err
		}
		if len(linked) > 0 {
			log.Info("resyncing with them the tables they share foreign keys with", "tables", linked)
		}
	}
	p, err := newPeer(opts.Target, t)
	if err != nil {
		return res, err
	}
	l := &loader{peer: p, source: cfg.Database.Name, log: log, opts: opts, dbcfg: cfg.Database, what: wire.LoadKind(len(opts.Tables) > 0),
		patience: beginPatience}
	if l.instance, err = store.InstanceID(ctx, db); err != nil {
		return res, err
	}
	l.run, err = newRunID()
	if err != nil {
		return res, err
	}
	plan := wire.LoadPlan{Source: l.source, Run: l.run, Overwrite: opts.Overwrite, Resync: len(opts.Tables) > 0}
	for _, st := range tables {
		lt := wire.LoadTable{Schema: cmp.Or(t.ApplySchema, st.Schema), Table: st.Name, EstRows: st.EstRows, EstBytes: st.EstBytes}
		for _, part := range st.Partitions {
			lt.Partitions = append(lt.Partitions, [2]string{cmp.Or(t.ApplySchema, part[0]), part[1]})
		}
		plan.Tables = append(plan.Tables, lt)
		l.tables = append(l.tables, &loadTable{src: st, dst: lt})
	}
	begun, err := l.begin(ctx, plan)
	if err != nil {
		return res, err
	}
	// The snapshot is taken after the target registered the load: from
	// then on it applies no change to these tables, so none can be lost
	// between what it applied and what the copy holds. A load resumed
	// reads in the snapshot of the run before when the source instance
	// still holds it.
	snap, err := l.holdSnapshot(ctx, db, cfg.Server, !begun.Resumed)
	if err != nil {
		return res, err
	}
	defer snap.releaseLocal()
	l.snapID, l.snapshot = snap.id, snap.text
	todo := l.toCopy(begun.Done)
	res.Skipped = len(l.tables) - len(todo)
	units, kept, err := l.plan(ctx, db, todo, begun)
	if err != nil {
		return res, err
	}
	switch {
	case begun.Resumed:
		log.Info("resuming "+l.what, "run", l.run, "tables_done", res.Skipped, "tables_to_copy", len(todo),
			"same_snapshot", snap.reused, "chunks_kept", kept)
	default:
		log.Info(l.what+" begun", "run", l.run, "tables", len(todo))
	}
	stopProgress := l.reportProgress(todo)
	err = l.copyAll(ctx, units)
	stopProgress()
	if err != nil {
		return res, err
	}
	if err := l.finish(ctx); err != nil {
		return res, err
	}
	snap.releaseHeld(ctx)
	for _, lt := range todo {
		res.Tables++
		res.Rows += lt.rows.Load()
		res.Bytes += lt.bytes.Load()
	}
	res.Took = time.Since(start)
	return res, nil
}

// resyncTables returns the tables of all that names (-tables) picks, with
// every table linked to them by foreign keys, however indirectly, so that
// related rows come from one snapshot and their keys can be validated; and
// the names of the linked ones added. A name that picks nothing is an error.
func resyncTables(all []load.SourceTable, names []string, target string) (picked []load.SourceTable, linked []string, err error) {
	in := make([]bool, len(all))
	for _, name := range names {
		found := false
		for i, t := range all {
			if config.NamesTable(name, t.Schema, t.Name) {
				found, in[i] = true, true
			}
		}
		if !found {
			return nil, nil, fmt.Errorf("-tables: %q is not a table %s takes (a partition is resynced with its partitioned table)", name, target)
		}
	}
	for _, i := range withFKPeers(all, in) {
		linked = append(linked, all[i].Table.String())
	}
	for i, t := range all {
		if in[i] {
			picked = append(picked, t)
		}
	}
	return picked, linked, nil
}

// withFKPeers marks in every table of all that shares a foreign key,
// however indirectly, with one marked, and returns the indexes it marked.
func withFKPeers(all []load.SourceTable, in []bool) (added []int) {
	byOID := map[uint32]int{}
	var queue []int
	for i, t := range all {
		byOID[t.OID] = i
		if in[i] {
			queue = append(queue, i)
		}
	}
	for len(queue) > 0 {
		i := queue[0]
		queue = queue[1:]
		for _, oid := range all[i].FKPeers {
			if j, ok := byOID[oid]; ok && !in[j] {
				in[j] = true
				queue = append(queue, j)
				added = append(added, j)
			}
		}
	}
	return added
}

// loader is one run of a load.
type loader struct {
	peer     *peer
	source   string
	instance string // this database's id as a source, named in every request
	run      string
	log      *slog.Logger
	what     string // "initial load" or "resync", for the log
	opts     LoadOptions
	dbcfg    config.Database
	tables   []*loadTable
	snapID   string
	snapshot string
	patience time.Duration // how long begin waits for a target not ready
}

// url returns the address of one of the load's routes, with q and this
// instance's id as its query.
func (l *loader) url(route string, q url.Values) string {
	if q == nil {
		q = url.Values{}
	}
	q.Set("instance", l.instance)
	return l.peer.url + wire.Path(route, l.source) + "?" + q.Encode()
}

// loadTable is a table of the load and its progress in this run.
type loadTable struct {
	src         load.SourceTable
	dst         wire.LoadTable
	rows, bytes atomic.Int64 // its copies' so far
	started     atomic.Int64 // unix nanoseconds; 0 until its copy starts
	done        atomic.Bool
	left        atomic.Int32 // copies not done
	chunks      int          // 1: copied whole
}

// copyUnit is one COPY of a run: a table whole, or one chunk of it.
type copyUnit struct {
	lt          *loadTable
	chunk       int
	keys        load.KeyRange
	rows, bytes atomic.Int64 // this attempt's so far
}

func newRunID() (string, error) {
	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("pick a run id: %w", err)
	}
	return hex.EncodeToString(b), nil
}

// retryEvery is the wait between attempts of a request that may succeed
// later: the target busy, unreachable or not ready.
const retryEvery = 2 * time.Second

// beginPatience is how long a load waits for its target to be ready before
// it gives up saying why: the schema of a whole database arrives within a
// few passes, so a target not ready after this waits for something a
// person must fix.
const beginPatience = 10 * time.Minute

// begin registers plan on the target, waiting while the target is not
// ready (its schema has not arrived) or unreachable, up to l.patience, and
// failing at once when it refuses.
func (l *loader) begin(ctx context.Context, plan wire.LoadPlan) (wire.LoadBegun, error) {
	body, err := json.Marshal(plan)
	if err != nil {
		return wire.LoadBegun{}, fmt.Errorf("encode load plan: %w", err)
	}
	var begun wire.LoadBegun
	var lastLog time.Time
	start := time.Now()
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, l.url(wire.RouteLoad, nil), bytes.NewReader(body))
		if err != nil {
			return begun, fmt.Errorf("begin load on %s (%s): %w", l.peer.target, l.peer.url, err)
		}
		req.Header.Set("Content-Type", "application/json")
		err = l.peer.doJSON(l.peer.slow, req, &begun)
		var ref *refusal
		switch {
		case err == nil:
			return begun, nil
		case errors.As(err, &ref):
			return begun, fmt.Errorf("%s (%s) declines the load: %s", l.peer.target, l.peer.url, ref.msg)
		case ctx.Err() != nil:
			return begun, ctx.Err()
		}
		waited := time.Since(start)
		if waited >= l.patience {
			return begun, fmt.Errorf("%s (%s) was not ready for the load for %v, the last answer: %w; "+
				"fix what it says (the target's /status shows a held batch) and run the load again", l.peer.target, l.peer.url, waited.Round(time.Second), err)
		}
		if time.Since(lastLog) >= 30*time.Second {
			l.log.Warn("waiting for the target before the load can begin", "url", l.peer.url, "reason", err,
				"gives_up_in", (l.patience - waited).Round(time.Second))
			lastLog = time.Now()
		}
		select {
		case <-ctx.Done():
			return begun, ctx.Err()
		case <-time.After(min(retryEvery, l.patience-waited)):
		}
	}
}

// toCopy returns the tables this run copies: every table of a group that
// shares foreign keys, however indirectly, unless the whole group is done in
// one snapshot (a table alone is its own group), so that related tables
// come from one snapshot and their keys can be validated; of a group
// copied, the tables done already in this run's snapshot (the one the
// source instance held for it) are kept.
func (l *loader) toCopy(done []wire.LoadTable) []*loadTable {
	srcs := make([]load.SourceTable, len(l.tables))
	snaps := make([]string, len(l.tables)) // "" when not done
	for i, lt := range l.tables {
		srcs[i] = lt.src
		if j := slices.IndexFunc(done, func(d wire.LoadTable) bool {
			return d.Schema == lt.dst.Schema && d.Table == lt.dst.Table
		}); j >= 0 {
			snaps[i] = cmp.Or(done[j].Snapshot, "?") // a target that does not say: not this run's
		}
	}
	var out []*loadTable
	for _, group := range fkGroups(srcs) {
		same := true
		for _, i := range group {
			same = same && snaps[i] != "" && snaps[i] == snaps[group[0]]
		}
		for _, i := range group {
			if !same && (snaps[i] == "" || snaps[i] != l.snapshot) {
				out = append(out, l.tables[i])
			}
		}
	}
	// Largest first, so the last table to finish is a small one.
	slices.SortStableFunc(out, func(a, b *loadTable) int { return int(b.src.EstBytes - a.src.EstBytes) })
	return out
}

// fkGroups returns the indexes of all grouped by the foreign keys they
// share, however indirectly, in the order of all.
func fkGroups(all []load.SourceTable) [][]int {
	seen := make([]bool, len(all))
	var out [][]int
	for i := range all {
		if seen[i] {
			continue
		}
		in := make([]bool, len(all))
		in[i] = true
		group := append([]int{i}, withFKPeers(all, in)...)
		slices.Sort(group)
		for _, j := range group {
			seen[j] = true
		}
		out = append(out, group)
	}
	return out
}

// plan cuts the tables into the run's copies: a big table with a one-column
// integer primary key into chunks when the target takes them, every other
// table whole. A table with chunks done in this run's snapshot keeps their
// plan, and they are not copied again; kept counts them. The copies of
// the biggest tables come first.
func (l *loader) plan(ctx context.Context, db *sql.DB, tables []*loadTable, begun wire.LoadBegun) (units []*copyUnit, kept int, err error) {
	err = load.InSnapshot(ctx, db, l.snapID, func(tx *sql.Tx) error {
		for _, lt := range tables {
			var done []wire.LoadChunk
			for _, c := range begun.DoneChunks {
				if c.Schema == lt.dst.Schema && c.Table == lt.dst.Table && c.Snapshot == l.snapshot {
					done = append(done, c)
				}
			}
			ranges := []load.KeyRange{{}}
			if begun.Chunks && (l.opts.ChunkBytes > 0 || len(done) > 0) {
				n := 0
				if len(done) > 0 {
					n = done[0].Chunks
				}
				var err error
				if ranges, err = load.PlanChunks(ctx, tx, lt.src, l.opts.ChunkBytes, n); err != nil {
					return err
				}
			}
			lt.chunks = len(ranges)
			left := 0
			for i, r := range ranges {
				if lt.chunks > 1 && slices.ContainsFunc(done, func(c wire.LoadChunk) bool {
					return c.Chunk == i && c.Chunks == lt.chunks && equalBound(c.Lo, r.Lo) && equalBound(c.Hi, r.Hi)
				}) {
					kept++
					continue
				}
				units = append(units, &copyUnit{lt: lt, chunk: i, keys: r})
				left++
			}
			if left == 0 {
				// Every chunk done, the table not: not seen, but a copy
				// of its last chunk again would finish it.
				last := len(ranges) - 1
				units = append(units, &copyUnit{lt: lt, chunk: last, keys: ranges[last]})
				kept--
				left++
			}
			lt.left.Store(int32(left))
			if lt.chunks > 1 {
				l.log.Info("copying a table in chunks", "table", lt.src.Table.String(), "chunks", lt.chunks, "key", lt.src.ChunkKey,
					"chunks_kept", lt.chunks-left)
			}
		}
		return nil
	})
	return units, kept, err
}

func equalBound(a, b *int64) bool {
	return a == nil && b == nil || a != nil && b != nil && *a == *b
}

// copyAll runs the copies, opts.Parallel at a time. The first copy that
// fails every attempt stops the others.
func (l *loader) copyAll(ctx context.Context, units []*copyUnit) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	next := make(chan *copyUnit)
	var wg sync.WaitGroup
	for range max(1, min(l.opts.Parallel, len(units))) {
		wg.Go(func() {
			var r *load.CopyReader
			defer func() {
				if r != nil {
					r.Close()
				}
			}()
			for u := range next {
				if err := l.copyUnit(ctx, &r, u); err != nil {
					cancel(err)
					return
				}
			}
		})
	}
feed:
	for _, u := range units {
		select {
		case next <- u:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	if err := context.Cause(ctx); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return ctx.Err()
}

// copyUnit runs one copy, trying again on failure with a fresh connection:
// the chunks of its table done already stay done. *r is the worker's
// reader, opened or replaced as needed.
func (l *loader) copyUnit(ctx context.Context, r **load.CopyReader, u *copyUnit) error {
	lt := u.lt
	what := lt.src.Table.String()
	if lt.chunks > 1 {
		what = fmt.Sprintf("chunk %d of %d of %s", u.chunk+1, lt.chunks, lt.src.Table)
	}
	lt.started.CompareAndSwap(0, time.Now().UnixNano())
	var err error
	for attempt := 1; attempt <= tableAttempts; attempt++ {
		if *r == nil {
			if *r, err = load.OpenCopyReader(ctx, l.dbcfg, "teleport initial-load "+l.opts.Target); err != nil {
				return err
			}
		}
		// What a failed attempt counted is not the table's.
		lt.rows.Add(-u.rows.Swap(0))
		lt.bytes.Add(-u.bytes.Swap(0))
		err = l.sendUnit(ctx, *r, u, what)
		if err == nil {
			if lt.left.Add(-1) == 0 {
				lt.done.Store(true)
			}
			return nil
		}
		var ref *refusal
		if ctx.Err() != nil || errors.As(err, &ref) {
			return err
		}
		args := []any{"table", lt.src.Table.String(), "attempt", attempt, "err", err}
		if lt.chunks > 1 {
			args = append(args, "chunk", u.chunk+1, "chunks", lt.chunks)
		}
		l.log.Warn("table copy failed, trying again", args...)
		(*r).Close()
		*r = nil
		select {
		case <-ctx.Done():
			return err
		case <-time.After(retryEvery):
		}
	}
	return fmt.Errorf("copy %s: %w", what, err)
}

// sendUnit streams u's rows from the source to the target: the COPY text
// goes through a pipe, so neither side holds more than a buffer of it.
func (l *loader) sendUnit(ctx context.Context, r *load.CopyReader, u *copyUnit, what string) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	lt := u.lt
	pr, pw := io.Pipe()
	q := url.Values{"run": {l.run}, "schema": {lt.dst.Schema}, "table": {lt.dst.Table}, "snapshot": {l.snapshot}, "column": lt.src.Columns}
	if lt.chunks > 1 {
		q.Set("chunk", strconv.Itoa(u.chunk))
		q.Set("chunks", strconv.Itoa(lt.chunks))
		q.Set("key", lt.src.ChunkKey)
		if u.keys.Lo != nil {
			q.Set("lo", strconv.FormatInt(*u.keys.Lo, 10))
		}
		if u.keys.Hi != nil {
			q.Set("hi", strconv.FormatInt(*u.keys.Hi, 10))
		}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, l.url(wire.RouteLoadCopy, q), pr)
	if err != nil {
		return fmt.Errorf("copy %s to %s: %w", what, l.peer.target, err)
	}
	req.Header.Set("Content-Type", "text/plain; charset=utf-8")
	readErr := make(chan error, 1)
	go func() {
		// pgconn writes a row at a time: gather them, so the request body
		// moves in large pieces.
		bw := bufio.NewWriterSize(&countingWriter{w: pw, u: u}, copyWriteBuf)
		err := r.CopyTable(ctx, l.snapID, lt.src, u.keys, bw)
		if err == nil {
			err = bw.Flush()
		}
		pw.CloseWithError(err) // nil: the target sees the end of the rows
		readErr <- err
	}()
	var done wire.CopyDone
	err = l.peer.doJSON(l.peer.slow, req, &done)
	if err != nil {
		pr.CloseWithError(err) // stops the reader if the target answered first
	}
	rerr := <-readErr
	switch {
	case err != nil: // a failed read of the source fails the request too, and its text says why
		return fmt.Errorf("copy %s to %s: %w", what, l.peer.target, err)
	case rerr != nil:
		return fmt.Errorf("copy %s: %w", what, rerr)
	case done.Rows != u.rows.Load() || done.Bytes != u.bytes.Load():
		return fmt.Errorf("copy %s to %s: sent %d rows (%d bytes), the target stored %d (%d bytes)",
			what, l.peer.target, u.rows.Load(), u.bytes.Load(), done.Rows, done.Bytes)
	}
	return nil
}

// copyWriteBuf is how much COPY text the source side gathers before it
// goes into the request body.
const copyWriteBuf = 256 << 10

// countingWriter counts the rows and bytes of COPY text going through it,
// for its copy and its table.
type countingWriter struct {
	w io.Writer
	u *copyUnit
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	rows := int64(bytes.Count(p[:n], []byte{'\n'}))
	c.u.bytes.Add(int64(n))
	c.u.rows.Add(rows)
	c.u.lt.bytes.Add(int64(n))
	c.u.lt.rows.Add(rows)
	return n, err
}

// finish asks the target to end the load, trying again while it cannot be
// reached.
func (l *loader) finish(ctx context.Context) error {
	for attempt := 1; ; attempt++ {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost,
			l.url(wire.RouteLoadFinish, url.Values{"run": {l.run}}), nil)
		if err != nil {
			return fmt.Errorf("finish load on %s: %w", l.peer.target, err)
		}
		var ans map[string]string
		err = l.peer.doJSON(l.peer.slow, req, &ans)
		var ref *refusal
		switch {
		case err == nil:
			return nil
		case errors.As(err, &ref), attempt == tableAttempts, ctx.Err() != nil:
			return fmt.Errorf("finish load on %s (%s): %w", l.peer.target, l.peer.url, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(retryEvery):
		}
	}
}
