// Package vacuum deletes what every party is done with, on both sides: on a
// source the events its targets stored and the batches they applied, on a
// target the chunks of applied batches. Nothing grows without bound.
package vacuum

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"time"

	"github.com/pagarme/teleport/database/store"
)

// Worker is the vacuum of one instance.
type Worker struct {
	db       *sql.DB
	interval time.Duration
	limit    int
	log      *slog.Logger
}

// Result says what one pass deleted.
type Result struct {
	Events, Batches, Ticks, Chunks int64
}

// New returns the vacuum worker; limit is the most rows deleted per
// transaction.
func New(db *sql.DB, interval time.Duration, limit int, log *slog.Logger) *Worker {
	return &Worker{db: db, interval: interval, limit: limit, log: log.With("worker", "vacuum")}
}

// Run calls RunOnce at once and then every interval until ctx is done.
// A failed pass is logged and retried on the next tick, and the first pass
// that succeeds after failures says so; Run returns nil on shutdown.
func (w *Worker) Run(ctx context.Context) error {
	tick := time.NewTicker(w.interval)
	defer tick.Stop()
	failed := 0 // passes failed in a row
	for {
		res, err := w.RunOnce(ctx)
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
			if res.Events+res.Chunks > 0 {
				w.log.Debug("pass done", "events", res.Events, "batches", res.Batches, "ticks", res.Ticks, "chunks", res.Chunks)
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

// RunOnce deletes what is finished on both sides, in chunks of w.limit rows.
func (w *Worker) RunOnce(ctx context.Context) (Result, error) {
	src, err := store.DeleteFinishedSource(ctx, w.db, w.limit)
	res := Result{Events: src.Events, Batches: src.Batches, Ticks: src.Ticks}
	if err != nil {
		return res, fmt.Errorf("vacuum source: %w", err)
	}
	for {
		n, err := store.DeleteAppliedChunks(ctx, w.db, w.limit)
		if err != nil {
			return res, fmt.Errorf("vacuum target: %w", err)
		}
		res.Chunks += n
		if n < int64(w.limit) || ctx.Err() != nil {
			return res, nil
		}
	}
}
