package vacuum_test

import (
	"context"
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

func TestMain(m *testing.M) { os.Exit(dbtest.Run(m)) }

func TestWorker_RunOnce_KeepsWhatTargetsNeed(t *testing.T) {
	t.Parallel()
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
	cfg.Targets = map[string]config.Target{"a": {TargetExpression: "public.*"}, "b": {TargetExpression: "public.*"}}
	bw := batcher.New(db, cfg, nil, dbtest.Logger(t))
	vw := vacuum.New(db, time.Second, 2, dbtest.Logger(t))
	mustRun := func() {
		if _, err := bw.RunOnce(ctx); err != nil {
			t.Fatal(err)
		}
	}
	mustRun() // each target's first batch: the schema
	for i := range 5 {
		if _, err := db.Exec(`INSERT INTO public.t VALUES ($1)`, i); err != nil {
			t.Fatal(err)
		}
	}
	mustRun()
	if _, err := vw.RunOnce(ctx); err != nil {
		t.Fatal(err)
	}
	if n := dbtest.Int(t, db, `SELECT count(*) FROM teleport.event WHERE op <> 'S'`); n != 5 {
		t.Fatalf("events after vacuum with nothing acknowledged = %d, want all 5 kept", n)
	}
	if err := store.AckBatches(ctx, db, "a", 2, 2); err != nil {
		t.Fatal(err)
	}
	if _, err := vw.RunOnce(ctx); err != nil {
		t.Fatal(err)
	}
	if n := dbtest.Int(t, db, `SELECT count(*) FROM teleport.event WHERE op <> 'S'`); n != 5 {
		t.Fatalf("events after vacuum with only target a acknowledging = %d, want all 5 kept for b", n)
	}
	if err := store.AckBatches(ctx, db, "b", 2, 2); err != nil {
		t.Fatal(err)
	}
	mustRun()
	res, err := vw.RunOnce(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if res.Events != 6 || dbtest.Int(t, db, `SELECT count(*) FROM teleport.event`) != 0 {
		t.Errorf("vacuum after both acknowledged = %+v, want the 5 events and the schema snapshot deleted (in chunks of 2)", res)
	}
	if n := dbtest.Int(t, db, `SELECT count(*) FROM teleport.batch WHERE target = 'b'`); n != 1 {
		t.Errorf("batches of b = %d, want the last applied one kept", n)
	}
	if n := dbtest.Int(t, db, `SELECT count(*) FROM teleport.tick`); n > 3 {
		t.Errorf("ticks after vacuum = %d, want old ones deleted", n)
	}
}
