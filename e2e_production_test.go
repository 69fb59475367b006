package main

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pagarme/teleport/database/dbtest"
	"github.com/pagarme/teleport/server/wire"
)

// TestE2E_BigCatalogSmallLockTable: a catalog too big for the target's
// lock table in one transaction (here 300 tables with a key and an index
// against PostgreSQL's smallest lock table; production: thousands of tables
// against the default one) reaches the target, its batch 1 applied in
// parts, and the rows written meanwhile follow.
func TestE2E_BigCatalogSmallLockTable(t *testing.T) {
	t.Parallel()
	const n = 300
	var ddl strings.Builder
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&ddl, "CREATE TABLE t%d (id int PRIMARY KEY, v text); CREATE INDEX ON t%d (v);", i, i)
	}
	p := newPairOn(t, targetCluster(t, "max_locks_per_transaction = 10", "max_connections = 20"), "", "SELECT 1")
	execSQL(t, p.srcDB, "BEGIN; SET LOCAL search_path = public; "+ddl.String()+" COMMIT")
	p.start(t)
	execSQL(t, p.srcDB, fmt.Sprintf(`INSERT INTO public.t1 VALUES (1, 'first'); INSERT INTO public.t%d VALUES (1, 'last')`, n))
	p.waitSame(t, 2*time.Minute, "t1", fmt.Sprintf("t%d", n))
	var tables int
	execSQLScan(t, p.dstDB, `SELECT count(*) FROM pg_class WHERE relnamespace = 'public'::regnamespace AND relkind = 'r'`, &tables)
	if tables != n {
		t.Errorf("the target has %d tables, want %d", tables, n)
	}
}

// TestE2E_OtherOwners: on RDS the tables and types belong to the master
// user or a migration role. A captured table using a type another role owns
// gets the type on the target; a table created by another role while the
// instances run is left out and listed in schema_skipped with the statement
// that fixes it, and once its owner is changed it is captured, created on
// the target with the rows it held, and leaves the list.
func TestE2E_OtherOwners(t *testing.T) {
	t.Parallel()
	p := newPairStopped(t, "", "SELECT 1")
	p.src.AdminExec(t, p.srcName, `CREATE TYPE public.order_status AS ENUM ('new', 'paid');
		CREATE TABLE public.orders (id int PRIMARY KEY, s public.order_status);
		ALTER TABLE public.orders OWNER TO teleport`)
	p.start(t)
	execSQL(t, p.srcDB, `INSERT INTO public.orders VALUES (1, 'paid')`)
	p.waitSame(t, 30*time.Second, "orders")

	// A migration role creates and fills a table.
	p.src.AdminExec(t, p.srcName, `CREATE TABLE public.coupons (id int PRIMARY KEY, code text);
		INSERT INTO public.coupons VALUES (1, 'WELCOME')`)
	skipped := func() []string {
		st, _, err := getStatus(p.srcPort, "")
		if err != nil || len(st.Targets) != 1 {
			return []string{fmt.Sprintf("status: %v, %d targets", err, len(st.Targets))}
		}
		var objs []string
		for _, s := range st.Targets[0].SchemaSkipped {
			objs = append(objs, s.Object+": "+s.Reason)
		}
		return objs
	}
	deadline := time.Now().Add(30 * time.Second)
	for !slices.ContainsFunc(skipped(), func(s string) bool {
		return strings.Contains(s, `"public"."coupons"`) && strings.Contains(s, "OWNER TO")
	}) {
		if time.Now().After(deadline) {
			t.Fatalf("schema_skipped %q: want table coupons with the ALTER TABLE OWNER TO that fixes it", skipped())
		}
		time.Sleep(100 * time.Millisecond)
	}

	p.src.AdminExec(t, p.srcName, `ALTER TABLE public.coupons OWNER TO teleport`)
	execSQL(t, p.srcDB, `INSERT INTO public.coupons VALUES (2, 'AGAIN'); INSERT INTO public.orders VALUES (2, 'new')`)
	p.waitSame(t, 30*time.Second, "coupons", "orders")
	deadline = time.Now().Add(30 * time.Second)
	for s := skipped(); len(s) > 0; s = skipped() {
		if time.Now().After(deadline) {
			t.Fatalf("schema_skipped %q once the table replicates: want it empty", s)
		}
		time.Sleep(100 * time.Millisecond)
	}
	var errs int
	execSQLScan(t, p.dstDB, `SELECT count(*) FROM teleport.source WHERE error IS NOT NULL`, &errs)
	if errs != 0 {
		t.Errorf("a batch is held on the target: %s", p.dstStatus(t))
	}
}

// TestE2E_HeldBatchLogVolume: a batch held by a conflict on the target is
// tried again less and less often, so the target's server log gets a few
// errors, not ten a second; the next change after the conflict is cleared
// releases it at once.
func TestE2E_HeldBatchLogVolume(t *testing.T) {
	t.Parallel()
	p := newPair(t, "", "CREATE TABLE t (id int PRIMARY KEY, v text)")
	execSQL(t, p.dstDB, `INSERT INTO public.t VALUES (1, 'on the target first')`)
	before := len(p.dst.ServerLog())
	execSQL(t, p.srcDB, `INSERT INTO public.t VALUES (1, 'source')`)
	held := func() (wire.SourceStatus, bool) {
		st, _, err := getStatus(p.dstPort, "")
		if err != nil || len(st.Sources) != 1 {
			return wire.SourceStatus{}, false
		}
		return st.Sources[0], st.Sources[0].Held
	}
	deadline := time.Now().Add(30 * time.Second)
	for _, ok := held(); !ok; _, ok = held() {
		if time.Now().After(deadline) {
			t.Fatalf("no batch held after 30 s: %s", p.dstStatus(t))
		}
		time.Sleep(50 * time.Millisecond)
	}
	const hold = 15 * time.Second
	time.Sleep(hold)
	log := p.dst.ServerLog()[before:]
	errors := strings.Count(log, "ERROR:")
	t.Logf("held %v: %d errors in the target's server log", hold, errors)
	// Each try logs two errors (the grouped statement, then the row that
	// fails alone). Tried every 100 ms, 15 s of hold logged 300; with the
	// wait doubling from the interval, 8 tries.
	if errors > 20 {
		t.Errorf("%d errors in the target's server log in %v of one held batch: want it tried a few times, with backoff; the log:\n%s", errors, hold, log)
	}

	execSQL(t, p.dstDB, `DELETE FROM public.t WHERE id = 1`)
	execSQL(t, p.srcDB, `INSERT INTO public.t VALUES (2, 'next')`)
	start := time.Now()
	p.waitSame(t, 10*time.Second, "t")
	t.Logf("released %v after the next change", time.Since(start).Round(time.Millisecond))
}

// TestE2E_RDSLikeRoles follows the README's Privileges section on a source
// set up as on a managed service: a master user with CREATEROLE, not a
// superuser, owns the database; the application's tables belong to the role
// its migrations run as, which keeps creating tables while the instances
// run. Teleport, granted membership in that role, captures them all,
// present and future, without any owner changed.
func TestE2E_RDSLikeRoles(t *testing.T) {
	t.Parallel()
	p := newPairStopped(t, "", "SELECT 1")
	const master, owner = "tp_rds_master", "tp_rds_app_owner"
	p.src.CreateRole(t, master, "pw", "NOSUPERUSER CREATEROLE")
	p.src.CreateRole(t, owner, "pw", "NOSUPERUSER")
	// What the service sets up: the master owns the database and may
	// administer the roles it creates.
	p.src.AdminExec(t, p.srcName, fmt.Sprintf(`ALTER DATABASE %s OWNER TO %s; GRANT %s TO %s WITH ADMIN OPTION`, p.srcName, master, owner, master))
	t.Cleanup(func() { // before the roles are dropped: an owner of a database cannot be
		p.src.AdminExec(t, p.srcName, fmt.Sprintf(`ALTER DATABASE %s OWNER TO %s`, p.srcName, dbtest.Role))
	})
	asMaster := dbtest.Open(t, p.src.DSN(master, "pw", p.srcName))
	// The README's statements, as the master user.
	execSQL(t, asMaster, fmt.Sprintf(`GRANT CREATE ON DATABASE %s TO %s; GRANT %s TO %s`, p.srcName, dbtest.Role, owner, dbtest.Role))
	if p.src.Major() >= 15 {
		execSQL(t, asMaster, `GRANT CREATE ON SCHEMA public TO `+owner)
	}
	app := dbtest.Open(t, p.src.DSN(owner, "pw", p.srcName))
	execSQL(t, app, `CREATE TYPE public.order_status AS ENUM ('new', 'paid');
		CREATE TABLE public.orders (id int PRIMARY KEY, s public.order_status)`)
	p.start(t)

	execSQL(t, app, `INSERT INTO public.orders VALUES (1, 'paid')`)
	execSQL(t, app, `CREATE TABLE public.coupons (id int PRIMARY KEY, code text); INSERT INTO public.coupons VALUES (1, 'WELCOME')`)
	execSQL(t, app, `INSERT INTO public.coupons VALUES (2, 'AGAIN'); INSERT INTO public.orders VALUES (2, 'new')`)
	p.waitSame(t, 30*time.Second, "orders", "coupons")
	var owners string
	execSQLScan(t, p.srcDB, `SELECT string_agg(DISTINCT relowner::regrole::text, ',') FROM pg_class WHERE relname IN ('orders', 'coupons')`, &owners)
	if owners != owner {
		t.Errorf("the tables are owned by %s on the source: want %s still", owners, owner)
	}
}

// TestE2E_LongSnapshotBounded holds a REPEATABLE READ snapshot open on the
// source, as a report or a pg_dump does, while the application writes.
// Rows deleted after the snapshot began cannot be removed until it ends,
// so a source that deleted its events grew by everything written meanwhile.
// Teleport's own tables now live in slots emptied with TRUNCATE, which
// waits for no snapshot: once the target has everything they hold a
// rotation or two of writes, however many were written under the snapshot.
func TestE2E_LongSnapshotBounded(t *testing.T) {
	t.Parallel()
	p := newPair(t, "", "CREATE TABLE t (id int PRIMARY KEY, v text)")
	snap, err := p.srcDB.BeginTx(context.Background(), &sql.TxOptions{Isolation: sql.LevelRepeatableRead, ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer snap.Rollback() //nolint:errcheck // read only
	var n int
	if err := snap.QueryRow(`SELECT count(*) FROM public.t`).Scan(&n); err != nil {
		t.Fatalf("open the long snapshot: %v", err)
	}
	// Size of every partition of the slotted tables, dead rows included.
	size := func() int64 {
		return int64(dbtest.Int(t, p.srcDB, `SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0)::int FROM pg_class c
			WHERE c.relnamespace = 'teleport'::regnamespace AND c.relkind = 'r'
			  AND c.relname ~ '^(event|tick|batch|batch_ddl|cursor|ack)_[0-2]$'`))
	}
	const waves, rows = 12, 2000
	wave := func(i int) {
		// Rows of 512 hexadecimal digits, which compress only by half.
		execSQL(t, p.srcDB, `INSERT INTO public.t SELECT g, (SELECT string_agg(md5(random()::text || g.g || k), '') FROM generate_series(1, 16) k)
			FROM generate_series($1::int, $2::int) g`, i*rows, (i+1)*rows-1)
		execSQL(t, p.srcDB, `UPDATE public.t SET v = upper(v) WHERE id BETWEEN $1::int AND $2::int`, i*rows, (i+1)*rows-1)
	}
	wave(0)
	p.waitSame(t, time.Minute, "t")
	one := size() // about one wave, in whatever slots it went to
	for i := 1; i < waves; i++ {
		wave(i)
		time.Sleep(200 * time.Millisecond)
	}
	p.waitSame(t, 2*time.Minute, "t")
	// Still under the snapshot: the slots the target is done with empty.
	limit := 3 * one
	deadline := time.Now().Add(30 * time.Second)
	for size() > limit {
		if time.Now().After(deadline) {
			var rot string
			_ = p.srcDB.QueryRow(`SELECT string_agg(format('%s emptied %s', n, emptied_at IS NOT NULL), ', ' ORDER BY n) FROM teleport.rotation`).Scan(&rot)
			t.Fatalf("Teleport's tables hold %d bytes after %d waves under a snapshot, want at most %d (three times one wave's %d): slots not emptied?\nrotations: %s",
				size(), waves, limit, one, rot)
		}
		time.Sleep(100 * time.Millisecond)
	}
	rotations := dbtest.Int(t, p.srcDB, `SELECT last_value::int FROM teleport.slot_seq`)
	t.Logf("after %d waves under one snapshot: %d bytes (one wave: %d), %d rotations", waves, size(), one, rotations)
	if rotations < 3 {
		t.Errorf("rotations = %d, want several while %d waves were written", rotations, waves)
	}
	if err := snap.QueryRow(`SELECT count(*) FROM public.t`).Scan(&n); err != nil || n != 0 {
		t.Errorf("rows the long snapshot sees = %d (%v), want 0: it must have stayed open throughout", n, err)
	}
}

// TestE2E_ReplicaModeChain: A replicates everything to B, and B passes the
// schema fwd on to C. On PostgreSQL 15 and later B's role is granted SET on
// session_replication_role, so B applies in replica mode where no trigger
// depends on it: a row whose parent only B's own foreign key requires goes
// in, as PostgreSQL's logical replication would take it. Where a trigger
// depends on it, B applies in origin mode: its capture triggers on fwd
// record what it applies and C gets it, and a trigger of B's own fires, as
// does an event trigger of B's own on the schema changes B applies.
// Before 15 the role cannot be granted it: the row is held with the
// foreign key's error until B has the parent.
func TestE2E_ReplicaModeChain(t *testing.T) {
	t.Parallel()
	setPasswordEnv(t)
	ca, cb := sourceCluster(t), targetCluster(t)
	dbA, nameA := ca.NewDB(t)
	dbB, nameB := cb.NewDB(t)
	dbC, nameC := cb.NewDB(t)
	replica := cb.Major() >= 15
	if replica {
		cb.AdminExec(t, nameB, `GRANT SET ON PARAMETER session_replication_role TO `+dbtest.Role)
	}
	tables := `CREATE TABLE public.parent (id int PRIMARY KEY);
		CREATE TABLE public.child (id int PRIMARY KEY, parent_id int);
		CREATE TABLE public.watched (id int PRIMARY KEY);
		CREATE SCHEMA fwd; CREATE TABLE fwd.item (id int PRIMARY KEY, parent_id int, v text)`
	execSQL(t, dbA, tables)
	execSQL(t, dbB, tables+`;
		ALTER TABLE public.child ADD FOREIGN KEY (parent_id) REFERENCES public.parent;
		CREATE TABLE public.seen_here (id int);
		CREATE FUNCTION public.note() RETURNS trigger LANGUAGE plpgsql AS $$
			BEGIN INSERT INTO public.seen_here SELECT id FROM new_rows; RETURN NULL; END $$;
		CREATE TRIGGER note AFTER INSERT ON public.watched REFERENCING NEW TABLE AS new_rows
			FOR EACH STATEMENT EXECUTE FUNCTION public.note()`)
	execSQL(t, dbC, `CREATE SCHEMA fwd; CREATE TABLE fwd.item (id int PRIMARY KEY, parent_id int, v text)`)
	// An event trigger of B's own (only a superuser may create one) sees
	// the schema changes B applies, as it would without the grant.
	execSQL(t, dbB, `CREATE TABLE public.ddl_seen (object text)`)
	cb.AdminExec(t, nameB, `CREATE FUNCTION public.note_ddl() RETURNS event_trigger LANGUAGE plpgsql AS $$
			BEGIN INSERT INTO public.ddl_seen SELECT object_identity FROM pg_event_trigger_ddl_commands(); END $$;
		CREATE EVENT TRIGGER note_ddl ON ddl_command_end EXECUTE FUNCTION public.note_ddl()`)
	portA, portB, portC := freePort(t), freePort(t), freePort(t)
	tgt := func(name, expr string, port int) string {
		return fmt.Sprintf("  %s:\n    target_expression: %q\n    endpoint:\n      hostname: \"127.0.0.1\"\n      port: %d\n", name, expr, port)
	}
	startInstance(t, writeConfig(t, instance{name: "c", c: cb, dbname: nameC, port: portC}), portC, "")
	startInstance(t, writeConfig(t, instance{name: "b", c: cb, dbname: nameB, port: portB, targets: tgt("c", "fwd.*", portC)}), portB, "")
	startInstance(t, writeConfig(t, instance{name: "a", c: ca, dbname: nameA, port: portA, targets: tgt("b", "*.*", portB)}), portA, "")

	execSQL(t, dbA, `INSERT INTO public.parent VALUES (1)`)
	execSQL(t, dbA, `BEGIN; INSERT INTO public.child VALUES (1, 1), (2, 99); INSERT INTO public.watched VALUES (1), (2);
		INSERT INTO fwd.item SELECT i, 99, 'from a' FROM generate_series(1, 50) i; COMMIT`)
	execSQL(t, dbA, `UPDATE fwd.item SET v = 'changed on a' WHERE id % 5 = 0; DELETE FROM fwd.item WHERE id > 45`)
	if !replica {
		dbtest.WaitFor(t, 30*time.Second, "B to hold the orphan child row", func() bool {
			var msg sql.NullString
			return dbB.QueryRow(`SELECT error FROM teleport.source WHERE name = 'a'`).Scan(&msg) == nil && strings.Contains(msg.String, "foreign key")
		})
		execSQL(t, dbB, `INSERT INTO public.parent VALUES (99)`)
	}
	sameAs := func(from, to *sql.DB, table string) {
		t.Helper()
		dbtest.WaitFor(t, 60*time.Second, table+" to arrive", func() bool {
			a, errA := checksum(from, table)
			b, errB := checksum(to, table)
			return errA == nil && errB == nil && a == b
		})
	}
	sameAs(dbA, dbB, "public.child")
	sameAs(dbA, dbB, "public.watched")
	sameAs(dbA, dbB, "fwd.item")
	sameAs(dbA, dbC, "fwd.item")
	execSQL(t, dbA, `CREATE TABLE public.late (id int PRIMARY KEY); INSERT INTO public.child VALUES (3, 98)`)
	if !replica {
		execSQL(t, dbB, `INSERT INTO public.parent VALUES (98)`)
	}
	sameAs(dbA, dbB, "public.child")
	dbtest.WaitFor(t, 60*time.Second, "B to create public.late", func() bool {
		var ok bool
		return dbB.QueryRow(`SELECT to_regclass('public.late') IS NOT NULL`).Scan(&ok) == nil && ok
	})
	var ddlSeen int
	execSQLScan(t, dbB, `SELECT count(*) FROM public.ddl_seen WHERE object = 'public.late'`, &ddlSeen)
	if ddlSeen == 0 {
		t.Error("B's event trigger did not see the table it created from A's schema change")
	}
	var seen int
	execSQLScan(t, dbB, `SELECT count(*) FROM public.seen_here`, &seen)
	if seen != 2 {
		t.Errorf("B's own trigger on watched saw %d rows: want 2 (it fires, replica mode or not)", seen)
	}
	var orphans int
	execSQLScan(t, dbB, `SELECT count(*) FROM public.child c WHERE NOT EXISTS (SELECT 1 FROM public.parent p WHERE p.id = c.parent_id)`, &orphans)
	if want := map[bool]int{true: 2, false: 0}[replica]; orphans != want {
		t.Errorf("child rows without a parent on B: %d, want %d (replica mode: %v)", orphans, want, replica)
	}
}
