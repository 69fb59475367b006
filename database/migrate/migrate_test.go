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

// TestMigrate_SlotsKeepState: a source running before migration 0014 keeps
// its stream through it: events, ticks, batches and each target's cursor
// and acknowledgements carry over into slot 0, and event and tick ids go
// on from where they were.
func TestMigrate_SlotsKeepState(t *testing.T) {
	t.Parallel()
	db, _ := dbtest.Shared(t).NewDB(t)
	ms, err := migrate.Migrations()
	if err != nil {
		t.Fatal(err)
	}
	mustExec := func(q string, args ...any) {
		t.Helper()
		if _, err := db.Exec(q, args...); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	mustExec(`CREATE SCHEMA teleport; CREATE TABLE teleport.schema_migration (version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`)
	for _, m := range ms {
		if m.Version >= 14 {
			break
		}
		mustExec(m.SQL)
		mustExec(`INSERT INTO teleport.schema_migration (version, name) VALUES ($1, $2)`, m.Version, m.Name)
	}
	// A source mid-stream: target dst cut up to tick 2 (batches 1 and 2,
	// the second with a schema change), stored both, applied one; three
	// events, one deleted, so the identity is ahead of the table.
	mustExec(`INSERT INTO teleport.tick (snapshot) SELECT pg_current_snapshot() FROM generate_series(1, 2)`)
	mustExec(`INSERT INTO teleport.target (name, schema_regex, table_regex, last_tick, next_seq, acked_seq, applied_seq) VALUES ('dst', '^s$', '^t$', 2, 3, 2, 1)`)
	mustExec(`INSERT INTO teleport.batch (target, seq, from_tick, to_tick, events, nrows, chunk_rows, schema_regex, table_regex, tick_time)
		SELECT 'dst', g, g - 1, g, 1, 1, 1000, '^s$', '^t$', now() FROM generate_series(1, 2) g`)
	mustExec(`INSERT INTO teleport.batch_ddl (target, seq, pos, before_event, ddl) VALUES ('dst', 2, 0, 2, '{}')`)
	mustExec(`INSERT INTO teleport.event (relid, schema_name, table_name, op, nrows, data) SELECT 0, 's', 't', 'I', 1, '[]' FROM generate_series(1, 3)`)
	mustExec(`DELETE FROM teleport.event WHERE id = 3`)

	applied, err := migrate.Migrate(context.Background(), db)
	if err != nil || len(applied) == 0 || applied[0] != 14 {
		t.Fatalf("Migrate = %v, %v: want 0014 and on applied", applied, err)
	}
	var state string
	if err := db.QueryRow(`SELECT format('%s %s %s %s %s %s', name, schema_regex, last_tick, next_seq, acked_seq, applied_seq) FROM teleport.target_state`).Scan(&state); err != nil {
		t.Fatal(err)
	}
	if state != "dst ^s$ 2 3 2 1" {
		t.Errorf("target state after 0014 = %q, want dst ^s$ 2 3 2 1", state)
	}
	// Where the server has lz4, event data is compressed with it in every
	// slot: a partition does not take its parent's setting once made.
	var version int
	if err := db.QueryRow(`SELECT current_setting('server_version_num')::int`).Scan(&version); err != nil {
		t.Fatal(err)
	}
	if version >= 140000 {
		var settings string
		if err := db.QueryRow(`SELECT string_agg(DISTINCT attcompression::text, ',') FROM pg_attribute
			WHERE attname = 'data' AND attrelid IN ('teleport.event'::regclass, 'teleport.event_0'::regclass, 'teleport.event_1'::regclass, 'teleport.event_2'::regclass)`).Scan(&settings); err != nil {
			t.Fatal(err)
		}
		if settings != "l" && settings != "" {
			t.Errorf("compression of event data in the parent and its slots = %q, want lz4 (l) in all", settings)
		}
	}
	for q, want := range map[string]int{
		`SELECT count(*) FROM teleport.event WHERE slot = 0 AND id IN (1, 2)`:                                            2,
		`SELECT count(*) FROM teleport.tick WHERE slot = 0 AND id IN (1, 2)`:                                             2,
		`SELECT count(*) FROM teleport.batch WHERE slot = 0 AND target = 'dst' AND to_tick = seq`:                        2,
		`SELECT count(*) FROM teleport.batch_ddl WHERE slot = 0 AND seq = 2`:                                             1,
		`INSERT INTO teleport.event (relid, schema_name, table_name, op, nrows) VALUES (0, '', '', 'S', 0) RETURNING id`: 4,
		`INSERT INTO teleport.tick (snapshot) VALUES (pg_current_snapshot()) RETURNING id`:                               3,
	} {
		var got int
		if err := db.QueryRow(q).Scan(&got); err != nil || got != want {
			t.Errorf("%s = %d (%v), want %d", q, got, err, want)
		}
	}
}
