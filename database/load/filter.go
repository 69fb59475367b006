package load

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/pagarme/teleport/database"
	"github.com/pagarme/teleport/server/wire"
)

// TxSnapshot is a pg_snapshot: every transaction below Xmin is finished,
// every one from Xmax on had not begun, and Xip were in progress.
type TxSnapshot struct {
	Xmin, Xmax uint64
	Xip        []uint64 // sorted
}

// ParseTxSnapshot reads the text form of a pg_snapshot, "xmin:xmax:xip,...".
func ParseTxSnapshot(s string) (TxSnapshot, error) {
	parts := strings.Split(s, ":")
	if len(parts) != 3 {
		return TxSnapshot{}, fmt.Errorf("snapshot %q: want xmin:xmax:xip", s)
	}
	var snap TxSnapshot
	var err error
	if snap.Xmin, err = strconv.ParseUint(parts[0], 10, 64); err != nil {
		return TxSnapshot{}, fmt.Errorf("snapshot %q: xmin: %w", s, err)
	}
	if snap.Xmax, err = strconv.ParseUint(parts[1], 10, 64); err != nil {
		return TxSnapshot{}, fmt.Errorf("snapshot %q: xmax: %w", s, err)
	}
	if snap.Xmin > snap.Xmax {
		return TxSnapshot{}, fmt.Errorf("snapshot %q: xmin above xmax", s)
	}
	if parts[2] != "" {
		for _, x := range strings.Split(parts[2], ",") {
			v, err := strconv.ParseUint(x, 10, 64)
			if err != nil {
				return TxSnapshot{}, fmt.Errorf("snapshot %q: xip: %w", s, err)
			}
			snap.Xip = append(snap.Xip, v)
		}
		slices.Sort(snap.Xip)
	}
	return snap, nil
}

// Sees reports whether the transaction xid had committed for the snapshot,
// as pg_visible_in_snapshot does for a committed xid: below xmax and not in
// progress. Capture only records committed transactions' events.
func (s TxSnapshot) Sees(xid uint64) bool {
	if xid < s.Xmin {
		return true
	}
	if xid >= s.Xmax {
		return false
	}
	_, inProgress := slices.BinarySearch(s.Xip, xid)
	return !inProgress
}

// ErrLoadUnderway means a batch touches a table of a load under way, or
// changes the schema during one: it waits until the load finishes.
var ErrLoadUnderway = errors.New("waiting for the initial load")

// LoadFilter decides, for a source's events, what a load means for them.
// The zero value, for a source with no load, lets everything through.
type LoadFilter struct {
	underway bool
	tables   map[[2]string]loadedTable // by target schema and table
}

// loadedTable is what the filter knows of a table of the load.
type loadedTable struct {
	snap  TxSnapshot // zero while not copied
	inRun bool       // the run under way copies it: held until it finishes
}

// ReadLoadFilter reads the load of source, if it has one. Call it in the
// apply transaction after LockSource, so it sees a load begun before.
func ReadLoadFilter(ctx context.Context, q database.Querier, source string) (LoadFilter, error) {
	return FilterCache{}.Read(ctx, q, source)
}

// FilterCache keeps the filters of finished loads from one apply
// transaction to the next: a load of thousands of tables is as many rows
// and snapshots to read, and once it has finished they change only when a
// load or resync begins, which rewrites the source's teleport.load row.
// The zero value is not usable; make one with make or FilterCache{}.
type FilterCache map[string]cachedFilter

type cachedFilter struct {
	version string // the xmin of the teleport.load row it was read with
	f       LoadFilter
}

// Read is ReadLoadFilter, reusing the filter of a finished load while its
// teleport.load row is the one it was read with.
func (c FilterCache) Read(ctx context.Context, q database.Querier, source string) (LoadFilter, error) {
	var f LoadFilter
	var finished sql.NullTime
	var version string
	err := q.QueryRowContext(ctx, `SELECT finished_at, xmin::text FROM teleport.load WHERE source = $1`, source).Scan(&finished, &version)
	if errors.Is(err, sql.ErrNoRows) {
		delete(c, source)
		return f, nil
	}
	if err != nil {
		return f, fmt.Errorf("read load of %s: %w", source, err)
	}
	if cf, ok := c[source]; ok && finished.Valid && cf.version == version {
		return cf.f, nil
	}
	delete(c, source)
	f.underway = !finished.Valid
	tables, err := LoadTables(ctx, q, source)
	if err != nil {
		return f, err
	}
	f.tables = make(map[[2]string]loadedTable, len(tables))
	for _, t := range tables {
		lt := loadedTable{inRun: t.InRun}
		if t.Snapshot != "" {
			if lt.snap, err = ParseTxSnapshot(t.Snapshot); err != nil {
				return f, fmt.Errorf("load of %s, table %s: %w", source, t, err)
			}
		}
		f.tables[[2]string{t.Schema, t.Table}] = lt
		for _, part := range t.Partitions {
			f.tables[part] = lt
		}
	}
	if finished.Valid {
		c[source] = cachedFilter{version: version, f: f}
	}
	return f, nil
}

// Underway reports whether the source's load is under way.
func (f LoadFilter) Underway() bool { return f.underway }

// Filter returns evs without the events a loaded table's copy already holds.
// While a load is under way, an event on one of the tables it copies or a
// schema change is ErrLoadUnderway, naming the table; a table an earlier
// run copied (a resync leaves them) goes on being filtered by its copy's
// snapshot. When it drops nothing it
// returns evs itself, so the apply path copies a chunk only when it must.
func (f LoadFilter) Filter(evs []wire.Event) ([]wire.Event, error) {
	if f.tables == nil {
		return evs, nil
	}
	var out []wire.Event // nil until an event is dropped
	for i, e := range evs {
		keep, err := f.keep(e)
		switch {
		case err != nil:
			return nil, err
		case !keep && out == nil:
			out = append(make([]wire.Event, 0, len(evs)-1), evs[:i]...)
		case keep && out != nil:
			out = append(out, e)
		}
	}
	if out == nil {
		return evs, nil
	}
	return out, nil
}

// keep says whether e is applied: not a loaded table's, or not seen by its copy.
func (f LoadFilter) keep(e wire.Event) (bool, error) {
	if e.Op == wire.OpSchema {
		if f.underway {
			return false, fmt.Errorf("%w to finish before changing the schema", ErrLoadUnderway)
		}
		return true, nil
	}
	lt, ok := f.tables[[2]string{e.Schema, e.Table}]
	switch {
	case !ok:
		return true, nil
	case f.underway && lt.inRun:
		return false, fmt.Errorf("%w of %s to finish", ErrLoadUnderway, database.QuoteQualified(e.Schema, e.Table))
	case e.XID == 0:
		return false, fmt.Errorf("event %d on loaded table %s carries no transaction id: "+
			"the source runs an older teleport; upgrade it", e.ID, database.QuoteQualified(e.Schema, e.Table))
	}
	return !lt.snap.Sees(e.XID), nil
}
