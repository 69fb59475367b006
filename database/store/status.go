package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/pagarme/teleport/database"
)

// TargetStatus is where one target of this source stands, for /status.
// Sequence numbers start at 1; 0 means none.
type TargetStatus struct {
	Name          string
	LastSeq       int64 // the last batch cut
	AckedSeq      int64 // every batch up to this one is stored on the target
	AppliedSeq    int64 // every batch up to this one is applied on the target
	PendingEvents int64 // events of the batches cut and not yet stored on the target
	LastTickAt    time.Time
	// Lag is now minus the tick time of the oldest batch not yet applied,
	// both on this database's clock. When every cut batch is applied it is
	// zero, unless the target takes events written since its last tick: then
	// it runs from that tick, an upper bound, as events carry no time.
	Lag time.Duration
}

// UnsentBatches is how many batches are cut and not yet stored on the target.
func (t TargetStatus) UnsentBatches() int64 { return max(0, t.LastSeq-t.AckedSeq) }

// TargetStatuses returns every target of this source, by name. It reads
// teleport.batch through its primary key and teleport.event only from the
// last tick on (see status_targets.sql), so it stays cheap with a backlog.
func TargetStatuses(ctx context.Context, q database.Querier) ([]TargetStatus, error) {
	rows, err := q.QueryContext(ctx, query("status_targets"))
	if err != nil {
		return nil, fmt.Errorf("read target states: %w", err)
	}
	defer rows.Close()
	var out []TargetStatus
	for rows.Next() {
		var (
			t   TargetStatus
			lag float64
		)
		if err := rows.Scan(&t.Name, &t.LastSeq, &t.AckedSeq, &t.AppliedSeq, &t.PendingEvents, &t.LastTickAt, &lag); err != nil {
			return nil, fmt.Errorf("read target states: %w", err)
		}
		t.Lag = time.Duration(lag * float64(time.Second))
		out = append(out, t)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read target states: %w", err)
	}
	return out, nil
}

// Now returns the database's clock, fixed for the length of a transaction.
func Now(ctx context.Context, q database.Querier) (time.Time, error) {
	var now time.Time
	if err := q.QueryRowContext(ctx, query("status_now")).Scan(&now); err != nil {
		return time.Time{}, fmt.Errorf("read database clock: %w", err)
	}
	return now, nil
}

// ChunkTickTime returns when source took the tick closing batch seq, on the
// source's clock, from the batch's stored first chunk; ok is false when that
// chunk is not stored.
func ChunkTickTime(ctx context.Context, q database.Querier, source string, seq int64) (tickTime time.Time, ok bool, err error) {
	err = q.QueryRowContext(ctx, query("status_chunk_tick_time"), source, seq).Scan(&tickTime)
	if errors.Is(err, sql.ErrNoRows) {
		return time.Time{}, false, nil
	}
	if err != nil {
		return time.Time{}, false, fmt.Errorf("read tick time of batch %d from %s: %w", seq, source, err)
	}
	return tickTime, true, nil
}
