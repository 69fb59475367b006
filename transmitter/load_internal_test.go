package transmitter

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pagarme/teleport/config"
	"github.com/pagarme/teleport/database/capture"
	"github.com/pagarme/teleport/database/load"
	"github.com/pagarme/teleport/server/wire"
)

func TestLoaderToCopy(t *testing.T) {
	// a <- b <- c (foreign keys), d alone, e alone; a and d are done.
	mk := func(oid uint32, name string, bytes int64, peers ...uint32) *loadTable {
		return &loadTable{
			src: load.SourceTable{Table: capture.Table{OID: oid, Schema: "s", Name: name}, EstBytes: bytes, FKPeers: peers},
			dst: wire.LoadTable{Schema: "t", Table: name},
		}
	}
	l := &loader{tables: []*loadTable{mk(1, "a", 10, 2), mk(2, "b", 30, 1, 3), mk(3, "c", 20, 2), mk(4, "d", 5), mk(5, "e", 40)}}
	names := func(done ...string) []string {
		var ds []wire.LoadTable
		for _, d := range done {
			ds = append(ds, wire.LoadTable{Schema: "t", Table: d})
		}
		var out []string
		for _, lt := range l.toCopy(ds) {
			out = append(out, lt.src.Name)
		}
		return out
	}
	// c is not done, so a (done, linked through b) is copied again; d is
	// done and alone; largest first.
	if got := names("a", "d"); !slices.Equal(got, []string{"e", "b", "c", "a"}) {
		t.Errorf("toCopy(a, d done) = %v, want e b c a", got)
	}
	if got := names("a", "b", "c", "d", "e"); len(got) != 0 {
		t.Errorf("toCopy(all done) = %v, want none", got)
	}
	if got := names(); len(got) != 5 {
		t.Errorf("toCopy(none done) = %v, want all five", got)
	}

	// Done in a snapshot: a group done whole in one snapshot stays, even
	// an old one; of a group copied, a table done in this run's snapshot
	// (held by the source instance since the run before) stays too.
	l.snapshot = "20:30:"
	snapNames := func(done map[string]string) []string {
		var ds []wire.LoadTable
		for name, snap := range done {
			ds = append(ds, wire.LoadTable{Schema: "t", Table: name, Snapshot: snap})
		}
		var out []string
		for _, lt := range l.toCopy(ds) {
			out = append(out, lt.src.Name)
		}
		return out
	}
	for _, tc := range []struct {
		done map[string]string
		want []string
	}{
		{map[string]string{"a": "20:30:", "b": "20:30:", "d": "1:2:"}, []string{"e", "c"}},
		{map[string]string{"a": "1:2:", "b": "20:30:", "d": "1:2:"}, []string{"e", "c", "a"}},
		{map[string]string{"a": "1:2:", "b": "1:2:", "c": "1:2:", "d": "1:2:", "e": "20:30:"}, nil},
		{map[string]string{"a": "1:2:", "b": "3:4:", "c": "1:2:"}, []string{"e", "b", "c", "a", "d"}},
	} {
		if got := snapNames(tc.done); !slices.Equal(got, tc.want) {
			t.Errorf("toCopy(done %v, this run's snapshot %s) = %v, want %v", tc.done, l.snapshot, got, tc.want)
		}
	}
}

func TestProgressLeft(t *testing.T) {
	p := progress{rows: 250, estRows: 1000, elapsed: 10 * time.Second}
	if left, ok := p.left(); !ok || left != 30*time.Second {
		t.Errorf("left = %v, %v, want 30s", left, ok)
	}
	if _, ok := (progress{estRows: 1000, elapsed: time.Second}).left(); ok {
		t.Error("left known with no row copied yet")
	}
	if _, ok := (progress{rows: 5, elapsed: time.Second}).left(); ok {
		t.Error("left known with no estimate")
	}
}

func TestDrawLine(t *testing.T) {
	var b strings.Builder
	drawLine(&b, "my-target", progress{tablesDone: 1, tables: 2, rows: 500, estRows: 1000, bytes: 3 << 20, elapsed: 2 * time.Second})
	want := "\r\033[Kloading my-target: 1/2 tables, 500 of ~1000 rows, 3.0 MiB, 1.5 MiB/s, 2s left"
	if b.String() != want {
		t.Errorf("drawLine = %q, want %q", b.String(), want)
	}
}

func TestResyncTables(t *testing.T) {
	// a <- b <- c (foreign keys), d alone; x.a shares a's name in another
	// schema.
	mk := func(oid uint32, schema, name string, peers ...uint32) load.SourceTable {
		return load.SourceTable{Table: capture.Table{OID: oid, Schema: schema, Name: name}, FKPeers: peers}
	}
	all := []load.SourceTable{mk(1, "s", "a", 2), mk(2, "s", "b", 1, 3), mk(3, "s", "c", 2), mk(4, "s", "d"), mk(5, "x", "a")}
	for _, tc := range []struct {
		names        []string
		want, linked string
	}{
		{[]string{"s.c"}, "s.c s.b s.a", "s.b s.a"}, // every table linked, however indirectly
		{[]string{"d"}, "s.d", ""},
		{[]string{"a"}, "s.a s.b s.c x.a", "s.b s.c"}, // a name without schema picks it in every schema
		{[]string{"x.a", "s.d", "s.d"}, "s.d x.a", ""},
	} {
		picked, linked, err := resyncTables(all, tc.names, "dst")
		if err != nil {
			t.Fatalf("resyncTables(%v): %v", tc.names, err)
		}
		var got []string
		for _, p := range picked {
			got = append(got, p.Schema+"."+p.Name)
		}
		slices.Sort(got)
		want := strings.Fields(tc.want)
		slices.Sort(want)
		var wantLinked []string
		for _, n := range strings.Fields(tc.linked) {
			schema, name, _ := strings.Cut(n, ".")
			wantLinked = append(wantLinked, `"`+schema+`"."`+name+`"`)
		}
		slices.Sort(linked)
		slices.Sort(wantLinked)
		if !slices.Equal(got, want) || !slices.Equal(linked, wantLinked) {
			t.Errorf("resyncTables(%v) = %v, linked %v; want %v, linked %s", tc.names, got, linked, want, tc.linked)
		}
	}
	if _, _, err := resyncTables(all, []string{"s.nosuch"}, "dst"); err == nil || !strings.Contains(err.Error(), `"s.nosuch" is not a table dst takes`) {
		t.Errorf("resyncTables(s.nosuch) = %v, want it named", err)
	}
}

// TestLoaderBeginPatience: a target that stays not ready makes the load
// fail after its patience, with the target's last answer, not wait forever.
func TestLoaderBeginPatience(t *testing.T) {
	t.Parallel()
	var asked atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		asked.Add(1)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusServiceUnavailable)
		_ = json.NewEncoder(w).Encode(wire.ErrorResponse{Error: "not ready for the load: batch 1 of src held: permission denied"}) // the client reads what arrives
	}))
	defer srv.Close()
	p, err := newPeer("tgt", config.Target{})
	if err != nil {
		t.Fatal(err)
	}
	p.url = srv.URL
	l := &loader{peer: p, source: "src", instance: "i", log: slog.New(slog.DiscardHandler), patience: 300 * time.Millisecond}
	start := time.Now()
	_, err = l.begin(context.Background(), wire.LoadPlan{Source: "src", Run: "r"})
	for _, want := range []string{"not ready for the load for", "batch 1 of src held: permission denied", "run the load again"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("begin = %v, want an error with %q", err, want)
		}
	}
	if took := time.Since(start); took > 30*time.Second || asked.Load() < 2 {
		t.Errorf("begin asked %d times in %v, want at least twice before giving up", asked.Load(), took)
	}
}
