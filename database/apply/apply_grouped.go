package apply

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/lib/pq/pqerror"

	"github.com/pagarme/teleport/database"
	"github.com/pagarme/teleport/server/wire"
)

// Limits on the events one grouped statement carries.
const (
	groupMaxEvents = 1000
	groupMaxBytes  = 4 << 20
)

// ErrNotGroupable means ApplyEventsGrouped declined events it cannot apply
// grouped (a truncate; an update or delete on a table without a primary key
// or with foreign key actions); it returns it before applying anything.
var ErrNotGroupable = errors.New("events cannot be applied grouped")

// ApplyEventsGrouped applies events table by table, in the order each table
// first appears, and within a table in event order, merging runs of events
// with the same operation and columns into one statement: many small source
// transactions become a few statements instead of one per captured
// statement. This reorders changes across tables inside the caller's
// transaction, which is atomic, so readers never see the difference; the
// final state is the one ordered apply reaches whenever no statement fails
// (each table's statements set values from the events alone). A foreign key
// or unique check can still fail where the exact order would not: any error
// means the caller must roll back to before this call and use ApplyEvents.
// A grouped update or delete must match exactly its rows, so a row changed
// twice in one run is caught too.
func ApplyEventsGrouped(ctx context.Context, tx *sql.Tx, cache *TableCache, events []wire.Event) error {
	if err := cache.check(ctx, tx, events); err != nil {
		return err
	}
	var order [][2]string
	byTable := map[[2]string][]wire.Event{}
	for _, e := range events {
		if e.Op == wire.OpTruncate {
			return ErrNotGroupable
		}
		k := [2]string{e.Schema, e.Table}
		if _, ok := byTable[k]; !ok {
			order = append(order, k)
		}
		byTable[k] = append(byTable[k], e)
	}
	tables := make([]*applyTable, len(order))
	for i, k := range order {
		t, err := lookupTable(ctx, tx, cache, byTable[k][0])
		if err != nil {
			return err
		}
		// Updates and deletes need a key: without one rows are matched one
		// at a time anyway; with foreign key actions a shortfall is
		// tolerated, which would hide a row changed twice in one run.
		// Inserts need neither.
		onlyInserts := !slices.ContainsFunc(byTable[k], func(e wire.Event) bool { return e.Op != wire.OpInsert })
		if !onlyInserts && (len(t.keyNames()) == 0 || t.fkActions) {
			return ErrNotGroupable
		}
		tables[i] = t
	}
	for ti, k := range order {
		evs, t := byTable[k], tables[ti]
		pk := t.keyNames()
		for i := 0; i < len(evs); {
			keys, err := firstRowKeys(evs[i].Op, evs[i].Data)
			if err != nil {
				return err
			}
			// seen holds the keys the run touches, old and new: a row
			// changed twice, or a key moved onto one the run already
			// changed, ends the run, since one statement sees each row once.
			// Only deletes are tracked: a key inserted twice in one run is a
			// duplicate key error, as in ordered apply, and updates of one
			// row are folded into one by compactUpdates.
			seen := map[string]bool{}
			track := evs[i].Op == wire.OpDelete
			if track {
				if _, err := touches(evs[i], pk, seen); err != nil {
					return err
				}
			}
			j, size := i+1, len(evs[i].Data)
			for j < len(evs) && j-i < groupMaxEvents && size < groupMaxBytes && evs[j].Op == evs[i].Op {
				same, err := sameKeys(evs[j].Op, evs[j].Data, keys)
				if err != nil {
					return err
				}
				if !same {
					break
				}
				if track {
					fresh, err := touches(evs[j], pk, seen)
					if err != nil {
						return err
					}
					if !fresh {
						break
					}
				}
				size += len(evs[j].Data)
				j++
			}
			var merged wire.Event
			if evs[i].Op == wire.OpUpdate {
				merged, err = compactUpdates(evs[i:j], pk)
			} else {
				merged = mergeEvents(evs[i:j])
			}
			if err != nil {
				return err
			}
			if err := applyEvent(ctx, tx, cache, merged); err != nil {
				return err
			}
			i = j
		}
	}
	return nil
}

// touches adds to seen the primary keys e's rows have, before and after,
// and reports false, adding nothing, when one of them is there already.
func touches(e wire.Event, pk []string, seen map[string]bool) (bool, error) {
	var keys []string
	var err error
	add := func(row []byte) bool {
		var k string
		if k, err = rowKey(row, pk); err != nil {
			return false
		}
		keys = append(keys, k)
		return true
	}
	var serr error
	if e.Op == wire.OpUpdate {
		serr = wire.UpdatePairs(e.Data, func(old, new []byte) bool { return add(old) && add(new) })
	} else {
		serr = wire.ArrayElems(e.Data, add)
	}
	if err = errors.Join(serr, err); err != nil {
		return false, fmt.Errorf("event %d: read data: %w", e.ID, err)
	}
	for _, k := range keys {
		if seen[k] {
			return false, nil
		}
	}
	for _, k := range keys {
		seen[k] = true
	}
	return true, nil
}

// rowKey returns the primary key values of a row, as the JSON text of each,
// which is the same for the same value.
func rowKey(row []byte, pk []string) (string, error) {
	vals := make([][]byte, len(pk))
	err := wire.ObjectMembers(row, func(name, value []byte) {
		for i, c := range pk {
			if string(name) == c {
				vals[i] = value
			}
		}
	})
	if err != nil {
		return "", fmt.Errorf("read row: %w", err)
	}
	n := 0
	for _, v := range vals {
		n += len(v) + 1
	}
	var k strings.Builder
	k.Grow(n)
	for _, v := range vals {
		k.Write(v)
		k.WriteByte(0)
	}
	return k.String(), nil
}

// errCompact means a run of updates cannot be folded: a row takes a key
// another row of the run holds. The caller falls back to ordered apply.
var errCompact = errors.New("updates cannot be folded")

// compactUpdates folds a run of update events of one table into one event
// with one [old, new] pair per row: a row updated several times keeps its
// first old row (the one on the target) and its last new row, following its
// key through key changes. The final state is the same; the rows in between
// are never seen, as the run applies inside one transaction.
func compactUpdates(evs []wire.Event, pk []string) (wire.Event, error) {
	var pairs [][2][]byte
	at := map[string]int{} // a row's current key -> its pair
	olds := map[string]bool{}
	for _, e := range evs {
		var rows [][2][]byte
		err := wire.UpdatePairs(e.Data, func(old, new []byte) bool {
			rows = append(rows, [2][]byte{old, new})
			return true
		})
		if err != nil {
			return wire.Event{}, fmt.Errorf("event %d: read data: %w", e.ID, err)
		}
		// One statement's rows may move keys onto each other's: resolve
		// every old key before recording any new one.
		idx := make([]int, len(rows))
		for r, p := range rows {
			ko, err := rowKey(p[0], pk)
			if err != nil {
				return wire.Event{}, fmt.Errorf("event %d: %w", e.ID, err)
			}
			i, ok := at[ko]
			if !ok {
				if olds[ko] {
					return wire.Event{}, errCompact // a key left and came back: leave it to ordered apply
				}
				olds[ko] = true
				i = len(pairs)
				pairs = append(pairs, p)
			}
			delete(at, ko)
			idx[r] = i
		}
		for r, p := range rows {
			kn, err := rowKey(p[1], pk)
			if err != nil {
				return wire.Event{}, fmt.Errorf("event %d: %w", e.ID, err)
			}
			if _, taken := at[kn]; taken {
				return wire.Event{}, errCompact
			}
			pairs[idx[r]][1] = p[1]
			at[kn] = idx[r]
		}
	}
	var b bytes.Buffer
	b.WriteByte('[')
	for i, p := range pairs {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteByte('[')
		b.Write(p[0])
		b.WriteByte(',')
		b.Write(p[1])
		b.WriteByte(']')
	}
	b.WriteByte(']')
	m := evs[0]
	m.Rows, m.Data = len(pairs), b.Bytes()
	return m, nil
}

// keyNames returns the primary key's column names.
func (t *applyTable) keyNames() []string {
	var names []string
	for _, c := range t.cols {
		if c.primaryKey {
			names = append(names, c.name)
		}
	}
	return names
}

// mergeEvents joins events of one table and operation into one: their JSON
// arrays concatenated, in order, without decoding the rows.
func mergeEvents(evs []wire.Event) wire.Event {
	if len(evs) == 1 {
		return evs[0]
	}
	m := evs[0]
	var b bytes.Buffer
	b.WriteByte('[')
	for i, e := range evs {
		inner := bytes.TrimSpace(e.Data)
		inner = bytes.TrimSpace(inner[1 : len(inner)-1])
		if i > 0 {
			b.WriteByte(',')
		}
		b.Write(inner)
		if i > 0 {
			m.Rows += e.Rows
		}
	}
	b.WriteByte(']')
	m.Data = b.Bytes()
	return m
}

// Events applies events grouped by table, a few statements for many small
// source transactions, and falls back to applying them one by one, in
// order, when the grouped apply declines or fails: a savepoint undoes what
// it did. Either way the events end in the state ordered apply gives.
//
// With a cache made for replica mode, each statement on a table without a
// trigger that mode would change runs in replica mode; one on a table with
// such a trigger (a capture trigger, which must record what is passed on
// to a further target, or a trigger of the target's own) in origin mode.
func Events(ctx context.Context, tx *sql.Tx, cache *TableCache, evs []wire.Event) error {
	grouped, err := database.InSavepoint(ctx, tx, "teleport_grouped", func() error {
		return ApplyEventsGrouped(ctx, tx, cache, evs)
	})
	if err != nil || grouped == nil {
		return err
	}
	cache.mode = "" // the rollback may have undone a change of mode
	return ApplyEvents(ctx, tx, cache, evs)
}

// ErrReplicaDenied means the role may no longer set session_replication_role
// (a grant was revoked): apply again with a cache not made for replica mode.
var ErrReplicaDenied = errors.New("may not set session_replication_role")

// AsReplica says whether the cache was made for replica mode.
func (c *TableCache) AsReplica() bool { return c.asReplica }

// Begin starts an apply transaction of changes from source: it marks them
// as coming from source (see database.SetApplyOrigin) and, with a cache
// made for replica mode, puts tx in it at once, in one round trip.
func (c *TableCache) Begin(ctx context.Context, tx *sql.Tx, source string) error {
	c.mode = ""
	clear(c.versions)
	clear(c.stmts) // they ended with the last transaction
	if _, err := tx.ExecContext(ctx, query("apply_begin"), source, c.asReplica); err != nil {
		if c.asReplica && database.SQLState(err) == pqerror.InsufficientPrivilege {
			return fmt.Errorf("%w: %v", ErrReplicaDenied, err)
		}
		return fmt.Errorf("set teleport.origin: %w", err)
	}
	if c.asReplica {
		c.mode = "replica"
	}
	return nil
}

// useMode puts tx in replica mode for a statement on tables when the cache
// allows it and none of them has a trigger that mode would change, and in
// origin mode otherwise. It sets the mode only when it changes (every
// change makes PostgreSQL plan the session's prepared statements again),
// and always first in a transaction: the session's default may be either.
func (c *TableCache) useMode(ctx context.Context, tx *sql.Tx, tables ...*applyTable) error {
	if !c.asReplica {
		return nil
	}
	mode := "replica"
	if slices.ContainsFunc(tables, func(t *applyTable) bool { return t.triggers }) {
		mode = "origin"
	}
	return c.setMode(ctx, tx, mode)
}

// OriginMode puts tx back in origin mode, if a cache made for replica mode
// left it in replica mode: before a schema change, whose statements the
// target's own event triggers must see as they would without the grant.
func (c *TableCache) OriginMode(ctx context.Context, tx *sql.Tx) error {
	if !c.asReplica {
		return nil
	}
	return c.setMode(ctx, tx, "origin")
}

func (c *TableCache) setMode(ctx context.Context, tx *sql.Tx, mode string) error {
	if mode == c.mode {
		return nil
	}
	if _, err := tx.ExecContext(ctx, query("apply_set_replication_role"), mode); err != nil {
		if database.SQLState(err) == pqerror.InsufficientPrivilege {
			return fmt.Errorf("%w: %v", ErrReplicaDenied, err)
		}
		return fmt.Errorf("set session_replication_role to %s: %w", mode, err)
	}
	c.mode = mode
	return nil
}

// MayApplyAsReplica reports whether the connected role may set
// session_replication_role, by setting it in a transaction rolled back.
func MayApplyAsReplica(ctx context.Context, db *sql.DB) (bool, error) {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return false, fmt.Errorf("begin: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // the transaction only tried a setting
	_, err = tx.ExecContext(ctx, query("apply_set_replication_role"), "replica")
	switch {
	case err == nil:
		return true, nil
	case database.SQLState(err) == pqerror.InsufficientPrivilege:
		return false, nil
	default:
		return false, fmt.Errorf("try session_replication_role: %w", err)
	}
}
