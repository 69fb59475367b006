package database_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pagarme/teleport/config"
	"github.com/pagarme/teleport/database"
	"github.com/pagarme/teleport/database/dbtest"
	"github.com/pagarme/teleport/database/store"

	// Every package's queries, for TestQueriesPrepare.
	_ "github.com/pagarme/teleport/database/apply"
	_ "github.com/pagarme/teleport/database/capture"
	_ "github.com/pagarme/teleport/database/load"
	_ "github.com/pagarme/teleport/database/schema"
	_ "github.com/pagarme/teleport/database/verify"
)

func TestMain(m *testing.M) { os.Exit(dbtest.Run(m)) }

func TestCheckPrivileges(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	c := dbtest.Shared(t)

	t.Run("database owner", func(t *testing.T) {
		db, name := c.NewDB(t)
		r, err := database.CheckPrivileges(ctx, db)
		if err != nil {
			t.Fatalf("CheckPrivileges as the owner: %v", err)
		}
		if r.Name != dbtest.Role || r.Database != name || r.Superuser || r.Replication || len(r.Warnings) > 0 {
			t.Errorf("CheckPrivileges = %+v, want role %s on %s, no superuser, no replication, no warning", r, dbtest.Role, name)
		}
	})

	// PostgreSQL 15 and later grant CREATE on schema public to its owner
	// only: a target sent schema public cannot create its tables.
	t.Run("no CREATE on schema public", func(t *testing.T) {
		_, name := c.NewDB(t)
		c.CreateRole(t, "tp_nopublic", "pw", "NOSUPERUSER")
		c.AdminExec(t, name, `GRANT CREATE ON DATABASE "`+name+`" TO tp_nopublic; REVOKE CREATE ON SCHEMA public FROM PUBLIC`)
		db := dbtest.Open(t, c.DSN("tp_nopublic", "pw", name))
		r, err := database.CheckPrivileges(ctx, db)
		if err != nil || len(r.Warnings) != 1 || !strings.Contains(r.Warnings[0], `GRANT CREATE ON SCHEMA public TO "tp_nopublic"`) {
			t.Errorf("CheckPrivileges without CREATE on public = %v, warnings %q: want a warning naming the grant", err, r.Warnings)
		}
	})

	t.Run("no CREATE on the database", func(t *testing.T) {
		_, name := c.NewDB(t)
		c.CreateRole(t, "tp_nocreate", "pw", "NOSUPERUSER")
		c.AdminExec(t, name, `REVOKE CREATE ON DATABASE "`+name+`" FROM PUBLIC`)
		db := dbtest.Open(t, c.DSN("tp_nocreate", "pw", name))
		_, err := database.CheckPrivileges(ctx, db)
		if err == nil || !strings.Contains(err.Error(), "lacks CREATE on database") || !strings.Contains(err.Error(), "GRANT CREATE ON DATABASE") {
			t.Errorf("CheckPrivileges without CREATE = %v, want an error naming the missing grant and how to give it", err)
		}
	})

	t.Run("schema owned by someone else", func(t *testing.T) {
		db, name := dbtest.Migrated(t)
		_ = db
		c.CreateRole(t, "tp_other", "pw", "NOSUPERUSER")
		c.AdminExec(t, name, `GRANT CREATE ON DATABASE "`+name+`" TO tp_other`)
		other := dbtest.Open(t, c.DSN("tp_other", "pw", name))
		_, err := database.CheckPrivileges(ctx, other)
		if err == nil || !strings.Contains(err.Error(), "schema teleport") {
			t.Errorf("CheckPrivileges on a schema owned by another role = %v, want an error naming schema teleport", err)
		}
	})
}

func TestOpen(t *testing.T) {
	t.Parallel()
	c := dbtest.Shared(t)
	_, name := c.NewDB(t)
	cfg := config.Default().Database
	cfg.Hostname, cfg.Port, cfg.Database, cfg.Username, cfg.SSLMode = c.Host, c.Port, name, dbtest.Role, "disable"

	t.Run("good password", func(t *testing.T) {
		cfg := cfg
		cfg.Password = dbtest.RolePassword
		db, err := database.Open(context.Background(), cfg, "test")
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		defer db.Close()
		// Every session reads names from pg_catalog first, and never
		// compiles a query (see ConnString).
		var path, jit string
		if err := db.QueryRow(`SELECT current_setting('search_path'), current_setting('jit')`).Scan(&path, &jit); err != nil {
			t.Fatal(err)
		}
		if path != "pg_catalog,pg_temp" || jit != "off" {
			t.Errorf("session search_path %q, jit %q; want pg_catalog,pg_temp and off", path, jit)
		}
	})
	t.Run("wrong password is reported without the password", func(t *testing.T) {
		cfg := cfg
		cfg.Password = "s3cr3t-wrong"
		_, err := database.Open(context.Background(), cfg, "test")
		if err == nil {
			t.Fatal("Open with a wrong password succeeded")
		}
		if strings.Contains(err.Error(), "s3cr3t-wrong") {
			t.Errorf("Open error %q leaks the password", err)
		}
		if !strings.Contains(err.Error(), name) {
			t.Errorf("Open error %q does not name the database", err)
		}
	})
	t.Run("password with quotes and spaces", func(t *testing.T) {
		pw := `it's a \ "pass"`
		c.CreateRole(t, "tp_quoted", pw, "NOSUPERUSER")
		cfg := cfg
		cfg.Username, cfg.Password = "tp_quoted", pw
		db, err := database.Open(context.Background(), cfg, "test")
		if err != nil {
			t.Fatalf("Open with a quoted password: %v", err)
		}
		db.Close()
	})
}

// TestQueriesPrepare prepares the queries of every package on a migrated
// database: each file is there and valid against today's schema.
func TestQueriesPrepare(t *testing.T) {
	t.Parallel()
	db, _ := dbtest.Migrated(t)
	files, err := filepath.Glob("*/sql/queries/*.sql")
	if err != nil {
		t.Fatal(err)
	}
	base, _ := filepath.Glob("sql/queries/*.sql")
	all := database.AllQueries()
	if len(all) != len(files)+len(base) {
		t.Errorf("%d queries loaded, %d query files under database/: is a package missing from this test's imports?", len(all), len(files)+len(base))
	}
	for name, q := range all {
		if strings.HasPrefix(name, "schema_migration_create") {
			continue // DDL cannot be prepared
		}
		if strings.Contains(q, "teleport.backfill_source") {
			continue // a template: InstallCapture puts the table in; TestInstallCapture_Backfill runs it
		}
		stmt, err := db.Prepare(q)
		if err != nil {
			t.Errorf("prepare %s: %v", name, err)
			continue
		}
		stmt.Close()
	}
}

// TestEventQueriesUseTheXidIndex: the queries that read a batch's events,
// when it is cut and when it is sent, find them through the xid index on
// an event table no ANALYZE has seen (a fresh install, or before
// autovacuum comes by), where a freely joined plan scanned every event
// for every batch: at 500 transactions a second the lag grew to seconds.
func TestEventQueriesUseTheXidIndex(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, _ := dbtest.Migrated(t)
	events := func(n int) {
		t.Helper()
		if _, err := db.Exec(`INSERT INTO teleport.event (relid, schema_name, table_name, op, nrows, data)
			SELECT 'pg_catalog.pg_class'::regclass, 'public', 't', 'I', 1, json_build_array(json_build_object('id', g))
			FROM generate_series(1, $1) g`, n); err != nil {
			t.Fatal(err)
		}
	}
	tick := func() store.Tick {
		t.Helper()
		var tk store.Tick
		err := database.InTx(ctx, db, func(tx *sql.Tx) error {
			var err error
			tk, err = store.InsertTick(ctx, tx)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		return tk
	}
	events(50000) // before the target's first tick: older than any batch
	from := tick()
	if _, err := store.SyncTargets(ctx, db, []store.TargetSpec{{Name: "dst", SchemaRegex: "^public$", TableRegex: "^t$"}}, from.ID); err != nil {
		t.Fatal(err)
	}
	events(10)
	to := tick()
	if err := store.InsertBatch(ctx, db, store.Batch{Target: "dst", Seq: 1, FromTick: from.ID, ToTick: to.ID, Events: 10, Rows: 10,
		ChunkRows: 1000, TickTime: to.CreatedAt}); err != nil {
		t.Fatal(err)
	}
	var analysed int
	if err := db.QueryRow(`SELECT count(*) FROM pg_catalog.pg_stats WHERE schemaname = 'teleport' AND tablename LIKE 'event%'`).Scan(&analysed); err != nil || analysed != 0 {
		t.Fatalf("event tables analysed already (%d columns, %v): the test needs them without statistics", analysed, err)
	}
	all := database.AllQueries()
	for _, q := range []struct {
		name string
		args []any
		rows int
	}{
		{"batch_events", []any{"dst", 1}, 10},
		{"batch_schema_points", []any{"dst", from.ID, to.ID, 0}, 1}, // the 10 events share a table and columns
	} {
		var n int
		rows, err := db.Query(all[q.name], q.args...)
		if err != nil {
			t.Fatalf("%s: %v", q.name, err)
		}
		for rows.Next() {
			n++
		}
		rows.Close()
		if n != q.rows {
			t.Errorf("%s returned %d rows, want %d", q.name, n, q.rows)
		}
		var plan string
		if err := db.QueryRow("EXPLAIN (FORMAT JSON) "+all[q.name], q.args...).Scan(&plan); err != nil {
			t.Fatalf("explain %s: %v", q.name, err)
		}
		var nodes []map[string]any
		var walk func(any)
		walk = func(v any) {
			switch v := v.(type) {
			case map[string]any:
				if rel, _ := v["Relation Name"].(string); strings.HasPrefix(rel, "event_") {
					nodes = append(nodes, v)
				}
				for _, c := range v {
					walk(c)
				}
			case []any:
				for _, c := range v {
					walk(c)
				}
			}
		}
		var doc any
		if err := json.Unmarshal([]byte(plan), &doc); err != nil {
			t.Fatal(err)
		}
		walk(doc)
		if len(nodes) == 0 {
			t.Errorf("%s: no scan of the event tables in its plan:\n%s", q.name, plan)
		}
		for _, n := range nodes {
			if typ := n["Node Type"].(string); typ == "Seq Scan" {
				t.Errorf("%s reads %s with a %s, not through the xid index:\n%s", q.name, n["Relation Name"], typ, plan)
			}
		}
	}
}
