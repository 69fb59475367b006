package dbtest

import (
	"context"
	"database/sql"
	"testing"

	"github.com/pagarme/teleport/database/migrate"
)

// Migrated returns a new database on the shared cluster with the teleport
// schema, and its name.
func Migrated(t testing.TB) (*sql.DB, string) {
	t.Helper()
	db, name := Shared(t).NewDB(t)
	if _, err := migrate.Migrate(context.Background(), db); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	return db, name
}
