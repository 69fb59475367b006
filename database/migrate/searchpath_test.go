package migrate_test

import (
	"context"
	"database/sql"
	"slices"
	"strings"
	"testing"

	"github.com/pagarme/teleport/database/dbtest"
	"github.com/pagarme/teleport/database/migrate"
)

func scalar(t *testing.T, db *sql.DB, q string) string {
	t.Helper()
	var s sql.NullString
	if err := db.QueryRow(q).Scan(&s); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return s.String
}

// The tests' role is named teleport, like Teleport's schema: with the
// default search path, "$user" puts that schema first, and what the role
// creates without a schema lands there, not replicated.
func TestKeepOutOfSearchPath(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	c := dbtest.Shared(t)
	db, name := c.NewDB(t)
	if _, err := migrate.Migrate(ctx, db); err != nil {
		t.Fatal(err)
	}
	// An application's migration run by the role before the fix.
	dbtest.Exec(t, db, `CREATE EXTENSION citext; CREATE TYPE status AS ENUM ('new', 'paid');
		CREATE TABLE orders (id serial PRIMARY KEY, s status, code citext);
		CREATE FUNCTION total(int) RETURNS int LANGUAGE sql AS 'SELECT $1'`)
	if got := scalar(t, db, `SELECT relnamespace::regnamespace::text FROM pg_class WHERE relname = 'orders'`); got != "teleport" {
		t.Fatalf("orders created in %q: the test needs the default search path to lead to teleport", got)
	}

	fix, err := migrate.KeepOutOfSearchPath(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	if fix.From != `"$user", public` || fix.To != `"public"` {
		t.Errorf("search_path changed from %q to %q, want from the default to public", fix.From, fix.To)
	}
	want := []string{`function "teleport"."total" to schema "public"`, `table "teleport"."orders" to schema "public"`, `type "teleport"."status" to schema "public"`}
	if !slices.Equal(fix.Moved, want) {
		t.Errorf("moved %q; want %q", fix.Moved, want)
	}
	// A trusted extension's objects belong to the bootstrap superuser: only
	// a superuser may move it, and the message says so.
	if len(fix.NotMoved) != 1 || !strings.Contains(fix.NotMoved[0], `as a superuser (its objects are the bootstrap superuser's), run ALTER EXTENSION citext SET SCHEMA "public"`) {
		t.Errorf("not moved %q: want citext, with what to do", fix.NotMoved)
	}

	// A new session of the role finds them, and creates its next object,
	// where it expects.
	app := c.Connect(t, name)
	dbtest.Exec(t, app, `INSERT INTO orders (s, code) VALUES ('paid', 'ABC'); CREATE TABLE later (id int)`)
	if got := scalar(t, app, `SELECT string_agg(relnamespace::regnamespace::text || '.' || relname, ' ' ORDER BY relname)
		FROM pg_class WHERE relname IN ('orders', 'orders_id_seq', 'later')`); got != "public.later public.orders public.orders_id_seq" {
		t.Errorf("objects at %s", got)
	}
	if got := scalar(t, app, `SELECT total(2)`); got != "2" {
		t.Errorf("total(2) = %s", got)
	}
	// Teleport's own objects stayed.
	if got := scalar(t, app, `SELECT count(*) FROM pg_class WHERE relnamespace = 'teleport'::regnamespace AND relname = 'event'`); got != "1" {
		t.Error("teleport.event moved")
	}

	c.AdminExec(t, name, `ALTER EXTENSION citext SET SCHEMA public`)
	again, err := migrate.KeepOutOfSearchPath(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	if again.From != "" || len(again.Moved) > 0 || len(again.NotMoved) > 0 {
		t.Errorf("second run, the extension moved by a superuser, changed %+v, want nothing", again)
	}
	if got := scalar(t, app, `SELECT count(*) FROM orders WHERE code = 'abc'`); got != "1" {
		t.Errorf("citext comparison once all moved: %s rows, want 1", got)
	}
}

// Every object the migrations make is known as Teleport's: none is taken
// for someone else's and moved away.
func TestOwnObjects_CoverMigrations(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, _ := dbtest.Migrated(t)
	own, err := migrate.OwnObjects()
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"event", "capture_rows", "event_id_seq", "source", "capture_ddl"} {
		if !slices.Contains(own, n) {
			t.Errorf("OwnObjects lacks %s", n)
		}
	}
	// With "$user" gone from the role's path in an earlier run, nothing is
	// moved out of a freshly migrated schema.
	dbtest.Exec(t, db, `ALTER ROLE CURRENT_USER IN DATABASE `+scalar(t, db, `SELECT quote_ident(current_database())`)+` SET search_path TO public`)
	fix, err := migrate.KeepOutOfSearchPath(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	if fix.From != "" || len(fix.Moved) > 0 || len(fix.NotMoved) > 0 {
		t.Errorf("on a fresh schema: %+v, want nothing done", fix)
	}
}
