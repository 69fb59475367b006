// Package ddlwatcher watches the source's catalog: every interval it looks
// for tables that a target's expression matches and that are not captured
// yet, installs the capture triggers on them and records, in the same
// transaction, the rows they already hold. Replicating schema changes
// themselves is not in this build.
package ddlwatcher

import (
	"context"
	"database/sql"
	"log/slog"
	"time"

	"github.com/pagarme/teleport/database"
)

// Worker is the ddlwatcher of one source instance.
type Worker struct {
	db       *sql.DB
	match    func(schema, table string) bool
	interval time.Duration
	log      *slog.Logger
	failing  bool // the last pass failed
}

// Result says what one pass did.
type Result struct {
	Installed  int   // tables newly captured
	Backfilled int64 // rows they held, recorded as inserts
}

// New returns the ddlwatcher for the tables match accepts.
func New(db *sql.DB, match func(schema, table string) bool, interval time.Duration, log *slog.Logger) *Worker {
	return &Worker{db: db, match: match, interval: interval, log: log.With("worker", "ddlwatcher")}
}

// Run calls RunOnce every interval until ctx is done (main captured what was
// there at start-up). A failed pass is logged and retried on the next tick;
// Run returns nil on shutdown.
func (w *Worker) Run(ctx context.Context) error {
	tick := time.NewTicker(w.interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		res, err := w.RunOnce(ctx)
		switch {
		case ctx.Err() != nil:
			return nil
		case err != nil:
			w.log.Error("pass failed", "err", err)
			w.failing = true
		case w.failing:
			w.log.Info("pass succeeded again")
			w.failing = false
		}
		if res.Installed > 0 {
			w.log.Info("new tables captured", "tables", res.Installed, "rows_backfilled", res.Backfilled)
		}
	}
}

// RunOnce captures every matching table that has no capture triggers yet,
// recording the rows it already holds.
func (w *Worker) RunOnce(ctx context.Context) (Result, error) {
	res, err := database.InstallCapture(ctx, w.db, w.match, true)
	return Result{Installed: len(res.Installed), Backfilled: res.Backfilled}, err
}
