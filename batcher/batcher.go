// Package batcher cuts the source's captured events into batches, one stream
// per target: it takes a tick (a snapshot) every interval, and the events of
// the transactions that committed between a target's last tick and the new
// one become that target's next batch.
package batcher

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"sort"
	"sync/atomic"
	"time"

	"github.com/pagarme/teleport/config"
	"github.com/pagarme/teleport/database"
	"github.com/pagarme/teleport/database/schema"
	"github.com/pagarme/teleport/database/store"
)

// Worker is the batcher of one source instance.
type Worker struct {
	db        *sql.DB
	targets   []store.TargetSpec
	chunkRows int
	interval  time.Duration
	log       *slog.Logger
	synced    bool
	idle      bool         // the last pass cut every target up to its tick, and no batch
	quickTill time.Time    // passes that cut nothing come quickly until then (see nextPass)
	quiet     atomic.Int64 // unix nanoseconds: when a pass last found nothing to cut (see QuietAt)
	onBatch   func()

	snapshotSchema string                  // see SnapshotSchema
	schemas        map[string]targetSchema // per target
	unsupported    map[string]bool         // reported already
	sent           map[string]*sentSchema  // per target, the schema it was last sent, as read or written
}

// Result says what one pass did.
type Result struct {
	Batches int // batches cut
	Events  int // events in them
}

// New returns the batcher for cfg's targets. onBatch, if not nil, is called
// after a pass that cut at least one batch (to wake the transmitter).
func New(db *sql.DB, cfg config.Config, onBatch func(), log *slog.Logger) *Worker {
	names := make([]string, 0, len(cfg.Targets))
	for n := range cfg.Targets {
		names = append(names, n)
	}
	sort.Strings(names)
	specs := make([]store.TargetSpec, 0, len(names))
	schemas := make(map[string]targetSchema, len(names))
	for _, n := range names {
		specs = append(specs, spec(n, cfg.Targets[n].Expression()))
		schemas[n] = newTargetSchema(cfg.Targets[n])
	}
	return &Worker{
		db:        db,
		targets:   specs,
		chunkRows: cfg.MaxEventsPerBatch,
		interval:  cfg.ProcessingIntervals.Batcher.Duration(),
		log:       log.With("worker", "batcher"),
		onBatch:   onBatch,

		snapshotSchema: cfg.SnapshotSchema(),
		schemas:        schemas,
		unsupported:    map[string]bool{},
		sent:           map[string]*sentSchema{},
	}
}

// spec is what the batcher's queries filter a target's events with.
func spec(name string, expr config.Expression) store.TargetSpec {
	return store.TargetSpec{Name: name, SchemaRegex: expr.SchemaRegex(), TableRegex: expr.TableRegex()}
}

// Run calls RunOnce at once and then again after nextPass, until ctx is done.
// A failed pass is logged and retried on the next tick, and the first pass
// that succeeds after failures says so; Run returns nil on shutdown.
func (w *Worker) Run(ctx context.Context) error {
	timer := time.NewTimer(0)
	defer timer.Stop()
	last := time.Now()
	failed := 0 // passes failed in a row
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-timer.C:
		}
		res, err := w.RunOnce(ctx)
		now := time.Now()
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
				w.log.Debug("batches cut", "batches", res.Batches, "events", res.Events)
			}
		}
		next := w.interval
		if err == nil {
			next = w.nextPass(res, now.Sub(last), now)
		}
		timer.Reset(next)
		last = now
	}
}

// quickBelow is the rate of events under which the batcher cuts quickly.
const quickBelow = 10000 // events per second

// quickFor is how long after its last batch the batcher keeps looking for
// new events at a quick pace. A pass that finds nothing costs one cheap
// query (see RunOnce).
const quickFor = 10 * time.Second

// nextPass is how long to wait after a pass, ending at now, that cut res
// from the events of the last since: a fifth of the interval (at least
// 10 ms) when the pass cut a batch and events came at under quickBelow a
// second, or when it cut nothing less than quickFor after a batch; the
// interval otherwise. While changes trickle in, or come now and then, each
// waits a fifth of an interval to be cut instead of up to a whole one,
// which is most of its way to the target. A busy stream keeps the
// interval, so its batches stay large: each batch costs a few milliseconds
// of work on either side whatever its size.
func (w *Worker) nextPass(res Result, since time.Duration, now time.Time) time.Duration {
	quick := min(w.interval, max(w.interval/5, 10*time.Millisecond))
	if res.Batches == 0 {
		if now.Before(w.quickTill) {
			return quick
		}
		return w.interval
	}
	w.quickTill = now.Add(quickFor)
	if since <= 0 || float64(res.Events)/since.Seconds() >= quickBelow {
		return w.interval
	}
	return quick
}

// SyncTargets records the configured targets, once: a new target starts at
// a tick taken now and receives every change committed after it. main calls
// it before the instance reports ready; RunOnce calls it if nobody did.
func (w *Worker) SyncTargets(ctx context.Context) error {
	if w.synced {
		return nil
	}
	tick, err := w.takeTick(ctx)
	if err != nil {
		return err
	}
	gone, err := store.SyncTargets(ctx, w.db, w.targets, tick.ID)
	if err != nil {
		return err
	}
	for _, g := range gone {
		w.log.Warn("target no longer configured: forgotten, its unsent batches dropped", "target", g)
	}
	w.synced = true
	return nil
}

// RunOnce takes a tick and cuts, for every target, the batch of the events
// committed since its last tick, if there are any.
func (w *Worker) RunOnce(ctx context.Context) (Result, error) {
	var res Result
	if err := w.SyncTargets(ctx); err != nil {
		return res, err
	}
	start := time.Now()
	if w.idle {
		// After a pass that found nothing to cut, a tick is taken only
		// when there is something after the targets' ticks: an idle
		// source costs one cheap query a pass, not a tick and a cut. (A
		// busy one goes straight to its tick, without the query.)
		pending, err := store.EventsPending(ctx, w.db)
		if err != nil || !pending {
			if err == nil {
				w.quiet.Store(start.UnixNano())
			}
			return res, err
		}
	}
	tick, err := w.takeTick(ctx)
	if err != nil {
		return res, err
	}
	err = database.InTx(ctx, w.db, func(tx *sql.Tx) error {
		var err error
		res, err = w.CutAt(ctx, tx, tick)
		return err
	})
	if err != nil {
		w.idle = false
		return Result{}, fmt.Errorf("cut batches at tick %d: %w", tick.ID, err)
	}
	w.idle = res.Batches == 0
	if w.idle {
		w.quiet.Store(start.UnixNano())
	}
	if res.Batches > 0 && w.onBatch != nil {
		w.onBatch()
	}
	return res, nil
}

// CutAt cuts, in tx, every target's batch of the events committed between
// its last tick and tick, if there are any. RunOnce calls it with the tick
// it takes; a verify with a tick of the snapshot it compares in, so that
// the target's state after the batch is exactly that snapshot's.
func (w *Worker) CutAt(ctx context.Context, tx *sql.Tx, tick store.Tick) (Result, error) {
	var res Result
	targets, err := store.LockTargets(ctx, tx)
	if err != nil {
		return res, err
	}
	for _, t := range targets {
		if t.LastTick >= tick.ID {
			continue
		}
		ddls, events, rows, whole, err := w.schemaChanges(ctx, tx, t.Name, t.LastTick, tick.ID)
		if err != nil {
			return res, err
		}
		if events == 0 && len(ddls) == 0 {
			if err := store.AdvanceTarget(ctx, tx, t.Name, tick.ID, t.NextSeq); err != nil {
				return res, err
			}
			continue
		}
		seq := t.NextSeq
		if whole && events > 0 {
			// A target's first schema goes alone, in a batch of no rows:
			// a row of the source's first moments that the target cannot
			// apply yet (an update of a row its empty table lacks until the
			// initial load) holds its batch, and must not hold with it the
			// tables the load waits for.
			b := store.Batch{Target: t.Name, Seq: seq, FromTick: t.LastTick, ToTick: t.LastTick, Events: 1, ChunkRows: w.chunkRows, TickTime: tick.CreatedAt}
			if err := insertBatch(ctx, tx, b, ddls[:1]); err != nil {
				return res, err
			}
			ddls, seq = ddls[1:], seq+1
			res.Batches++
			res.Events++
		}
		events += len(ddls)
		b := store.Batch{Target: t.Name, Seq: seq, FromTick: t.LastTick, ToTick: tick.ID,
			Events: events, Rows: rows, ChunkRows: w.chunkRows, TickTime: tick.CreatedAt}
		if err := insertBatch(ctx, tx, b, ddls); err != nil {
			return res, err
		}
		res.Batches++
		res.Events += events
	}
	return res, nil
}

// insertBatch records b and its schema changes.
func insertBatch(ctx context.Context, tx *sql.Tx, b store.Batch, ddls []placedDDL) error {
	if err := store.InsertBatch(ctx, tx, b); err != nil {
		return err
	}
	for i, d := range ddls {
		if err := schema.InsertBatchDDL(ctx, tx, b.Target, b.Seq, i, d.before, d.ddl); err != nil {
			return err
		}
	}
	return nil
}

// QuietAt is when the batcher last found nothing to cut: every change
// written before then was in a batch or not committed yet. Zero until the
// first such pass.
func (w *Worker) QuietAt() time.Time {
	if n := w.quiet.Load(); n != 0 {
		return time.Unix(0, n)
	}
	return time.Time{}
}

// takeTick records a tick in a transaction of its own, which must commit
// before batches are cut against it.
func (w *Worker) takeTick(ctx context.Context) (store.Tick, error) {
	var t store.Tick
	err := database.InTx(ctx, w.db, func(tx *sql.Tx) error {
		var err error
		t, err = store.InsertTick(ctx, tx)
		return err
	})
	return t, err
}
