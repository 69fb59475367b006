package migrate_test

import (
	"context"
	"strings"
	"testing"

	"github.com/pagarme/teleport/database/capture"
	"github.com/pagarme/teleport/database/dbtest"
	"github.com/pagarme/teleport/database/migrate"
)

// Uninstall checks everything before it drops anything: a captured table
// the role cannot drop triggers from, or an object of someone else's in
// schema teleport (DROP SCHEMA ... CASCADE would take it along), makes it
// remove nothing and name them; once both are dealt with it removes all,
// and then finds nothing to remove.
func TestUninstall_ChecksFirst(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	c := dbtest.Shared(t)
	db, name := dbtest.Migrated(t)
	dbtest.Exec(t, db, `CREATE TABLE public.a (id int PRIMARY KEY); CREATE TABLE public.b (id int PRIMARY KEY);
		CREATE TABLE teleport.orders (id int)`)
	if _, err := capture.InstallCapture(ctx, db, func(string, string) bool { return true }, false); err != nil {
		t.Fatal(err)
	}
	c.CreateRole(t, "tp_uninstall_other", "pw", "NOSUPERUSER")
	c.AdminExec(t, name, `ALTER TABLE public.b OWNER TO tp_uninstall_other`)

	_, err := migrate.Uninstall(ctx, db, false, false)
	if err == nil || !strings.Contains(err.Error(), `table "teleport"."orders" is in schema teleport but is not Teleport's`) ||
		!strings.Contains(err.Error(), `table public.b: the role is not a member of its owner`) {
		t.Fatalf("Uninstall = %v, want a refusal naming teleport.orders and public.b", err)
	}
	if n := dbtest.Int(t, db, `SELECT count(*) FROM pg_trigger WHERE tgname LIKE 'teleport\_capture\_%'`); n != 8 {
		t.Errorf("%d capture triggers after the refusal, want the 8 still there", n)
	}

	dbtest.Exec(t, db, `ALTER TABLE teleport.orders SET SCHEMA public`)
	c.AdminExec(t, name, `ALTER TABLE public.b OWNER TO `+dbtest.Role)
	r, err := migrate.Uninstall(ctx, db, false, false)
	if err != nil || len(r.Triggers) != 8 || !r.Schema {
		t.Fatalf("Uninstall = %+v, %v; want 8 triggers and the schema dropped", r, err)
	}
	if n := dbtest.Int(t, db, `SELECT count(*) FROM pg_class WHERE relname = 'orders'`); n != 1 {
		t.Error("public.orders is gone")
	}
	if r, err := migrate.Uninstall(ctx, db, false, false); err != nil || !r.Nothing() {
		t.Errorf("second Uninstall = %+v, %v; want nothing removed", r, err)
	}
}
