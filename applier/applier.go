// Package applier applies batches received from sources, strictly in order,
// each in one transaction.
//
// The server stores the chunks of each batch in teleport.received_chunk; the
// applier takes, per source, the batch after teleport.source.applied_seq once
// all its chunks are there, applies its events chunk by chunk (one chunk in
// memory at a time) and records its sequence number in the same transaction,
// so a crash at any point resumes exactly. A batch that fails is held, with
// the reason in teleport.source.error, and retried on every pass until the
// cause is fixed or an operator skips it (database.SkipBatch); the other
// sources go on meanwhile.
package applier

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/lib/pq/pqerror"

	"github.com/pagarme/teleport/database"
	"github.com/pagarme/teleport/database/apply"
	"github.com/pagarme/teleport/database/load"
	"github.com/pagarme/teleport/database/schema"
	"github.com/pagarme/teleport/database/store"
	"github.com/pagarme/teleport/server/wire"
)

// heldLogEvery is how often a batch held by the same error is logged again.
const heldLogEvery = time.Minute

// heldEscalate is how long a batch may wait for a schema change (or a load's
// rows) before the wait is logged as an error: a hold that long will not
// clear by itself.
const heldEscalate = 5 * time.Minute

// maxHeldWait caps the wait between tries of a held batch: each try reads
// and decompresses the batch again, so a batch that keeps failing is tried
// at the interval, then less and less often, up to this. A skip request
// makes it tried at once, and so does a new batch from its source when it
// waits for a schema change (the new batch may bring it).
const maxHeldWait = 30 * time.Second

// Worker applies received batches. Its methods must not be called
// concurrently, but for Wake, StopAfter and Resume; two workers, even in two processes, may run on one database
// (they take turns per source).
type Worker struct {
	db        *sql.DB
	interval  time.Duration
	log       *slog.Logger
	maxEvents int
	held      map[string]*held // per source, the error last logged
	wake      chan struct{}
	part      *part // of the schema change last applied in parts

	// asReplica: the role may set session_replication_role, so row changes
	// are applied in replica mode where no trigger depends on it (see
	// apply.NewTableCache); modeKnown once asked.
	asReplica, modeKnown bool
	// cache is what the apply read of the tables, kept between
	// transactions (checked at the start of each, see apply.TableCache)
	// and dropped when one fails.
	cache *apply.TableCache
	// filters are the finished loads' filters, kept between transactions
	// (see load.FilterCache).
	filters load.FilterCache

	stopsMu sync.Mutex
	stops   map[string]stop // per source, see StopAfter
}

// stop keeps a source's batches after seq from being applied until until.
type stop struct {
	seq   int64
	until time.Time
}

// StopAfter keeps the batches of source after seq from being applied for at
// most d (or until Resume), so a verify can open a snapshot of the target
// at exactly batch seq. A later call replaces it.
func (w *Worker) StopAfter(source string, seq int64, d time.Duration) {
	w.stopsMu.Lock()
	w.stops[source] = stop{seq: seq, until: time.Now().Add(d)}
	w.stopsMu.Unlock()
	w.Wake()
}

// Resume lets source's batches be applied again after StopAfter.
func (w *Worker) Resume(source string) {
	w.stopsMu.Lock()
	delete(w.stops, source)
	w.stopsMu.Unlock()
	w.Wake()
}

// stopAt is the last batch of source that may be applied now.
func (w *Worker) stopAt(source string) int64 {
	w.stopsMu.Lock()
	defer w.stopsMu.Unlock()
	st, ok := w.stops[source]
	if !ok {
		return math.MaxInt64
	}
	if time.Now().After(st.until) {
		delete(w.stops, source)
		w.log.Warn("verify stop expired: applying again", "source", source, "seq", st.seq)
		return math.MaxInt64
	}
	return st.seq
}

// part is where a schema change applied in parts got to in this process:
// with what an earlier part read of the target, which the next one reuses.
type part struct {
	source string
	seq    int64
	k      int
	ddl    schema.DDLPart
}

type held struct {
	seq      int64
	msg      string
	since    time.Time // first seen holding seq
	loggedAt time.Time
	repeats  int // times seen since loggedAt

	wait     time.Duration // before the next try
	retryAt  time.Time
	received int64 // the source's received_seq at the last try
	schema   bool  // held waiting for a schema change
}

// Result is what one pass did.
type Result struct {
	Batches int // batches applied (not counting skipped ones)
	Events  int // events in them
}

// New returns a worker that runs every interval. Consecutive small batches
// share a transaction up to maxEvents events (batch_size); a batch larger
// than that is still applied whole, in a transaction of its own.
func New(db *sql.DB, interval time.Duration, maxEvents int, log *slog.Logger) *Worker {
	return &Worker{
		db:        db,
		interval:  interval,
		log:       log.With("worker", "applier"),
		maxEvents: maxEvents,
		held:      map[string]*held{},
		filters:   load.FilterCache{},
		wake:      make(chan struct{}, 1),
		stops:     map[string]stop{},
	}
}

// Run calls RunOnce at once and then again until ctx is done: after the
// interval while batches come, at once when the server says a batch is
// complete (Wake), and otherwise when a held batch is due for its next try,
// or after idleRecheck. An idle target costs no query a pass. A failed pass
// is logged and retried after the interval, and the first pass that
// succeeds after failures says so; Run returns nil on shutdown.
func (w *Worker) Run(ctx context.Context) error {
	timer := time.NewTimer(w.interval)
	defer timer.Stop()
	failed := 0 // passes failed in a row
	for {
		res, err := w.RunOnce(ctx)
		wait := w.interval
		switch {
		case ctx.Err() != nil:
			return nil
		case err != nil:
			failed++
			w.log.Error("pass failed", "err", err)
		default:
			if failed > 0 {
				w.log.Info("pass succeeded again", "failed_passes", failed)
				failed = 0
			}
			if res.Batches > 0 {
				w.log.Debug("pass done", "batches", res.Batches, "events", res.Events)
			}
			wait = w.nextWait(res)
		}
		timer.Reset(wait)
		select {
		case <-ctx.Done():
			return nil
		case <-timer.C:
		case <-w.wake:
			timer.Stop()
		}
	}
}

// idleRecheck is how long an applier with nothing to do waits for a Wake
// before it looks again (a batch stored by another process, say).
const idleRecheck = 10 * time.Second

// nextWait is how long to wait after a pass that succeeded with res: the
// interval after a pass that applied something or while a batch waits for
// an initial load, else until the first held batch is due, at most
// idleRecheck.
func (w *Worker) nextWait(res Result) time.Duration {
	if res.Batches > 0 {
		return w.interval
	}
	wait := idleRecheck
	for _, h := range w.held {
		if h.retryAt.IsZero() {
			return w.interval
		}
		wait = min(wait, time.Until(h.retryAt))
	}
	return max(wait, w.interval)
}

// Wake makes Run start its next pass now rather than at the next tick: the
// server calls it when a batch is complete. It never blocks.
func (w *Worker) Wake() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// RunOnce applies, for every source, the complete batches that follow its
// applied_seq, in order, until it reaches a gap, an incomplete batch or a
// batch that fails. Several small consecutive batches may share a
// transaction; a batch is never split. A batch that fails is held and
// recorded, and is not an error of the pass: RunOnce returns an error only
// when the database could not be read or the failure could not be recorded.
func (w *Worker) RunOnce(ctx context.Context) (Result, error) {
	var res Result
	sources, err := store.SourceStates(ctx, w.db)
	if err != nil {
		return res, err
	}
	var errs []error
	for _, src := range sources {
		if ctx.Err() != nil {
			return res, ctx.Err()
		}
		if err := w.applySource(ctx, src, &res); err != nil {
			errs = append(errs, fmt.Errorf("source %s: %w", src.Name, err))
		}
	}
	return res, errors.Join(errs...)
}

// askMode finds out, before the first batch is applied, whether the role
// may apply in replica mode, and says which way rows are applied.
func (w *Worker) askMode(ctx context.Context) error {
	ok, err := apply.MayApplyAsReplica(ctx, w.db)
	if err != nil {
		return err
	}
	w.asReplica, w.modeKnown = ok, true
	if ok {
		w.log.Info("applying in replica mode: foreign keys are not checked again for tables without triggers of their own, as in PostgreSQL's logical replication")
	} else {
		w.log.Info("the role may not set session_replication_role: foreign keys are checked as rows are applied (see the README's Privileges for the faster replica mode)")
	}
	return nil
}

// errMoved means another applier applied the batch first.
var errMoved = errors.New("applied_seq moved")

// errAlone means a batch of a group is applied in parts, so alone.
var errAlone = errors.New("batch applied in parts")

func (w *Worker) applySource(ctx context.Context, src store.SourceState, res *Result) error {
	applied := src.AppliedSeq
	if h := w.held[src.Name]; h != nil && !h.retryAt.IsZero() && h.seq == applied+1 && src.SkipSeq != h.seq &&
		(!h.schema || src.ReceivedSeq == h.received) && time.Now().Before(h.retryAt) {
		return nil // held, and nothing that could release it happened since the last try
	}
	// A batch already held is tried alone, so the batches before it in a
	// shared transaction are not held with it and its error is its own.
	alone := src.ErrorSeq == applied+1
	early := false // the early schema changes of the batch after applied were committed
	for {
		// Read each time: a verify's stop holds from the next group on.
		stopAt := w.stopAt(src.Name)
		first, ok, err := store.NextBatch(ctx, w.db, src.Name, applied)
		if err != nil || !ok || first.Seq > stopAt {
			return err
		}
		if first.Seq == src.SkipSeq {
			if err := w.skip(ctx, first); err != nil {
				return err
			}
			applied = first.Seq
			continue
		}
		if !w.modeKnown {
			if err := w.askMode(ctx); err != nil {
				return err
			}
		}
		group := []store.ReceivedBatch{first}
		events := first.Events
		for !alone && events < w.maxEvents {
			next, ok, err := store.NextBatch(ctx, w.db, src.Name, group[len(group)-1].Seq)
			if err != nil {
				return err
			}
			if !ok || next.Seq == src.SkipSeq || next.Seq > stopAt || events+next.Events > w.maxEvents {
				break
			}
			group = append(group, next)
			events += next.Events
		}

		start := time.Now()
		cut, err := w.applyGroup(ctx, applied, group)
		if err != nil {
			w.cache = nil // read the tables again: a failure may come from what the cache held
		}
		switch {
		case err == nil && cut:
			// A part of a schema change too big for one transaction is
			// committed; the batch goes on from there, alone.
			alone = true
		case err == nil:
			last := group[len(group)-1]
			applied = last.Seq
			res.Batches += len(group)
			res.Events += events
			w.log.Debug("batches applied", "source", src.Name, "seq", last.Seq, "batches", len(group), "events", events, "took", time.Since(start))
			w.recovered(src.Name)
		case errors.Is(err, errMoved):
			return nil
		case ctx.Err() != nil:
			return ctx.Err()
		case errors.Is(err, errAlone):
			alone = true
		case errors.Is(err, apply.ErrReplicaDenied):
			w.log.Warn("the role may no longer set session_replication_role: foreign keys are checked as rows are applied from now on", "err", err)
			w.asReplica = false
		case database.UnsafeNewEnumValue(err) && !early:
			// A label added to an enum is usable once committed: commit
			// the batch's new labels first, then apply it again.
			if err := w.applyEarly(ctx, group); err != nil {
				return err
			}
			early = true
		case len(group) > 1:
			alone = true
		case errors.Is(err, load.ErrLoadUnderway):
			if err := store.RecordApplyError(ctx, w.db, src.Name, first.Seq, err.Error()); err != nil {
				return err
			}
			w.reportWaiting(src.Name, first.Seq, err)
			return nil
		case schema.WantsSchema(err):
			// The upstream re-queue: the schema change this batch needs
			// may be in a batch behind it. Apply those one at a time,
			// ahead of it, and try it again after each.
			found, aerr := w.applyAhead(ctx, src.Name, first.Seq)
			if found {
				continue
			}
			msg := err.Error() + " (no schema change received after this batch resolves it)"
			if aerr != nil {
				msg = err.Error() + "; and " + aerr.Error()
			}
			if err := store.RecordApplyError(ctx, w.db, src.Name, first.Seq, msg); err != nil {
				return err
			}
			w.reportHeld(src, first.Seq, err)
			return nil
		default:
			err = w.beforeLoad(ctx, src.Name, err)
			if err := store.RecordApplyError(ctx, w.db, src.Name, first.Seq, err.Error()); err != nil {
				return err
			}
			w.reportHeld(src, first.Seq, err)
			return nil
		}
	}
}

// errBeforeLoad marks a conflict on a target that no initial load from the
// source has reached yet: the rows are missing because they were never
// copied, which the load will do (it begins and releases the batch).
var errBeforeLoad = errors.New("no initial load from this source has run on this database yet: " +
	"the rows that were on the source before replication began come with `-mode initial-load`, which releases this batch")

// beforeLoad returns err marked with errBeforeLoad when it is a conflict
// and source has no load recorded here. The mark only explains: when the
// look fails, err is returned as it is.
func (w *Worker) beforeLoad(ctx context.Context, source string, err error) error {
	var none bool
	if errors.Is(err, apply.ErrConflict) &&
		w.db.QueryRowContext(ctx, `SELECT NOT EXISTS (SELECT 1 FROM teleport.load WHERE source = $1)`, source).Scan(&none) == nil && none {
		return fmt.Errorf("%w (%w)", err, errBeforeLoad)
	}
	return err
}

// applyGroup applies consecutive batches, the first one after applied, in
// one transaction. It reports a cut when the transaction ends with a part of
// a batch's schema change too big for one (see applyBatch): the batch is
// not applied yet, and goes on from there in the next transaction.
func (w *Worker) applyGroup(ctx context.Context, applied int64, group []store.ReceivedBatch) (cut bool, err error) {
	source := group[0].Source
	err = database.InTx(ctx, w.db, func(tx *sql.Tx) error {
		cur, part, inParts, err := store.LockSourceFor(ctx, tx, source, group[0].Seq)
		if err != nil {
			return err
		}
		if cur != applied {
			return errMoved
		}
		if inParts && len(group) > 1 {
			return errAlone
		}
		// One run of row changes for the transaction: its batches apply
		// the same few statements, each prepared once, and a row changed
		// in several batches is written once. The tables are read once
		// for many transactions (checked in one query by each).
		if w.cache == nil || w.cache.AsReplica() != w.asReplica {
			w.cache = apply.NewTableCache(w.asReplica)
		}
		run := &rowRun{cache: w.cache}
		if err := run.cache.Begin(ctx, tx, source); err != nil {
			return err
		}
		load, err := w.filters.Read(ctx, tx, source)
		if err != nil {
			return err
		}
		for _, b := range group {
			ap := batchApply{w: w, tx: tx, b: b, load: load, run: run, alone: len(group) == 1}
			if inParts {
				ap.from = &part
			}
			next, err := ap.apply(ctx)
			if err != nil {
				return fmt.Errorf("apply batch %d: %w", b.Seq, err)
			}
			if next != nil {
				cut = true
				w.reportLeftOut(source, run.leftOut)
				return store.SaveBatchPart(ctx, tx, source, b.Seq, *next)
			}
		}
		if err := run.flush(ctx, tx, false); err != nil {
			return fmt.Errorf("apply batch %d: %w", group[len(group)-1].Seq, err)
		}
		w.reportLeftOut(source, run.leftOut)
		return nil
	})
	return cut, err
}

// reportLeftOut logs what this target's PostgreSQL major left out of a
// source's schema changes (also in /status, see applyDDL).
func (w *Worker) reportLeftOut(source string, us []schema.Unsupported) {
	for _, u := range us {
		w.log.Warn("schema change left out: this target's PostgreSQL cannot take it", "source", source, "object", u.Object, "reason", u.Reason)
	}
}

// runMaxBytes bounds the row changes an apply transaction holds in memory
// before it applies them.
const runMaxBytes = 16 << 20

// rowRun holds the row changes of an apply transaction not applied yet, in
// order, across chunks and batches: applied together, runs of changes to
// one table become one statement, and a row updated by many source
// transactions is updated once. A row updated many times in one target
// transaction leaves a version per update that no one can prune until it
// commits, and every later lookup of the row (a foreign key check from
// another table, say) walks them all: on a pgbench backlog, applying each
// batch's changes separately made the check of pgbench_tellers seven times
// slower than applying the transaction's changes together.
type rowRun struct {
	cache   *apply.TableCache
	evs     []wire.Event
	bytes   int
	leftOut []schema.Unsupported // by the schema changes applied, see applyDDL
}

func (r *rowRun) add(evs []wire.Event) {
	for _, e := range evs {
		r.bytes += len(e.Data)
	}
	r.evs = append(r.evs, evs...)
}

// flush applies the held changes. With keepTruncates, truncates at the end
// stay held: tables linked by foreign keys must be truncated together, and
// the rest of the run may come in the next chunk.
func (r *rowRun) flush(ctx context.Context, tx *sql.Tx, keepTruncates bool) error {
	n := len(r.evs)
	if keepTruncates {
		for n > 0 && r.evs[n-1].Op == wire.OpTruncate {
			n--
		}
	}
	if n == 0 {
		return nil
	}
	if err := apply.Events(ctx, tx, r.cache, r.evs[:n]); err != nil {
		return err
	}
	r.evs = slices.Delete(r.evs, 0, n)
	r.bytes = 0
	for _, e := range r.evs {
		r.bytes += len(e.Data)
	}
	return nil
}

// splitItems is the size from which a schema change may be applied in
// parts: a smaller one takes few enough locks for any transaction.
const splitItems = 64

// batchApply applies one batch in an apply transaction.
type batchApply struct {
	w     *Worker
	tx    *sql.Tx
	b     store.ReceivedBatch
	load  load.LoadFilter
	run   *rowRun
	alone bool             // the batch has its transaction to itself, so it may be applied in parts
	from  *store.BatchPart // where an earlier transaction left the batch; nil for its start

	seen map[uint64]bool // source transactions with row changes applied since the start or the last cut; kept only when alone
}

// apply applies the batch's chunks in order, one in memory at a time beside
// the changes run holds, and records the batch as applied. Schema changes are
// applied in their place: the row changes before one are applied first.
// Events an initial load's copy already holds are left out; during a load,
// events on its tables wait for it.
//
// A schema change too big for the lock table in one transaction (thousands
// of tables created) is applied in parts when the batch is alone and every
// source transaction whose rows come before the change has no row after it:
// apply then returns where the next part starts, to be recorded as the
// transaction commits, and a reader of the target sees, between parts,
// whole source transactions and objects without rows, never part of a
// transaction.
func (a *batchApply) apply(ctx context.Context) (*store.BatchPart, error) {
	tx, b, run := a.tx, a.b, a.run
	ahead, err := schema.AppliedAhead(ctx, tx, b.Source, b.Seq)
	if err != nil {
		return nil, err
	}
	if a.alone { // only a batch alone may be cut: the others skip the bookkeeping in the apply loop
		a.seen = map[uint64]bool{}
	}
	k := 0 // rank of the next schema change in the batch
	for c := range b.Chunks {
		evs, err := store.ChunkEvents(ctx, tx, b.Source, b.Seq, c)
		if err != nil {
			return nil, err
		}
		if evs, err = a.load.Filter(evs); err != nil {
			return nil, err
		}
		for len(evs) > 0 {
			i := slices.IndexFunc(evs, func(e wire.Event) bool { return e.Op == wire.OpSchema })
			if i < 0 {
				a.add(k, evs)
				break
			}
			a.add(k, evs[:i])
			if err := run.flush(ctx, tx, false); err != nil {
				return nil, err
			}
			if !ahead[k] && (a.from == nil || k >= a.from.DDL) {
				next, err := a.applyDDL(ctx, k, evs[i].Data, c, evs[i+1:])
				if err != nil || next != nil {
					return next, err
				}
			}
			k++
			evs = evs[i+1:]
		}
		if run.bytes >= runMaxBytes {
			if err := run.flush(ctx, tx, true); err != nil {
				return nil, err
			}
		}
	}
	if len(ahead) > 0 {
		if err := schema.ForgetAppliedAhead(ctx, tx, b.Source, b.Seq); err != nil {
			return nil, err
		}
	}
	return nil, store.MarkBatchApplied(ctx, tx, b.Source, b.Seq, b.TickTime)
}

// add holds the row changes evs, which come before the k-th schema change,
// unless an earlier transaction applied them.
func (a *batchApply) add(k int, evs []wire.Event) {
	if a.from != nil && k <= a.from.DDL {
		return
	}
	if a.seen != nil {
		for _, e := range evs {
			a.seen[e.XID] = true
		}
	}
	a.run.add(evs)
}

// applyDDL applies the k-th schema change of the batch, data, which is in
// chunk c with the events rest after it, in full or, when it is too big for
// one transaction and may be, in part: it then returns where the next part
// starts.
func (a *batchApply) applyDDL(ctx context.Context, k int, data []byte, c int, rest []wire.Event) (*store.BatchPart, error) {
	ddl, err := schema.ReadDDL(data)
	if err != nil {
		return nil, err
	}
	var p schema.DDLPart
	resumed := a.from != nil && k == a.from.DDL
	if resumed {
		if last := a.w.part; last != nil && last.source == a.b.Source && last.seq == a.b.Seq && last.k == k && last.ddl.Next == a.from.Item {
			p = last.ddl
		}
		p.Next, p.Deferred = a.from.Item, a.from.Deferred
	}
	if a.alone && len(ddl.Items) >= splitItems {
		safe := resumed // the first part checked
		if !safe {
			if safe, err = a.cutSafe(ctx, c, rest); err != nil {
				return nil, err
			}
		}
		if safe {
			if p.Locks, err = lockBudget(ctx, a.tx); err != nil {
				return nil, err
			}
		}
	}
	if err := a.run.cache.OriginMode(ctx, a.tx); err != nil {
		return nil, err
	}
	done, left, err := schema.ApplyDDLPart(ctx, a.tx, ddl, &p)
	if err == nil {
		err = saveLeftOut(ctx, a.tx, a.b.Source, left)
	}
	if err != nil {
		switch database.SQLState(err) {
		case pqerror.OutOfMemory:
			err = fmt.Errorf("%w (the target's lock table cannot hold this schema change of %d items with the row changes around it in one transaction: "+
				"raise max_locks_per_transaction on the target and restart it, and the batch is applied on the next pass)", err, len(ddl.Items))
		}
		return nil, fmt.Errorf("schema change: %w", err)
	}
	a.run.leftOut = append(a.run.leftOut, left...)
	a.run.cache.Forget()
	log := a.w.log
	if done {
		a.w.part = nil
		if resumed {
			log.Info("schema change applied in parts", "source", a.b.Source, "seq", a.b.Seq, "items", len(ddl.Items))
		}
		return nil, nil
	}
	a.w.part = &part{source: a.b.Source, seq: a.b.Seq, k: k, ddl: p}
	if !resumed {
		log.Info("schema change too big for one transaction: applying it in parts", "source", a.b.Source, "seq", a.b.Seq,
			"items", len(ddl.Items), "locks_per_part", p.Locks)
	}
	log.Debug("schema change part applied", "source", a.b.Source, "seq", a.b.Seq, "next_item", p.Next, "items", len(ddl.Items))
	return &store.BatchPart{DDL: k, Item: p.Next, Deferred: p.Deferred}, nil
}

// cutSafe reports whether the batch may be committed before the schema
// change in chunk c followed by rest: whether no source transaction with
// row changes held since the start or the last cut has changes after it.
func (a *batchApply) cutSafe(ctx context.Context, c int, rest []wire.Event) (bool, error) {
	if len(a.seen) == 0 {
		return true, nil
	}
	if a.seen[0] {
		return false, nil // from a source that does not send transactions
	}
	after := func(evs []wire.Event) bool {
		return slices.ContainsFunc(evs, func(e wire.Event) bool { return e.Op != wire.OpSchema && (e.XID == 0 || a.seen[e.XID]) })
	}
	if after(rest) {
		return false, nil
	}
	for c++; c < a.b.Chunks; c++ {
		evs, err := store.ChunkEvents(ctx, a.tx, a.b.Source, a.b.Seq, c)
		if err != nil {
			return false, err
		}
		if after(evs) {
			return false, nil
		}
	}
	return true, nil
}

// lockBudget is how many locks a part of a schema change applied in parts
// takes at most: a quarter of the lock table, which other sessions share.
func lockBudget(ctx context.Context, tx *sql.Tx) (int, error) {
	var n int
	err := tx.QueryRowContext(ctx, `SELECT pg_catalog.current_setting('max_locks_per_transaction')::int
		* pg_catalog.current_setting('max_connections')::int / 4`).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("read the size of the lock table: %w", err)
	}
	return max(n, 64), nil
}

// applyDDL applies a schema change from source in tx and records, in the
// same transaction, what this target's PostgreSQL major left out of it,
// which it returns.
func applyDDL(ctx context.Context, tx *sql.Tx, source string, ddl schema.DDL) ([]schema.Unsupported, error) {
	skipped, err := schema.ApplyDDL(ctx, tx, ddl)
	if err != nil {
		return nil, err
	}
	return skipped, saveLeftOut(ctx, tx, source, skipped)
}

// saveLeftOut records what this target's PostgreSQL major left out of a
// schema change from source, for /status.
func saveLeftOut(ctx context.Context, tx *sql.Tx, source string, skipped []schema.Unsupported) error {
	for _, u := range skipped {
		if err := schema.SaveSourceSkipped(ctx, tx, source, u); err != nil {
			return err
		}
	}
	return nil
}

// applyAhead applies, in a transaction of its own, the first schema change
// received in a batch after held that was not applied yet, and records it
// so that batch skips it. It reports whether there was one.
func (w *Worker) applyAhead(ctx context.Context, source string, held int64) (bool, error) {
	for after := held; ; {
		b, ok, err := store.NextBatch(ctx, w.db, source, after)
		if err != nil || !ok {
			return false, err
		}
		after = b.Seq
		ahead, err := schema.AppliedAhead(ctx, w.db, source, b.Seq)
		if err != nil {
			return false, err
		}
		found := false
		err = w.schemaChanges(ctx, b, func(k int, ddl schema.DDL) (bool, error) {
			if ahead[k] {
				return false, nil
			}
			if err := schema.ApplyEarlyDDL(ctx, w.db, ddl); err != nil {
				return true, err
			}
			err := database.InTx(ctx, w.db, func(tx *sql.Tx) error {
				cur, err := store.LockSource(ctx, tx, source)
				if err != nil {
					return err
				}
				if cur != held-1 {
					return errMoved
				}
				if load, err := load.ReadLoadFilter(ctx, tx, source); err != nil || load.Underway() {
					return cmp.Or(err, errMoved) // no schema change while tables load
				}
				left, err := applyDDL(ctx, tx, source, ddl)
				if err != nil {
					return err
				}
				w.reportLeftOut(source, left)
				return schema.RecordAppliedAhead(ctx, tx, source, b.Seq, k)
			})
			switch {
			case errors.Is(err, errMoved):
				return true, nil
			case err != nil:
				return true, fmt.Errorf("apply schema change %d of batch %d ahead of held batch %d: %w", k, b.Seq, held, err)
			}
			w.log.Info("schema change applied ahead of a held batch", "source", source, "held", held, "from_batch", b.Seq)
			found = true
			return true, nil
		})
		if err != nil || found {
			return found, err
		}
	}
}

// applyEarly commits the schema changes of group that must be committed
// before rows can use them (enum labels added to an existing type).
func (w *Worker) applyEarly(ctx context.Context, group []store.ReceivedBatch) error {
	for _, b := range group {
		err := w.schemaChanges(ctx, b, func(_ int, ddl schema.DDL) (bool, error) {
			return false, schema.ApplyEarlyDDL(ctx, w.db, ddl)
		})
		if err != nil {
			return fmt.Errorf("batch %d: %w", b.Seq, err)
		}
	}
	return nil
}

// schemaChanges calls fn with each schema change of b and its rank in the
// batch, in order, until fn says to stop.
func (w *Worker) schemaChanges(ctx context.Context, b store.ReceivedBatch, fn func(k int, ddl schema.DDL) (stop bool, err error)) error {
	k := 0
	for c := range b.Chunks {
		evs, err := store.ChunkEvents(ctx, w.db, b.Source, b.Seq, c)
		if err != nil {
			return err
		}
		for _, e := range evs {
			if e.Op != wire.OpSchema {
				continue
			}
			ddl, err := schema.ReadDDL(e.Data)
			if err != nil {
				return err
			}
			if stop, err := fn(k, ddl); stop || err != nil {
				return err
			}
			k++
		}
	}
	return nil
}

// skip marks a batch an operator asked to skip as applied, without running it.
func (w *Worker) skip(ctx context.Context, b store.ReceivedBatch) error {
	err := database.InTx(ctx, w.db, func(tx *sql.Tx) error {
		cur, err := store.LockSource(ctx, tx, b.Source)
		if err != nil {
			return err
		}
		if cur != b.Seq-1 {
			return errMoved
		}
		return store.MarkBatchApplied(ctx, tx, b.Source, b.Seq, b.TickTime)
	})
	if errors.Is(err, errMoved) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("skip batch %d: %w", b.Seq, err)
	}
	w.log.Warn("batch skipped", "source", b.Source, "seq", b.Seq, "events", b.Events)
	w.recovered(b.Source)
	return nil
}

// reportHeld logs a held batch once, then once a minute while the same
// error persists, with the number of attempts in between, and sets when to
// try it next (see maxHeldWait).
func (w *Worker) reportHeld(src store.SourceState, seq int64, err error) {
	now := time.Now()
	h := w.held[src.Name]
	if h == nil || h.seq != seq {
		h = &held{seq: seq, since: now}
		w.held[src.Name] = h
	}
	h.wait = min(max(2*h.wait, w.interval), max(maxHeldWait, w.interval))
	h.retryAt, h.received, h.schema = now.Add(h.wait), src.ReceivedSeq, schema.WantsSchema(err)
	if h.msg == err.Error() && now.Sub(h.loggedAt) < heldLogEvery {
		h.repeats++
		return
	}
	attrs := []any{"source", src.Name, "seq", seq, "err", err}
	if h.repeats > 0 {
		attrs = append(attrs, "repeats", h.repeats)
	}
	// A missing table or type, or a value its column does not take yet,
	// usually clears when the schema change arrives, and a row missing
	// before the first initial load when it begins: a warning, until it
	// has lasted heldEscalate. Anything else waits for an operator.
	level := slog.LevelError
	if (h.schema || errors.Is(err, errBeforeLoad)) && now.Sub(h.since) < heldEscalate {
		level = slog.LevelWarn
	}
	w.log.Log(context.Background(), level, "batch held", attrs...)
	h.msg, h.loggedAt, h.repeats = err.Error(), now, 0
}

// reportWaiting logs once that a source's stream waits for its initial
// load: it is expected, not an error.
func (w *Worker) reportWaiting(source string, seq int64, err error) {
	if h := w.held[source]; h != nil && h.seq == seq && h.msg == err.Error() {
		return
	}
	w.log.Info("batch waits for the initial load", "source", source, "seq", seq, "reason", err)
	w.held[source] = &held{seq: seq, msg: err.Error(), since: time.Now(), loggedAt: time.Now()}
}

// recovered logs once that a held source goes on again.
func (w *Worker) recovered(source string) {
	h := w.held[source]
	if h == nil {
		return
	}
	w.log.Info("batch no longer held", "source", source, "seq", h.seq, "held_for", time.Since(h.since).Round(time.Second))
	delete(w.held, source)
}
