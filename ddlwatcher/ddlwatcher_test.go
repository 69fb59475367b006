package ddlwatcher_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pagarme/teleport/database/capture"
	"github.com/pagarme/teleport/database/dbtest"
	"github.com/pagarme/teleport/database/migrate"
	"github.com/pagarme/teleport/ddlwatcher"
)

func TestMain(m *testing.M) { os.Exit(dbtest.Run(m)) }

func source(t *testing.T) *sql.DB {
	t.Helper()
	db, _ := dbtest.Shared(t).NewDB(t)
	if _, err := migrate.Migrate(context.Background(), db); err != nil {
		t.Fatal(err)
	}
	return db
}

func exec(t *testing.T, db *sql.DB, q string) {
	t.Helper()
	if _, err := db.Exec(q); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}

func publicOnly(schema, _ string) bool { return schema == "public" }

// eventIDs returns the ids of the rows of the insert events on table, with
// how many times each appears.
func eventIDs(t *testing.T, db *sql.DB, table string) map[int]int {
	t.Helper()
	rows, err := db.Query(`SELECT data::text FROM teleport.event WHERE table_name = $1 AND op = 'I'`, table)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	ids := map[int]int{}
	for rows.Next() {
		var data string
		if err := rows.Scan(&data); err != nil {
			t.Fatal(err)
		}
		var rs []struct{ ID int }
		if err := json.Unmarshal([]byte(data), &rs); err != nil {
			t.Fatal(err)
		}
		for _, r := range rs {
			ids[r.ID]++
		}
	}
	return ids
}

func TestWorker_RunOnce_BackfillsNewTables(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := source(t)
	w := ddlwatcher.New(db, publicOnly, "", time.Second, dbtest.Logger(t))
	exec(t, db, `CREATE TABLE public.old (id int PRIMARY KEY)`)
	if _, err := capture.InstallCapture(ctx, db, publicOnly, false); err != nil {
		t.Fatal(err)
	}
	exec(t, db, `INSERT INTO public.old VALUES (1)`)
	exec(t, db, `CREATE TABLE public.fresh (id int PRIMARY KEY, v text)`)
	exec(t, db, `CREATE TABLE public.empty (id int PRIMARY KEY)`)
	exec(t, db, `CREATE SCHEMA other; CREATE TABLE other.skipped (id int)`)
	exec(t, db, `INSERT INTO public.fresh SELECT i, 'v' || i FROM generate_series(1, 1500) i`)

	res, err := w.RunOnce(ctx)
	if err != nil {
		t.Fatalf("RunOnce: %v", err)
	}
	if res.Installed != 2 || res.Backfilled != 1500 {
		t.Errorf("RunOnce = %+v, want 2 tables (fresh, empty) captured and 1500 rows backfilled", res)
	}
	exec(t, db, `INSERT INTO public.fresh VALUES (1501, 'after')`)
	ids := eventIDs(t, db, "fresh")
	if len(ids) != 1501 {
		t.Errorf("insert events of fresh cover %d ids, want 1501 (1500 backfilled, 1 captured)", len(ids))
	}
	if again, err := w.RunOnce(ctx); err != nil || again.Installed != 0 {
		t.Errorf("second RunOnce = %+v, %v; want nothing to do", again, err)
	}
	if n := eventIDs(t, db, "old"); len(n) != 1 {
		t.Errorf("events of the table captured at start-up = %v, want only the captured insert of row 1", n)
	}
	var triggers int
	if err := db.QueryRow(`SELECT count(*) FROM pg_trigger WHERE tgrelid = 'other.skipped'::regclass`).Scan(&triggers); err != nil || triggers != 0 {
		t.Errorf("triggers on a table no target takes = %d, %v; want 0", triggers, err)
	}
}

// TestWorker_RunOnce_ConcurrentWriters: rows written while a table becomes
// captured are each recorded exactly once, by the backfill or by a trigger.
func TestWorker_RunOnce_ConcurrentWriters(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := source(t)
	exec(t, db, `CREATE TABLE public.busy (id int PRIMARY KEY)`)
	var next atomic.Int64
	stop := make(chan struct{})
	done := make(chan error, 3)
	for range 3 {
		go func() {
			for {
				select {
				case <-stop:
					done <- nil
					return
				default:
				}
				if _, err := db.Exec(`INSERT INTO public.busy VALUES ($1)`, next.Add(1)); err != nil {
					done <- err
					return
				}
			}
		}()
	}
	dbtest.WaitFor(t, 10*time.Second, "writers to start", func() bool { return next.Load() > 200 })
	w := ddlwatcher.New(db, publicOnly, "", time.Second, dbtest.Logger(t))
	res, err := w.RunOnce(ctx)
	if err != nil {
		t.Fatal(err)
	}
	dbtest.WaitFor(t, 10*time.Second, "writers to go on after the install", func() bool { return next.Load() > int64(res.Backfilled)+200 })
	close(stop)
	for range 3 {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	var rows int
	if err := db.QueryRow(`SELECT count(*) FROM public.busy`).Scan(&rows); err != nil {
		t.Fatal(err)
	}
	ids := eventIDs(t, db, "busy")
	dups := 0
	for _, n := range ids {
		if n > 1 {
			dups++
		}
	}
	if len(ids) != rows || dups > 0 {
		t.Errorf("table has %d rows; events cover %d ids, %d of them more than once; want every row exactly once", rows, len(ids), dups)
	}
	if res.Backfilled == 0 || int(res.Backfilled) == rows {
		t.Errorf("backfilled %d of %d rows: the test did not race writers against the install", res.Backfilled, rows)
	}
	t.Logf("%d rows: %d backfilled, %d captured", rows, res.Backfilled, rows-int(res.Backfilled))
}

func TestWorker_RunOnce_NotOwned(t *testing.T) {
	t.Parallel()
	c := dbtest.Shared(t)
	db, name := c.NewDB(t)
	if _, err := migrate.Migrate(context.Background(), db); err != nil {
		t.Fatal(err)
	}
	c.AdminExec(t, name, `CREATE TABLE public.theirs (id int)`)
	w := ddlwatcher.New(db, publicOnly, "", time.Second, dbtest.Logger(t))
	_, err := w.RunOnce(context.Background())
	if err == nil || !strings.Contains(err.Error(), `"public"."theirs"`) || !strings.Contains(err.Error(), "OWNER TO") {
		t.Errorf("RunOnce with a table owned by someone else = %v, want an error naming it and the fix", err)
	}
	// Said once: with the catalog unchanged, the next passes skip the capture
	// (and the snapshot) instead of failing again every few seconds.
	if res, err := w.RunOnce(context.Background()); err != nil || res.Installed != 0 || res.Snapshot {
		t.Errorf("RunOnce with nothing changed = %+v, %v; want nothing done", res, err)
	}
	// The fix the error names changes the catalog: the table is captured.
	c.AdminExec(t, name, `ALTER TABLE public.theirs OWNER TO `+dbtest.Role)
	if res, err := w.RunOnce(context.Background()); err != nil || res.Installed != 1 {
		t.Errorf("RunOnce once the table is the role's = %+v, %v; want it captured", res, err)
	}
}

// TestWorker_RunOnce_SnapshotsOnChange: with the fingerprint in front, a
// pass still captures a new table and writes a snapshot for a new index.
func TestWorker_RunOnce_SnapshotsOnChange(t *testing.T) {
	t.Parallel()
	db := source(t)
	w := ddlwatcher.New(db, publicOnly, "", time.Second, dbtest.Logger(t))
	ctx := context.Background()
	if res, err := w.RunOnce(ctx); err != nil || !res.Snapshot {
		t.Fatalf("first RunOnce = %+v, %v; want a snapshot written", res, err)
	}
	exec(t, db, `CREATE TABLE public.later (id int PRIMARY KEY)`)
	if res, err := w.RunOnce(ctx); err != nil || res.Installed != 1 || !res.Snapshot {
		t.Errorf("RunOnce after CREATE TABLE = %+v, %v; want it captured and a snapshot written", res, err)
	}
	exec(t, db, `CREATE INDEX later_id2 ON public.later (id)`)
	if res, err := w.RunOnce(ctx); err != nil || !res.Snapshot {
		t.Errorf("RunOnce after CREATE INDEX = %+v, %v; want a snapshot written", res, err)
	}
	for range 3 {
		if res, err := w.RunOnce(ctx); err != nil || res.Snapshot || res.Installed != 0 {
			t.Errorf("RunOnce with nothing changed = %+v, %v; want nothing", res, err)
		}
	}
}

func TestWorker_Run_StopsOnCancel(t *testing.T) {
	t.Parallel()
	db := source(t)
	w := ddlwatcher.New(db, publicOnly, "", 10*time.Millisecond, dbtest.Logger(t))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	exec(t, db, `CREATE TABLE public.late (id int)`)
	dbtest.WaitFor(t, 10*time.Second, "Run to capture a new table", func() bool {
		var n int
		return db.QueryRow(`SELECT count(*) FROM pg_trigger WHERE tgrelid = 'public.late'::regclass`).Scan(&n) == nil && n == 4
	})
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run = %v, want nil", err)
		}
	case <-time.After(time.Second):
		t.Fatal("Run did not return within 1s of cancel")
	}
}
