package database_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pagarme/teleport/config"
	"github.com/pagarme/teleport/database"
	"github.com/pagarme/teleport/database/dbtest"

	// Every package's queries, for TestQueriesPrepare.
	_ "github.com/pagarme/teleport/database/apply"
	_ "github.com/pagarme/teleport/database/capture"
	_ "github.com/pagarme/teleport/database/load"
	_ "github.com/pagarme/teleport/database/schema"
	_ "github.com/pagarme/teleport/database/store"
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
		db.Close()
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

// TestQueriesPrepare prepares every embedded query on a migrated database, so
// a typo in any SQL file fails here rather than in production.
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
