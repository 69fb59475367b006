package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// SourceVacuum says what DeleteFinishedSource removed.
type SourceVacuum struct {
	Events  int64
	Batches int64
	Ticks   int64
}

// DeleteFinishedSource deletes, on a source, the events every target has
// stored, in chunks of limit rows each in its own transaction so a backlog
// never becomes one long transaction; then the batches the targets applied
// (the last applied one stays, for lag) and the ticks nothing refers to.
func DeleteFinishedSource(ctx context.Context, db *sql.DB, limit int) (SourceVacuum, error) {
	var res SourceVacuum
	var horizon int64
	var xmin string
	err := db.QueryRowContext(ctx, query("vacuum_horizon")).Scan(&horizon, &xmin)
	if errors.Is(err, sql.ErrNoRows) {
		return res, nil // no tick yet
	}
	if err != nil {
		return res, fmt.Errorf("find vacuum horizon: %w", err)
	}
	for {
		r, err := db.ExecContext(ctx, query("event_delete_before"), xmin, limit)
		if err != nil {
			return res, fmt.Errorf("delete events before xid %s: %w", xmin, err)
		}
		n, _ := r.RowsAffected() // lib/pq always reports it for DELETE
		res.Events += n
		if n < int64(limit) || ctx.Err() != nil {
			break
		}
	}
	r, err := db.ExecContext(ctx, query("batch_delete_applied"))
	if err != nil {
		return res, fmt.Errorf("delete applied batches: %w", err)
	}
	res.Batches, _ = r.RowsAffected()
	r, err = db.ExecContext(ctx, query("tick_delete_before"), horizon)
	if err != nil {
		return res, fmt.Errorf("delete ticks before %d: %w", horizon, err)
	}
	res.Ticks, _ = r.RowsAffected()
	return res, nil
}
