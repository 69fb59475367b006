package migrate_test

import (
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/pagarme/teleport/database/dbtest"
)

// schemaSQL is today's teleport schema in one file, for reading: what the
// migrations leave, as pg_dump writes it.
const schemaSQL = "sql/schema.sql"

// TestSchemaSQL_MatchesMigrations: sql/schema.sql, run on an empty
// database, makes the teleport schema the migrations make. With
// TELEPORT_UPDATE_SCHEMA_SQL=1 the test rewrites the file from the
// migrations instead.
func TestSchemaSQL_MatchesMigrations(t *testing.T) {
	t.Parallel()
	c := dbtest.Shared(t)
	_, migratedName := dbtest.Migrated(t)
	if os.Getenv("TELEPORT_UPDATE_SCHEMA_SQL") != "" {
		head := "-- Today's teleport schema, as the migrations in sql/migrations leave it\n" +
			"-- (pg_dump --schema-only --schema teleport), for reading. Written by\n" +
			"-- TELEPORT_UPDATE_SCHEMA_SQL=1 go test -run TestSchemaSQL ./database/migrate/\n" +
			"-- and checked against the migrations by the same test without it.\n" +
			"-- On 14 and later, a server built with lz4 also has\n" +
			"-- ALTER TABLE teleport.event ALTER COLUMN data SET COMPRESSION lz4 (0008).\n\n"
		if err := os.WriteFile(schemaSQL, []byte(head+withoutCompression(c.ReadableDump(t, migratedName, "teleport"))), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	text, err := os.ReadFile(schemaSQL)
	if err != nil {
		t.Fatal(err)
	}
	db, name := c.NewDB(t)
	if _, err := db.Exec(string(text)); err != nil {
		t.Fatalf("run %s: %v", schemaSQL, err)
	}
	want, got := notNullNames(withoutCompression(c.DumpSchema(t, migratedName, "teleport"))), notNullNames(c.DumpSchema(t, name, "teleport"))
	if got != want {
		t.Errorf("%s does not make what the migrations make: rewrite it with TELEPORT_UPDATE_SCHEMA_SQL=1 go test -run TestSchemaSQL ./database/migrate/\n%s",
			schemaSQL, firstDifference(want, got))
	}
}

// withoutCompression drops the column compression settings from a dump:
// migration 0008 sets lz4 only where the server was built with it.
func withoutCompression(dump string) string {
	return setCompression.ReplaceAllString(dump, "")
}

var setCompression = regexp.MustCompile(`(?m)^ALTER TABLE ONLY [^\n]* SET COMPRESSION [a-z0-9]+;\n(\n)?`)

// notNullNames drops the names of NOT NULL constraints from a dump: on 18,
// which names them, pg_dump writes those of a partitioned table whose
// partitions were made with PARTITION OF (as the migrations do) and not
// those of one whose partitions were attached (as schema.sql does), and a
// table made in place of a renamed one has them numbered.
func notNullNames(dump string) string {
	return notNullName.ReplaceAllString(dump, "NOT NULL")
}

var notNullName = regexp.MustCompile(`CONSTRAINT \w+_not_null\d* NOT NULL`)

// firstDifference shows where two texts part, a few lines of each.
func firstDifference(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	for i := range max(len(w), len(g)) {
		if i >= len(w) || i >= len(g) || w[i] != g[i] {
			return "migrations: " + strings.Join(w[i:min(len(w), i+5)], "\n") + "\nschema.sql: " + strings.Join(g[i:min(len(g), i+5)], "\n")
		}
	}
	return ""
}
