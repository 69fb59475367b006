package main

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pagarme/teleport/batcher"
	"github.com/pagarme/teleport/config"
	"github.com/pagarme/teleport/database/dbtest"
)

// verifyRun runs -mode verify against the pair's target and returns what
// it printed and its error.
func (p *pair) verifyRun(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out, log bytes.Buffer
	err := run(context.Background(), append([]string{"-config", p.srcCfg, "-mode", "verify", "-target", "dst"}, args...),
		&out, &syncWriter{w: &log})
	if err != nil && !errors.As(err, new(mismatch)) {
		t.Logf("verify log:\n%s\npair: %s", log.String(), p.dstStatus(t))
	}
	return out.String(), err
}

// TestE2E_Verify: verify compares a replica with its source exactly while
// writes go on, and never raises a false alarm; a row deleted, a value
// changed and a row added on the target, in a table with a key and in one
// without, make it exit with 2 naming exactly those tables and rows.
func TestE2E_Verify(t *testing.T) {
	t.Parallel()
	p := newPair(t, "", `
		CREATE TABLE accounts (id int PRIMARY KEY, balance bigint NOT NULL, note text);
		CREATE TABLE history (account int, delta int, at timestamptz DEFAULT now());
		CREATE TABLE quiet (id int PRIMARY KEY, v jsonb, f float8, d numeric, b bytea, ts timestamptz, iv interval)`)
	execSQL(t, p.srcDB, `INSERT INTO public.accounts SELECT g, 0, 'n' || g FROM generate_series(1, 2000) g`)
	execSQL(t, p.srcDB, `INSERT INTO public.quiet SELECT g, jsonb_build_object('k', g), g / 3.0, g / 7.0, '\x00ff', now(), g * interval '1 min' FROM generate_series(1, 50) g`)
	p.waitSame(t, time.Minute, "accounts", "quiet")

	// Writes go on throughout, on rows 100 and up of accounts and in history.
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := 0; ctx.Err() == nil; i++ {
			id := 100 + i%1900
			_, err := p.srcDB.ExecContext(ctx, fmt.Sprintf(`BEGIN; UPDATE public.accounts SET balance = balance + 1 WHERE id = %d;
				INSERT INTO public.history (account, delta) VALUES (%d, 1); COMMIT`, id, id))
			if err != nil && ctx.Err() == nil {
				t.Errorf("writer: %v", err)
				return
			}
		}
	})
	defer func() { cancel(); wg.Wait() }()

	for i := range 5 {
		out, err := p.verifyRun(t)
		if err != nil {
			t.Fatalf("verify %d under writes: %v\n%s", i+1, err, out)
		}
		if !strings.Contains(out, "3 tables equal") {
			t.Fatalf("verify %d under writes printed:\n%s\nwant 3 tables equal", i+1, out)
		}
		if i == 0 {
			t.Logf("verify under writes:\n%s", out)
		}
	}

	// The target drifts: in accounts (rows the writer leaves alone) one
	// row deleted, one value changed, one row added; in history, a table
	// without a key, one row added.
	execSQL(t, p.dstDB, `DELETE FROM public.accounts WHERE id = 5; UPDATE public.accounts SET note = 'changed' WHERE id = 7;
		INSERT INTO public.accounts VALUES (100000, 0, 'extra'); INSERT INTO public.history (account, delta) VALUES (-1, -1)`)
	out, err := p.verifyRun(t, "-json")
	var m mismatch
	if !errors.As(err, &m) {
		t.Fatalf("verify after the target drifted = %v, want tables differ (exit status 2)\n%s", err, out)
	}
	var rep verifyReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("verify -json printed %q: %v", out, err)
	}
	got := map[string]string{}
	for _, r := range rep.Tables {
		got[r.Table] = fmt.Sprintf("%s %d/%d", r.Result, r.SourceRows, r.TargetRows)
	}
	if !strings.HasPrefix(got["public.accounts"], "differs ") || !strings.HasPrefix(got["public.history"], "differs ") ||
		!strings.HasPrefix(got["public.quiet"], "equal ") || rep.Equal {
		t.Errorf("verify after the target drifted: %v (equal %v), want accounts and history differing, quiet equal", got, rep.Equal)
	}
	if s := strings.Join(m.tables, ","); s != "public.accounts,public.history" {
		t.Errorf("tables named as differing = %s, want public.accounts,public.history", s)
	}
	rows := map[string][]string{}
	for _, r := range rep.Tables {
		for _, d := range r.Rows {
			rows[r.Table] = append(rows[r.Table], d.Key+" "+d.Problem)
		}
	}
	if got, want := strings.Join(rows["public.accounts"], "; "), "(100000) extra on target; (5) missing on target; (7) values differ"; got != want {
		t.Errorf("rows of accounts named = %q, want %q", got, want)
	}
	if h := rows["public.history"]; len(h) != 1 || !strings.HasPrefix(h[0], "(-1,-1,") || !strings.HasSuffix(h[0], " extra on target") {
		t.Errorf("rows of history named = %q, want the one row added on the target", h)
	}

	out, err = p.verifyRun(t)
	if !errors.As(err, new(mismatch)) || !strings.Contains(out, "  (5)  missing on target\n") || !strings.Contains(out, "2 of 3 tables differ") {
		t.Errorf("verify after the target drifted printed (%v):\n%s\nwant the rows and the count of tables that differ", err, out)
	}
	t.Logf("verify after the target drifted:\n%s", out)

	// -tables limits the comparison.
	out, err = p.verifyRun(t, "-tables", "quiet")
	if err != nil || !strings.Contains(out, "1 tables equal") {
		t.Errorf("verify -tables quiet = %v\n%s\nwant the one table equal", err, out)
	}
	if _, err := p.verifyRun(t, "-tables", "nosuch"); err == nil || !strings.Contains(err.Error(), `"nosuch" is not a table this target takes`) {
		t.Errorf("verify -tables nosuch = %v, want it named as not taken", err)
	}

	// A resync copies a table again from a fresh snapshot while the
	// writer goes on: first history alone, then accounts, whose resync
	// leaves history's copy (and its snapshot) as it is. history is made
	// big enough for its copy to take a while, the writer adding to it.
	execSQL(t, p.srcDB, `INSERT INTO public.history (account, delta) SELECT g % 2000, 2 FROM generate_series(1, 300000) g`)
	if log, err := p.runLoad(t, "-tables", "public.history"); err != nil {
		t.Fatalf("resync of history: %v\n%s", err, log)
	}
	out, err = p.verifyRun(t)
	if !errors.As(err, new(mismatch)) || !strings.Contains(out, "1 of 3 tables differ") || !strings.Contains(out, "  (5)  missing on target\n") {
		t.Fatalf("verify after the resync of history printed (%v):\n%s\nwant only accounts differing", err, out)
	}
	if log, err := p.runLoad(t, "-tables", "accounts"); err != nil {
		t.Fatalf("resync of accounts: %v\n%s", err, log)
	}
	for i := range 2 {
		out, err = p.verifyRun(t)
		if err != nil || !strings.Contains(out, "3 tables equal") {
			t.Fatalf("verify %d after the resyncs = %v\n%s\nwant every table equal", i+1, err, out)
		}
	}
	l, ok := p.loadStatus(t)
	if !ok || !l.Resync || l.State != "finished" || len(l.Tables) != 1 || l.Tables[0].Table != `"public"."accounts"` {
		t.Errorf("target's load status after the resyncs = %+v, want the finished resync of public.accounts", l)
	}
	if log, err := p.runLoad(t, "-tables", "nosuch"); err == nil || !strings.Contains(err.Error(), `-tables: "nosuch" is not a table dst takes`) {
		t.Errorf("resync of nosuch = %v, want it named as not taken\n%s", err, log)
	}
}

// TestE2E_CutSnapshotReturnsTheCutBatch: cutSnapshot names the batch cut at
// its snapshot's tick, which stays the one a verify compares at when the
// batcher cuts more after it. (runVerify used to read the target's last
// batch once the cut had committed: when the batcher cut the next one in
// between, the target was compared one batch ahead of the source's
// snapshot, a false alarm TestE2E_Verify met on 13.)
func TestE2E_CutSnapshotReturnsTheCutBatch(t *testing.T) {
	t.Parallel()
	p := newPair(t, "", `CREATE TABLE t (id serial PRIMARY KEY)`)
	if err := p.stopDst(); err != nil { // batches then stay on the source
		t.Fatal(err)
	}
	cfg, err := config.Load(p.srcCfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	cut := batcher.New(p.srcDB, cfg, nil, slog.New(slog.DiscardHandler))
	for i := range 3 {
		execSQL(t, p.srcDB, `INSERT INTO public.t DEFAULT VALUES`)
		snap, tick, seq, err := cutSnapshot(ctx, p.srcDB, cfg, "dst")
		if err != nil {
			t.Fatal(err)
		}
		snap.Rollback() //nolint:errcheck // read only
		execSQL(t, p.srcDB, `INSERT INTO public.t DEFAULT VALUES`)
		if _, err := cut.RunOnce(ctx); err != nil {
			t.Fatal(err)
		}
		// The source instance's own batcher may have cut the row before
		// the snapshot's tick, leaving none for it: then the batch the
		// snapshot corresponds to is the last one before its tick.
		var want int64
		execSQLScan(t, p.srcDB, fmt.Sprintf(`SELECT max(seq) FROM teleport.batch WHERE target = 'dst' AND to_tick <= %d`, tick.ID), &want)
		if seq != want {
			t.Errorf("pass %d: cutSnapshot gave batch %d, the last batch cut up to its tick %d is %d", i, seq, tick.ID, want)
		}
	}
}

// TestE2E_VerifyPgbench: while pgbench writes to the source throughout,
// verify finds a loaded replica equal every time (3 runs); after rows are added on
// the target to pgbench_accounts and to pgbench_history (no primary key)
// it names them, and a resync of those two tables, pgbench still writing,
// makes it find every table equal again.
func TestE2E_VerifyPgbench(t *testing.T) {
	t.Parallel()
	p := newLoadPair(t, "", func(_ *sql.DB, c *dbtest.Cluster, name string) {
		pgbench(t, c, name, "-i", "-q", "-s", "1")
	})
	p.waitSchema(t, 60*time.Second, "public", "first sync")
	if log, err := p.runLoad(t); err != nil {
		t.Fatalf("load: %v\n%s", err, log)
	}
	stopWrites := pgbenchWrites(t, p, 300, "-n") // -n: history is not emptied between runs
	time.Sleep(time.Second)                      // pgbench under way
	for i := range 3 {
		out, err := p.verifyRun(t)
		if err != nil || !strings.Contains(out, "4 tables equal") {
			t.Fatalf("verify %d under pgbench = %v\n%s", i+1, err, out)
		}
	}
	// Rows pgbench never touches: an account beyond its scale, a history
	// row of a teller it has not.
	execSQL(t, p.dstDB, `INSERT INTO public.pgbench_accounts (aid, bid, abalance) VALUES (9000001, 1, 0);
		INSERT INTO public.pgbench_history (tid, bid, aid, delta, mtime) VALUES (-1, 1, 1, 5, '2020-01-01')`)
	out, err := p.verifyRun(t)
	if !errors.As(err, new(mismatch)) || !strings.Contains(out, "  (9000001)  extra on target\n") ||
		!strings.Contains(out, `  (-1,1,1,5,"2020-01-01 00:00:00",)  extra on target`) || !strings.Contains(out, "2 of 4 tables differ") {
		t.Fatalf("verify after the target drifted = %v\n%s\nwant the account and the history row named", err, out)
	}
	if log, err := p.runLoad(t, "-tables", "pgbench_accounts,pgbench_history"); err != nil {
		t.Fatalf("resync: %v\n%s", err, log)
	}
	for i := range 2 {
		out, err := p.verifyRun(t)
		if err != nil || !strings.Contains(out, "4 tables equal") {
			t.Fatalf("verify %d after the resync, pgbench writing = %v\n%s", i+1, err, out)
		}
	}
	if err := stopWrites(); err != nil {
		t.Fatal(err)
	}
}
