package applier_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pagarme/teleport/applier"
	"github.com/pagarme/teleport/database/apply"
	"github.com/pagarme/teleport/database/dbtest"
	"github.com/pagarme/teleport/database/migrate"
	"github.com/pagarme/teleport/database/store"
	"github.com/pagarme/teleport/server/wire"
)

func TestMain(m *testing.M) { os.Exit(dbtest.Run(m)) }

// setup returns a migrated database with table public.t (id int PRIMARY KEY, v text).
func setup(t *testing.T) *sql.DB {
	t.Helper()
	db, _ := dbtest.Shared(t).NewDB(t)
	if _, err := migrate.Migrate(context.Background(), db); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	exec(t, db, `CREATE TABLE public.t (id int PRIMARY KEY, v text)`)
	// tx_log records the top-level transaction of every write to t, for
	// transactions(): a row's xmin would name a savepoint's subtransaction.
	exec(t, db, `CREATE TABLE public.tx_log (xid xid8);
		CREATE FUNCTION public.log_tx() RETURNS trigger LANGUAGE plpgsql AS
			$$ BEGIN INSERT INTO public.tx_log VALUES (pg_current_xact_id()); RETURN NULL; END $$;
		CREATE TRIGGER log_tx AFTER INSERT OR UPDATE OR DELETE ON public.t FOR EACH STATEMENT EXECUTE FUNCTION public.log_tx()`)
	// The sources are known: the tests store their batches in any order.
	exec(t, db, `INSERT INTO teleport.source (name) VALUES ('a'), ('b')`)
	return db
}

func exec(t *testing.T, db *sql.DB, q string, args ...any) {
	t.Helper()
	if _, err := db.Exec(q, args...); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}

func ins(id int, v string) wire.Event {
	return wire.Event{Schema: "public", Table: "t", Op: wire.OpInsert, Rows: 1,
		Data: json.RawMessage(fmt.Sprintf(`[{"id":%d,"v":%q}]`, id, v))}
}

func upd(id int, from, to string) wire.Event {
	return wire.Event{Schema: "public", Table: "t", Op: wire.OpUpdate, Rows: 1,
		Data: json.RawMessage(fmt.Sprintf(`[[{"id":%d,"v":%q},{"id":%d,"v":%q}]]`, id, from, id, to))}
}

func del(id int, v string) wire.Event {
	return wire.Event{Schema: "public", Table: "t", Op: wire.OpDelete, Rows: 1,
		Data: json.RawMessage(fmt.Sprintf(`[{"id":%d,"v":%q}]`, id, v))}
}

func trunc(table string) wire.Event {
	return wire.Event{Schema: "public", Table: table, Op: wire.OpTruncate}
}

// put stores batch seq of source, one chunk per element of chunks, as the
// server would.
func put(t *testing.T, db *sql.DB, source string, seq int64, chunks ...[]wire.Event) {
	t.Helper()
	for i, evs := range chunks {
		body, err := json.Marshal(map[string]any{"source": source, "target": "here", "seq": seq, "chunk": i, "events": evs})
		if err != nil {
			t.Fatal(err)
		}
		var gz bytes.Buffer
		zw := gzip.NewWriter(&gz)
		if _, err := zw.Write(body); err != nil {
			t.Fatal(err)
		}
		if err := zw.Close(); err != nil {
			t.Fatal(err)
		}
		c := store.StoredChunk{Source: source, Seq: seq, Chunk: i, Last: i == len(chunks)-1, Events: len(evs),
			TickTime: time.Unix(1700000000+seq, 0), Body: gz.Bytes()}
		if _, err := store.StoreChunk(context.Background(), db, c); err != nil {
			t.Fatal(err)
		}
	}
}

func rows(t *testing.T, db *sql.DB) []string {
	t.Helper()
	r, err := db.Query(`SELECT t::text FROM public.t ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var out []string
	for r.Next() {
		var s string
		if err := r.Scan(&s); err != nil {
			t.Fatal(err)
		}
		out = append(out, s)
	}
	return out
}

// transactions returns how many transactions wrote the rows of public.t.
func transactions(t *testing.T, db *sql.DB) int {
	t.Helper()
	var n int
	if err := db.QueryRow(`SELECT count(DISTINCT xid::text) FROM public.tx_log`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func state(t *testing.T, db *sql.DB, source string) store.SourceState {
	t.Helper()
	states, err := store.SourceStates(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range states {
		if s.Name == source {
			return s
		}
	}
	t.Fatalf("no source %s in %+v", source, states)
	return store.SourceState{}
}

func runOnce(t *testing.T, w *applier.Worker) applier.Result {
	t.Helper()
	res, err := w.RunOnce(context.Background())
	if err != nil {
		t.Fatalf("RunOnce: %v", err)
	}
	return res
}

func TestWorker_GapWaitsAndOrder(t *testing.T) {
	t.Parallel()
	db := setup(t)
	w := applier.New(db, time.Second, 10000, dbtest.Logger(t))
	put(t, db, "a", 2, []wire.Event{upd(1, "one", "uno"), ins(2, "two")})
	if res := runOnce(t, w); res.Batches != 0 || len(rows(t, db)) != 0 {
		t.Fatalf("RunOnce with batch 1 missing = %+v, table %v; want nothing applied", res, rows(t, db))
	}
	put(t, db, "a", 3, []wire.Event{del(2, "two")}, []wire.Event{ins(3, "three")})
	put(t, db, "a", 1, []wire.Event{ins(1, "one")})
	if res := runOnce(t, w); res != (applier.Result{Batches: 3, Events: 5}) {
		t.Errorf("RunOnce = %+v, want 3 batches, 5 events", res)
	}
	if got, want := rows(t, db), []string{"(1,uno)", "(3,three)"}; !slices.Equal(got, want) {
		t.Errorf("after batches 1 to 3: %v, want %v", got, want)
	}
	if n := transactions(t, db); n != 1 {
		t.Errorf("3 small batches were applied in %d transactions, want 1", n)
	}
	s := state(t, db, "a")
	if s.AppliedSeq != 3 || !s.TickTime.Equal(time.Unix(1700000003, 0)) || s.Error != "" {
		t.Errorf("source a = %+v, want applied 3 at its tick time, no error", s)
	}
	if res := runOnce(t, w); res.Batches != 0 {
		t.Errorf("RunOnce again = %+v, want nothing", res)
	}
}

func TestWorker_OneBatchPerTransaction(t *testing.T) {
	t.Parallel()
	db := setup(t)
	exec(t, db, `CREATE TABLE public.parent (id int PRIMARY KEY); CREATE TABLE public.child (id int REFERENCES public.parent);
		INSERT INTO public.parent VALUES (1); INSERT INTO public.child VALUES (1)`)
	w := applier.New(db, time.Second, 1, dbtest.Logger(t))
	for seq := int64(1); seq <= 3; seq++ {
		put(t, db, "a", seq, []wire.Event{ins(int(seq), "x"), ins(int(seq)+10, "y")})
	}
	// Truncates of tables linked by a foreign key, across a chunk boundary.
	put(t, db, "a", 4, []wire.Event{ins(4, "x"), trunc("child")}, []wire.Event{trunc("parent"), ins(5, "y")})
	if res := runOnce(t, w); res != (applier.Result{Batches: 4, Events: 10}) {
		t.Errorf("RunOnce = %+v, want 4 batches, 10 events", res)
	}
	if got := len(rows(t, db)); got != 8 {
		t.Errorf("after 4 batches t has %d rows, want 8", got)
	}
	if n := transactions(t, db); n != 4 {
		t.Errorf("4 batches over the events cap were applied in %d transactions, want 4", n)
	}
	var n int
	if err := db.QueryRow(`SELECT (SELECT count(*) FROM public.parent) + (SELECT count(*) FROM public.child)`).Scan(&n); err != nil || n != 0 {
		t.Errorf("parent and child hold %d rows (%v), want 0", n, err)
	}
}

// statements returns how many statements wrote public.t.
func statements(t *testing.T, db *sql.DB) int {
	t.Helper()
	var n int
	if err := db.QueryRow(`SELECT count(*) FROM public.tx_log`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// Batches sharing a transaction share one run of row changes: a row
// updated in every batch is updated once. When the run grows past its
// bound it is applied at a chunk's end, but truncates there wait for the
// rest of their run.
func TestWorker_RowsAppliedAcrossBatches(t *testing.T) {
	t.Parallel()
	db := setup(t)
	w := applier.New(db, time.Second, 1000, dbtest.Logger(t))
	put(t, db, "a", 1, []wire.Event{ins(1, "a"), ins(2, "a")})
	put(t, db, "a", 2, []wire.Event{upd(1, "a", "b")})
	put(t, db, "a", 3, []wire.Event{upd(1, "b", "c"), upd(2, "a", "b")})
	if res := runOnce(t, w); res != (applier.Result{Batches: 3, Events: 5}) {
		t.Errorf("RunOnce = %+v, want 3 batches, 5 events", res)
	}
	if got, want := rows(t, db), []string{"(1,c)", "(2,b)"}; !slices.Equal(got, want) {
		t.Errorf("rows = %v, want %v", got, want)
	}
	if n := statements(t, db); n != 2 {
		t.Errorf("three batches wrote t in %d statements, want 2: one insert, one update", n)
	}

	exec(t, db, `CREATE TABLE public.parent (id int PRIMARY KEY); CREATE TABLE public.child (id int REFERENCES public.parent);
		INSERT INTO public.parent VALUES (1); INSERT INTO public.child VALUES (1)`)
	big := strings.Repeat("x", 17<<20)
	put(t, db, "a", 4, []wire.Event{ins(3, big), trunc("child")}, []wire.Event{trunc("parent")})
	if res := runOnce(t, w); res != (applier.Result{Batches: 1, Events: 3}) {
		t.Fatalf("RunOnce = %+v, want 1 batch, 3 events; source state %+v", res, state(t, db, "a"))
	}
	var n int
	if err := db.QueryRow(`SELECT (SELECT count(*) FROM public.parent) + (SELECT count(*) FROM public.child) + (SELECT count(*) FROM public.t WHERE id = 3)`).Scan(&n); err != nil || n != 1 {
		t.Errorf("parent, child and the large row: %d rows (%v), want 1", n, err)
	}
}

// logBuffer collects what the worker logs.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) count(s string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Count(l.b.String(), s)
}

func TestWorker_ConflictHeldThenResumed(t *testing.T) {
	t.Parallel()
	db := setup(t)
	var logs logBuffer
	w := applier.New(db, time.Second, 10000, slog.New(slog.NewTextHandler(&logs, nil)))
	put(t, db, "a", 1, []wire.Event{ins(1, "one")})
	// Batch 2: its first chunk inserts, its second updates a row not there.
	put(t, db, "a", 2, []wire.Event{ins(2, "two")}, []wire.Event{upd(99, "old", "new")})
	put(t, db, "a", 3, []wire.Event{ins(3, "three")})
	put(t, db, "b", 1, []wire.Event{ins(100, "from b")})

	for range 3 {
		runOnce(t, w)
	}
	if got, want := rows(t, db), []string{"(1,one)", "(100,\"from b\")"}; !slices.Equal(got, want) {
		t.Errorf("with batch 2 of a held: %v, want %v (batch 1 of a and b's batch, nothing of batch 2)", got, want)
	}
	s := state(t, db, "a")
	// No initial load from a has run here: the message says the load
	// brings the rows, and it is a warning for now.
	wantErr := `apply batch 2: update "public"."t": 1 of 1 rows not found (no initial load from this source has run on this database yet`
	if s.AppliedSeq != 1 || s.ErrorSeq != 2 || !strings.HasPrefix(s.Error, wantErr) || s.ErrorAt.IsZero() {
		t.Errorf("source a = %+v, want applied 1, batch 2 held with %q...", s, wantErr)
	}
	if n := logs.count("level=WARN msg=\"batch held\""); n != 1 {
		t.Errorf("logged a warning %q %d times in 3 passes, want once:\n%s", "batch held", n, logs.b.String())
	}

	exec(t, db, `INSERT INTO public.t VALUES (99, 'old')`)
	var res applier.Result
	dbtest.WaitFor(t, 10*time.Second, "the held batch to be tried again", func() bool {
		res = runOnce(t, w)
		return res.Batches > 0
	})
	if res != (applier.Result{Batches: 2, Events: 3}) {
		t.Errorf("RunOnce once the row is there = %+v, want batches 2 and 3, 3 events", res)
	}
	if s := state(t, db, "a"); s.AppliedSeq != 3 || s.Error != "" || s.ErrorSeq != 0 {
		t.Errorf("source a = %+v, want applied 3, no error", s)
	}
	if n := logs.count("batch no longer held"); n != 1 {
		t.Errorf("logged %q %d times, want once", "batch no longer held", n)
	}
	if strings.Contains(logs.b.String(), "old") {
		t.Errorf("the log holds row data:\n%s", logs.b.String())
	}
}

// TestWorker_ConflictAfterLoad: on a target an initial load from the
// source has reached, a row not found is an error at once, without the
// hint that a load will bring it.
func TestWorker_ConflictAfterLoad(t *testing.T) {
	t.Parallel()
	db := setup(t)
	var logs logBuffer
	w := applier.New(db, time.Second, 10000, slog.New(slog.NewTextHandler(&logs, nil)))
	exec(t, db, `INSERT INTO teleport.load (source, run, finished_at) VALUES ('a', 'r', now())`)
	put(t, db, "a", 1, []wire.Event{upd(99, "old", "new")})
	runOnce(t, w)
	want := `apply batch 1: update "public"."t": 1 of 1 rows not found`
	if s := state(t, db, "a"); s.ErrorSeq != 1 || s.Error != want {
		t.Errorf("source a = %+v, want batch 1 held with %q", s, want)
	}
	if n := logs.count("level=ERROR msg=\"batch held\""); n != 1 {
		t.Errorf("logged an error %q %d times, want once:\n%s", "batch held", n, logs.b.String())
	}
}

func TestWorker_FailureInSharedTransaction(t *testing.T) {
	t.Parallel()
	db := setup(t)
	w := applier.New(db, time.Second, 10000, dbtest.Logger(t))
	put(t, db, "a", 1, []wire.Event{ins(1, "one")})
	put(t, db, "a", 2, []wire.Event{ins(2, "two")})
	put(t, db, "a", 3, []wire.Event{ins(1, "dup")})
	put(t, db, "a", 4, []wire.Event{ins(4, "four")})
	if res := runOnce(t, w); res.Batches != 2 {
		t.Errorf("RunOnce = %+v, want the 2 batches before the failing one", res)
	}
	s := state(t, db, "a")
	if s.AppliedSeq != 2 || s.ErrorSeq != 3 || !strings.Contains(s.Error, "apply batch 3: insert into \"public\".\"t\"") || !strings.Contains(s.Error, "23505") {
		t.Errorf("source a = %+v, want applied 2, batch 3 held for a duplicate key", s)
	}
}

func TestWorker_Skip(t *testing.T) {
	t.Parallel()
	db := setup(t)
	w := applier.New(db, time.Second, 10000, dbtest.Logger(t))
	put(t, db, "a", 1, []wire.Event{ins(1, "one"), upd(99, "old", "new")})
	put(t, db, "a", 2, []wire.Event{ins(2, "two")})
	runOnce(t, w)
	if s := state(t, db, "a"); s.ErrorSeq != 1 {
		t.Fatalf("source a = %+v, want batch 1 held", s)
	}
	if err := store.SkipBatch(context.Background(), db, "a", 1); err != nil {
		t.Fatal(err)
	}
	if res := runOnce(t, w); res != (applier.Result{Batches: 1, Events: 1}) {
		t.Errorf("RunOnce after skipping batch 1 = %+v, want batch 2 applied", res)
	}
	if got, want := rows(t, db), []string{"(2,two)"}; !slices.Equal(got, want) {
		t.Errorf("after skipping batch 1: %v, want %v", got, want)
	}
	if s := state(t, db, "a"); s.AppliedSeq != 2 || s.SkipSeq != 0 || s.Error != "" {
		t.Errorf("source a = %+v, want applied 2, no skip, no error", s)
	}
}

func TestWorker_Origin(t *testing.T) {
	t.Parallel()
	db := setup(t)
	exec(t, db, `CREATE TABLE public.origins (origin text);
		CREATE FUNCTION public.record_origin() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN
			INSERT INTO public.origins VALUES (current_setting('teleport.origin', true));
			RETURN NULL;
		END $$;
		CREATE TRIGGER record_origin AFTER INSERT ON public.t FOR EACH STATEMENT EXECUTE FUNCTION public.record_origin()`)
	w := applier.New(db, time.Second, 10000, dbtest.Logger(t))
	const source = `src 'quoted' "x"`
	put(t, db, source, 1, []wire.Event{ins(1, "one")})
	runOnce(t, w)
	var got string
	if err := db.QueryRow(`SELECT string_agg(origin, ',') FROM public.origins`).Scan(&got); err != nil || got != source {
		t.Errorf("teleport.origin seen by a trigger = %q (%v), want %q", got, err, source)
	}
	var after sql.NullString
	if err := db.QueryRow(`SELECT nullif(current_setting('teleport.origin', true), '')`).Scan(&after); err != nil || after.Valid {
		t.Errorf("teleport.origin outside the apply transaction = %v (%v), want unset", after, err)
	}
}

func TestWorker_RunStopsOnCancel(t *testing.T) {
	t.Parallel()
	db := setup(t)
	w := applier.New(db, 10*time.Millisecond, 10000, dbtest.Logger(t))
	put(t, db, "a", 1, []wire.Event{ins(1, "one")})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	dbtest.WaitFor(t, 10*time.Second, "batch 1 applied", func() bool { return len(rows(t, db)) == 1 })
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run after cancel = %v, want nil", err)
		}
	case <-time.After(time.Second):
		t.Fatal("Run did not return within 1s of cancel")
	}
}

func TestWorker_DatabaseDown(t *testing.T) {
	t.Parallel()
	c := dbtest.Start(t)
	db, _ := c.NewDB(t)
	if _, err := migrate.Migrate(context.Background(), db); err != nil {
		t.Fatal(err)
	}
	w := applier.New(db, time.Second, 10000, dbtest.Logger(t))
	c.Stop(t, "immediate")
	db.SetMaxIdleConns(0)
	if _, err := w.RunOnce(context.Background()); err == nil || errors.Is(err, apply.ErrConflict) {
		t.Errorf("RunOnce with the database down = %v, want an error", err)
	}
}

// TestWorker_GroupedFallsBack: events the grouped apply cannot order (a row
// pointing at a parent inserted later in the batch, once the child table's
// events are pulled ahead) are applied one by one instead, with the result
// of ordered apply.
func TestWorker_GroupedFallsBack(t *testing.T) {
	t.Parallel()
	db := setup(t)
	exec(t, db, `CREATE TABLE public.parent (id int PRIMARY KEY);
		CREATE TABLE public.child (id int PRIMARY KEY, parent_id int REFERENCES public.parent);
		INSERT INTO public.child VALUES (1, NULL)`)
	ev := func(table string, op wire.Op, data string) wire.Event {
		return wire.Event{Schema: "public", Table: table, Op: op, Rows: 1, Data: json.RawMessage(data)}
	}
	put(t, db, "a", 1, []wire.Event{
		ev("child", wire.OpUpdate, `[[{"id":1,"parent_id":null},{"id":1,"parent_id":null}]]`),
		ev("parent", wire.OpInsert, `[{"id":10}]`),
		ev("child", wire.OpUpdate, `[[{"id":1,"parent_id":null},{"id":1,"parent_id":10}]]`),
	})
	w := applier.New(db, time.Second, 10000, dbtest.Logger(t))
	if res := runOnce(t, w); res.Batches != 1 {
		t.Fatalf("RunOnce = %+v, want the batch applied", res)
	}
	var parent sql.NullInt64
	if err := db.QueryRow(`SELECT parent_id FROM public.child WHERE id = 1`).Scan(&parent); err != nil || parent.Int64 != 10 {
		t.Errorf("child 1 points at %v (%v), want 10", parent, err)
	}
	if s := state(t, db, "a"); s.Error != "" {
		t.Errorf("source a holds an error: %s", s.Error)
	}
}

// TestWorker_HeldBackOff: a held batch is not tried again on every pass
// (each try reads and decompresses it), nor on every batch that arrives
// after it; only a batch held for a missing table is tried at once when
// its source sends another (which may bring the table).
func TestWorker_HeldBackOff(t *testing.T) {
	t.Parallel()
	db := setup(t)
	exec(t, db, `CREATE SEQUENCE public.tries;
		CREATE FUNCTION public.count_try() RETURNS trigger LANGUAGE plpgsql AS
			$$ BEGIN PERFORM nextval('public.tries'); RETURN NEW; END $$;
		CREATE TRIGGER count_try BEFORE INSERT ON public.t FOR EACH ROW EXECUTE FUNCTION public.count_try();
		ALTER TABLE public.t ENABLE ALWAYS TRIGGER count_try`)
	tries := func() int64 {
		var n int64
		if err := db.QueryRow(`SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM public.tries`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	w := applier.New(db, time.Hour, 10000, dbtest.Logger(t))
	put(t, db, "a", 1, []wire.Event{ins(2, "two"), upd(99, "old", "new")})
	runOnce(t, w)
	if n := tries(); n == 0 || state(t, db, "a").ErrorSeq != 1 {
		t.Fatalf("batch 1 tried %d times, state %+v; want it tried and held", n, state(t, db, "a"))
	}
	exec(t, db, `INSERT INTO public.t VALUES (99, 'old')`)
	first := tries()
	runOnce(t, w)
	put(t, db, "a", 2, []wire.Event{ins(3, "three")})
	runOnce(t, w)
	if n := tries(); n != first || state(t, db, "a").AppliedSeq != 0 {
		t.Errorf("a batch held by a conflict was tried again within the hour (%d inserts tried, then %d)", first, n)
	}

	missing := wire.Event{ID: 9, Schema: "public", Table: "later", Op: wire.OpInsert, Rows: 1, Data: json.RawMessage(`[{"id":1}]`)}
	put(t, db, "b", 1, []wire.Event{missing})
	runOnce(t, w)
	if s := state(t, db, "b"); s.ErrorSeq != 1 {
		t.Fatalf("source b = %+v, want batch 1 held for its missing table", s)
	}
	exec(t, db, `CREATE TABLE public.later (id int PRIMARY KEY)`)
	put(t, db, "b", 2, []wire.Event{ins(4, "four")})
	runOnce(t, w)
	if s := state(t, db, "b"); s.AppliedSeq != 2 {
		t.Errorf("source b = %+v: batch 1, held for a missing table, was not tried again when batch 2 came", s)
	}
}

func TestWorker_Wake(t *testing.T) {
	t.Parallel()
	db := setup(t)
	w := applier.New(db, time.Hour, 10000, dbtest.Logger(t))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	// Batch 2 first: whenever Run's first pass happens, it finds a gap and
	// applies nothing; only a wake-up applies the batches once 1 is there.
	put(t, db, "a", 2, []wire.Event{ins(2, "two")})
	go func() { done <- w.Run(ctx) }()
	put(t, db, "a", 1, []wire.Event{ins(1, "one")})
	w.Wake()
	dbtest.WaitFor(t, 10*time.Second, "the woken applier to apply batches 1 and 2 long before its hourly tick", func() bool {
		return len(rows(t, db)) == 2
	})
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run = %v, want nil", err)
	}
}

// A verify's stop: batches after the stop's are not applied, even those a
// shared transaction would have taken, until Resume or until it expires
// (a verify that dies never holds the stream for good).
func TestWorker_StopAfter(t *testing.T) {
	t.Parallel()
	db := setup(t)
	w := applier.New(db, time.Second, 10000, dbtest.Logger(t))
	put(t, db, "a", 1, []wire.Event{ins(1, "one")})
	put(t, db, "a", 2, []wire.Event{ins(2, "two")})
	put(t, db, "a", 3, []wire.Event{ins(3, "three")})
	w.StopAfter("a", 1, time.Minute)
	if res := runOnce(t, w); res.Batches != 1 || state(t, db, "a").AppliedSeq != 1 {
		t.Fatalf("RunOnce stopped after 1 = %+v, applied %d; want batch 1 alone", res, state(t, db, "a").AppliedSeq)
	}
	if res := runOnce(t, w); res.Batches != 0 {
		t.Fatalf("RunOnce still stopped = %+v, want nothing", res)
	}
	w.Resume("a")
	if res := runOnce(t, w); res.Batches != 2 || state(t, db, "a").AppliedSeq != 3 {
		t.Fatalf("RunOnce resumed = %+v, want batches 2 and 3", res)
	}
	put(t, db, "a", 4, []wire.Event{ins(4, "four")})
	w.StopAfter("a", 3, time.Hour)
	if res := runOnce(t, w); res.Batches != 0 {
		t.Fatalf("RunOnce stopped after 3 = %+v, want nothing", res)
	}
	// A stop past its time is dropped. (Not with a short stop and a
	// sleep: on a loaded machine the pass itself outlasted 50 ms.)
	w.StopAfter("a", 3, -time.Nanosecond)
	if res := runOnce(t, w); res.Batches != 1 || state(t, db, "a").AppliedSeq != 4 {
		t.Errorf("RunOnce after the stop expired = %+v, want batch 4", res)
	}
}
