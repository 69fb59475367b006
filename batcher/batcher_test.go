package batcher_test

import (
	"context"
	"database/sql"
	"os"
	"path"
	"slices"
	"strings"
	"testing"

	"github.com/pagarme/teleport/batcher"
	"github.com/pagarme/teleport/config"
	"github.com/pagarme/teleport/database/capture"
	"github.com/pagarme/teleport/database/dbtest"
	"github.com/pagarme/teleport/database/migrate"
	"github.com/pagarme/teleport/database/schema"
	"github.com/pagarme/teleport/database/store"
	"github.com/pagarme/teleport/server/wire"
)

func TestMain(m *testing.M) { os.Exit(dbtest.Run(m)) }

// The regular expressions the batcher filters events with must select in
// PostgreSQL what the target expression selects with path.Match.
func TestExpressionRegex_AgreesWithMatch(t *testing.T) {
	t.Parallel()
	db, _ := dbtest.Shared(t).NewDB(t)
	patterns := []string{"public", "*", "order_*", "a?c", "[ab]x", "[^ab]x", "[a-c]*", `we\*ird`, "dot.ted", "x+y", "(p)", "$1"}
	names := []string{"public", "publics", "order_", "order_items", "abc", "ac", "ax", "bx", "cx", "we*ird", "weXird", "dot.ted", "dotxted", "x+y", "xxy", "(p)", "$1", "Order_x", ""}
	for _, p := range patterns {
		re := config.Expression{Schema: p}.SchemaRegex()
		for _, n := range names {
			want, err := path.Match(p, n)
			if err != nil {
				t.Fatalf("path.Match(%q): %v", p, err)
			}
			var got bool
			if err := db.QueryRow(`SELECT $1::text ~ $2`, n, re).Scan(&got); err != nil {
				t.Fatalf("%q ~ %q: %v", n, re, err)
			}
			if got != want {
				t.Errorf("SchemaRegex of %q = %q matches %q: %v, want %v (path.Match)", p, re, n, got, want)
			}
		}
	}
}

// source returns a migrated source database with captured tables public.a,
// public.b and other.c.
func source(t *testing.T) *sql.DB {
	t.Helper()
	ctx := context.Background()
	db, _ := dbtest.Shared(t).NewDB(t)
	if _, err := migrate.Migrate(ctx, db); err != nil {
		t.Fatal(err)
	}
	exec(t, db, `CREATE TABLE public.a (id int PRIMARY KEY, v text);
		CREATE TABLE public.b (id int PRIMARY KEY);
		CREATE SCHEMA other; CREATE TABLE other.c (id int PRIMARY KEY)`)
	if _, err := capture.InstallCapture(ctx, db, func(string, string) bool { return true }, false); err != nil {
		t.Fatal(err)
	}
	return db
}

func exec(t *testing.T, db interface {
	Exec(string, ...any) (sql.Result, error)
}, q string) {
	t.Helper()
	if _, err := db.Exec(q); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}

func newWorker(t *testing.T, db *sql.DB, targets map[string]string) *batcher.Worker {
	cfg := config.Default()
	cfg.Targets = map[string]config.Target{}
	for name, expr := range targets {
		cfg.Targets[name] = config.Target{TargetExpression: expr}
	}
	return batcher.New(db, cfg, nil, dbtest.Logger(t))
}

func runOnce(t *testing.T, w *batcher.Worker) batcher.Result {
	t.Helper()
	res, err := w.RunOnce(context.Background())
	if err != nil {
		t.Fatalf("RunOnce: %v", err)
	}
	return res
}

// eventsOf returns "table:op:rows" of every event of target's batch seq.
func eventsOf(t *testing.T, db *sql.DB, target string, seq int64) []string {
	t.Helper()
	bs, err := store.UnackedBatches(context.Background(), db, target, 1000)
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range bs {
		if b.Seq != seq {
			continue
		}
		var out []string
		err := schema.BatchEvents(context.Background(), db, b, func(e wire.Event) error {
			out = append(out, e.Schema+"."+e.Table+":"+string(e.Op)+":"+string(e.Data))
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	t.Fatalf("no batch %d for %s", seq, target)
	return nil
}

func TestWorker_RunOnce(t *testing.T) {
	t.Parallel()
	db := source(t)
	w := newWorker(t, db, map[string]string{"pub": "public.*", "all": "*.*", "only-a": "public.a"})
	if res := runOnce(t, w); res.Batches != 3 || res.Events != 3 {
		t.Fatalf("first pass with no changes = %+v, want each target's schema", res)
	}
	for _, target := range []string{"pub", "all", "only-a"} {
		if got := eventsOf(t, db, target, 1); len(got) != 1 || !strings.HasPrefix(got[0], ".:S:") {
			t.Errorf("first batch of %s = %q, want its schema", target, got)
		}
	}
	if got := eventsOf(t, db, "only-a", 1); strings.Contains(got[0], `\"b\"`) || !strings.Contains(got[0], `CREATE TABLE \"public\".\"a\"`) {
		t.Errorf("schema of only-a = %s, want table a and not b", got[0])
	}
	exec(t, db, `INSERT INTO public.a VALUES (1, 'x'), (2, 'y')`)
	exec(t, db, `BEGIN; INSERT INTO public.b VALUES (1); INSERT INTO other.c VALUES (1); COMMIT`)
	res := runOnce(t, w)
	if res.Batches != 3 {
		t.Fatalf("RunOnce after changes = %+v, want a batch for each of 3 targets", res)
	}
	tests := []struct {
		target string
		want   []string
	}{
		{"pub", []string{`public.a:I:[{"id":1,"v":"x"}, {"id":2,"v":"y"}]`, `public.b:I:[{"id":1}]`}},
		{"all", []string{`public.a:I:[{"id":1,"v":"x"}, {"id":2,"v":"y"}]`, `public.b:I:[{"id":1}]`, `other.c:I:[{"id":1}]`}},
		{"only-a", []string{`public.a:I:[{"id":1,"v":"x"}, {"id":2,"v":"y"}]`}},
	}
	for _, tt := range tests {
		got := eventsOf(t, db, tt.target, 2)
		if len(got) != len(tt.want) {
			t.Errorf("batch 2 of %s = %q, want %q", tt.target, got, tt.want)
			continue
		}
		for i := range got {
			if got[i] != tt.want[i] {
				t.Errorf("batch 2 of %s event %d = %q, want %q", tt.target, i, got[i], tt.want[i])
			}
		}
	}
	if res := runOnce(t, w); res.Batches != 0 {
		t.Errorf("RunOnce with nothing new = %+v, want no batch", res)
	}
	exec(t, db, `INSERT INTO other.c VALUES (2)`)
	if res := runOnce(t, w); res.Batches != 1 {
		t.Errorf("RunOnce after a change only 'all' takes = %+v, want 1 batch", res)
	}
	if got := eventsOf(t, db, "all", 3); len(got) != 1 {
		t.Errorf("batch 3 of all = %q, want the one insert into other.c", got)
	}
}

// TestWorker_LateCommitter: a transaction that wrote before others but
// commits after them is in the batch of the tick after its commit, although
// its event id is lower than events already batched, and although it was
// running at the tick an idle pass looks from.
func TestWorker_LateCommitter(t *testing.T) {
	t.Parallel()
	db := source(t)
	w := newWorker(t, db, map[string]string{"pub": "public.*"})
	runOnce(t, w)
	late, err := db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	defer late.Rollback()
	exec(t, late, `INSERT INTO public.a VALUES (100, 'late')`)
	exec(t, db, `INSERT INTO public.a VALUES (1, 'early')`)
	runOnce(t, w)
	if got := eventsOf(t, db, "pub", 2); len(got) != 1 || got[0] != `public.a:I:[{"id":1,"v":"early"}]` {
		t.Fatalf("batch 2 = %q, want only the committed insert", got)
	}
	// A pass while it still runs takes a tick with it running and cuts
	// nothing, so the pass after its commit starts idle: it must find the
	// late transaction's events through that tick before taking another.
	if res := runOnce(t, w); res.Batches != 0 {
		t.Fatalf("RunOnce with only the late transaction running = %+v, want no batch", res)
	}
	if err := late.Commit(); err != nil {
		t.Fatal(err)
	}
	if res := runOnce(t, w); res.Batches != 1 {
		t.Fatalf("RunOnce after the late commit = %+v, want 1 batch", res)
	}
	if got := eventsOf(t, db, "pub", 3); len(got) != 1 || got[0] != `public.a:I:[{"id":100,"v":"late"}]` {
		t.Errorf("batch 3 = %q, want the late committer's insert", got)
	}
	var lateID, earlyID int64
	if err := db.QueryRow(`SELECT min(id) FILTER (WHERE data::text LIKE '%late%'), min(id) FILTER (WHERE data::text LIKE '%early%') FROM teleport.event`).Scan(&lateID, &earlyID); err != nil {
		t.Fatal(err)
	}
	if lateID >= earlyID {
		t.Errorf("late committer's event id %d >= early one's %d: the test did not exercise an id inversion", lateID, earlyID)
	}
}

func TestWorker_SkipsEchoes(t *testing.T) {
	t.Parallel()
	db := source(t)
	w := newWorker(t, db, map[string]string{"peer": "public.*", "other": "public.*"})
	runOnce(t, w)
	exec(t, db, `BEGIN; SET LOCAL teleport.origin = 'peer'; INSERT INTO public.a VALUES (1, 'from peer'); COMMIT`)
	if res := runOnce(t, w); res.Batches != 1 {
		t.Fatalf("RunOnce = %+v, want one batch (for 'other' only)", res)
	}
	if got := eventsOf(t, db, "other", 2); len(got) != 1 {
		t.Errorf("batch for other = %q, want the change applied from peer", got)
	}
	bs, err := store.UnackedBatches(context.Background(), db, "peer", 10)
	if err != nil || len(bs) != 1 {
		t.Errorf("batches for peer = %v, %v; want its schema only: the change came from it", bs, err)
	}
}

func TestWorker_SyncTargetsForgetsRemoved(t *testing.T) {
	t.Parallel()
	db := source(t)
	runOnce(t, newWorker(t, db, map[string]string{"old": "public.*", "kept": "public.*"}))
	runOnce(t, newWorker(t, db, map[string]string{"kept": "public.*"}))
	var names []string
	rows, err := db.Query(`SELECT name FROM teleport.target ORDER BY name`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			t.Fatal(err)
		}
		names = append(names, n)
	}
	if len(names) != 1 || names[0] != "kept" {
		t.Errorf("targets after reconfiguring = %q, want [kept]", names)
	}
}

// TestWorker_SchemaBeforeData: a row naming a column or table the target was
// not sent yet gets the schema change before it, in the same batch, with no
// ddlwatcher pass in between; rows written before the change stay before it.
func TestWorker_SchemaBeforeData(t *testing.T) {
	t.Parallel()
	db := source(t)
	w := newWorker(t, db, map[string]string{"pub": "public.*"})
	runOnce(t, w)
	exec(t, db, `INSERT INTO public.a VALUES (1, 'before')`)
	exec(t, db, `ALTER TABLE public.a RENAME COLUMN v TO w`)
	exec(t, db, `INSERT INTO public.a VALUES (2, 'after')`)
	exec(t, db, `CREATE TABLE public.n (id int)`)
	if _, err := capture.InstallCapture(context.Background(), db, func(string, string) bool { return true }, true); err != nil {
		t.Fatal(err)
	}
	exec(t, db, `INSERT INTO public.n VALUES (7)`)
	runOnce(t, w)
	got := eventsOf(t, db, "pub", 2)
	if len(got) != 4 {
		t.Fatalf("batch 2 = %q, want insert, schema change, insert, insert", got)
	}
	if got[0] != `public.a:I:[{"id":1,"v":"before"}]` || got[2] != `public.a:I:[{"id":2,"w":"after"}]` || got[3] != `public.n:I:[{"id":7}]` {
		t.Errorf("row events of batch 2 = %q", got)
	}
	for _, want := range []string{`RENAME COLUMN \"v\" TO \"w\"`, `CREATE TABLE \"public\".\"n\"`} {
		if !strings.HasPrefix(got[1], ".:S:") || !strings.Contains(got[1], want) {
			t.Errorf("schema change of batch 2 = %s, want %s", got[1], want)
		}
	}
	if res := runOnce(t, w); res.Batches != 0 {
		t.Errorf("pass after = %+v, want nothing: the target has the schema", res)
	}
}

// TestWorker_FirstSchemaAlone: rows written after a target was recorded
// but before its first batch was cut do not share that batch with the
// target's first schema: an update its empty tables cannot apply yet would
// hold the tables the initial load needs.
func TestWorker_FirstSchemaAlone(t *testing.T) {
	t.Parallel()
	db := source(t)
	w := newWorker(t, db, map[string]string{"pub": "public.*"})
	if err := w.SyncTargets(context.Background()); err != nil {
		t.Fatal(err)
	}
	exec(t, db, `INSERT INTO public.a VALUES (1, 'x'); UPDATE public.a SET v = 'y'`)
	if res := runOnce(t, w); res.Batches != 2 || res.Events != 3 {
		t.Fatalf("first pass = %+v, want the schema alone, then the rows", res)
	}
	if got := eventsOf(t, db, "pub", 1); len(got) != 1 || !strings.HasPrefix(got[0], ".:S:") || !strings.Contains(got[0], `CREATE TABLE \"public\".\"a\"`) {
		t.Errorf("batch 1 = %q, want the schema only", got)
	}
	want := []string{`public.a:I:[{"id":1,"v":"x"}]`, `public.a:U:[[{"id":1,"v":"x"}, {"id":1,"v":"y"}]]`}
	if got := eventsOf(t, db, "pub", 2); !slices.Equal(got, want) {
		t.Errorf("batch 2 = %q, want %q", got, want)
	}
}

// TestWorker_RecordsSkipped checks that an object schema replication leaves
// out is recorded for /status with its reason, for the target it concerns,
// and that the rest of the change still goes.
func TestWorker_RecordsSkipped(t *testing.T) {
	t.Parallel()
	db := source(t)
	w := newWorker(t, db, map[string]string{"pub": "public.*", "oth": "other.*"})
	runOnce(t, w)
	exec(t, db, `CREATE TABLE public.kid (extra int) INHERITS (public.a); CREATE TABLE public.fine (id int)`)
	if _, err := capture.InstallCapture(context.Background(), db, func(string, string) bool { return true }, true); err != nil {
		t.Fatal(err)
	}
	exec(t, db, `INSERT INTO public.fine VALUES (1)`)
	runOnce(t, w)
	skipped, err := schema.SkippedByTarget(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	got := skipped["pub"]
	if len(got) != 1 || got[0].Object != `table "public"."kid"` || !strings.Contains(got[0].Reason, "INHERITS") || got[0].FirstSeen.IsZero() {
		t.Errorf("skipped for pub = %+v, want table public.kid for its inheritance", got)
	}
	if len(skipped["oth"]) != 0 {
		t.Errorf("skipped for oth = %+v, want none: kid is not in its expression", skipped["oth"])
	}
	evs := eventsOf(t, db, "pub", 2)
	if !slices.ContainsFunc(evs, func(e string) bool { return strings.Contains(e, `CREATE TABLE \"public\".\"fine\"`) }) {
		t.Errorf("batch 2 = %q, want public.fine created regardless", evs)
	}

	// Once kid no longer inherits, it replicates, and the list says so.
	exec(t, db, `ALTER TABLE public.kid NO INHERIT public.a`)
	if _, err := schema.WriteSnapshot(context.Background(), db, ""); err != nil { // as the ddlwatcher does
		t.Fatal(err)
	}
	runOnce(t, w)
	skipped, err = schema.SkippedByTarget(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	if len(skipped["pub"]) != 0 {
		t.Errorf("skipped for pub once kid no longer inherits = %+v, want none", skipped["pub"])
	}
}

// TestWorker_WidenedExpression: a target whose target_expression comes to
// take more tables gets them created, before their rows.
func TestWorker_WidenedExpression(t *testing.T) {
	t.Parallel()
	db := source(t)
	runOnce(t, newWorker(t, db, map[string]string{"pub": "public.a"}))
	if got := eventsOf(t, db, "pub", 1); len(got) != 1 || strings.Contains(got[0], `\"b\"`) {
		t.Fatalf("batch 1 = %q, want the schema of a alone", got)
	}
	w := newWorker(t, db, map[string]string{"pub": "public.*"}) // the instance restarted with a wider expression
	if err := w.SyncTargets(context.Background()); err != nil {
		t.Fatal(err)
	}
	exec(t, db, `INSERT INTO public.b VALUES (1)`)
	runOnce(t, w)
	bs, err := store.UnackedBatches(context.Background(), db, "pub", 1000) // in seq order
	if err != nil {
		t.Fatal(err)
	}
	var all string
	for _, b := range bs {
		if b.Seq >= 2 {
			all += strings.Join(eventsOf(t, db, "pub", b.Seq), "\n") + "\n"
		}
	}
	if !strings.Contains(all, `CREATE TABLE \"public\".\"b\"`) || !strings.Contains(all, `public.b:I:[{"id":1}]`) {
		t.Errorf("batches after the expression widened:\n%s\nwant table b created and its row", all)
	} else if strings.Index(all, `CREATE TABLE \"public\".\"b\"`) > strings.Index(all, `public.b:I:`) {
		t.Errorf("batches after the expression widened:\n%s\nwant table b created before its row", all)
	}
}
