package migrate_test

import (
	"context"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/pagarme/teleport/database/dbtest"
	"github.com/pagarme/teleport/database/migrate"
)

func TestMain(m *testing.M) { os.Exit(dbtest.Run(m)) }

func TestMigrate_Idempotent(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, _ := dbtest.Shared(t).NewDB(t)
	ms, err := migrate.Migrations()
	if err != nil {
		t.Fatalf("Migrations: %v", err)
	}
	first, err := migrate.Migrate(ctx, db)
	if err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	if len(first) != len(ms) {
		t.Errorf("first Migrate applied %v, want all %d migrations", first, len(ms))
	}
	again, err := migrate.Migrate(ctx, db)
	if err != nil {
		t.Fatalf("second Migrate: %v", err)
	}
	if len(again) != 0 {
		t.Errorf("second Migrate applied %v, want nothing", again)
	}
	v, err := migrate.SchemaVersion(ctx, db)
	if err != nil {
		t.Fatalf("SchemaVersion: %v", err)
	}
	if want := ms[len(ms)-1].Version; v != want {
		t.Errorf("SchemaVersion = %d, want %d", v, want)
	}
}

func TestMigrate_Concurrent(t *testing.T) {
	t.Parallel()
	c := dbtest.Shared(t)
	_, name := c.NewDB(t)
	const n = 4
	var wg sync.WaitGroup
	errs := make([]error, n)
	applied := make([][]int, n)
	for i := range n {
		db := c.Connect(t, name)
		wg.Go(func() { applied[i], errs[i] = migrate.Migrate(context.Background(), db) })
	}
	wg.Wait()
	total := 0
	for i := range n {
		if errs[i] != nil {
			t.Errorf("Migrate #%d: %v", i, errs[i])
		}
		total += len(applied[i])
	}
	ms, _ := migrate.Migrations()
	if total != len(ms) {
		t.Errorf("%d concurrent Migrate calls applied %d migrations in all, want each of the %d exactly once", n, total, len(ms))
	}
}

func TestMigrate_NewerDatabase(t *testing.T) {
	t.Parallel()
	db, _ := dbtest.Migrated(t)
	if _, err := db.Exec(`INSERT INTO teleport.schema_migration (version, name) VALUES (9999, 'future')`); err != nil {
		t.Fatal(err)
	}
	_, err := migrate.Migrate(context.Background(), db)
	if err == nil || !strings.Contains(err.Error(), "schema version 9999") {
		t.Errorf("Migrate on a newer schema = %v, want an error naming version 9999", err)
	}
}

func TestSchemaVersion_Fresh(t *testing.T) {
	t.Parallel()
	db, _ := dbtest.Shared(t).NewDB(t)
	v, err := migrate.SchemaVersion(context.Background(), db)
	if err != nil || v != 0 {
		t.Errorf("SchemaVersion on a fresh database = %d, %v; want 0, nil", v, err)
	}
}
