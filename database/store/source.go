// Package store is Teleport's bookkeeping in the teleport schema: ticks,
// targets and batches on a source; received chunks, sources and their
// progress on a target; status and vacuum of both.
package store

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/lib/pq"

	"github.com/pagarme/teleport/database"
)

// Tick is a snapshot taken by the batcher.
type Tick struct {
	ID        int64
	CreatedAt time.Time
}

// tickLockKey serialises ticks, so a tick with a higher id never holds an
// older snapshot, even with two instances on one database.
const tickLockKey int64 = 0x74656c65706f7275

// EventsPending reports whether some target's last tick leaves an event
// out, committed or still in progress: whether a batcher pass may cut
// anything. An idle source answers it from a few index entries.
func EventsPending(ctx context.Context, q database.Querier) (bool, error) {
	var pending bool
	if err := q.QueryRowContext(ctx, query("events_pending")).Scan(&pending); err != nil {
		return false, fmt.Errorf("look for events to cut: %w", err)
	}
	return pending, nil
}

// InsertTick records the current snapshot as a new tick. tx must commit on
// its own, before batches are cut against the tick.
func InsertTick(ctx context.Context, tx *sql.Tx) (Tick, error) {
	var t Tick
	if err := LockTicks(ctx, tx); err != nil {
		return Tick{}, fmt.Errorf("insert tick: %w", err)
	}
	if err := tx.QueryRowContext(ctx, query("tick_insert")).Scan(&t.ID, &t.CreatedAt); err != nil {
		return Tick{}, fmt.Errorf("insert tick: %w", err)
	}
	return t, nil
}

// InsertTickOf records a tick of snapshot, a snapshot taken by another
// session while tx holds the tick lock (see LockTicks): a verify compares
// in that session exactly what the batches up to the tick hold.
func InsertTickOf(ctx context.Context, tx *sql.Tx, snapshot string) (Tick, error) {
	var t Tick
	if err := tx.QueryRowContext(ctx, query("tick_insert_of"), snapshot).Scan(&t.ID, &t.CreatedAt); err != nil {
		return Tick{}, fmt.Errorf("insert tick: %w", err)
	}
	return t, nil
}

// LockTicks takes the lock every tick is taken under, until tx ends: a
// snapshot taken meanwhile is newer than every tick.
func LockTicks(ctx context.Context, tx *sql.Tx) error {
	if _, err := tx.ExecContext(ctx, `SELECT pg_catalog.pg_advisory_xact_lock($1)`, tickLockKey); err != nil {
		return fmt.Errorf("lock ticks: %w", err)
	}
	return nil
}

// TargetSpec is what the batcher needs to know of a configured target.
type TargetSpec struct {
	Name        string
	SchemaRegex string // anchored regular expression for the schema name
	TableRegex  string // anchored regular expression for the table name
}

// SyncTargets records the configured targets, a new one starting at tick
// from (it receives the changes committed after it), and forgets the targets
// no longer configured so they no longer hold back cleanup. It returns the
// names it forgot.
func SyncTargets(ctx context.Context, q database.Querier, targets []TargetSpec, from int64) ([]string, error) {
	names := make([]string, 0, len(targets))
	for _, t := range targets {
		if _, err := q.ExecContext(ctx, query("target_upsert"), t.Name, t.SchemaRegex, t.TableRegex, from); err != nil {
			return nil, fmt.Errorf("record target %s: %w", t.Name, err)
		}
		names = append(names, t.Name)
	}
	rows, err := q.QueryContext(ctx, query("target_delete_others"), pq.Array(names))
	if err != nil {
		return nil, fmt.Errorf("forget unconfigured targets: %w", err)
	}
	defer rows.Close()
	var gone []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			return nil, fmt.Errorf("forget unconfigured targets: %w", err)
		}
		gone = append(gone, n)
	}
	return gone, rows.Err()
}

// TargetState is where a target stands (teleport.target_state).
type TargetState struct {
	Name       string
	LastTick   int64
	NextSeq    int64
	AckedSeq   int64
	AppliedSeq int64
}

// LockTargets returns every target, locking their rows until tx ends so two
// batchers never cut the same sequence number. The states are read after
// the lock is held, so they include what another batcher committed while
// this one waited.
func LockTargets(ctx context.Context, tx *sql.Tx) ([]TargetState, error) {
	if _, err := tx.ExecContext(ctx, query("target_list")); err != nil {
		return nil, fmt.Errorf("lock targets: %w", err)
	}
	rows, err := tx.QueryContext(ctx, query("target_states"))
	if err != nil {
		return nil, fmt.Errorf("list targets: %w", err)
	}
	defer rows.Close()
	var ts []TargetState
	for rows.Next() {
		var t TargetState
		if err := rows.Scan(&t.Name, &t.LastTick, &t.NextSeq, &t.AckedSeq, &t.AppliedSeq); err != nil {
			return nil, fmt.Errorf("list targets: %w", err)
		}
		ts = append(ts, t)
	}
	return ts, rows.Err()
}

// Batch is a batch's record: which ticks it spans, not a copy of its events.
type Batch struct {
	Target    string
	Seq       int64
	FromTick  int64
	ToTick    int64
	Events    int
	Rows      int64
	ChunkRows int       // rows per chunk when sent, fixed when the batch was cut
	TickTime  time.Time // when ToTick was taken
}

// InsertBatch records b and moves its target's cursor past it.
func InsertBatch(ctx context.Context, q database.Querier, b Batch) error {
	if _, err := q.ExecContext(ctx, query("batch_insert"), b.Target, b.Seq, b.FromTick, b.ToTick, b.Events, b.Rows, b.ChunkRows, b.TickTime); err != nil {
		return fmt.Errorf("insert batch %d for %s: %w", b.Seq, b.Target, err)
	}
	return AdvanceTarget(ctx, q, b.Target, b.ToTick, b.Seq+1)
}

// AdvanceTarget moves target's cursor to tick and its next sequence number.
func AdvanceTarget(ctx context.Context, q database.Querier, target string, tick, nextSeq int64) error {
	if _, err := q.ExecContext(ctx, query("target_advance"), target, tick, nextSeq); err != nil {
		return fmt.Errorf("advance target %s to tick %d: %w", target, tick, err)
	}
	return nil
}

// UnackedBatches returns up to limit batches of target the target has not
// confirmed storing, in sequence order.
func UnackedBatches(ctx context.Context, q database.Querier, target string, limit int) ([]Batch, error) {
	rows, err := q.QueryContext(ctx, query("batch_unacked"), target, limit)
	if err != nil {
		return nil, fmt.Errorf("list unacknowledged batches of %s: %w", target, err)
	}
	defer rows.Close()
	var bs []Batch
	for rows.Next() {
		b := Batch{Target: target}
		if err := rows.Scan(&b.Seq, &b.FromTick, &b.ToTick, &b.Events, &b.Rows, &b.ChunkRows, &b.TickTime); err != nil {
			return nil, fmt.Errorf("list unacknowledged batches of %s: %w", target, err)
		}
		bs = append(bs, b)
	}
	return bs, rows.Err()
}

// AckBatches records what target said it has stored and applied, if it
// moves either forward.
func AckBatches(ctx context.Context, q database.Querier, target string, received, applied int64) error {
	if _, err := q.ExecContext(ctx, query("target_ack"), target, received, applied); err != nil {
		return fmt.Errorf("record acknowledgement of %s up to %d: %w", target, received, err)
	}
	return nil
}
