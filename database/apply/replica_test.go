package apply_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"testing"

	"github.com/lib/pq/pqerror"

	"github.com/pagarme/teleport/database"
	"github.com/pagarme/teleport/database/apply"
	"github.com/pagarme/teleport/database/dbtest"
	"github.com/pagarme/teleport/server/wire"
)

// TestEvents_ReplicaMode: with a cache made for replica mode, a change to a
// table without triggers of its own skips the foreign key check (a child
// row whose parent the target lacks goes in), while a change to a table
// with an enabled trigger (a capture trigger passing changes on, or the
// target's own) runs in origin mode, its trigger firing and its foreign key
// checked, in the same transaction and the same run of changes as
// replica-mode ones. A cache not made for it checks every foreign key.
func TestEvents_ReplicaMode(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, name := dbtest.Migrated(t)
	admin := dbtest.Shared(t).Admin(t, name)
	dbtest.Exec(t, admin, `CREATE TABLE public.parent (id int PRIMARY KEY);
		CREATE TABLE public.child (id int PRIMARY KEY, parent_id int REFERENCES public.parent);
		CREATE TABLE public.watched (id int PRIMARY KEY, parent_id int REFERENCES public.parent);
		CREATE TABLE public.seen (id int);
		CREATE FUNCTION public.note() RETURNS trigger LANGUAGE plpgsql AS $$
			BEGIN INSERT INTO public.seen SELECT id FROM new_rows; RETURN NULL; END $$;
		CREATE TRIGGER note AFTER INSERT ON public.watched REFERENCING NEW TABLE AS new_rows
			FOR EACH STATEMENT EXECUTE FUNCTION public.note();
		CREATE TABLE public.quiet (id int PRIMARY KEY, parent_id int REFERENCES public.parent);
		CREATE TRIGGER off AFTER INSERT ON public.quiet REFERENCING NEW TABLE AS new_rows
			FOR EACH STATEMENT EXECUTE FUNCTION public.note();
		ALTER TABLE public.quiet DISABLE TRIGGER off;
		INSERT INTO public.parent VALUES (1)`)

	for _, c := range []struct {
		db   *sql.DB
		role string
		want bool
	}{{db, "an unprivileged role", false}, {admin, "a superuser", true}} {
		got, err := apply.MayApplyAsReplica(ctx, c.db)
		if err != nil || got != c.want {
			t.Errorf("MayApplyAsReplica as %s: %v, %v; want %v", c.role, got, err, c.want)
		}
	}

	insert := func(table string, id, parent int) wire.Event {
		return wire.Event{Schema: "public", Table: table, Op: wire.OpInsert, Rows: 1, Data: fmt.Appendf(nil, `[{"id":%d,"parent_id":%d}]`, id, parent)}
	}
	// run applies each flush with one cache in one transaction, rolled
	// back, and returns the mode after each and the first error.
	run := func(asReplica bool, flushes ...[]wire.Event) (modes []string, seen int, err error) {
		tx, err := admin.BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback() //nolint:errcheck // every run is undone
		cache := apply.NewTableCache(asReplica)
		if err := cache.Begin(ctx, tx, "src"); err != nil {
			t.Fatal(err)
		}
		for _, evs := range flushes {
			if err := apply.Events(ctx, tx, cache, evs); err != nil {
				return modes, 0, err
			}
			var mode string
			if err := tx.QueryRowContext(ctx, `SHOW session_replication_role`).Scan(&mode); err != nil {
				t.Fatal(err)
			}
			modes = append(modes, mode)
		}
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM public.seen`).Scan(&seen); err != nil {
			t.Fatal(err)
		}
		return modes, seen, nil
	}
	isFK := func(err error) bool { return database.SQLState(err) == pqerror.ForeignKeyViolation }

	modes, _, err := run(true, []wire.Event{insert("child", 1, 99), insert("quiet", 1, 98)})
	if err != nil || fmt.Sprint(modes) != "[replica]" {
		t.Errorf("orphan rows of tables without enabled triggers, replica mode: modes %v, %v; want [replica] and no error", modes, err)
	}
	if _, _, err := run(false, []wire.Event{insert("child", 1, 99)}); !isFK(err) {
		t.Errorf("orphan child row, no replica mode: %v; want a foreign key violation", err)
	}
	if _, _, err := run(true, []wire.Event{insert("child", 1, 99), insert("watched", 1, 97)}); !isFK(err) {
		t.Errorf("orphan rows of a table with a trigger and one without, in one flush: %v; want a foreign key violation (origin mode)", err)
	}
	modes, seen, err := run(true, []wire.Event{insert("child", 1, 99), insert("watched", 1, 1), insert("child", 2, 98)})
	if err != nil || fmt.Sprint(modes) != "[origin]" || seen != 1 {
		t.Errorf("orphan child rows around a row of a table with a trigger, in one flush (grouped: child, then watched): mode at the end %v, trigger fired %d times, %v; want [origin], 1, no error", modes, seen, err)
	}
	modes, seen, err = run(true, []wire.Event{insert("child", 1, 99)}, []wire.Event{insert("watched", 1, 1)}, []wire.Event{insert("child", 2, 98)})
	if err != nil || fmt.Sprint(modes) != "[replica origin replica]" || seen != 1 {
		t.Errorf("replica, then a table with a trigger, then replica again: modes %v, trigger fired %d times, %v; want [replica origin replica], 1, no error", modes, seen, err)
	}
	if _, _, err := run(true, []wire.Event{insert("child", 3, 1)}, []wire.Event{insert("watched", 2, 96)}); !isFK(err) {
		t.Errorf("orphan row of a table with a trigger after a replica-mode flush: %v; want a foreign key violation", err)
	}
}

// TestMayApplyAsReplica_Granted: on PostgreSQL 15 and later a role granted
// SET on session_replication_role may apply in replica mode; once the grant
// is revoked, a cache made for it fails with ErrReplicaDenied, not with an
// error that would hold the batch.
func TestMayApplyAsReplica_Granted(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	c := dbtest.Shared(t)
	if c.Major() < 15 {
		t.Skipf("PostgreSQL %d has no GRANT SET ON PARAMETER", c.Major())
	}
	_, name := c.NewDB(t)
	const role = "tp_apply_replica_granted"
	c.CreateRole(t, role, "pw", "NOSUPERUSER")
	c.AdminExec(t, name, `CREATE TABLE public.t (id int PRIMARY KEY); GRANT INSERT ON public.t TO `+role)
	db := dbtest.Open(t, c.DSN(role, "pw", name))
	if ok, err := apply.MayApplyAsReplica(ctx, db); err != nil || ok {
		t.Fatalf("before the grant: %v, %v; want false", ok, err)
	}
	c.AdminExec(t, name, `GRANT SET ON PARAMETER session_replication_role TO `+role)
	if ok, err := apply.MayApplyAsReplica(ctx, db); err != nil || !ok {
		t.Fatalf("after the grant: %v, %v; want true", ok, err)
	}
	c.AdminExec(t, name, `REVOKE SET ON PARAMETER session_replication_role FROM `+role)
	evs := []wire.Event{{Schema: "public", Table: "t", Op: wire.OpInsert, Rows: 1, Data: []byte(`[{"id":1}]`)}}
	err := database.InTx(ctx, db, func(tx *sql.Tx) error { return apply.NewTableCache(true).Begin(ctx, tx, "src") })
	if !errors.Is(err, apply.ErrReplicaDenied) {
		t.Errorf("Begin after the revoke: %v; want ErrReplicaDenied", err)
	}
	err = database.InTx(ctx, db, func(tx *sql.Tx) error { return apply.Events(ctx, tx, apply.NewTableCache(true), evs) })
	if !errors.Is(err, apply.ErrReplicaDenied) {
		t.Errorf("Events after the revoke: %v; want ErrReplicaDenied", err)
	}
	err = database.InTx(ctx, db, func(tx *sql.Tx) error {
		c := apply.NewTableCache(false)
		if err := c.Begin(ctx, tx, "src"); err != nil {
			return err
		}
		return apply.Events(ctx, tx, c, evs)
	})
	if err != nil {
		t.Errorf("a cache not made for replica mode, after the revoke: %v", err)
	}
}

// TestTableCache_AcrossTransactions: a cache kept from one transaction to
// the next sees what the target's own DDL changed in between: a trigger
// created or disabled (replica mode no longer, or again), a column added, a
// table dropped and created again.
func TestTableCache_AcrossTransactions(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	_, name := dbtest.Migrated(t)
	admin := dbtest.Shared(t).Admin(t, name)
	dbtest.Exec(t, admin, `CREATE TABLE public.parent (id int PRIMARY KEY);
		CREATE TABLE public.child (id int PRIMARY KEY, parent_id int REFERENCES public.parent);
		CREATE TABLE public.seen (id int);
		CREATE FUNCTION public.note() RETURNS trigger LANGUAGE plpgsql AS $$
			BEGIN INSERT INTO public.seen SELECT id FROM new_rows; RETURN NULL; END $$`)
	cache := apply.NewTableCache(true)
	// apply inserts child rows in a transaction of their own, committed,
	// and returns the mode they were applied in.
	apply1 := func(rows string) (string, error) {
		var mode string
		err := database.InTx(ctx, admin, func(tx *sql.Tx) error {
			if err := cache.Begin(ctx, tx, "src"); err != nil {
				return err
			}
			ev := wire.Event{Schema: "public", Table: "child", Op: wire.OpInsert, Rows: 1, Data: []byte(rows)}
			if err := apply.Events(ctx, tx, cache, []wire.Event{ev}); err != nil {
				return err
			}
			return tx.QueryRowContext(ctx, `SHOW session_replication_role`).Scan(&mode)
		})
		return mode, err
	}
	seen := func() (n int) {
		if err := admin.QueryRow(`SELECT count(*) FROM public.seen`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	if mode, err := apply1(`[{"id":1,"parent_id":7}]`); err != nil || mode != "replica" {
		t.Fatalf("first apply: mode %q, %v; want replica", mode, err)
	}
	dbtest.Exec(t, admin, `CREATE TRIGGER note AFTER INSERT ON public.child REFERENCING NEW TABLE AS new_rows
		FOR EACH STATEMENT EXECUTE FUNCTION public.note()`)
	if _, err := apply1(`[{"id":2,"parent_id":7}]`); err == nil || database.SQLState(err) != pqerror.ForeignKeyViolation {
		t.Errorf("apply after the target created a trigger: %v, want a foreign key violation (origin mode)", err)
	}
	if mode, err := apply1(`[{"id":2,"parent_id":null}]`); err != nil || mode != "origin" || seen() != 1 {
		t.Errorf("apply after the target created a trigger: mode %q, %v, %d rows seen; want origin and the trigger fired", mode, err, seen())
	}
	dbtest.Exec(t, admin, `ALTER TABLE public.child DISABLE TRIGGER note`)
	if mode, err := apply1(`[{"id":3,"parent_id":7}]`); err != nil || mode != "replica" || seen() != 1 {
		t.Errorf("apply after the trigger was disabled: mode %q, %v, %d seen; want replica again", mode, err, seen())
	}
	dbtest.Exec(t, admin, `ALTER TABLE public.child ADD COLUMN note text GENERATED ALWAYS AS ('x') STORED`)
	if _, err := apply1(`[{"id":4,"parent_id":null,"note":"from the source"}]`); err != nil {
		t.Errorf("apply after the target added a generated column: %v, want it left out as generated", err)
	}
	dbtest.Exec(t, admin, `DROP TABLE public.child; CREATE TABLE public.child (id int PRIMARY KEY, parent_id int, extra text)`)
	if _, err := apply1(`[{"id":5,"parent_id":7,"extra":"e"}]`); err != nil {
		t.Errorf("apply after the table was created again: %v", err)
	}
	var extra string
	if err := admin.QueryRow(`SELECT extra FROM public.child WHERE id = 5`).Scan(&extra); err != nil || extra != "e" {
		t.Errorf("child 5 extra = %q, %v; want e", extra, err)
	}
}
