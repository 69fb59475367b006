package schema_test

import (
	"context"
	"database/sql"
	"strings"
	"testing"

	"github.com/pagarme/teleport/database"
	"github.com/pagarme/teleport/database/dbtest"
	"github.com/pagarme/teleport/database/schema"
)

// ddlSteps is a migration history touching every kind of object the diff
// replicates, renames of each kind included.
var ddlSteps = []string{
	`CREATE EXTENSION citext;
	 CREATE TYPE mood AS ENUM ('sad', 'ok');
	 CREATE TYPE address AS (street text, city text);
	 CREATE DOMAIN positive AS numeric(12,2) CHECK (VALUE > 0) DEFAULT 1;
	 CREATE DOMAIN code AS text NOT NULL CHECK (VALUE <> '');
	 CREATE TABLE customer (id bigserial PRIMARY KEY, email citext UNIQUE NOT NULL, "Näme" text, home address, m mood DEFAULT 'ok',
	                        ref code DEFAULT 'r');
	 CREATE TABLE item (id int GENERATED ALWAYS AS IDENTITY PRIMARY KEY, price positive NOT NULL, qty int NOT NULL DEFAULT 1,
	                    total numeric GENERATED ALWAYS AS (price * qty) STORED, CHECK (qty > 0));
	 INSERT INTO customer (email, "Näme") VALUES ('A@x', 'a'), ('b@x', 'b');`,
	`ALTER TYPE mood ADD VALUE 'happy' AFTER 'ok';
	 ALTER TYPE mood ADD VALUE 'angry' BEFORE 'sad';
	 ALTER TYPE mood RENAME VALUE 'ok' TO 'fine';
	 ALTER TYPE address ADD ATTRIBUTE zip text;
	 ALTER TYPE address RENAME ATTRIBUTE street TO line1;
	 ALTER TABLE customer ADD COLUMN created timestamptz NOT NULL DEFAULT now();
	 ALTER TABLE customer RENAME COLUMN "Näme" TO full_name;
	 ALTER TABLE customer RENAME TO client;
	 CREATE INDEX client_lower ON client (lower(full_name)) WHERE full_name IS NOT NULL;
	 CREATE UNIQUE INDEX item_price_qty ON item (price, qty);`,
	`CREATE TABLE orders (id bigint NOT NULL, client_id bigint REFERENCES client ON DELETE CASCADE, placed date NOT NULL, amount int)
	   PARTITION BY RANGE (placed);
	 CREATE TABLE orders_2025 PARTITION OF orders FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
	 CREATE TABLE orders_2026 PARTITION OF orders FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
	 ALTER TABLE orders ADD PRIMARY KEY (id, placed);
	 CREATE INDEX orders_client ON orders (client_id);
	 CREATE FUNCTION order_total(c bigint) RETURNS bigint LANGUAGE sql STABLE AS $$ SELECT coalesce(sum(amount), 0) FROM orders WHERE client_id = c $$;
	 CREATE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN NEW.amount := coalesce(NEW.amount, 0); RETURN NEW; END $$;
	 CREATE TRIGGER orders_touch BEFORE INSERT ON orders FOR EACH ROW EXECUTE FUNCTION touch();
	 CREATE PROCEDURE reset_amounts() LANGUAGE sql AS $$ UPDATE orders SET amount = 0 $$;
	 CREATE AGGREGATE sum_sq(int) (SFUNC = int4pl, STYPE = int, INITCOND = '0');
	 CREATE VIEW client_totals AS SELECT c.id, c.full_name, order_total(c.id) AS total FROM client c;
	 CREATE VIEW big_clients AS SELECT id, total FROM client_totals WHERE total > 100;
	 CREATE MATERIALIZED VIEW order_days AS SELECT placed, count(*) AS n FROM orders GROUP BY placed;
	 CREATE UNIQUE INDEX order_days_placed ON order_days (placed);
	 CREATE SEQUENCE invoice_no START 1000 INCREMENT 10;
	 SELECT nextval('invoice_no'), nextval('invoice_no');`,
	`CREATE OR REPLACE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN NEW.amount := coalesce(NEW.amount, 1); RETURN NEW; END $$;
	 ALTER TABLE orders ALTER COLUMN amount TYPE bigint;
	 ALTER TABLE item ADD COLUMN note text;
	 ALTER TABLE item DROP COLUMN note;
	 ALTER TABLE client DROP COLUMN home;
	 ALTER TABLE client ADD CONSTRAINT email_has_at CHECK (email LIKE '%@%');
	 ALTER TABLE client ALTER COLUMN m SET NOT NULL;
	 ALTER INDEX client_lower RENAME TO client_name_lower;
	 ALTER TABLE client RENAME CONSTRAINT email_has_at TO email_at;
	 ALTER TRIGGER orders_touch ON orders RENAME TO orders_fill;
	 ALTER FUNCTION order_total(bigint) RENAME TO client_total;
	 ALTER VIEW big_clients RENAME TO top_clients;
	 ALTER SEQUENCE invoice_no RENAME TO invoice_seq;
	 SELECT nextval('invoice_seq');
	 CREATE OR REPLACE VIEW client_totals AS SELECT c.id, c.full_name, client_total(c.id) AS total, c.email FROM client c;
	 CREATE TABLE scratch (a int);
	 ALTER TABLE orders DETACH PARTITION orders_2025;
	 ALTER DOMAIN positive DROP DEFAULT;`,
	`DROP TABLE scratch;
	 DROP VIEW top_clients;
	 DROP AGGREGATE sum_sq(int);
	 ALTER TABLE orders ATTACH PARTITION orders_2025 FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
	 DROP INDEX item_price_qty;
	 ALTER TABLE item ALTER COLUMN qty DROP DEFAULT;
	 DROP TRIGGER orders_fill ON orders;
	 DROP MATERIALIZED VIEW order_days;
	 DROP TYPE address;`,
}

// TestDiffReplaysMigrations runs a migration history on one database and,
// after each step, applies the diff of the catalog snapshots to another
// database in a mapped schema: the dumps of both must then be the same, and
// rows written on the replica before a rename or a type change keep their
// values.
func TestDiffReplaysMigrations(t *testing.T) {
	for _, mapped := range []bool{true, false} {
		name := "unmapped"
		if mapped {
			name = "mapped"
		}
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			c := dbtest.Shared(t)
			src, srcName := c.NewDB(t)
			dst, dstName := c.NewDB(t)
			home, target := "", "public"
			if mapped {
				home, target = "public", "test"
			}
			scope := schema.Scope{
				Schema: func(s string) bool { return s == "public" },
				Table:  func(s, _ string) bool { return s == "public" },
			}
			var prev *schema.Snapshot
			for i, step := range ddlSteps {
				if _, err := src.ExecContext(ctx, step); err != nil {
					t.Fatalf("step %d on the source: %v", i, err)
				}
				cur := snapshot(t, src, home)
				ddl, skipped := schema.Diff(prev, &cur, scope)
				if len(skipped) > 0 {
					t.Errorf("step %d: skipped %v", i, skipped)
				}
				if mapped {
					ddl.SearchPath = "test"
				}
				applyDDL(t, dst, ddl)
				if i == 0 {
					dbtest.Exec(t, dst, `INSERT INTO `+target+`.customer (email, "Näme") VALUES ('A@x', 'a'), ('b@x', 'b')`)
				}
				srcDump, dstDump := c.DumpSchema(t, srcName, "public"), c.DumpSchema(t, dstName, target)
				if srcDump != dstDump {
					t.Fatalf("step %d: dumps differ\n%s", i, lineDiff(srcDump, dstDump))
				}
				prev = &cur
			}
			var names string
			if err := dst.QueryRow(`SELECT string_agg(full_name || ':' || email, ',' ORDER BY id) FROM ` + target + `.client`).Scan(&names); err != nil {
				t.Fatal(err)
			}
			if names != "a:A@x,b:b@x" {
				t.Errorf("rows after renames: %s, want a:A@x,b:b@x", names)
			}
			var seq int64
			if err := dst.QueryRow(`SELECT last_value FROM ` + target + `.invoice_seq`).Scan(&seq); err != nil || seq != 1020 {
				t.Errorf("invoice_seq on the replica: %d (%v), want 1020", seq, err)
			}
		})
	}
}

// TestDiffAdopts applies a first diff to a database that already has the
// objects: same definitions are adopted, a different one is reported with
// both definitions.
func TestDiffAdopts(t *testing.T) {
	ctx := context.Background()
	c := dbtest.Shared(t)
	src, _ := c.NewDB(t)
	dst, _ := c.NewDB(t)
	objects := `CREATE TYPE mood AS ENUM ('sad', 'ok');
	           CREATE TABLE t (id int PRIMARY KEY, m mood, note text);
	           CREATE INDEX t_note ON t (note);`
	dbtest.Exec(t, src, objects)
	dbtest.Exec(t, dst, objects)
	dbtest.Exec(t, dst, `INSERT INTO t VALUES (1, 'ok', 'kept')`)
	cur := snapshot(t, src, "")
	all := schema.Scope{Schema: func(string) bool { return true }, Table: func(string, string) bool { return true }}
	ddl, _ := schema.Diff(nil, &cur, all)
	applyDDL(t, dst, ddl)
	var note string
	if err := dst.QueryRow(`SELECT note FROM public.t`).Scan(&note); err != nil || note != "kept" {
		t.Fatalf("adopted table's row: %q, %v", note, err)
	}

	dbtest.Exec(t, dst, `DROP INDEX public.t_note; CREATE INDEX t_note ON public.t (lower(note))`)
	err := database.InTx(ctx, dst, func(tx *sql.Tx) error { _, err := schema.ApplyDDL(ctx, tx, ddl); return err })
	if err == nil || !strings.Contains(err.Error(), `"t_note"`) || !strings.Contains(err.Error(), "lower(note)") {
		t.Fatalf("different index: %v, want an error naming both definitions", err)
	}
}

// TestDiffOtherOwners: a type owned by another role replicates (a captured
// table may use it); a table owned by another role is left out, with the
// fix in the reason, and once its owner is changed as it says, the table
// is created on the target with its next diff.
func TestDiffOtherOwners(t *testing.T) {
	c := dbtest.Shared(t)
	src, srcName := c.NewDB(t)
	dst, _ := c.NewDB(t)
	c.AdminExec(t, srcName, `CREATE TYPE public.status AS ENUM ('new', 'paid');
		CREATE TABLE public.coupons (id int PRIMARY KEY, s public.status)`)
	all := schema.Scope{Schema: func(string) bool { return true }, Table: func(string, string) bool { return true }}
	before := snapshot(t, src, "")
	ddl, skipped := schema.Diff(nil, &before, all)
	if len(skipped) != 1 || skipped[0].Object != `table "public"."coupons"` || !strings.Contains(skipped[0].Reason, "OWNER TO") {
		t.Errorf("left out = %+v, want table public.coupons, with the ALTER TABLE OWNER TO that fixes it", skipped)
	}
	applyDDL(t, dst, ddl)
	var labels string
	if err := dst.QueryRow(`SELECT string_agg(e::text, ',') FROM unnest(enum_range(NULL::public.status)) e`).Scan(&labels); err != nil || labels != "new,paid" {
		t.Errorf("type status on the target: %q, %v; want new,paid", labels, err)
	}

	c.AdminExec(t, srcName, `ALTER TABLE public.coupons OWNER TO `+dbtest.Role)
	after := snapshot(t, src, "")
	ddl, skipped = schema.Diff(&before, &after, all)
	if len(skipped) != 0 {
		t.Errorf("left out once owned = %+v, want nothing", skipped)
	}
	applyDDL(t, dst, ddl)
	dbtest.Exec(t, dst, `INSERT INTO public.coupons VALUES (1, 'paid')`)
}

func snapshot(t *testing.T, db *sql.DB, searchPath string) schema.Snapshot {
	t.Helper()
	var s schema.Snapshot
	err := database.InTx(context.Background(), db, func(tx *sql.Tx) error {
		var err error
		s, _, _, err = schema.TakeSnapshot(context.Background(), tx, searchPath)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func applyDDL(t *testing.T, db *sql.DB, ddl schema.DDL) {
	t.Helper()
	ctx := context.Background()
	if err := schema.ApplyEarlyDDL(ctx, db, ddl); err != nil {
		t.Fatalf("early DDL: %v", err)
	}
	if err := database.InTx(ctx, db, func(tx *sql.Tx) error { _, err := schema.ApplyDDL(ctx, tx, ddl); return err }); err != nil {
		var b strings.Builder
		for _, it := range ddl.Items {
			b.WriteString("  " + it.SQL + "\n")
		}
		t.Fatalf("apply DDL: %v\nstatements:\n%s", err, b.String())
	}
}

// lineDiff shows the lines only one of two texts has.
func lineDiff(a, b string) string {
	count := map[string]int{}
	for _, l := range strings.Split(a, "\n") {
		count[l]++
	}
	for _, l := range strings.Split(b, "\n") {
		count[l]--
	}
	var out strings.Builder
	for _, l := range strings.Split(a, "\n") {
		if count[l] > 0 {
			out.WriteString("- " + l + "\n")
			count[l]--
		}
	}
	for _, l := range strings.Split(b, "\n") {
		if count[l] < 0 {
			out.WriteString("+ " + l + "\n")
			count[l]++
		}
	}
	if out.Len() == 0 {
		return "(same lines, different order)\n" + a + "\n----\n" + b
	}
	return out.String()
}
