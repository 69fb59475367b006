package main

import (
	"context"
	"database/sql"
	"fmt"
	"testing"
	"time"

	"github.com/pagarme/teleport/database/dbtest"
)

// pair is a source and a target: two clusters, two databases, two instances
// talking HTTP over loopback, both as the unprivileged role.
type pair struct {
	src, dst         *dbtest.Cluster
	srcDB, dstDB     *sql.DB
	srcName, dstName string
	srcPort, dstPort int
	srcCfg, dstCfg   string
	applySchema      string // "" keeps public
	stopSrc, stopDst func() error
}

// newPair creates schemaSQL (unqualified names) in public on the source and
// in applySchema (or public) on the target, writes both configs and starts
// both instances.
func newPair(t *testing.T, applySchema, schemaSQL string) *pair {
	t.Helper()
	t.Setenv("TELEPORT_TEST_PW", dbtest.RolePassword)
	p := &pair{src: dbtest.Shared(t), dst: dbtest.Start(t), applySchema: applySchema}
	p.srcDB, p.srcName = p.src.NewDB(t)
	p.dstDB, p.dstName = p.dst.NewDB(t)
	execSQL(t, p.srcDB, "BEGIN; SET LOCAL search_path = public; "+schemaSQL+"; COMMIT")
	dstSchema := "public"
	if applySchema != "" {
		dstSchema = applySchema
		execSQL(t, p.dstDB, "CREATE SCHEMA "+applySchema)
	}
	execSQL(t, p.dstDB, "BEGIN; SET LOCAL search_path = "+dstSchema+"; "+schemaSQL+"; COMMIT")
	p.srcPort, p.dstPort = freePort(t), freePort(t)
	target := fmt.Sprintf("  dst:\n    target_expression: \"public.*\"\n    endpoint:\n      hostname: \"127.0.0.1\"\n      port: %d\n", p.dstPort)
	if applySchema != "" {
		target += fmt.Sprintf("    apply_schema: %q\n", applySchema)
	}
	p.dstCfg = writeConfig(t, instance{name: "dst", c: p.dst, dbname: p.dstName, port: p.dstPort})
	p.srcCfg = writeConfig(t, instance{name: "src", c: p.src, dbname: p.srcName, port: p.srcPort, targets: target})
	p.startDst(t)
	p.startSrc(t)
	return p
}

func (p *pair) startSrc(t *testing.T) {
	p.stopSrc = startInstance(t, p.srcCfg)
	waitStatus(t, p.srcPort, "")
}

func (p *pair) startDst(t *testing.T) {
	p.stopDst = startInstance(t, p.dstCfg)
	waitStatus(t, p.dstPort, "")
}

// dstTable names table on the target.
func (p *pair) dstTable(table string) string {
	if p.applySchema == "" {
		return "public." + table
	}
	return p.applySchema + "." + table
}

func execSQL(t testing.TB, db *sql.DB, q string, args ...any) {
	t.Helper()
	if _, err := db.Exec(q, args...); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}

// checksum is a table's row count and the md5 of its rows as text, sorted.
func checksum(db *sql.DB, table string) (string, error) {
	var n int
	var sum string
	err := db.QueryRow(`SELECT count(*), coalesce(md5(string_agg(t::text, E'\n' ORDER BY t::text)), '') FROM `+table+` t`).Scan(&n, &sum)
	return fmt.Sprintf("%d rows, md5 %s", n, sum), err
}

// waitSame waits until each table has the same rows on both sides.
func (p *pair) waitSame(t *testing.T, timeout time.Duration, tables ...string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for _, table := range tables {
		for {
			a, errA := checksum(p.srcDB, "public."+table)
			b, errB := checksum(p.dstDB, p.dstTable(table))
			if errA == nil && errB == nil && a == b {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("table %s: source %s (%v), target %s (%v) after %v\n%s", table, a, errA, b, errB, timeout, p.dstStatus(t))
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
}

// dstStatus is the target's replication state, for failure messages.
func (p *pair) dstStatus(t *testing.T) string {
	var s string
	_ = p.dstDB.QueryRow(`SELECT coalesce(string_agg(format('%s applied %s error %s', name, applied_seq, error), '; '), 'no source') FROM teleport.source`).Scan(&s) // best effort, for the message only
	return s
}

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
