package load

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/pagarme/teleport/database/dbtest"
	"github.com/pagarme/teleport/server/wire"
)

func TestParseTxSnapshot(t *testing.T) {
	s, err := ParseTxSnapshot("100:110:107,103")
	if err != nil {
		t.Fatal(err)
	}
	if s.Xmin != 100 || s.Xmax != 110 || !slices.Equal(s.Xip, []uint64{103, 107}) {
		t.Errorf("ParseTxSnapshot = %+v", s)
	}
	for _, bad := range []string{"", "1:2", "a:2:", "1:b:", "5:4:", "1:9:x", "1:2:3:4"} {
		if _, err := ParseTxSnapshot(bad); err == nil {
			t.Errorf("ParseTxSnapshot(%q) succeeded", bad)
		}
	}
}

func TestTxSnapshotSees(t *testing.T) {
	s, err := ParseTxSnapshot("100:110:103,107")
	if err != nil {
		t.Fatal(err)
	}
	for xid, want := range map[uint64]bool{1: true, 99: true, 100: true, 103: false, 105: true, 107: false, 109: true, 110: false, 200: false} {
		if got := s.Sees(xid); got != want {
			t.Errorf("Sees(%d) = %v, want %v", xid, got, want)
		}
	}
}

func TestLoadFilter(t *testing.T) {
	snap, err := ParseTxSnapshot("100:110:105")
	if err != nil {
		t.Fatal(err)
	}
	ev := func(id int64, table string, xid uint64, op wire.Op) wire.Event {
		return wire.Event{ID: id, Schema: "s", Table: table, XID: xid, Op: op}
	}
	evs := []wire.Event{
		ev(1, "loaded", 99, wire.OpInsert),    // in the copy
		ev(2, "other", 99, wire.OpInsert),     // not loaded
		ev(3, "loaded", 105, wire.OpUpdate),   // in progress at the snapshot: after the copy
		ev(4, "loaded", 104, wire.OpDelete),   // committed before: in the copy
		ev(5, "loaded", 120, wire.OpTruncate), // after
		{ID: 6, Op: wire.OpSchema},
	}
	ids := func(evs []wire.Event) []int64 {
		var out []int64
		for _, e := range evs {
			out = append(out, e.ID)
		}
		return out
	}

	none := LoadFilter{}
	if got, err := none.Filter(evs); err != nil || !slices.Equal(ids(got), []int64{1, 2, 3, 4, 5, 6}) {
		t.Errorf("no load: Filter = %v, %v, want every event", ids(got), err)
	}
	done := LoadFilter{tables: map[[2]string]loadedTable{{"s", "loaded"}: {snap: snap, inRun: true}}}
	if got, err := done.Filter(evs); err != nil || !slices.Equal(ids(got), []int64{2, 3, 5, 6}) {
		t.Errorf("finished load: Filter = %v, %v, want 2 3 5 6", ids(got), err)
	}
	if _, err := done.Filter([]wire.Event{ev(7, "loaded", 0, wire.OpInsert)}); err == nil {
		t.Error("an event of a loaded table without xid passed")
	}
	underway := LoadFilter{underway: true, tables: done.tables}
	if got, err := underway.Filter(evs[1:2]); err != nil || len(got) != 1 {
		t.Errorf("load under way, other table: Filter = %v, %v, want it through", ids(got), err)
	}
	for _, e := range []wire.Event{evs[0], evs[5]} {
		if _, err := underway.Filter([]wire.Event{e}); !errors.Is(err, ErrLoadUnderway) {
			t.Errorf("load under way, event %d: err = %v, want ErrLoadUnderway", e.ID, err)
		}
	}

	// A resync under way holds its own tables and schema changes; a table
	// an earlier run copied goes on, filtered by its snapshot.
	resync := LoadFilter{underway: true, tables: map[[2]string]loadedTable{
		{"s", "loaded"}: {snap: snap},
		{"s", "again"}:  {inRun: true},
	}}
	if got, err := resync.Filter(evs[:5]); err != nil || !slices.Equal(ids(got), []int64{2, 3, 5}) {
		t.Errorf("resync under way, earlier table: Filter = %v, %v, want 2 3 5", ids(got), err)
	}
	for _, e := range []wire.Event{ev(8, "again", 120, wire.OpInsert), evs[5]} {
		if _, err := resync.Filter([]wire.Event{e}); !errors.Is(err, ErrLoadUnderway) {
			t.Errorf("resync under way, event %d: err = %v, want ErrLoadUnderway", e.ID, err)
		}
	}
}

// TestFilterCache: a finished load's filter is read once while its load
// row stays as it was; a resync begun (the row rewritten) is read at once,
// and so is its end; a source whose load is gone has no filter.
func TestFilterCache(t *testing.T) {
	ctx := context.Background()
	db, _ := dbtest.Migrated(t)
	exec := func(q string) {
		t.Helper()
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	exec(`INSERT INTO teleport.load (source, run, finished_at) VALUES ('src', 'r1', now());
		INSERT INTO teleport.load_table (source, schema_name, table_name, est_rows, est_bytes, snapshot, done_at)
		VALUES ('src', 's', 'a', 1, 1, '100:110:', now())`)
	c := FilterCache{}
	in := []wire.Event{{ID: 1, Schema: "s", Table: "a", XID: 99, Op: wire.OpInsert}}
	keeps := func(want int, what string) {
		t.Helper()
		f, err := c.Read(ctx, db, "src")
		if err != nil {
			t.Fatal(err)
		}
		if got, err := f.Filter(in); len(got) != want || err != nil {
			t.Errorf("%s: Filter kept %d events (%v), want %d", what, len(got), err, want)
		}
	}
	keeps(0, "finished load") // xid 99 is in the copy
	// A change behind the load row's back is not seen: the row says nothing changed.
	exec(`UPDATE teleport.load_table SET snapshot = '90:90:'`)
	keeps(0, "load_table changed, load row not")
	exec(`UPDATE teleport.load SET run = 'r2', finished_at = NULL`) // a resync begins
	f, err := c.Read(ctx, db, "src")
	if err != nil || !f.Underway() {
		t.Errorf("resync begun: Underway = %v, %v; want true", f.Underway(), err)
	}
	exec(`UPDATE teleport.load SET finished_at = now()`)
	keeps(1, "resync finished") // read again: xid 99 is after the snapshot 90:90:
	exec(`DELETE FROM teleport.load`)
	keeps(1, "no load")
}
