// Package ddlwatcher watches the source's catalog. Every interval it
// installs the capture triggers on tables that a target's expression matches
// and that are not captured yet, recording in the same transaction the rows
// they already hold; then it snapshots the catalog and, when it changed
// since the last snapshot, writes the snapshot into the event stream, where
// the batcher diffs it into each target's DDL.
package ddlwatcher

import (
	"context"
	"database/sql"
	"errors"
	"log/slog"
	"time"

	"github.com/pagarme/teleport/database"
	"github.com/pagarme/teleport/database/capture"
	"github.com/pagarme/teleport/database/schema"
)

// Worker is the ddlwatcher of one source instance.
type Worker struct {
	db       *sql.DB
	schema   string // names in snapshots are relative to it (batcher.SnapshotSchema)
	match    func(schema, table string) bool
	interval time.Duration
	log      *slog.Logger
	failing  bool               // the last pass failed
	done     schema.Fingerprint // the catalog as of the last pass that captured and snapshotted it
	doneTx   string             // the transaction state then (database.Ended)
}

// Result says what one pass did.
type Result struct {
	Installed  int   // tables newly captured
	Backfilled int64 // rows they held, recorded as inserts
	Snapshot   bool  // the catalog changed: a snapshot was written
}

// New returns the ddlwatcher for the tables match accepts; snapshots write
// names relative to schema.
func New(db *sql.DB, match func(schema, table string) bool, schema string, interval time.Duration, log *slog.Logger) *Worker {
	return &Worker{db: db, match: match, schema: schema, interval: interval, log: log.With("worker", "ddlwatcher")}
}

// Run calls RunOnce at once and then every interval until ctx is done. A
// failed pass is logged and retried on the next tick, and the first pass
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
			if res.Snapshot {
				w.log.Debug("catalog changed: snapshot written")
			}
		}
		if res.Installed > 0 {
			w.log.Info("new tables captured", "tables", res.Installed, "rows_backfilled", res.Backfilled)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

// RunOnce captures every matching table that has no capture triggers yet,
// recording the rows it already holds, then writes a catalog snapshot if the
// catalog changed. A table that could not be captured does not stop the
// snapshot.
//
// A catalog of thousands of tables makes both costly, so they are skipped
// while the catalog's fingerprint stays as it was after the last pass that
// did them: the capture while the catalog is unchanged, the snapshot while
// no row was captured either (sequences move with the rows).
func (w *Worker) RunOnce(ctx context.Context) (Result, error) {
	var res Result
	// Even the fingerprint reads every catalog row: when no transaction
	// that writes has ended since the last pass, nothing can have changed.
	tx, err := database.Ended(ctx, w.db)
	if err != nil || tx == w.doneTx {
		return res, err
	}
	fp, err := schema.TakeFingerprint(ctx, w.db)
	if err != nil {
		return res, err
	}
	var cerr error
	if fp.Catalog != w.done.Catalog {
		var cr capture.CaptureResult
		cr, cerr = capture.InstallCapture(ctx, w.db, w.match, true)
		res.Installed, res.Backfilled = len(cr.Installed), cr.Backfilled
	}
	if fp == w.done { // the catalog as it was, so nothing was captured
		w.doneTx = tx
		return res, nil
	}
	se, serr := schema.WriteSnapshot(ctx, w.db, w.schema)
	res.Snapshot = se.Written
	// A table that could not be captured (another role owns it) is tried
	// again when the catalog changes, as changing its owner does; one
	// captured now changed the catalog, so the next pass looks again.
	if serr == nil && res.Installed == 0 {
		w.done = fp
		if cerr == nil {
			w.doneTx = tx
		}
	}
	return res, errors.Join(cerr, serr)
}
