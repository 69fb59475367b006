package main

import (
	"context"
	"database/sql"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/pagarme/teleport/database/dbtest"
	"github.com/pagarme/teleport/server/wire"
)

func TestE2E_RowsReplicate(t *testing.T) {
	p := newPair(t, "test", `
		CREATE TABLE items (id bigserial PRIMARY KEY, name text NOT NULL, qty int);
		CREATE TABLE log (at timestamptz, msg text)`)
	execSQL(t, p.srcDB, `INSERT INTO public.items (name, qty) SELECT 'item ' || i, i FROM generate_series(1, 500) i`)
	execSQL(t, p.srcDB, `INSERT INTO public.log VALUES (now(), 'a'), (now(), 'a'), (now(), 'b')`)
	p.waitSame(t, 30*time.Second, "items", "log")
	execSQL(t, p.srcDB, `UPDATE public.items SET qty = qty * 2 WHERE id % 3 = 0`)
	execSQL(t, p.srcDB, `UPDATE public.items SET id = id + 10000 WHERE id <= 10`)
	execSQL(t, p.srcDB, `DELETE FROM public.items WHERE id % 5 = 0`)
	execSQL(t, p.srcDB, `DELETE FROM public.log WHERE ctid = (SELECT ctid FROM public.log WHERE msg = 'a' LIMIT 1)`)
	execSQL(t, p.srcDB, `UPDATE public.log SET msg = 'c' WHERE msg = 'b'`)
	p.waitSame(t, 30*time.Second, "items", "log")
	execSQL(t, p.srcDB, `TRUNCATE public.items`)
	execSQL(t, p.srcDB, `INSERT INTO public.items (name) VALUES ('after truncate')`)
	p.waitSame(t, 30*time.Second, "items", "log")

	// Once idle, both sides' /status agree that everything is applied.
	dbtest.WaitFor(t, 10*time.Second, "source /status to show the target caught up", func() bool {
		st, _, err := getStatus(p.srcPort, "")
		return err == nil && len(st.Targets) == 1 && st.Targets[0].LastSeq > 0 &&
			st.Targets[0].AppliedSeq == st.Targets[0].LastSeq && st.Targets[0].LagSeconds == 0
	})
	st, _, err := getStatus(p.dstPort, "")
	if err != nil || len(st.Sources) != 1 || st.Sources[0].Name != "src" || st.Sources[0].Held || st.Sources[0].AppliedSeq != st.Sources[0].ReceivedSeq {
		t.Errorf("target /status = %+v, %v; want source src, nothing held, everything received applied", st.Sources, err)
	}
	if err := p.stopSrc(); err != nil {
		t.Errorf("source instance: %v", err)
	}
	if err := p.stopDst(); err != nil {
		t.Errorf("target instance: %v", err)
	}
}

// TestE2E_LateCommitter: a transaction that wrote first and committed last,
// after batches holding later event ids were applied, still arrives.
func TestE2E_LateCommitter(t *testing.T) {
	p := newPair(t, "", `CREATE TABLE t (id int PRIMARY KEY, v text)`)
	late, err := p.srcDB.Begin()
	if err != nil {
		t.Fatal(err)
	}
	defer late.Rollback()
	if _, err := late.Exec(`INSERT INTO public.t VALUES (0, 'late')`); err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 20; i++ {
		execSQL(t, p.srcDB, `INSERT INTO public.t VALUES ($1, 'early')`, i)
	}
	p.waitSame(t, 30*time.Second, "t")
	if err := late.Commit(); err != nil {
		t.Fatal(err)
	}
	p.waitSame(t, 30*time.Second, "t")
	var v string
	if err := p.dstDB.QueryRow(`SELECT v FROM public.t WHERE id = 0`).Scan(&v); err != nil || v != "late" {
		t.Errorf("late committer's row on the target = %q, %v; want 'late'", v, err)
	}
}

// TestE2E_WholeTransactions: a reader on the target never sees part of a
// source transaction: transfers keep the total balance constant, and the
// target's total is sampled while they run.
func TestE2E_WholeTransactions(t *testing.T) {
	p := newPair(t, "test", `CREATE TABLE acct (id int PRIMARY KEY, balance bigint NOT NULL)`)
	const accounts, total = 50, 50 * 1000
	execSQL(t, p.srcDB, `INSERT INTO public.acct SELECT i, 1000 FROM generate_series(1, $1) i`, accounts)
	p.waitSame(t, 30*time.Second, "acct")
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Second)
	defer cancel()
	done := make(chan error, 4)
	for w := range 3 {
		go func() {
			for i := 0; ctx.Err() == nil; i++ {
				from, to := (i*7+w)%accounts+1, (i*13+w*5)%accounts+1
				if err := transfer(ctx, p.srcDB, from, to, 7); err != nil && ctx.Err() == nil {
					done <- err
					return
				}
			}
			done <- nil
		}()
	}
	samples, bad := 0, 0
	go func() {
		for ctx.Err() == nil {
			var sum int64
			if err := p.dstDB.QueryRow(`SELECT coalesce(sum(balance), 0) FROM test.acct`).Scan(&sum); err == nil {
				samples++
				if sum != total {
					bad++
				}
			}
		}
		done <- nil
	}()
	for range 4 {
		if err := <-done; err != nil {
			t.Fatalf("workload: %v", err)
		}
	}
	p.waitSame(t, 30*time.Second, "acct")
	if bad > 0 || samples == 0 {
		t.Errorf("target total balance differed from %d in %d of %d samples", total, bad, samples)
	}
	t.Logf("%d samples of the target's total, all %d", samples, total)
}

// transfer moves amount from one account to another in one transaction,
// locking the lower id first so concurrent transfers never deadlock.
func transfer(ctx context.Context, db *sql.DB, from, to int, amount int) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	first, second, d1, d2 := from, to, -amount, amount
	if to < from {
		first, second, d1, d2 = to, from, amount, -amount
	}
	if _, err := tx.ExecContext(ctx, `UPDATE public.acct SET balance = balance + $2 WHERE id = $1`, first, d1); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `UPDATE public.acct SET balance = balance + $2 WHERE id = $1`, second, d2); err != nil {
		return err
	}
	return tx.Commit()
}

// TestE2E_ValueFidelity: every value arrives equal as text.
func TestE2E_ValueFidelity(t *testing.T) {
	p := newPair(t, "test", `
		CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
		CREATE TYPE pt AS (x numeric, label text);
		CREATE TABLE vals (
			id int PRIMARY KEY, n numeric, f8 float8, f4 real, i8 bigint, b bytea,
			ia int[], ta text[], j json, jb jsonb, comp pt, m mood, iv interval,
			ts timestamptz, tsn timestamp, d date, tm timetz, big text, s text,
			bo boolean, u uuid, ip inet, r int4range, bits varbit)`)
	// The type names are unqualified: the target resolves them in apply_schema.
	execSQL(t, p.srcDB, `SET search_path = public`)
	rows := []string{
		`(1, 1234567890123456789012345678901234.567890, 1.7976931348623157e308, 3.4e38, 9223372036854775807,
		  '\x00ff10'::bytea, '{1,NULL,3}', '{"a b","","NULL",NULL,"quote\"d","back\\slash"}',
		  '{"b": 1,  "a" : [1, 2 ,3], "a": "dup"}', '{"k": [1, {"n": null}], "u": "\u00e9"}',
		  ROW(0.1, 'lbl')::public.pt, 'happy', '1 year 2 mons 3 days 04:05:06.789',
		  '2024-02-29 23:59:59.999999+05:30', '0001-01-01 00:00:00', 'infinity', '12:34:56+02',
		  repeat('x', 1048576), 'unicode ✓ 日本語 🚀 ümlaut', true, 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11',
		  '2001:db8::1/64', '[1,10)', B'10101')`,
		`(2, 'NaN', 'NaN', '-Infinity', -9223372036854775808, ''::bytea, '{}', '{}', '[]', '{}',
		  ROW(NULL, '')::public.pt, 'sad', '-1 days +00:00:00.000001', '-infinity', '294276-12-31 23:59:59',
		  '-infinity', '00:00:00-12', '', '', false, NULL, '0.0.0.0', 'empty', B'')`,
		`(3, 'Infinity', 'Infinity', 'Infinity', 0, NULL, '{{1,2},{3,4}}', '{NULL}', '"string"', '3.14',
		  NULL, NULL, '0', '1970-01-01 00:00:00+00', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)`,
		`(4, '-0.000000000000000000000000000000000000001', '-0', '1e-45', 1, '\x5c27', '{-1}', '{"\\t"}',
		  '{"nested": {"deep": [true, false, null]}}', '{"a": 1e400}', ROW(-1e-30, 'x,y')::public.pt, 'ok',
		  '-178000000 years', '2000-01-01 12:00:00.123456-03', '2000-01-01', '2000-01-01', '24:00:00+00', 'tab	and
		  newline', 'NULL', NULL, NULL, '::1', '(,)', NULL)`,
	}
	if min(p.src.Major(), p.dst.Major()) < 14 {
		// numeric has no infinities before PostgreSQL 14.
		rows[2] = strings.Replace(rows[2], `(3, 'Infinity'`, `(3, 'NaN'`, 1)
	}
	for _, r := range rows {
		execSQL(t, p.srcDB, `INSERT INTO public.vals VALUES `+r)
	}
	execSQL(t, p.srcDB, `UPDATE public.vals SET s = s || ' updated', n = n * 2 WHERE id IN (1, 4)`)
	p.waitSame(t, 30*time.Second, "vals")
	// waitSame compares whole rows as text; compare column by column too, so
	// a failure names the column.
	srcRows, dstRows := rowTexts(t, p.srcDB, "public.vals"), rowTexts(t, p.dstDB, "test.vals")
	for k, v := range srcRows {
		if dstRows[k] != v {
			t.Errorf("vals %s: target %.200q, source %.200q", k, dstRows[k], v)
		}
	}
}

// rowTexts maps "id/column" to the column's text for every row of table.
func rowTexts(t *testing.T, db *sql.DB, table string) map[string]string {
	t.Helper()
	rows, err := db.Query(`SELECT whole_row.id::text || '/' || kv.key, coalesce(kv.value::text, '<NULL>')
		FROM ` + table + ` whole_row, jsonb_each(to_jsonb(whole_row.*)) kv`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	m := map[string]string{}
	for rows.Next() {
		var k, v string
		if err := rows.Scan(&k, &v); err != nil {
			t.Fatal(err)
		}
		m[k] = v
	}
	return m
}

// TestE2E_MixedWorkload runs concurrent transactions of every kind on several
// tables and checks both sides end identical.
func TestE2E_MixedWorkload(t *testing.T) {
	p := newPair(t, "test", `
		CREATE TABLE branches (bid int PRIMARY KEY, bbalance bigint NOT NULL DEFAULT 0);
		CREATE TABLE accounts (aid int PRIMARY KEY, bid int REFERENCES branches, abalance bigint NOT NULL DEFAULT 0, filler text);
		CREATE TABLE history (aid int, bid int, delta int, mtime timestamptz DEFAULT now(), note text);
		CREATE TABLE parent (id int PRIMARY KEY, name text);
		CREATE TABLE child (id int PRIMARY KEY, parent_id int NOT NULL REFERENCES parent ON DELETE CASCADE, v text);
		CREATE TABLE "Weird ""Name"" Tbl" ("Id" int PRIMARY KEY, "Some Col" text, "quote""d" text, "UPPER" int)`)
	execSQL(t, p.srcDB, `INSERT INTO public.branches SELECT i FROM generate_series(1, 5) i`)
	execSQL(t, p.srcDB, `INSERT INTO public.accounts SELECT i, 1 + i % 5, 0, 'filler' FROM generate_series(1, 2000) i`)
	tables := []string{"branches", "accounts", "history", "parent", "child", `"Weird ""Name"" Tbl"`}

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	workers := []func(i int) error{
		func(i int) error { // pgbench-like transaction
			aid, bid, delta := 1+(i*37)%2000, 1+i%5, i%100-50
			tx, err := p.srcDB.BeginTx(ctx, nil)
			if err != nil {
				return err
			}
			defer tx.Rollback()
			for _, q := range []string{
				`UPDATE public.accounts SET abalance = abalance + $2 WHERE aid = $1`,
				`UPDATE public.branches SET bbalance = bbalance + $2 WHERE bid = $1`,
			} {
				key := aid
				if strings.Contains(q, "branches") {
					key = bid
				}
				if _, err := tx.ExecContext(ctx, q, key, delta); err != nil {
					return err
				}
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO public.history (aid, bid, delta, note) VALUES ($1, $2, $3, CASE WHEN $3 % 2 = 0 THEN NULL ELSE '' END)`, aid, bid, delta); err != nil {
				return err
			}
			return tx.Commit()
		},
		func(i int) error { // parents and children, cascades, primary key changes
			id := 1000 + i
			stmts := []string{
				fmt.Sprintf(`INSERT INTO public.parent VALUES (%d, 'p%d')`, id, i),
				fmt.Sprintf(`INSERT INTO public.child SELECT %d * 10 + g, %d, 'c' FROM generate_series(0, 2) g`, id, id),
			}
			switch i % 4 {
			case 1:
				stmts = append(stmts, fmt.Sprintf(`DELETE FROM public.parent WHERE id = %d`, id-1))
			case 2:
				stmts = append(stmts, fmt.Sprintf(`UPDATE public.child SET id = id + 1000000 WHERE parent_id = %d`, id))
			case 3:
				stmts = append(stmts, fmt.Sprintf(`UPDATE public.parent SET name = name || '!' WHERE id %% 3 = %d`, i%3))
			}
			_, err := p.srcDB.ExecContext(ctx, "BEGIN; "+strings.Join(stmts, "; ")+"; COMMIT")
			return err
		},
		func(i int) error { // bulk statements, no-PK updates and deletes, truncate
			var q string
			switch i % 5 {
			case 0:
				q = fmt.Sprintf(`UPDATE public.accounts SET filler = md5(filler) WHERE aid %% 7 = %d`, i%7)
			case 1:
				q = `DELETE FROM public.history WHERE ctid IN (SELECT ctid FROM public.history ORDER BY random() LIMIT 3)`
			case 2:
				q = `UPDATE public.history SET note = 'seen' WHERE ctid IN (SELECT ctid FROM public.history WHERE note IS NULL LIMIT 2)`
			case 3:
				q = fmt.Sprintf(`INSERT INTO public."Weird ""Name"" Tbl" SELECT g, 'v ' || g, 'q''"', g %% 3 FROM generate_series(%d, %d) g`, i*10, i*10+9)
			case 4:
				q = `TRUNCATE public."Weird ""Name"" Tbl"`
			}
			_, err := p.srcDB.ExecContext(ctx, q)
			return err
		},
	}
	errc := make(chan error, len(workers))
	for _, w := range workers {
		go func() {
			for i := 0; ctx.Err() == nil; i++ {
				if err := w(i); err != nil && ctx.Err() == nil && !strings.Contains(err.Error(), "deadlock") {
					errc <- err
					return
				}
			}
			errc <- nil
		}()
	}
	for range workers {
		if err := <-errc; err != nil {
			t.Fatalf("workload: %v", err)
		}
	}
	p.waitSame(t, 60*time.Second, tables...)
	var events int
	if err := p.dstDB.QueryRow(`SELECT applied_seq FROM teleport.source`).Scan(&events); err != nil {
		t.Fatal(err)
	}
	t.Logf("converged after %d batches", events)
}

// TestE2E_TwoWay: two instances, each the other's source and target with the
// same expression, writing different rows of the same tables: they converge
// and nothing echoes back (an echoed insert would be held as a duplicate key).
func TestE2E_TwoWay(t *testing.T) {
	setPasswordEnv(t)
	ca, cb := sourceCluster(t), targetCluster(t)
	dbA, nameA := ca.NewDB(t)
	dbB, nameB := cb.NewDB(t)
	schema := `CREATE TABLE public.kv (k int PRIMARY KEY, v text, n int NOT NULL DEFAULT 0)`
	execSQL(t, dbA, schema)
	execSQL(t, dbB, schema)
	portA, portB := freePort(t), freePort(t)
	tgt := func(name string, port int) string {
		return fmt.Sprintf("  %s:\n    target_expression: \"public.*\"\n    endpoint:\n      hostname: \"127.0.0.1\"\n      port: %d\n", name, port)
	}
	startInstance(t, writeConfig(t, instance{name: "a", c: ca, dbname: nameA, port: portA, targets: tgt("b", portB)}), portA, "")
	startInstance(t, writeConfig(t, instance{name: "b", c: cb, dbname: nameB, port: portB, targets: tgt("a", portA)}), portB, "")
	for i := range 200 {
		db, k := dbA, 2*i
		if i%2 == 1 {
			db, k = dbB, 2*i+1
		}
		execSQL(t, db, `INSERT INTO public.kv (k, v) VALUES ($1, 'new')`, k)
		if i%10 == 0 {
			execSQL(t, db, `UPDATE public.kv SET n = n + 1, v = 'updated' WHERE k % 4 = $1 % 4`, k)
		}
	}
	execSQL(t, dbA, `DELETE FROM public.kv WHERE k % 20 = 0`)
	dbtest.WaitFor(t, 60*time.Second, "both sides to converge", func() bool {
		a, errA := checksum(dbA, "public.kv")
		b, errB := checksum(dbB, "public.kv")
		return errA == nil && errB == nil && a == b
	})
	for name, db := range map[string]*sql.DB{"a": dbA, "b": dbB} {
		var held sql.NullString
		if err := db.QueryRow(`SELECT max(error) FROM teleport.source`).Scan(&held); err != nil {
			t.Fatal(err)
		}
		if held.Valid {
			t.Errorf("instance %s holds a batch: %s", name, held.String)
		}
	}
	// Give a would-be echo time to travel back, then check again.
	time.Sleep(time.Second)
	a, _ := checksum(dbA, "public.kv")
	b, _ := checksum(dbB, "public.kv")
	if a != b {
		t.Errorf("after a second more: a %s, b %s", a, b)
	}
	var echoed int
	if err := dbA.QueryRow(`SELECT count(*) FROM teleport.source WHERE error IS NOT NULL`).Scan(&echoed); err != nil || echoed != 0 {
		t.Errorf("instance a held batches: %d (%v)", echoed, err)
	}
}

// TestE2E_ConflictHeld: a change that cannot be applied stops the stream at
// its batch, says why in /status, and resumes once the cause is fixed or the
// operator skips the batch; nothing after it is applied out of order.
func TestE2E_ConflictHeld(t *testing.T) {
	p := newPair(t, "", `CREATE TABLE t (id int PRIMARY KEY, v text)`)
	heldStatus := func(want string) wire.SourceStatus {
		t.Helper()
		var src wire.SourceStatus
		dbtest.WaitFor(t, 20*time.Second, "the target to hold a batch with "+want, func() bool {
			st, _, err := getStatus(p.dstPort, "")
			if err != nil || len(st.Sources) != 1 {
				return false
			}
			src = st.Sources[0]
			return src.Held && strings.Contains(src.Error, want)
		})
		return src
	}
	execSQL(t, p.dstDB, `INSERT INTO public.t VALUES (1, 'already here')`)
	execSQL(t, p.srcDB, `INSERT INTO public.t VALUES (1, 'from source')`)
	execSQL(t, p.srcDB, `INSERT INTO public.t VALUES (2, 'behind the conflict')`)
	heldStatus("duplicate key")
	var n int
	if err := p.dstDB.QueryRow(`SELECT count(*) FROM public.t WHERE id = 2`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("row 2 applied while batch before it is held: %d, %v", n, err)
	}
	execSQL(t, p.dstDB, `DELETE FROM public.t WHERE id = 1`)
	p.waitSame(t, 30*time.Second, "t")

	execSQL(t, p.dstDB, `DELETE FROM public.t WHERE id = 2`)
	execSQL(t, p.srcDB, `UPDATE public.t SET v = 'changed' WHERE id = 2`)
	held := heldStatus("not found")
	body := fmt.Sprintf(`{"seq": %d}`, held.HeldSeq)
	resp, err := http.Post(fmt.Sprintf("http://127.0.0.1:%d/sources/src/skip", p.dstPort), "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("POST skip %s = %d, want 200", body, resp.StatusCode)
	}
	execSQL(t, p.srcDB, `INSERT INTO public.t VALUES (3, 'after the skip')`)
	dbtest.WaitFor(t, 20*time.Second, "row 3 after the skipped batch", func() bool {
		var v string
		return p.dstDB.QueryRow(`SELECT v FROM public.t WHERE id = 3`).Scan(&v) == nil && v == "after the skip"
	})
	if err := p.dstDB.QueryRow(`SELECT count(*) FROM public.t WHERE id = 2`).Scan(&n); err != nil || n != 0 {
		t.Errorf("row 2 on the target = %d rows, want 0: the skipped update is not applied", n)
	}
	resp, err = http.Post(fmt.Sprintf("http://127.0.0.1:%d/sources/src/skip", p.dstPort), "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusConflict {
		t.Errorf("skipping an applied batch again = %d, want 409", resp.StatusCode)
	}
}

// TestE2E_NewTable: a table created while both instances run (on the target
// too, since schema changes are not replicated yet) is captured by the
// ddlwatcher, and the rows written before its triggers existed arrive too.
func TestE2E_NewTable(t *testing.T) {
	p := newPair(t, "test", `CREATE TABLE existing (id int PRIMARY KEY)`)
	execSQL(t, p.dstDB, `CREATE TABLE test.fresh (id int PRIMARY KEY, v text)`)
	execSQL(t, p.srcDB, `CREATE TABLE public.fresh (id int PRIMARY KEY, v text)`)
	execSQL(t, p.srcDB, `INSERT INTO public.fresh SELECT i, 'before capture' FROM generate_series(1, 300) i`)
	dbtest.WaitFor(t, 30*time.Second, "the ddlwatcher to capture public.fresh", func() bool {
		var n int
		return p.srcDB.QueryRow(`SELECT count(*) FROM pg_trigger WHERE tgrelid = 'public.fresh'::regclass`).Scan(&n) == nil && n == 4
	})
	execSQL(t, p.srcDB, `UPDATE public.fresh SET v = 'after capture' WHERE id % 2 = 0`)
	execSQL(t, p.srcDB, `INSERT INTO public.fresh VALUES (301, 'after capture')`)
	p.waitSame(t, 30*time.Second, "fresh")
}
