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

// Exec runs q on db and fails the test when it fails.
func Exec(t testing.TB, db *sql.DB, q string, args ...any) {
	t.Helper()
	if _, err := db.Exec(q, args...); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}

// Open opens dsn, closed when the test ends; it does not connect yet.
func Open(t testing.TB, dsn string) *sql.DB {
	t.Helper()
	db, err := sql.Open("postgres", dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// Int runs q, which returns one integer, and fails the test when it fails.
func Int(t testing.TB, db *sql.DB, q string, args ...any) int {
	t.Helper()
	var n int
	if err := db.QueryRow(q, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return n
}
