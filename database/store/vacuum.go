package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/lib/pq"

	"github.com/pagarme/teleport/database"
)

// A source writes its events, ticks, batches, cursors and acknowledgements
// into one of three slots, the one teleport.slot_seq points at (see
// migration 0014). VacuumSource moves writes on to the next slot once the
// current one has taken them for a while, and empties a slot with TRUNCATE
// once nothing in it is needed, so the source's own tables stay a few
// rotations of writes deep however long a snapshot is held open on the
// database: nothing is deleted row by row, and nothing waits for vacuum.
const slots = 3

// slotTables are the tables whose rows live in slots; a slot's partitions
// are teleport.NAME_SLOT.
var slotTables = []string{"event", "tick", "batch", "batch_ddl", "cursor", "ack"}

// rotateLockKey serialises rotations, with two instances on one database.
const rotateLockKey int64 = 0x74656c65726f7461

// emptyLockTimeout bounds how long emptying a slot waits for its locks: a
// session that holds one of its tables (a pg_dump of the teleport schema)
// makes the pass give up and try again on the next one, instead of
// queueing the instance's own readers behind it.
const emptyLockTimeout = "200ms"

// SourceVacuum says what VacuumSource did.
type SourceVacuum struct {
	Emptied int  // slots emptied
	Rotated bool // writes moved on to the next slot
}

// VacuumSource empties the slots nothing needs any more, oldest first,
// then moves writes on to the next slot if the current one has taken them
// for every and holds events (an idle source does not rotate).
func VacuumSource(ctx context.Context, db *sql.DB, every time.Duration) (SourceVacuum, error) {
	var res SourceVacuum
	for {
		emptied, err := emptyOldestSlot(ctx, db)
		if err != nil {
			return res, err
		}
		if !emptied {
			break
		}
		res.Emptied++
	}
	var err error
	res.Rotated, err = rotate(ctx, db, every)
	return res, err
}

// emptyOldestSlot empties the oldest slot not emptied yet, if writes have
// moved on from it and nothing in it is needed, and reports whether it did.
//
// It holds the targets' rows (no batch is being cut, so none refers to a
// tick it does not see) and the slot's tables exclusively (no transaction
// that wrote to the slot still runs, so every event in it is committed or
// gone), then checks that every target stored the slot's events, carries
// what is still needed into the current slot, and empties it. It takes
// those locks only when no session holds the slot's tables for writing
// and its events looked stored without them, and waits at most
// emptyLockTimeout: a pass that cannot empty a slot leaves it to the next.
func emptyOldestSlot(ctx context.Context, db *sql.DB) (bool, error) {
	emptied := false
	err := database.InTx(ctx, db, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `SELECT pg_catalog.pg_advisory_xact_lock($1)`, rotateLockKey); err != nil {
			return fmt.Errorf("lock rotation: %w", err)
		}
		if _, err := tx.ExecContext(ctx, query("rotation_record")); err != nil {
			return fmt.Errorf("record rotation: %w", err)
		}
		var n int64
		err := tx.QueryRowContext(ctx, query("rotation_oldest")).Scan(&n)
		if errors.Is(err, sql.ErrNoRows) {
			return nil // only the current slot is in use
		}
		if err != nil {
			return fmt.Errorf("find the oldest slot in use: %w", err)
		}
		slot := n % slots
		tables := slotPartitions(slot)
		var busy, done bool
		if err := tx.QueryRowContext(ctx, query("slot_busy"), pq.Array(tables)).Scan(&busy); err != nil {
			return fmt.Errorf("check slot %d: %w", slot, err)
		}
		if busy {
			return nil
		}
		if err := tx.QueryRowContext(ctx, query("slot_done"), slot).Scan(&done); err != nil {
			return fmt.Errorf("check slot %d: %w", slot, err)
		}
		if !done {
			return nil
		}
		if _, err := tx.ExecContext(ctx, `SET LOCAL lock_timeout = '`+emptyLockTimeout+`'`); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, query("target_list")); err != nil {
			return lockErr(err, "lock targets")
		}
		if _, err := tx.ExecContext(ctx, "LOCK TABLE "+strings.Join(tables, ", ")+" IN ACCESS EXCLUSIVE MODE"); err != nil {
			return lockErr(err, fmt.Sprintf("lock slot %d", slot))
		}
		if err := tx.QueryRowContext(ctx, query("slot_done"), slot).Scan(&done); err != nil {
			return fmt.Errorf("check slot %d: %w", slot, err)
		}
		if !done {
			return nil // a writer committed events not stored yet
		}
		var used bool
		if err := tx.QueryRowContext(ctx, query("slot_used"), slot).Scan(&used); err != nil {
			return fmt.Errorf("check slot %d: %w", slot, err)
		}
		if used {
			if _, err := tx.ExecContext(ctx, query("slot_carry"), slot); err != nil {
				return fmt.Errorf("carry what is needed out of slot %d: %w", slot, err)
			}
			if _, err := tx.ExecContext(ctx, "TRUNCATE "+strings.Join(tables, ", ")); err != nil {
				return fmt.Errorf("empty slot %d: %w", slot, err)
			}
		}
		if _, err := tx.ExecContext(ctx, query("rotation_emptied"), n); err != nil {
			return fmt.Errorf("record slot %d emptied: %w", slot, err)
		}
		emptied = true
		return nil
	})
	if errors.Is(err, errBusy) {
		return false, nil
	}
	return emptied, err
}

// errBusy: a slot's tables could not be locked within emptyLockTimeout.
var errBusy = errors.New("slot busy")

// lockErr returns errBusy for a lock not granted in time, else err with what.
func lockErr(err error, what string) error {
	var pqErr *pq.Error
	if errors.As(err, &pqErr) && pqErr.Code == "55P03" {
		return errBusy
	}
	return fmt.Errorf("%s: %w", what, err)
}

// slotPartitions are the names of slot's tables.
func slotPartitions(slot int64) []string {
	names := make([]string, len(slotTables))
	for i, t := range slotTables {
		names[i] = fmt.Sprintf("teleport.%s_%d", t, slot)
	}
	return names
}

// rotate moves writes on to the next slot if the current one has taken
// them for every, holds events, and the next one is empty. It runs after
// emptyOldestSlot, which records the current rotation.
func rotate(ctx context.Context, db *sql.DB, every time.Duration) (bool, error) {
	rotated := false
	err := database.InTx(ctx, db, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `SELECT pg_catalog.pg_advisory_xact_lock($1)`, rotateLockKey); err != nil {
			return fmt.Errorf("lock rotation: %w", err)
		}
		var (
			n   int64
			due bool
		)
		if err := tx.QueryRowContext(ctx, query("rotation_due"), every.Seconds()).Scan(&n, &due); err != nil {
			return fmt.Errorf("check rotation: %w", err)
		}
		if !due {
			return nil
		}
		var events bool
		if err := tx.QueryRowContext(ctx, query("slot_has_events"), n%slots).Scan(&events); err != nil {
			return fmt.Errorf("check slot %d: %w", n%slots, err)
		}
		if !events {
			return nil
		}
		// slot_seq moves at once, whatever becomes of this transaction.
		if _, err := tx.ExecContext(ctx, `SELECT pg_catalog.setval('teleport.slot_seq', $1, true)`, n+1); err != nil {
			return fmt.Errorf("rotate to slot %d: %w", (n+1)%slots, err)
		}
		if _, err := tx.ExecContext(ctx, query("rotation_record")); err != nil {
			return fmt.Errorf("record rotation: %w", err)
		}
		rotated = true
		return nil
	})
	return rotated, err
}
