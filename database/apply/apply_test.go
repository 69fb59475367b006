package apply_test

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/lib/pq"
	"github.com/lib/pq/pqerror"

	"github.com/pagarme/teleport/database"
	"github.com/pagarme/teleport/database/apply"
	"github.com/pagarme/teleport/database/dbtest"
	"github.com/pagarme/teleport/server/wire"
)

// rowsJSON returns the rows of query as the capture triggers write them:
// a JSON array of row_to_json, in the query's order.
func rowsJSON(t *testing.T, db *sql.DB, query string) json.RawMessage {
	t.Helper()
	var s string
	if err := db.QueryRow(`SELECT coalesce(json_agg(r), '[]') FROM (` + query + `) r`).Scan(&s); err != nil {
		t.Fatalf("rows of %s: %v", query, err)
	}
	return json.RawMessage(s)
}

// pairs joins old and new rows, two JSON arrays of one length, into the
// array of [old, new] pairs an update event carries, byte for byte.
func pairs(t *testing.T, olds, news json.RawMessage) json.RawMessage {
	t.Helper()
	var o, n []json.RawMessage
	if err := json.Unmarshal(olds, &o); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(news, &n); err != nil {
		t.Fatal(err)
	}
	if len(o) != len(n) {
		t.Fatalf("pairs: %d old rows, %d new ones", len(o), len(n))
	}
	var b bytes.Buffer
	b.WriteByte('[')
	for i := range o {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteByte('[')
		b.Write(o[i])
		b.WriteByte(',')
		b.Write(n[i])
		b.WriteByte(']')
	}
	b.WriteByte(']')
	return b.Bytes()
}

func applyEvents(db *sql.DB, events ...wire.Event) error {
	return database.InTx(context.Background(), db, func(tx *sql.Tx) error {
		return apply.ApplyEvents(context.Background(), tx, apply.NewTableCache(false), events)
	})
}

func mustApply(t *testing.T, db *sql.DB, events ...wire.Event) {
	t.Helper()
	if err := applyEvents(db, events...); err != nil {
		t.Fatalf("ApplyEvents: %v", err)
	}
}

// tableText returns every row of table as text, ordered by orderBy.
func tableText(t *testing.T, db *sql.DB, table, orderBy string) []string {
	t.Helper()
	rows, err := db.Query(`SELECT r::text FROM ` + table + ` r ORDER BY ` + orderBy)
	if err != nil {
		t.Fatalf("read %s: %v", table, err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		out = append(out, s)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func sameRows(t *testing.T, db *sql.DB, src, dst, orderBy, when string) {
	t.Helper()
	want := tableText(t, db, src, orderBy)
	got := tableText(t, db, dst, orderBy)
	if !slices.Equal(got, want) {
		t.Errorf("%s: %s =\n%s\nwant (as %s)\n%s", when, dst, short(got), src, short(want))
	}
}

// short keeps failure output readable when a row holds a megabyte.
func short(rows []string) string {
	var b strings.Builder
	for _, r := range rows {
		if len(r) > 400 {
			r = r[:400] + "..."
		}
		b.WriteString("  " + r + "\n")
	}
	return b.String()
}

// The same table, once as the source ("src") and once as the target, in a
// schema and with column names that need quoting.
const fidelityTable = `(
	id int PRIMARY KEY,
	"Num Col" numeric,
	"weird ""quoted"" col" text,
	nnan numeric, npinf numeric, nninf numeric,
	f8 float8, f8nan float8, f8pinf float8, f8ninf float8, f4 real,
	b bytea,
	arr int[],
	tarr text[],
	j json,
	jb jsonb,
	c types.pair,
	m types.mood,
	iv interval,
	ts timestamptz,
	d date,
	big text,
	uni text,
	ch char(5)
)`

func TestApplyEvents_Fidelity(t *testing.T) {
	t.Parallel()
	db, _ := dbtest.Migrated(t)
	const src, dst = `src."Odd ""T"" able"`, `"Dst ""Q"" Schema"."Odd ""T"" able"`
	dbtest.Exec(t, db, `CREATE SCHEMA types; CREATE SCHEMA src; CREATE SCHEMA "Dst ""Q"" Schema"`)
	dbtest.Exec(t, db, `CREATE TYPE types.pair AS (a int, "B b" text)`)
	dbtest.Exec(t, db, `CREATE TYPE types.mood AS ENUM ('sad', 'fine', 'ünïcode ''q''')`)
	dbtest.Exec(t, db, `CREATE TABLE `+src+` `+fidelityTable)
	dbtest.Exec(t, db, `CREATE TABLE `+dst+` `+fidelityTable)
	numInf := `'Infinity', '-Infinity'`
	if dbtest.Shared(t).Major() < 14 {
		numInf = `NULL, NULL` // numeric has no infinities before PostgreSQL 14
	}
	dbtest.Exec(t, db, `INSERT INTO `+src+` VALUES
		(1, 1234567890123456789012345678901234567890.0123456789, 'it''s "x"',
		 'NaN', `+numInf+`,
		 0.1, 'NaN', 'Infinity', '-Infinity', 3.4028235e38,
		 '\x00ff0a5c22', '{1,NULL,3}', '{"NULL",NULL,"",",a\"b"}',
		 '{ "a" : 1,  "a":2 , "n": [1,  2.50] }', '{"x": [1, 2.50], "y": null}',
		 ROW(7, 'x "y" z'), 'ünïcode ''q''',
		 '1 year 2 mons 3 days 04:05:06.789', '2024-02-29 23:59:59.999999+05:30', '2024-02-29',
		 repeat('é', 500000), '日本語 🎉 \ "q" ''s''', 'ab'),
		(2, -0.000000000000000000000000000000000000001234, '',
		 NULL, NULL, NULL,
		 '-0', 1e308, 5e-324, NULL, NULL,
		 '', '{}', '{}', '[]', '{}', ROW(NULL, NULL), 'sad',
		 '-1 days', 'infinity', '-infinity', '', '', ''),
		(3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
		 NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)`)
	ev := func(id int64, op wire.Op, rows int, data json.RawMessage) wire.Event {
		return wire.Event{ID: id, Schema: `Dst "Q" Schema`, Table: `Odd "T" able`, Op: op, Rows: rows, Data: data}
	}

	mustApply(t, db, ev(1, wire.OpInsert, 3, rowsJSON(t, db, `SELECT * FROM `+src+` ORDER BY id`)))
	sameRows(t, db, src, dst, "id", "after insert")

	// Update every column of two rows, and the primary key of one.
	olds := rowsJSON(t, db, `SELECT * FROM `+src+` WHERE id IN (1, 3) ORDER BY id`)
	dbtest.Exec(t, db, `UPDATE `+src+` SET id = CASE id WHEN 3 THEN 30 ELSE id END,
		"Num Col" = "Num Col" * 3, "weird ""quoted"" col" = NULL, arr = '{NULL}', j = '{"k" :  [ ], "k":{ } }',
		jb = '[1, "2"]', c = ROW(NULL, ''), big = 'short', uni = NULL, ch = 'z'
		WHERE id IN (1, 3)`)
	news := rowsJSON(t, db, `SELECT * FROM `+src+` WHERE id IN (1, 30) ORDER BY id`)
	mustApply(t, db, ev(2, wire.OpUpdate, 2, pairs(t, olds, news)))
	sameRows(t, db, src, dst, "id", "after update")

	olds = rowsJSON(t, db, `SELECT * FROM `+src+` WHERE id IN (2, 30) ORDER BY id`)
	dbtest.Exec(t, db, `DELETE FROM `+src+` WHERE id IN (2, 30)`)
	mustApply(t, db, ev(3, wire.OpDelete, 2, olds))
	sameRows(t, db, src, dst, "id", "after delete")
	if got := tableText(t, db, dst, "id"); len(got) != 1 {
		t.Errorf("after delete %s has %d rows, want 1", dst, len(got))
	}
}

func TestApplyEvents_NoPrimaryKey(t *testing.T) {
	t.Parallel()
	db, _ := dbtest.Migrated(t)
	dbtest.Exec(t, db, `CREATE TABLE public.src (a int, b text, j json, p point)`)
	dbtest.Exec(t, db, `CREATE TABLE public.dst (a int, b text, j json, p point)`)
	dbtest.Exec(t, db, `INSERT INTO public.src VALUES (1, 'x', '{"a": 1}', '(1,2)'), (1, 'x', '{"a": 1}', '(1,2)'), (2, NULL, NULL, NULL), (3, '', '[]', '(0,0)')`)
	ev := func(id int64, op wire.Op, rows int, data json.RawMessage) wire.Event {
		return wire.Event{ID: id, Schema: "public", Table: "dst", Op: op, Rows: rows, Data: data}
	}
	mustApply(t, db, ev(1, wire.OpInsert, 4, rowsJSON(t, db, `SELECT * FROM public.src`)))
	order := "a, b, r::text"
	sameRows(t, db, "public.src", "public.dst", order, "after insert")

	// One of the two identical rows changes; the NULL row matches NULLs.
	old := rowsJSON(t, db, `SELECT * FROM public.src WHERE a IN (1, 2) ORDER BY a LIMIT 2 OFFSET 1`)
	dbtest.Exec(t, db, `UPDATE public.src SET a = 10, b = 'y' WHERE ctid = (SELECT ctid FROM public.src WHERE a = 1 LIMIT 1)`)
	dbtest.Exec(t, db, `UPDATE public.src SET b = 'was null' WHERE a = 2`)
	news := rowsJSON(t, db, `SELECT * FROM public.src WHERE a IN (10, 2) ORDER BY a DESC`)
	mustApply(t, db, ev(2, wire.OpUpdate, 2, pairs(t, old, news)))
	sameRows(t, db, "public.src", "public.dst", order, "after updating one of two identical rows")

	dbtest.Exec(t, db, `INSERT INTO public.src VALUES (3, '', '[]', '(0,0)')`)
	mustApply(t, db, ev(3, wire.OpInsert, 1, rowsJSON(t, db, `SELECT 3 AS a, '' AS b, '[]'::json AS j, '(0,0)'::point AS p`)))
	// Delete one of the two identical (3, '') rows, and the row with an empty string but not NULL.
	old = rowsJSON(t, db, `SELECT * FROM public.src WHERE a = 3 LIMIT 1`)
	dbtest.Exec(t, db, `DELETE FROM public.src WHERE ctid = (SELECT ctid FROM public.src WHERE a = 3 LIMIT 1)`)
	mustApply(t, db, ev(4, wire.OpDelete, 1, old))
	sameRows(t, db, "public.src", "public.dst", order, "after deleting one of two identical rows")

	// A row not there is a conflict.
	err := applyEvents(db, ev(5, wire.OpDelete, 1, json.RawMessage(`[{"a":99,"b":null,"j":null,"p":null}]`)))
	if !errors.Is(err, apply.ErrConflict) {
		t.Errorf("delete of a missing row without a primary key = %v, want ErrConflict", err)
	}
}

// Updates pair old and new rows by position; a column named ordinality,
// the pairing's own column, takes the other statement.
func TestApplyEvents_UpdatePairs(t *testing.T) {
	t.Parallel()
	db, _ := dbtest.Migrated(t)
	for _, tbl := range []string{"keyed", "ord"} {
		cols := `(id int PRIMARY KEY, v text)`
		if tbl == "ord" {
			cols = `(id int PRIMARY KEY, ordinality int, v text)`
		}
		src, dst := "public.src_"+tbl, "public."+tbl
		dbtest.Exec(t, db, `CREATE TABLE `+src+` `+cols)
		dbtest.Exec(t, db, `CREATE TABLE `+dst+` `+cols)
		dbtest.Exec(t, db, `INSERT INTO `+src+` (id, v) SELECT i, 'v' || i FROM generate_series(1, 50) i`)
		ev := func(id int64, op wire.Op, rows int, data json.RawMessage) wire.Event {
			return wire.Event{ID: id, Schema: "public", Table: tbl, Op: op, Rows: rows, Data: data}
		}
		mustApply(t, db, ev(1, wire.OpInsert, 50, rowsJSON(t, db, `SELECT * FROM `+src+` ORDER BY id`)))
		// Rows in an order that is not the key's, one moving to a free key.
		olds := rowsJSON(t, db, `SELECT * FROM `+src+` WHERE id % 3 = 0 ORDER BY id DESC`)
		dbtest.Exec(t, db, `UPDATE `+src+` SET v = v || ' changed', id = CASE id WHEN 3 THEN 1003 ELSE id END WHERE id % 3 = 0`)
		news := rowsJSON(t, db, `SELECT * FROM `+src+` WHERE id % 3 = 0 OR id = 1003 ORDER BY CASE id WHEN 1003 THEN 3 ELSE id END DESC`)
		if tbl == "ord" {
			dbtest.Exec(t, db, `UPDATE `+src+` SET ordinality = id`)
			news = rowsJSON(t, db, `SELECT * FROM `+src+` WHERE id % 3 = 0 OR id = 1003 ORDER BY CASE id WHEN 1003 THEN 3 ELSE id END DESC`)
			dbtest.Exec(t, db, `UPDATE `+src+` SET ordinality = NULL WHERE id % 3 <> 0 AND id <> 1003`)
		}
		mustApply(t, db, ev(2, wire.OpUpdate, 16, pairs(t, olds, news)))
		sameRows(t, db, src, dst, "id", tbl+": after the update")
	}
}

// An update finds its rows by the old rows' key columns alone, which must
// be picked out of the row whatever their names and order.
func TestApplyEvents_UpdateKeyNames(t *testing.T) {
	t.Parallel()
	db, _ := dbtest.Migrated(t)
	cols := `(v text, "Key ""1"" é" int, k2 text, w int, PRIMARY KEY (k2, "Key ""1"" é"))`
	dbtest.Exec(t, db, `CREATE TABLE public.src_names `+cols)
	dbtest.Exec(t, db, `CREATE TABLE public.names `+cols)
	dbtest.Exec(t, db, `INSERT INTO public.src_names SELECT 'v' || i, i, 'k' || (i % 4), i FROM generate_series(1, 40) i`)
	ev := func(id int64, op wire.Op, rows int, data json.RawMessage) wire.Event {
		return wire.Event{ID: id, Schema: "public", Table: "names", Op: op, Rows: rows, Data: data}
	}
	mustApply(t, db, ev(1, wire.OpInsert, 40, rowsJSON(t, db, `SELECT * FROM public.src_names ORDER BY 2`)))
	olds := rowsJSON(t, db, `SELECT * FROM public.src_names WHERE w % 2 = 0 ORDER BY w`)
	dbtest.Exec(t, db, `UPDATE public.src_names SET v = v || ' changed', "Key ""1"" é" = "Key ""1"" é" + 100 WHERE w % 2 = 0`)
	news := rowsJSON(t, db, `SELECT * FROM public.src_names WHERE w % 2 = 0 ORDER BY w`)
	mustApply(t, db, ev(2, wire.OpUpdate, 20, pairs(t, olds, news)))
	sameRows(t, db, "public.src_names", "public.names", "w", "after updates that move the key")
}

func TestApplyEvents_Truncate(t *testing.T) {
	t.Parallel()
	db, _ := dbtest.Migrated(t)
	// Tests name schemas: the role is called teleport, so "$user" in the
	// search_path is the teleport schema.
	dbtest.Exec(t, db, `CREATE TABLE public.parent (id int PRIMARY KEY);
		CREATE TABLE public.child (id int PRIMARY KEY, parent_id int REFERENCES public.parent);
		CREATE TABLE public.other (id int);
		INSERT INTO public.parent VALUES (1), (2); INSERT INTO public.child VALUES (1, 1); INSERT INTO public.other VALUES (1)`)
	tr := func(table string) wire.Event {
		return wire.Event{Schema: "public", Table: table, Op: wire.OpTruncate}
	}
	err := applyEvents(db, tr("parent"))
	if database.SQLState(err) != pqerror.FeatureNotSupported || !strings.Contains(err.Error(), `truncate ONLY "public"."parent"`) {
		t.Errorf("truncate of a referenced table alone = %v, want 0A000 naming the table", err)
	}
	mustApply(t, db, tr("child"), tr("parent"), tr("child"))
	var n int
	if err := db.QueryRow(`SELECT (SELECT count(*) FROM public.parent) + (SELECT count(*) FROM public.child) + 10 * (SELECT count(*) FROM public.other)`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 10 {
		t.Errorf("after truncating child and parent, they hold %d rows and other %d, want 0 and 1", n%10, n/10)
	}
}

func TestApplyEvents_Conflict(t *testing.T) {
	t.Parallel()
	db, _ := dbtest.Migrated(t)
	dbtest.Exec(t, db, `CREATE SCHEMA test; CREATE TABLE test.users (id int PRIMARY KEY, name text);
		INSERT INTO test.users VALUES (1, 'a'), (2, 'b')`)
	ins := wire.Event{ID: 1, Schema: "test", Table: "users", Op: wire.OpInsert, Rows: 1,
		Data: json.RawMessage(`[{"id":3,"name":"c"}]`)}
	upd := wire.Event{ID: 2, Schema: "test", Table: "users", Op: wire.OpUpdate, Rows: 5,
		Data: json.RawMessage(`[[{"id":1,"name":"a"},{"id":1,"name":"A"}],[{"id":2,"name":"b"},{"id":2,"name":"B"}],
			[{"id":7},{"id":7}],[{"id":8},{"id":8}],[{"id":9},{"id":9}]]`)}
	err := applyEvents(db, ins, upd)
	if !errors.Is(err, apply.ErrConflict) {
		t.Fatalf("ApplyEvents(update of missing rows) = %v, want ErrConflict", err)
	}
	if want := `update "test"."users": 3 of 5 rows not found`; err.Error() != want {
		t.Errorf("ApplyEvents error = %q, want %q", err, want)
	}
	want := []string{"(1,a)", "(2,b)"}
	if got := tableText(t, db, "test.users", "id"); !slices.Equal(got, want) {
		t.Errorf("after the conflict test.users = %v, want %v: nothing applied", got, want)
	}

	del := wire.Event{ID: 3, Schema: "test", Table: "users", Op: wire.OpDelete, Rows: 1, Data: json.RawMessage(`[{"id":42}]`)}
	if err := applyEvents(db, del); !errors.Is(err, apply.ErrConflict) {
		t.Errorf("ApplyEvents(delete of a missing row) = %v, want ErrConflict", err)
	}
	dup := wire.Event{ID: 4, Schema: "test", Table: "users", Op: wire.OpInsert, Rows: 1, Data: json.RawMessage(`[{"id":1,"name":"again"}]`)}
	if err := applyEvents(db, dup); database.SQLState(err) != pqerror.UniqueViolation || !strings.HasPrefix(err.Error(), `insert into "test"."users": `) {
		t.Errorf("ApplyEvents(duplicate insert) = %v, want 23505 naming the table", err)
	}
}

func TestApplyEvents_SchemaBehind(t *testing.T) {
	t.Parallel()
	db, _ := dbtest.Migrated(t)
	dbtest.Exec(t, db, `CREATE TABLE public.t (id int PRIMARY KEY)`)
	missingSchema := "3F000"
	if dbtest.Shared(t).Major() >= 16 {
		missingSchema = "42P01" // PostgreSQL 16 reports the relation, not its schema
	}
	tests := []struct {
		name  string
		ev    wire.Event
		state string
	}{
		{"missing table", wire.Event{Schema: "public", Table: "nope", Op: wire.OpInsert, Rows: 1, Data: json.RawMessage(`[{"id":1}]`)}, "42P01"},
		{"missing schema", wire.Event{Schema: "nope", Table: "t", Op: wire.OpDelete, Rows: 1, Data: json.RawMessage(`[{"id":1}]`)}, missingSchema},
		{"missing column", wire.Event{Schema: "public", Table: "t", Op: wire.OpInsert, Rows: 1, Data: json.RawMessage(`[{"id":1,"new col":2}]`)}, "42703"},
		{"truncate of a missing table", wire.Event{Schema: "public", Table: "nope", Op: wire.OpTruncate}, "42P01"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := applyEvents(db, tt.ev)
			var pe *pq.Error
			if !errors.As(err, &pe) || string(pe.Code) != tt.state {
				t.Errorf("ApplyEvents = %v, want a *pq.Error with SQLSTATE %s", err, tt.state)
			}
		})
	}
}

func TestApplyEvents_GeneratedAndIdentity(t *testing.T) {
	t.Parallel()
	db, _ := dbtest.Migrated(t)
	const def = `(id int GENERATED ALWAYS AS IDENTITY PRIMARY KEY, x int, g int GENERATED ALWAYS AS (x * 2) STORED,
		y bigint GENERATED BY DEFAULT AS IDENTITY)`
	dbtest.Exec(t, db, `CREATE TABLE public.src `+def+`; CREATE TABLE public.dst `+def)
	dbtest.Exec(t, db, `INSERT INTO public.src (x) VALUES (1), (2); INSERT INTO public.src (id, x, y) OVERRIDING SYSTEM VALUE VALUES (10, 3, 77)`)
	ev := func(op wire.Op, rows int, data json.RawMessage) wire.Event {
		return wire.Event{Schema: "public", Table: "dst", Op: op, Rows: rows, Data: data}
	}
	mustApply(t, db, ev(wire.OpInsert, 3, rowsJSON(t, db, `SELECT * FROM public.src ORDER BY id`)))
	sameRows(t, db, "public.src", "public.dst", "id", "after insert")
	olds := rowsJSON(t, db, `SELECT * FROM public.src ORDER BY id`)
	dbtest.Exec(t, db, `UPDATE public.src SET x = x + 100, y = y + 1`)
	mustApply(t, db, ev(wire.OpUpdate, 3, pairs(t, olds, rowsJSON(t, db, `SELECT * FROM public.src ORDER BY id`))))
	sameRows(t, db, "public.src", "public.dst", "id", "after update")

	olds = rowsJSON(t, db, `SELECT * FROM public.src WHERE id = 10`)
	dbtest.Exec(t, db, `UPDATE public.src SET id = DEFAULT WHERE id = 10`)
	err := applyEvents(db, ev(wire.OpUpdate, 1, pairs(t, olds, rowsJSON(t, db, `SELECT * FROM public.src WHERE x = 103`))))
	if err == nil || !strings.Contains(err.Error(), "GENERATED ALWAYS AS IDENTITY") {
		t.Errorf("ApplyEvents(update of an identity column) = %v, want an error saying why", err)
	}
}

func TestApplyEvents_Refused(t *testing.T) {
	t.Parallel()
	db, _ := dbtest.Migrated(t)
	for _, e := range []wire.Event{
		{Schema: "teleport", Table: "source", Op: wire.OpDelete, Rows: 1, Data: json.RawMessage(`[{"name":"x"}]`)},
		{Schema: "pg_catalog", Table: "pg_class", Op: wire.OpTruncate},
		{Schema: "public", Table: "t", Op: "X", Rows: 1, Data: json.RawMessage(`[{}]`)},
	} {
		if err := applyEvents(db, e); err == nil {
			t.Errorf("ApplyEvents(%s %s.%s) = nil, want an error", e.Op, e.Schema, e.Table)
		}
	}
}

// TestSetApplyOrigin: database.SetApplyOrigin (an initial load's) and
// TableCache.Begin (the applier's, here as a role that may not set
// session_replication_role) set teleport.origin for the transaction only.
func TestSetApplyOrigin(t *testing.T) {
	t.Parallel()
	db, _ := dbtest.Migrated(t)
	for name, set := range map[string]func(ctx context.Context, tx *sql.Tx, source string) error{
		"SetApplyOrigin": database.SetApplyOrigin,
		"Begin":          apply.NewTableCache(false).Begin,
	} {
		var got, after sql.NullString
		err := database.InTx(context.Background(), db, func(tx *sql.Tx) error {
			if err := set(context.Background(), tx, `o'ne "src"`); err != nil {
				return err
			}
			return tx.QueryRow(`SELECT current_setting('teleport.origin', true)`).Scan(&got)
		})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if err := db.QueryRow(`SELECT nullif(current_setting('teleport.origin', true), '')`).Scan(&after); err != nil {
			t.Fatal(err)
		}
		if got.String != `o'ne "src"` || after.Valid {
			t.Errorf("%s: teleport.origin = %q in the transaction, %v after; want o'ne \"src\", then unset", name, got.String, after)
		}
	}
}
