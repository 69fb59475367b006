// Package vacuum removes what every party is done with, on both sides: on a
// source it rotates the slots events, ticks and batches are written to and
// empties those the targets are done with (see store.VacuumSource), on a
// target it deletes the chunks of applied batches. Nothing grows without
// bound.
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

// RotateEvery is how long a source writes to one slot before it moves on to
// the next: its own tables hold about two to three rotations of writes.
var RotateEvery = 20 * time.Second

// Result says what one pass deleted.
type Result struct {
	Emptied int   // slots emptied on the source
	Rotated bool  // the source moved on to the next slot
	Chunks  int64 // chunks deleted on the target
}

// New returns the vacuum worker; limit is the most rows deleted per
// transaction.
func New(db *sql.DB, interval time.Duration, limit int, log *slog.Logger) *Worker {
	return &Worker{db: db, interval: interval, limit: limit, log: log.With("worker", "vacuum")}
}

// Run calls RunOnce at once and then every interval until ctx is done,
// less and less often while passes find nothing to delete: the wait doubles
// up to maxIdleWait, and the interval comes back with the first pass that
// deletes something. A failed pass is logged and retried after the interval,
// and the first pass that succeeds after failures says so; Run returns nil
// on shutdown.
func (w *Worker) Run(ctx context.Context) error {
	timer := time.NewTimer(w.interval)
	defer timer.Stop()
	failed := 0 // passes failed in a row
	wait := w.interval
	for {
		res, err := w.RunOnce(ctx)
		switch {
		case ctx.Err() != nil:
			return nil
		case err != nil:
			failed++
			w.log.Error("pass failed", "err", err)
			wait = w.interval
		default:
			if failed > 0 {
				w.log.Info("pass succeeded again", "failed_passes", failed)
				failed = 0
			}
			if res.Emptied > 0 || res.Rotated || res.Chunks > 0 {
				w.log.Debug("pass done", "slots_emptied", res.Emptied, "rotated", res.Rotated, "chunks", res.Chunks)
				wait = w.interval
			} else {
				wait = min(2*wait, max(maxIdleWait, w.interval))
			}
		}
		timer.Reset(wait)
		select {
		case <-ctx.Done():
			return nil
		case <-timer.C:
		}
	}
}

// maxIdleWait caps the wait between passes that find nothing to delete.
const maxIdleWait = 10 * time.Second

// RunOnce removes what is finished on both sides, deleting chunks w.limit
// at a time.
func (w *Worker) RunOnce(ctx context.Context) (Result, error) {
	src, err := store.VacuumSource(ctx, w.db, RotateEvery)
	res := Result{Emptied: src.Emptied, Rotated: src.Rotated}
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
