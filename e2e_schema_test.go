package main

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/pagarme/teleport/database/dbtest"
	"github.com/pagarme/teleport/database/migrate"
)

// schemaStep is one migration run on the source, then the row changes an
// application makes at once, sooner than the ddlwatcher's interval.
type schemaStep struct {
	name   string
	ddl    string
	rows   string
	tables []string // tables whose rows must then be the same on both sides
}

var schemaSteps = []schemaStep{
	{"extension, enum, composite, table created and filled at once", `
		CREATE EXTENSION citext;
		CREATE TYPE mood AS ENUM ('sad', 'ok');
		CREATE TYPE address AS (street text, city text);
		CREATE TABLE person (id serial PRIMARY KEY, email citext NOT NULL, m mood, home address);
		INSERT INTO person (email, m, home) VALUES ('A@x', 'ok', ROW('1 Main', 'Rome'))`,
		`INSERT INTO person (email, m) VALUES ('z@x', 'sad')`, []string{"person"}},
	{"added column used at once",
		`ALTER TABLE person ADD COLUMN age int`,
		`INSERT INTO person (email, m, age) VALUES ('b@x', 'sad', 30)`, []string{"person"}},
	{"new enum label used at once",
		`ALTER TYPE mood ADD VALUE 'happy' BEFORE 'ok'`,
		`INSERT INTO person (email, m) VALUES ('c@x', 'happy')`, []string{"person"}},
	{"column rename with rows before and after",
		`UPDATE person SET age = 31 WHERE email = 'b@x';
		 ALTER TABLE person RENAME COLUMN age TO years`,
		`INSERT INTO person (email, m, years) VALUES ('d@x', 'ok', 40)`, []string{"person"}},
	{"table rename with rows before and after",
		`INSERT INTO person (email) VALUES ('e@x');
		 ALTER TABLE person RENAME TO people`,
		`INSERT INTO people (email) VALUES ('f@x'); UPDATE people SET years = 50 WHERE email = 'A@x'`, []string{"people"}},
	{"index, functions and a trigger", `
		CREATE INDEX people_email ON people (lower(email::text)) WHERE years IS NOT NULL;
		CREATE FUNCTION adult(p people) RETURNS boolean LANGUAGE sql STABLE AS $$ SELECT p.years >= 18 $$;
		CREATE FUNCTION bump() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN NEW.years := coalesce(NEW.years, 0) + 1; RETURN NEW; END $$;
		CREATE TRIGGER people_bump BEFORE INSERT ON people FOR EACH ROW EXECUTE FUNCTION bump()`,
		`INSERT INTO people (email, years) VALUES ('g@x', 1)`, []string{"people"}},
	{"function replaced",
		`CREATE OR REPLACE FUNCTION bump() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN NEW.years := coalesce(NEW.years, 0) + 10; RETURN NEW; END $$`,
		`INSERT INTO people (email, years) VALUES ('h@x', 1)`, []string{"people"}},
	{"type change",
		`ALTER TABLE people ALTER COLUMN years TYPE bigint`,
		`UPDATE people SET years = years * 1000000000 WHERE years IS NOT NULL`, []string{"people"}},
	{"dropped column, scratch table",
		`CREATE TABLE scratch (a int); ALTER TABLE people DROP COLUMN home`,
		`UPDATE people SET m = 'sad' WHERE m IS NULL`, []string{"people"}},
	{"dropped table, foreign key with cascade, check", `
		DROP TABLE scratch;
		CREATE TABLE orders (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
		                     person_id int REFERENCES people ON DELETE CASCADE,
		                     amount numeric CHECK (amount > 0))`,
		`INSERT INTO orders (person_id, amount) SELECT id, id * 1.5 FROM people; DELETE FROM people WHERE email = 'e@x'`,
		[]string{"people", "orders"}},
	{"sequence advanced by use",
		`CREATE SEQUENCE invoice_no START 100`,
		`SELECT nextval('invoice_no') FROM generate_series(1, 5)`, nil},
	{"view",
		`CREATE VIEW big_orders AS SELECT o.id, p.email FROM orders o JOIN people p ON p.id = o.person_id WHERE o.amount > 2`,
		`INSERT INTO orders (person_id, amount) SELECT id, 100 FROM people WHERE email = 'A@x'`, []string{"orders"}},
	{"partitioned table", `
		CREATE TABLE log (id bigint, at date NOT NULL, v text, PRIMARY KEY (id, at)) PARTITION BY RANGE (at);
		CREATE TABLE log_2026 PARTITION OF log FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
		CREATE TABLE log_old PARTITION OF log DEFAULT`,
		`INSERT INTO log VALUES (1, '2026-05-01', 'a'), (2, '2020-01-01', 'b')`, []string{"log", "log_2026", "log_old"}},
	{"writes addressed to partitions", `SELECT 1`,
		`INSERT INTO log_2026 VALUES (3, '2026-07-01', 'direct'), (4, '2026-08-01', 'direct');
		 UPDATE log_old SET v = 'direct update' WHERE id = 2; DELETE FROM log_2026 WHERE id = 1`,
		[]string{"log", "log_2026", "log_old"}},
}

// TestE2E_SchemaMigrations runs a migration history on the source while
// both instances run, each step followed at once by row changes that use
// it. After each step the target's rows equal the source's and the dumps of
// the replicated schema are the same, renames included (rows written before
// a rename keep their values), with the upstream mapping of public into
// "test" and without a mapping.
func TestE2E_SchemaMigrations(t *testing.T) {
	for _, applySchema := range []string{"test", ""} {
		name := "mapped"
		if applySchema == "" {
			name = "unmapped"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			p := newPair(t, applySchema, "SELECT 1")
			dstSchema := "public"
			if applySchema != "" {
				dstSchema = applySchema
			}
			for _, s := range schemaSteps {
				execSQL(t, p.srcDB, "BEGIN; SET LOCAL search_path = public; "+s.ddl+"; COMMIT")
				execSQL(t, p.srcDB, "BEGIN; SET LOCAL search_path = public; "+s.rows+"; COMMIT")
				start := time.Now()
				p.waitSchema(t, 30*time.Second, dstSchema, s.name)
				p.waitSame(t, 30*time.Second, s.tables...)
				t.Logf("%s: target has it after %v", s.name, time.Since(start).Round(time.Millisecond))
			}
			var srcSeq, dstSeq int64
			execSQLScan(t, p.srcDB, `SELECT last_value FROM public.invoice_no`, &srcSeq)
			deadline := time.Now().Add(30 * time.Second)
			for {
				execSQLScan(t, p.dstDB, `SELECT last_value FROM `+p.dstTable("invoice_no"), &dstSeq)
				if dstSeq >= srcSeq || time.Now().After(deadline) {
					break
				}
				time.Sleep(100 * time.Millisecond)
			}
			if dstSeq < srcSeq {
				t.Errorf("invoice_no on the target = %d, want at least the source's %d", dstSeq, srcSeq)
			}
			var disabled bool
			execSQLScan(t, p.dstDB, `SELECT tgenabled = 'D' FROM pg_trigger WHERE tgname = 'people_bump'`, &disabled)
			if !disabled {
				t.Error("trigger people_bump is enabled on the target: applied rows would fire it again")
			}
		})
	}
}

// shopSchema is a small shop's schema with every kind of object schema
// replication handles, unicode identifiers included.
const shopSchema = `
CREATE DOMAIN money_amount AS numeric(12,2) CHECK (VALUE >= 0);
CREATE TYPE order_status AS ENUM ('new', 'paid', 'shipped');
CREATE TYPE dimensions AS (w numeric, h numeric, d numeric);
CREATE TABLE "Kunde" (id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, "Näme" text NOT NULL, email text UNIQUE,
                      created timestamptz NOT NULL DEFAULT now());
CREATE TABLE product (sku text PRIMARY KEY, price money_amount NOT NULL, size dimensions,
                      volume numeric GENERATED ALWAYS AS ((size).w * (size).h * (size).d) STORED);
CREATE TABLE orders (id bigint NOT NULL, kunde_id bigint NOT NULL REFERENCES "Kunde" ON DELETE CASCADE,
                     placed date NOT NULL, status order_status NOT NULL DEFAULT 'new', PRIMARY KEY (id, placed))
  PARTITION BY RANGE (placed);
CREATE TABLE orders_2025 PARTITION OF orders FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
CREATE TABLE orders_2026 PARTITION OF orders FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
CREATE TABLE order_line (order_id bigint NOT NULL, placed date NOT NULL, sku text NOT NULL REFERENCES product,
                         qty int NOT NULL CHECK (qty > 0), PRIMARY KEY (order_id, placed, sku),
                         FOREIGN KEY (order_id, placed) REFERENCES orders ON DELETE CASCADE);
CREATE INDEX order_line_sku ON order_line (sku);
CREATE FUNCTION line_total(q int, p numeric) RETURNS numeric LANGUAGE sql IMMUTABLE AS $$ SELECT q * p $$;
CREATE FUNCTION mark_paid() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN IF NEW.status = 'new' THEN NEW.status := 'paid'; END IF; RETURN NEW; END $$;
CREATE TRIGGER orders_paid BEFORE UPDATE ON orders FOR EACH ROW EXECUTE FUNCTION mark_paid();
CREATE AGGREGATE product_of(numeric) (SFUNC = numeric_mul, STYPE = numeric, INITCOND = '1');
CREATE VIEW order_totals AS
  SELECT l.order_id, sum(line_total(l.qty, p.price)) AS total
  FROM order_line l JOIN product p USING (sku) GROUP BY l.order_id;
CREATE MATERIALIZED VIEW sku_counts AS SELECT sku, count(*) AS n FROM order_line GROUP BY sku;
CREATE SEQUENCE "Rechnung_nr" START 1000`

// TestE2E_ShopSchema creates a realistic application schema on the source
// while both instances run, fills it at once, and expects the target to get
// the same schema and rows.
func TestE2E_ShopSchema(t *testing.T) {
	t.Parallel()
	setPasswordEnv(t)
	p := newPair(t, "test", "SELECT 1")
	execSQL(t, p.srcDB, "BEGIN; SET LOCAL search_path = public; "+shopSchema+"; COMMIT")
	execSQL(t, p.srcDB, `BEGIN; SET LOCAL search_path = public;
		INSERT INTO "Kunde" ("Näme", email) VALUES ('Jürgen', 'j@x'), ('Zoë', 'z@x');
		INSERT INTO product (sku, price, size) VALUES ('a', 2.50, ROW(1, 2, 3)), ('b', 10, NULL);
		INSERT INTO orders (id, kunde_id, placed) SELECT i, 1 + i % 2, DATE '2025-06-01' + i * 30 FROM generate_series(1, 10) i;
		INSERT INTO order_line SELECT id, placed, 'a', 1 + id % 3 FROM orders;
		UPDATE orders SET placed = placed WHERE id <= 3;
		DELETE FROM "Kunde" WHERE "Näme" = 'Zoë';
		COMMIT`)
	p.waitSchema(t, 30*time.Second, "test", "shop schema")
	p.waitSame(t, 30*time.Second, `"Kunde"`, "product", "orders", "orders_2025", "orders_2026", "order_line")
}

// TestE2E_EventTriggers runs the source instance as a superuser with
// use_event_triggers and a ddlwatcher that would not pass for ten minutes:
// schema changes no row reveals (a function, a view) reach the target
// anyway, each in the stream where it was committed. As the unprivileged
// role, the same setting stops the instance saying what to do.
func TestE2E_EventTriggers(t *testing.T) {
	t.Parallel()
	setPasswordEnv(t)
	p := &pair{src: privateSourceCluster(t), dst: targetCluster(t), applySchema: "test"}
	p.srcDB, p.srcName = p.src.NewDB(t)
	p.dstDB, p.dstName = p.dst.NewDB(t)
	execSQL(t, p.srcDB, `CREATE TABLE public.t (id int PRIMARY KEY, v text)`)
	p.src.CreateRole(t, "teleport_su", dbtest.RolePassword, "SUPERUSER")
	p.srcPort, p.dstPort = freePort(t), freePort(t)
	target := fmt.Sprintf("  dst:\n    target_expression: \"public.*\"\n    endpoint:\n      hostname: \"127.0.0.1\"\n      port: %d\n    apply_schema: \"test\"\n", p.dstPort)
	slowWatcher := "use_event_triggers: true\n"
	p.dstCfg = writeConfig(t, instance{name: "dst", c: p.dst, dbname: p.dstName, port: p.dstPort})

	unprivileged := writeConfig(t, instance{name: "src", c: p.src, dbname: p.srcName, port: p.srcPort, targets: target, extra: slowWatcher})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second) // a start that succeeds runs until then
	defer cancel()
	err := run(ctx, []string{"-config", unprivileged}, os.Stdout, testWriter{t})
	if err == nil || !strings.Contains(err.Error(), "use_event_triggers") || !strings.Contains(err.Error(), "superuser") {
		t.Fatalf("start as %s with use_event_triggers = %v, want a refusal naming the setting and the privilege", dbtest.Role, err)
	}

	p.srcCfg = writeConfig(t, instance{name: "src", c: p.src, dbname: p.srcName, port: p.srcPort, targets: target, user: "teleport_su", extra: slowWatcher})
	crashEditConfig(t, p.srcCfg, func(s string) string { return strings.Replace(s, "ddlwatcher: 5000", "ddlwatcher: 600000", 1) })
	p.startDst(t)
	p.startSrc(t)
	p.waitSchema(t, 30*time.Second, "test", "first sync")
	steps := []struct{ name, ddl string }{
		{"function", `CREATE FUNCTION public.twice(i int) RETURNS int LANGUAGE sql IMMUTABLE AS 'SELECT i * 2'`},
		{"view", `CREATE VIEW public.doubled AS SELECT id, public.twice(id) AS d FROM public.t`},
		{"function replaced", `CREATE OR REPLACE FUNCTION public.twice(i int) RETURNS int LANGUAGE sql IMMUTABLE AS 'SELECT i + i'`},
	}
	for _, s := range steps {
		execSQL(t, p.srcDB, s.ddl)
		p.waitSchema(t, 30*time.Second, "test", s.name)
	}
	// A temporary table changes nothing replicated: no snapshot is written.
	var before, after int64
	execSQLScan(t, p.srcDB, `SELECT event_id FROM teleport.ddl_state`, &before)
	execSQL(t, p.srcDB, `CREATE TEMP TABLE scratch (x int)`)
	execSQLScan(t, p.srcDB, `SELECT event_id FROM teleport.ddl_state`, &after)
	if after != before {
		t.Errorf("a temporary table wrote snapshot event %d (the last was %d)", after, before)
	}
}

// TestE2E_SeedRoleUnqualified: the seed's configs connect as a role named
// teleport, like Teleport's schema, whose default search path ("$user",
// public) would put that schema first. A table its migrations created
// there before this version is moved out at start-up, and one it creates
// without a schema while the instances run lands in public; both
// replicate.
func TestE2E_SeedRoleUnqualified(t *testing.T) {
	t.Parallel()
	p := newPairStopped(t, "", "SELECT 1")
	if _, err := migrate.Migrate(context.Background(), p.srcDB); err != nil { // as an earlier version left it
		t.Fatal(err)
	}
	execSQL(t, p.srcDB, `CREATE TABLE legacy (id int PRIMARY KEY, v text)`)
	var schema string
	execSQLScan(t, p.srcDB, `SELECT relnamespace::regnamespace::text FROM pg_class WHERE relname = 'legacy'`, &schema)
	if schema != "teleport" {
		t.Fatalf("legacy created in %s: the test needs the role's default search path", schema)
	}
	p.start(t)

	app := p.src.Connect(t, p.srcName) // a new session of the role, as a migration tool opens
	execSQL(t, app, `INSERT INTO legacy VALUES (1, 'after the move')`)
	execSQL(t, app, `CREATE TABLE orders (id int PRIMARY KEY, v text)`)
	execSQL(t, app, `INSERT INTO orders VALUES (1, 'unqualified')`)
	p.waitSame(t, 30*time.Second, "orders", "legacy")
}

// TestE2E_WidenedExpression: the source restarts with a target_expression
// that takes more tables; the target gets them, created before their rows,
// the tables it had go on, and a resync of a new table brings the rows it
// held before; narrowed again, a table no longer taken stays as it was.
func TestE2E_WidenedExpression(t *testing.T) {
	t.Parallel()
	setPasswordEnv(t)
	p := &pair{src: sourceCluster(t), dst: targetCluster(t), targetExpr: "public.a"}
	p.srcDB, p.srcName = p.src.NewDB(t)
	p.dstDB, p.dstName = p.dst.NewDB(t) // empty: the schema comes through replication
	execSQL(t, p.srcDB, `CREATE TABLE public.a (id int PRIMARY KEY, v text); CREATE TABLE public.b (id int PRIMARY KEY, v text)`)
	p.start(t)
	execSQL(t, p.srcDB, `INSERT INTO a VALUES (1, 'x'); INSERT INTO b VALUES (2, 'before')`)
	p.waitSame(t, 30*time.Second, "a")
	var hasB bool
	execSQLScan(t, p.dstDB, `SELECT to_regclass('public.b') IS NOT NULL`, &hasB)
	if hasB {
		t.Fatal("table b is on the target although target_expression is public.a")
	}
	if err := p.stopSrc(); err != nil {
		t.Fatalf("stop the source instance: %v", err)
	}
	p.targetExpr = "public.*"
	p.writeSrcConfig(t)
	p.startSrc(t)
	execSQL(t, p.srcDB, `INSERT INTO b VALUES (1, 'y'); UPDATE a SET v = 'z'`)
	p.waitSame(t, 60*time.Second, "a")
	if log, err := p.runLoad(t, "-tables", "public.b"); err != nil {
		t.Fatalf("resync of b: %v\n%s", err, log)
	}
	execSQL(t, p.srcDB, `UPDATE b SET v = 'after'`)
	p.waitSame(t, 60*time.Second, "a", "b")

	// Narrowed again: a stays on the target as it was, b goes on.
	if err := p.stopSrc(); err != nil {
		t.Fatalf("stop the source instance: %v", err)
	}
	p.targetExpr = "public.b"
	p.writeSrcConfig(t)
	p.startSrc(t)
	execSQL(t, p.srcDB, `UPDATE a SET v = 'not sent'; INSERT INTO b VALUES (3, 'narrowed')`)
	p.waitSame(t, 60*time.Second, "b")
	var v string
	execSQLScan(t, p.dstDB, `SELECT v FROM public.a WHERE id = 1`, &v)
	if v != "z" {
		t.Errorf("a on the target after the expression narrowed: v = %q, want z, as it was", v)
	}
}
