package applier_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/pagarme/teleport/applier"
	"github.com/pagarme/teleport/database/dbtest"
	"github.com/pagarme/teleport/database/migrate"
	"github.com/pagarme/teleport/database/schema"
	"github.com/pagarme/teleport/database/store"
	"github.com/pagarme/teleport/server/wire"
)

// smallLockTable starts a cluster whose lock table holds about 2,000 locks
// (PostgreSQL's smallest max_locks_per_transaction), so a schema change
// creating a few hundred tables cannot run in one transaction, and returns a
// migrated database on it that knows source "a".
func smallLockTable(t *testing.T) *sql.DB {
	t.Helper()
	c := dbtest.Start(t, "max_locks_per_transaction = 10", "max_connections = 20")
	db, _ := c.NewDB(t)
	if _, err := migrate.Migrate(context.Background(), db); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	exec(t, db, `INSERT INTO teleport.source (name) VALUES ('a')`)
	return db
}

// manyTables is a schema change creating n tables public.m1..mn, each with
// a primary key, an index and a foreign key to the one before: about seven
// locks a table.
func manyTables(n int) wire.Event {
	var d schema.DDL
	d.SearchPath = "public"
	for i := 1; i <= n; i++ {
		d.Items = append(d.Items, schema.DDLItem{Key: fmt.Sprintf("table m%d", i), Adopt: true,
			SQL: fmt.Sprintf("CREATE TABLE m%d (id int PRIMARY KEY, v text)", i)})
	}
	for i := 1; i <= n; i++ {
		d.Items = append(d.Items, schema.DDLItem{SQL: fmt.Sprintf("CREATE INDEX ON m%d (v)", i)})
	}
	// Named before the table it refers to is made: deferred, then resolved.
	d.Items = append(d.Items, schema.DDLItem{SQL: fmt.Sprintf("ALTER TABLE m1 ADD FOREIGN KEY (id) REFERENCES m%d", n+1)},
		schema.DDLItem{Key: fmt.Sprintf("table m%d", n+1), Adopt: true, SQL: fmt.Sprintf("CREATE TABLE m%d (id int PRIMARY KEY)", n+1)})
	data, err := json.Marshal(d)
	if err != nil {
		panic(err)
	}
	return wire.Event{Op: wire.OpSchema, Schema: "public", Rows: len(d.Items), Data: data}
}

func insInto(table string, xid uint64, id int) wire.Event {
	return wire.Event{XID: xid, Schema: "public", Table: table, Op: wire.OpInsert, Rows: 1,
		Data: json.RawMessage(fmt.Sprintf(`[{"id":%d}]`, id))}
}

// pass runs one pass of a new applier, as after a restart, and returns the
// state of source "a".
func pass(t *testing.T, db *sql.DB) store.SourceState {
	t.Helper()
	if _, err := applier.New(db, time.Second, 10000, dbtest.Logger(t)).RunOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	return state(t, db, "a")
}

const tablesMade = `SELECT count(*) FROM pg_catalog.pg_class WHERE relnamespace = 'public'::regnamespace AND relkind = 'r' AND relname ~ '^m\d+$'`

// A schema change too big for the target's lock table is applied in parts,
// each committed with where the next starts; a part that fails leaves the
// committed ones and is resumed from there once fixed, and no reader sees
// the rows after the change before the whole batch is applied.
func TestApply_SchemaChangeInParts(t *testing.T) {
	db := smallLockTable(t)
	const n = 400
	exec(t, db, `CREATE TABLE public.before (id int PRIMARY KEY)`)
	// An object in the way of a late part: the batch is held there, after
	// the parts before it committed.
	exec(t, db, fmt.Sprintf(`CREATE TYPE public.m%d AS (other text)`, n-10))
	put(t, db, "a", 1,
		[]wire.Event{insInto("before", 7, 1), insInto("before", 7, 2)},
		[]wire.Event{manyTables(n), insInto(fmt.Sprintf("m%d", n+1), 8, 1)},
		[]wire.Event{insInto("m1", 8, 1)})

	st := pass(t, db)
	if st.AppliedSeq != 0 || !strings.Contains(st.Error, "already exists") {
		t.Fatalf("applied %d, error %q: want batch 1 held on m%d", st.AppliedSeq, st.Error, n-10)
	}
	made := dbtest.Int(t, db, tablesMade)
	if made < 100 || made >= n {
		t.Fatalf("%d tables made while held: want the parts before m%d committed", made, n-10)
	}
	// The rows before the change are whole source transactions: committed
	// with the first part. Those after it wait for the batch.
	if got := dbtest.Int(t, db, `SELECT count(*) FROM public.before`); got != 2 {
		t.Fatalf("public.before has %d rows: want the 2 of the transaction before the change", got)
	}
	if got := dbtest.Int(t, db, `SELECT count(*) FROM public.m1`); got != 0 {
		t.Fatalf("public.m1 has %d rows before the batch is applied", got)
	}

	exec(t, db, fmt.Sprintf(`DROP TYPE public.m%d`, n-10))
	if st := pass(t, db); st.AppliedSeq != 1 || st.Error != "" {
		t.Fatalf("applied %d, error %q: want batch 1 applied", st.AppliedSeq, st.Error)
	}
	if got := dbtest.Int(t, db, tablesMade); got != n+1 {
		t.Fatalf("%d tables: want %d", got, n+1)
	}
	if got := dbtest.Int(t, db, `SELECT count(*) FROM pg_catalog.pg_constraint WHERE conrelid = 'public.m1'::regclass AND contype = 'f'`); got != 1 {
		t.Fatalf("m1 has %d foreign keys: want the deferred one", got)
	}
	if got := dbtest.Int(t, db, `SELECT count(*) FROM public.before`) + dbtest.Int(t, db, `SELECT count(*) FROM public.m1`); got != 3 {
		t.Fatalf("%d rows: want each once", got)
	}
	if got := dbtest.Int(t, db, `SELECT count(*) FROM teleport.source WHERE part_seq IS NOT NULL`); got != 0 {
		t.Fatal("the place of the parts is kept after the batch is applied")
	}
}

// A big schema change inside a source transaction (rows of one transaction
// on both sides of it) is never cut: it is applied whole, and when the lock
// table cannot hold it the batch is held with what to do.
func TestApply_SchemaChangeNotCutInsideTransaction(t *testing.T) {
	db := smallLockTable(t)
	exec(t, db, `CREATE TABLE public.before (id int PRIMARY KEY)`)
	put(t, db, "a", 1, []wire.Event{insInto("before", 7, 1), manyTables(400), insInto("before", 7, 2)})
	st := pass(t, db)
	if st.AppliedSeq != 0 || !strings.Contains(st.Error, "raise max_locks_per_transaction") {
		t.Fatalf("applied %d, error %q: want batch 1 held, naming max_locks_per_transaction", st.AppliedSeq, st.Error)
	}
	if got := dbtest.Int(t, db, `SELECT count(*) FROM public.before`) + dbtest.Int(t, db, tablesMade); got != 0 {
		t.Fatalf("%d rows and tables: want none of the held batch", got)
	}
}

// A schema change the target's role may not make (PostgreSQL 15 and later
// no longer let every role create in schema public) holds the batch with the
// grant that releases it, and the grant does.
func TestApply_SchemaChangeLacksPrivilege(t *testing.T) {
	c := dbtest.Shared(t)
	db, name := dbtest.Migrated(t)
	exec(t, db, `INSERT INTO teleport.source (name) VALUES ('a')`)
	c.AdminExec(t, name, `ALTER SCHEMA public OWNER TO postgres; REVOKE CREATE ON SCHEMA public FROM PUBLIC`)
	put(t, db, "a", 1, []wire.Event{manyTables(2), insInto("m3", 8, 1), insInto("m1", 8, 1)})
	if st := pass(t, db); st.AppliedSeq != 0 || !strings.Contains(st.Error, "GRANT CREATE ON SCHEMA") {
		t.Fatalf("applied %d, error %q: want batch 1 held, naming the grant", st.AppliedSeq, st.Error)
	}
	c.AdminExec(t, name, `GRANT CREATE ON SCHEMA public TO `+dbtest.Role)
	if st := pass(t, db); st.AppliedSeq != 1 {
		t.Fatalf("applied %d, error %q: want batch 1 applied after the grant", st.AppliedSeq, st.Error)
	}
}

// An extension only a superuser may create holds the batch with that said,
// and creating it on the target as one releases it.
func TestApply_UntrustedExtension(t *testing.T) {
	c := dbtest.Shared(t)
	db, name := dbtest.Migrated(t)
	exec(t, db, `INSERT INTO teleport.source (name) VALUES ('a')`)
	data, err := json.Marshal(schema.DDL{SearchPath: "public", Items: []schema.DDLItem{
		{Key: "extension pg_stat_statements", SQL: `CREATE EXTENSION IF NOT EXISTS "pg_stat_statements" SCHEMA "public"`}}})
	if err != nil {
		t.Fatal(err)
	}
	put(t, db, "a", 1, []wire.Event{{Op: wire.OpSchema, Schema: "public", Rows: 1, Data: data}})
	if st := pass(t, db); st.AppliedSeq != 0 || !strings.Contains(st.Error, "only a superuser may create an extension") {
		t.Fatalf("applied %d, error %q: want batch 1 held, saying a superuser must create it", st.AppliedSeq, st.Error)
	}
	c.AdminExec(t, name, `CREATE EXTENSION pg_stat_statements SCHEMA public`)
	if st := pass(t, db); st.AppliedSeq != 1 {
		t.Fatalf("applied %d, error %q: want batch 1 applied once the extension is there", st.AppliedSeq, st.Error)
	}
}
