package vacuum_test

import (
	"context"
	"database/sql"
	"os"
	"testing"
	"time"

	"github.com/pagarme/teleport/batcher"
	"github.com/pagarme/teleport/config"
	"github.com/pagarme/teleport/database/capture"
	"github.com/pagarme/teleport/database/dbtest"
	"github.com/pagarme/teleport/database/migrate"
	"github.com/pagarme/teleport/database/store"
	"github.com/pagarme/teleport/vacuum"
)

func TestMain(m *testing.M) {
	vacuum.RotateEvery = 0 // every pass that may rotate does
	os.Exit(dbtest.Run(m))
}

// newSource is a migrated source with a captured table public.t and
// targets taking it, its batcher and its vacuum.
func newSource(t *testing.T, targets ...string) (*sql.DB, *batcher.Worker, *vacuum.Worker) {
	t.Helper()
	ctx := context.Background()
	db, _ := dbtest.Shared(t).NewDB(t)
	if _, err := migrate.Migrate(ctx, db); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`CREATE TABLE public.t (id int PRIMARY KEY)`); err != nil {
		t.Fatal(err)
	}
	if _, err := capture.InstallCapture(ctx, db, func(string, string) bool { return true }, false); err != nil {
		t.Fatal(err)
	}
	cfg := config.Default()
	cfg.Targets = map[string]config.Target{}
	for _, n := range targets {
		cfg.Targets[n] = config.Target{TargetExpression: "public.*"}
	}
	return db, batcher.New(db, cfg, nil, dbtest.Logger(t)), vacuum.New(db, time.Second, 100, dbtest.Logger(t))
}

// A slot is emptied only once every target stored its events, and what it
// still holds that is needed (the batches not applied, the ticks they and
// the cursors refer to, the newest cursor and acknowledgement) survives.
func TestWorker_RunOnce_KeepsWhatTargetsNeed(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, bw, vw := newSource(t, "a", "b")
	mustRun := func() {
		t.Helper()
		if _, err := bw.RunOnce(ctx); err != nil {
			t.Fatal(err)
		}
	}
	vacuumOnce := func() vacuum.Result {
		t.Helper()
		res, err := vw.RunOnce(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	events := func() int { return dbtest.Int(t, db, `SELECT count(*) FROM teleport.event WHERE op <> 'S'`) }
	mustRun() // each target's first batch: the schema
	for i := range 5 {
		if _, err := db.Exec(`INSERT INTO public.t VALUES ($1)`, i); err != nil {
			t.Fatal(err)
		}
	}
	mustRun()
	if res := vacuumOnce(); !res.Rotated || res.Emptied != 0 {
		t.Fatalf("first vacuum = %+v, want writes moved on to slot 1 and nothing emptied", res)
	}
	if n := events(); n != 5 {
		t.Fatalf("events after vacuum with nothing acknowledged = %d, want all 5 kept", n)
	}
	if err := store.AckBatches(ctx, db, "a", 2, 2); err != nil {
		t.Fatal(err)
	}
	if res := vacuumOnce(); res.Emptied != 0 {
		t.Fatalf("vacuum with only target a acknowledging = %+v, want nothing emptied", res)
	}
	if n := events(); n != 5 {
		t.Fatalf("events after vacuum with only target a acknowledging = %d, want all 5 kept for b", n)
	}
	// b stores both batches and applies the first only.
	if err := store.AckBatches(ctx, db, "b", 2, 1); err != nil {
		t.Fatal(err)
	}
	if res := vacuumOnce(); res.Emptied == 0 {
		t.Fatalf("vacuum after both stored everything = %+v, want slot 0 emptied", res)
	}
	if n := dbtest.Int(t, db, `SELECT count(*) FROM teleport.event`); n != 0 {
		t.Errorf("events after slot 0 was emptied = %d, want none", n)
	}
	if n := dbtest.Int(t, db, `SELECT count(*) FROM teleport.event_0`); n != 0 {
		t.Errorf("rows left in teleport.event_0 = %d, want none", n)
	}
	// What b still needs came along into a later slot: its batch 2 (not
	// applied), the ticks it spans, and every target's state.
	if n := dbtest.Int(t, db, `SELECT count(*) FROM teleport.batch WHERE target = 'b' AND seq = 2 AND slot <> 0`); n != 1 {
		t.Errorf("batch 2 of b out of slot 0 = %d, want it carried", n)
	}
	if n := dbtest.Int(t, db, `SELECT count(*) FROM teleport.batch WHERE target = 'a'`); n != 0 {
		t.Errorf("batches of a = %d, want none: a applied them all", n)
	}
	if n := dbtest.Int(t, db, `SELECT count(*) FROM teleport.batch b JOIN teleport.tick f ON f.id = b.from_tick JOIN teleport.tick t ON t.id = b.to_tick`); n != 1 {
		t.Errorf("batches with both their ticks = %d, want 1", n)
	}
	got := dbtest.Int(t, db, `SELECT count(*) FROM teleport.target_state WHERE next_seq = 3 AND acked_seq = 2 AND applied_seq = (CASE name WHEN 'a' THEN 2 ELSE 1 END)
		AND EXISTS (SELECT 1 FROM teleport.tick k WHERE k.id = last_tick)`)
	if got != 2 {
		t.Errorf("targets with their state intact = %d, want 2", got)
	}
	// Writes go on and are cut from b's cursor as before.
	if _, err := db.Exec(`INSERT INTO public.t VALUES (10)`); err != nil {
		t.Fatal(err)
	}
	mustRun()
	if n := dbtest.Int(t, db, `SELECT count(*) FROM teleport.batch WHERE seq = 3`); n != 2 {
		t.Errorf("batches 3 cut = %d, want one per target", n)
	}
}

// A transaction that wrote to a slot before writes moved on keeps that slot
// from being emptied until it ends and its events are stored, even with
// nothing else in it needed; its later statements write to the new slot.
func TestWorker_RunOnce_WaitsForWritersOfTheSlot(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, bw, vw := newSource(t, "a")
	if _, err := bw.RunOnce(ctx); err != nil {
		t.Fatal(err)
	}
	writer, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer writer.Rollback() //nolint:errcheck // committed below
	if _, err := writer.Exec(`INSERT INTO public.t VALUES (1)`); err != nil {
		t.Fatal(err)
	}
	if res, err := vw.RunOnce(ctx); err != nil || !res.Rotated {
		t.Fatalf("vacuum = %+v, %v: want writes moved on to slot 1", res, err)
	}
	if _, err := writer.Exec(`INSERT INTO public.t VALUES (2)`); err != nil {
		t.Fatal(err)
	}
	slots := func(q interface {
		QueryRow(string, ...any) *sql.Row
	}) string {
		var s string
		if err := q.QueryRow(`SELECT coalesce(string_agg(slot::text, ',' ORDER BY id), '') FROM teleport.event WHERE op <> 'S'`).Scan(&s); err != nil {
			t.Fatal(err)
		}
		return s
	}
	if got := slots(writer); got != "0,1" {
		t.Fatalf("slots of the writer's events = %s, want 0,1: each statement writes to the slot current when it runs", got)
	}
	if _, err := bw.RunOnce(ctx); err != nil {
		t.Fatal(err)
	}
	// Target a stored everything cut so far; the writer still runs.
	if err := store.AckBatches(ctx, db, "a", 1, 1); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if res, err := vw.RunOnce(ctx); err != nil || res.Emptied != 0 {
			t.Fatalf("vacuum with the writer open = %+v, %v: want slot 0 kept", res, err)
		}
	}
	if err := writer.Commit(); err != nil {
		t.Fatal(err)
	}
	if res, err := vw.RunOnce(ctx); err != nil || res.Emptied != 0 {
		t.Fatalf("vacuum with the writer's events not cut = %+v, %v: want slot 0 kept", res, err)
	}
	if _, err := bw.RunOnce(ctx); err != nil {
		t.Fatal(err)
	}
	if res, err := vw.RunOnce(ctx); err != nil || res.Emptied != 0 {
		t.Fatalf("vacuum with the writer's events not stored = %+v, %v: want slot 0 kept", res, err)
	}
	if got := slots(db); got != "0,1" {
		t.Fatalf("slots of the writer's events = %s, want both kept", got)
	}
	if err := store.AckBatches(ctx, db, "a", 2, 2); err != nil {
		t.Fatal(err)
	}
	if res, err := vw.RunOnce(ctx); err != nil || res.Emptied == 0 {
		t.Fatalf("vacuum once the writer's events are stored = %+v, %v: want slot 0 emptied", res, err)
	}
	if n := dbtest.Int(t, db, `SELECT count(*) FROM teleport.event_0`); n != 0 {
		t.Errorf("events left in slot 0 = %d, want none", n)
	}
	// Idle from now on: the slot with the writer's last event (left by the
	// pass above) is emptied, and with only carried rows about, nothing
	// rotates again.
	rotations := 0
	for range 6 {
		res, err := vw.RunOnce(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if res.Rotated {
			rotations++
		}
	}
	if rotations != 0 || dbtest.Int(t, db, `SELECT count(*) FROM teleport.event`) != 0 {
		t.Errorf("idle source: %d rotations in 6 passes, %d events left; want none and none",
			rotations, dbtest.Int(t, db, `SELECT count(*) FROM teleport.event`))
	}
}
