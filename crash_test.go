package main

import (
	"bytes"
	"compress/gzip"
	"context"
	crand "crypto/rand"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/pagarme/teleport/database/dbtest"
	"github.com/pagarme/teleport/server/wire"
)

// These tests prove guarantee 1 (no loss, no duplication) end to end, with
// the instances running as real processes of the teleport binary so that
// they can be SIGKILLed at any moment. Each process's stdout and stderr go
// to a file in t.TempDir(), whose last lines are logged when the test fails.
//
// The kill timings come from a seeded math/rand: rerun a failure with
// TELEPORT_CRASH_SEED=<the seed the test logged>.

// crashSeed returns the seed of this run's random timings, logging it.
func crashSeed(t *testing.T) uint64 {
	t.Helper()
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("TELEPORT_CRASH_SEED"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("TELEPORT_CRASH_SEED=%q: %v", s, err)
		}
		seed = v
	}
	t.Logf("seed %d (rerun with TELEPORT_CRASH_SEED=%d)", seed, seed)
	return seed
}

// crashProc is one instance run as a process of the real binary, restartable.
type crashProc struct {
	name  string
	bin   string
	cfg   string
	log   string // stdout and stderr of every run, appended
	port  int
	token string
	cur   *crashRun
	runs  int
}

// crashRun is one run of a crashProc.
type crashRun struct {
	cmd  *exec.Cmd
	done chan struct{} // closed once the process has exited
	err  error         // what Wait returned, once done is closed
}

// newCrashProc prepares an instance process; start runs it. The process is
// killed in t.Cleanup, and the tail of its log is logged if t failed.
func newCrashProc(t *testing.T, name, cfg string, port int, token string) *crashProc {
	t.Helper()
	bin, err := buildBinary()
	if err != nil {
		t.Fatal(err)
	}
	p := &crashProc{name: name, bin: bin, cfg: cfg, log: filepath.Join(t.TempDir(), name+".log"), port: port, token: token}
	t.Cleanup(func() {
		if p.cur != nil && !p.exited() {
			_ = p.cur.cmd.Process.Kill() // the test is over; how it dies no longer matters
			<-p.cur.done
		}
		if t.Failed() {
			t.Logf("last lines of instance %s's log %s:\n%s", p.name, p.log, crashTail(p.log, 80))
		}
	})
	return p
}

// start runs the instance and waits until it serves /status.
func (p *crashProc) start(t *testing.T) {
	t.Helper()
	p.spawn(t)
	p.waitUp(t)
}

// spawn runs the instance without waiting for it.
func (p *crashProc) spawn(t *testing.T) {
	t.Helper()
	if p.cur != nil && !p.exited() {
		t.Fatalf("instance %s: start while still running", p.name)
	}
	f, err := os.OpenFile(p.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close() // the child has its own descriptor
	p.runs++
	fmt.Fprintf(f, "=== test: run %d of %s at %s\n", p.runs, p.name, time.Now().Format("15:04:05.000000"))
	cmd := exec.Command(p.bin, "-config", p.cfg, "-log-level", "debug")
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		t.Fatalf("start instance %s: %v", p.name, err)
	}
	r := &crashRun{cmd: cmd, done: make(chan struct{})}
	go func() {
		r.err = cmd.Wait()
		close(r.done)
	}()
	p.cur = r
}

// waitUp waits until the instance serves /status, failing early if it exits.
func (p *crashProc) waitUp(t *testing.T) {
	t.Helper()
	dbtest.WaitFor(t, 20*time.Second, fmt.Sprintf("instance %s to serve /status on port %d", p.name, p.port), func() bool {
		if p.exited() {
			t.Fatalf("instance %s exited during start-up: %v", p.name, p.cur.err)
		}
		_, code, err := getStatus(p.port, p.token)
		return err == nil && code == http.StatusOK
	})
}

// exited reports whether the current run has ended.
func (p *crashProc) exited() bool {
	select {
	case <-p.cur.done:
		return true
	default:
		return false
	}
}

// kill SIGKILLs the instance and waits until it is gone.
func (p *crashProc) kill(t *testing.T) {
	t.Helper()
	if err := p.cur.cmd.Process.Signal(syscall.SIGKILL); err != nil && !p.exited() {
		t.Fatalf("kill instance %s: %v", p.name, err)
	}
	select {
	case <-p.cur.done:
	case <-time.After(10 * time.Second):
		t.Fatalf("instance %s still running 10s after SIGKILL", p.name)
	}
}

// term sends SIGTERM and returns how the process exited.
func (p *crashProc) term() error {
	if p.exited() {
		return fmt.Errorf("had exited already: %v", p.cur.err)
	}
	if err := p.cur.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		return err
	}
	select {
	case <-p.cur.done:
		return p.cur.err
	case <-time.After(10 * time.Second):
		return fmt.Errorf("still running 10s after SIGTERM")
	}
}

// crashTail returns the last n lines of a file.
func crashTail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// crashGrep returns the lines of a file that contain any of words.
func crashGrep(t *testing.T, path string, words ...string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, line := range strings.Split(string(b), "\n") {
		for _, w := range words {
			if strings.Contains(line, w) {
				out = append(out, line)
				break
			}
		}
	}
	return out
}

// crashPair is a source and a target like pair, but with both instances
// running as processes, the target on a private cluster that can be
// stopped, and the tables mapped from public on the source to test on the
// target.
type crashPair struct {
	src, dst     *dbtest.Cluster
	srcDB, dstDB *sql.DB
	srcProc      *crashProc
	dstProc      *crashProc
}

// crashPairOptions vary newCrashPair.
type crashPairOptions struct {
	token     string           // server.auth_token of the target, and auth_token of the source's entry for it
	via       func(int) string // given the target's port, the URL the source is to send to instead (a proxy)
	chunkRows int              // max_events_per_batch of the source; 0 keeps the default
	dstVacuum int              // processing_intervals.vacuum of the target, ms; 0 keeps writeConfig's
}

const crashApplySchema = "test"

// newCrashPair creates schemaSQL (unqualified names) in public on the source
// and in schema test on the target, writes both configs and starts both
// instances as processes.
func newCrashPair(t *testing.T, schemaSQL string, o crashPairOptions) *crashPair {
	t.Helper()
	setPasswordEnv(t)
	p := &crashPair{src: sourceCluster(t), dst: targetCluster(t)}
	var srcName, dstName string
	p.srcDB, srcName = p.src.NewDB(t)
	p.dstDB, dstName = p.dst.NewDB(t)
	execSQL(t, p.srcDB, "BEGIN; SET LOCAL search_path = public; "+schemaSQL+"; COMMIT")
	execSQL(t, p.dstDB, "CREATE SCHEMA "+crashApplySchema)
	execSQL(t, p.dstDB, "BEGIN; SET LOCAL search_path = "+crashApplySchema+"; "+schemaSQL+"; COMMIT")

	srcPort, dstPort := freePort(t), freePort(t)
	host, port := "127.0.0.1", dstPort
	if o.via != nil {
		u, err := url.Parse(o.via(dstPort))
		if err != nil {
			t.Fatal(err)
		}
		host = u.Hostname()
		if port, err = strconv.Atoi(u.Port()); err != nil {
			t.Fatal(err)
		}
	}
	target := fmt.Sprintf("  dst:\n    target_expression: \"public.*\"\n    endpoint:\n      hostname: %q\n      port: %d\n    apply_schema: %q\n",
		host, port, crashApplySchema)
	if o.token != "" {
		target += fmt.Sprintf("    auth_token: %q\n", o.token)
	}
	dstCfg := writeConfig(t, instance{name: "dst", c: p.dst, dbname: dstName, port: dstPort, token: o.token})
	srcCfg := writeConfig(t, instance{name: "src", c: p.src, dbname: srcName, port: srcPort, targets: target})
	if o.chunkRows > 0 {
		crashEditConfig(t, srcCfg, func(s string) string { return fmt.Sprintf("max_events_per_batch: %d\n", o.chunkRows) + s })
	}
	if o.dstVacuum > 0 {
		crashEditConfig(t, dstCfg, func(s string) string {
			return strings.Replace(s, "  vacuum: 500\n", fmt.Sprintf("  vacuum: %d\n", o.dstVacuum), 1)
		})
	}
	p.dstProc = newCrashProc(t, "dst", dstCfg, dstPort, o.token)
	p.srcProc = newCrashProc(t, "src", srcCfg, srcPort, "")
	p.dstProc.start(t)
	p.srcProc.start(t)
	return p
}

// crashEditConfig rewrites a config file written by writeConfig.
func crashEditConfig(t *testing.T, path string, edit func(string) string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(edit(mustRead(t, path))), 0o600); err != nil {
		t.Fatal(err)
	}
}

// crashTableStates is every table's checksum on one side, for messages.
func crashTableStates(db *sql.DB, schema string, tables []string) (map[string]string, error) {
	m := map[string]string{}
	for _, table := range tables {
		s, err := checksum(db, schema+"."+table)
		if err != nil {
			return nil, err
		}
		m[table] = s
	}
	return m, nil
}

// waitConverged waits until every table has the same rows on both sides.
func (p *crashPair) waitConverged(t *testing.T, timeout time.Duration, tables ...string) {
	t.Helper()
	var last string
	converged := false
	defer func() {
		if !converged {
			t.Logf("last state before giving up: %s", last)
		}
	}()
	dbtest.WaitFor(t, timeout, "source and target to converge", func() bool {
		a, errA := crashTableStates(p.srcDB, "public", tables)
		b, errB := crashTableStates(p.dstDB, crashApplySchema, tables)
		if errA != nil || errB != nil {
			last = fmt.Sprintf("source error %v, target error %v", errA, errB)
			return false
		}
		var diff []string
		for _, table := range tables {
			if a[table] != b[table] {
				diff = append(diff, fmt.Sprintf("%s: source %s, target %s", table, a[table], b[table]))
			}
		}
		last = strings.Join(diff, "; ") + "; target: " + p.dstSourceState()
		return len(diff) == 0
	})
	converged = true
}

// dstSourceState is the target's teleport.source, for messages.
func (p *crashPair) dstSourceState() string {
	var s string
	err := p.dstDB.QueryRow(`SELECT coalesce(string_agg(format('%s applied %s error_seq %s error %s', name, applied_seq, error_seq, error), '; '), 'no source') FROM teleport.source`).Scan(&s)
	if err != nil {
		return err.Error()
	}
	return s
}

// progress says how far batches are cut, acknowledged and applied, for
// the test's log.
func (p *crashPair) progress() string {
	var cut, acked, applied int64
	err := p.srcDB.QueryRow(`SELECT next_seq - 1, acked_seq FROM teleport.target_state WHERE name = 'dst'`).Scan(&cut, &acked)
	if err == nil {
		err = p.dstDB.QueryRow(`SELECT coalesce(max(applied_seq), 0) FROM teleport.source`).Scan(&applied)
	}
	if err != nil {
		return err.Error()
	}
	return fmt.Sprintf("source cut %d batches, target stored %d, applied %d", cut, acked, applied)
}

// crashSchema is the schema of TestCrash_KillInstances: acct for transfer,
// numbered and ledger (no key at all, so a duplicated insert would show as
// an extra row rather than a conflict) for numbered inserts, bulk for bulk
// updates and deletes.
const crashSchema = `
	CREATE TABLE acct (id int PRIMARY KEY, balance bigint NOT NULL);
	CREATE TABLE numbered (id bigint PRIMARY KEY, note text NOT NULL, touched int NOT NULL DEFAULT 0);
	CREATE TABLE ledger (n bigint NOT NULL, note text);
	CREATE TABLE bulk (id int PRIMARY KEY, v int NOT NULL, note text)`

var crashTables = []string{"acct", "numbered", "ledger", "bulk"}

const (
	crashAccounts = 50
	crashBalance  = 1000 // each account's starting balance
	crashBulkRows = 2000
)

// crashWorkload writes to the source until stopped: transfers, numbered
// inserts, bulk updates and deletes. Its statements do not use the
// workload's context, so stopping it never leaves a commit in doubt.
type crashWorkload struct {
	stop   context.CancelFunc
	wg     sync.WaitGroup
	errc   chan error
	ctx    context.Context
	counts struct {
		transfers, inserts, bulk atomic.Int64
	}
	// Set by the inserter when it returns: the ids it committed.
	insertedCount, insertedSum int64
}

func startCrashWorkload(db *sql.DB, seed uint64) *crashWorkload {
	ctx, stop := context.WithCancel(context.Background())
	w := &crashWorkload{stop: stop, ctx: ctx, errc: make(chan error, 8)}
	loop := func(name string, stream uint64, step func(rng *rand.Rand) error) {
		rng := rand.New(rand.NewPCG(seed, stream))
		w.wg.Go(func() {
			for ctx.Err() == nil {
				if err := step(rng); err != nil {
					w.errc <- fmt.Errorf("%s: %w", name, err)
					return
				}
			}
		})
	}
	for i := range 2 {
		loop("transfer", uint64(10+i), func(rng *rand.Rand) error {
			from, to := 1+rng.IntN(crashAccounts), 1+rng.IntN(crashAccounts)
			if from == to {
				return nil
			}
			if err := transfer(context.Background(), db, from, to, 1+rng.IntN(50)); err != nil {
				return err
			}
			w.counts.transfers.Add(1)
			time.Sleep(time.Millisecond) // workload pacing, so the target can keep up on 2 cores
			return nil
		})
	}
	next := int64(1)
	w.wg.Go(func() {
		rng := rand.New(rand.NewPCG(seed, 20))
		defer func() { w.insertedCount, w.insertedSum = next-1, (next-1)*next/2 }()
		for ctx.Err() == nil {
			n := 1 + rng.Int64N(20)
			if err := crashInsertNumbered(db, next, next+n-1); err != nil {
				w.errc <- fmt.Errorf("insert: %w", err)
				return
			}
			next += n
			w.counts.inserts.Add(1)
			time.Sleep(time.Duration(1+rng.IntN(3)) * time.Millisecond)
		}
	})
	loop("bulk", 30, func(rng *rand.Rand) error {
		var q string
		switch k := rng.IntN(10); {
		case k < 4:
			q = fmt.Sprintf(`UPDATE public.bulk SET v = v + 1, note = md5(coalesce(note, '')) WHERE id %% 4 = %d`, rng.IntN(4))
		case k < 6:
			q = fmt.Sprintf(`UPDATE public.numbered SET touched = touched + 1 WHERE id %% 20 = %d`, rng.IntN(20))
		case k < 8:
			q = fmt.Sprintf(`BEGIN;
				DELETE FROM public.bulk WHERE id IN (SELECT id FROM public.bulk ORDER BY random() LIMIT %d);
				INSERT INTO public.bulk SELECT g, 0, 'refill' FROM generate_series(1, %d) g ON CONFLICT DO NOTHING;
				COMMIT`, 10+rng.IntN(40), crashBulkRows)
		case k < 9:
			q = fmt.Sprintf(`UPDATE public.ledger SET note = 'updated' WHERE n %% 50 = %d AND note = 'new'`, rng.IntN(50))
		default:
			q = fmt.Sprintf(`DELETE FROM public.bulk WHERE id > %d`, crashBulkRows-rng.IntN(200))
		}
		if _, err := db.Exec(q); err != nil {
			return err
		}
		w.counts.bulk.Add(1)
		time.Sleep(time.Duration(20+rng.IntN(40)) * time.Millisecond)
		return nil
	})
	return w
}

// crashInsertNumbered inserts ids first..last into numbered and ledger in one
// transaction.
func crashInsertNumbered(db *sql.DB, first, last int64) error {
	tx, err := db.Begin()
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if _, err := tx.Exec(`INSERT INTO public.numbered (id, note) SELECT g, 'n' || g FROM generate_series($1::bigint, $2::bigint) g`, first, last); err != nil {
		return err
	}
	if _, err := tx.Exec(`INSERT INTO public.ledger (n, note) SELECT g, 'new' FROM generate_series($1::bigint, $2::bigint) g`, first, last); err != nil {
		return err
	}
	return tx.Commit()
}

// failed returns the first error of a worker, if one stopped already.
func (w *crashWorkload) failed() error {
	select {
	case err := <-w.errc:
		return err
	default:
		return nil
	}
}

// finish stops the workload and returns the first error of its workers.
func (w *crashWorkload) finish() error {
	w.stop()
	w.wg.Wait()
	return w.failed()
}

// crashPause sleeps a random 150-400 ms: the workload runs meanwhile.
func crashPause(rng *rand.Rand) {
	time.Sleep(time.Duration(150+rng.IntN(251)) * time.Millisecond)
}

// crashWaitApplying waits, up to timeout, until the target's applier is inside a
// transaction applying rows, and reports whether it saw one.
func crashWaitApplying(db *sql.DB, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		var n int
		err := db.QueryRow(`SELECT count(*) FROM pg_stat_activity
			WHERE datname = current_database() AND pid <> pg_backend_pid() AND application_name LIKE 'teleport%'
			  AND state <> 'idle' AND xact_start IS NOT NULL AND query LIKE '%json_populate%'`).Scan(&n)
		if err == nil && n > 0 {
			return true
		}
		time.Sleep(2 * time.Millisecond) // polling, not synchronisation: the moment is best effort
	}
	return false
}

// TestCrash_KillInstances: while a workload runs on the source, both
// instances are SIGKILLed and restarted many times at random moments and the
// target's database is stopped (immediate) and restarted. Once the workload
// stops the two sides converge: every row arrived, none twice.
func TestCrash_KillInstances(t *testing.T) {
	seed := crashSeed(t)
	rng := rand.New(rand.NewPCG(seed, 1))
	begin := time.Now()
	p := newCrashPair(t, crashSchema, crashPairOptions{chunkRows: 300})
	execSQL(t, p.srcDB, `INSERT INTO public.acct SELECT i, $2 FROM generate_series(1, $1) i`, crashAccounts, crashBalance)
	execSQL(t, p.srcDB, `INSERT INTO public.bulk SELECT g, 0, 'seed' FROM generate_series(1, $1) g`, crashBulkRows)
	p.waitConverged(t, 30*time.Second, "acct", "bulk")
	t.Logf("pair up and seeded in %v", time.Since(begin).Round(time.Millisecond))

	w := startCrashWorkload(p.srcDB, seed)
	defer w.finish() // on a failure before the end
	phase := time.Now()

	killLoop := func(pr *crashProc, times int) {
		var restarts []time.Duration
		for range times {
			crashPause(rng)
			if err := w.failed(); err != nil {
				t.Fatalf("workload: %v", err)
			}
			start := time.Now()
			pr.kill(t)
			pr.start(t)
			restarts = append(restarts, time.Since(start).Round(time.Millisecond))
		}
		t.Logf("killed %s %d times; kill to /status again took %v", pr.name, times, restarts)
	}
	killLoop(p.srcProc, 10)
	killLoop(p.dstProc, 10)
	t.Logf("kills done in %v", time.Since(phase).Round(time.Millisecond))

	// The target's database goes away under the running target instance.
	for i := range 2 {
		crashPause(rng)
		applying := crashWaitApplying(p.dstDB, 3*time.Second)
		p.dst.Stop(t, "immediate")
		downAt := time.Now()
		time.Sleep(time.Duration(300+rng.IntN(500)) * time.Millisecond) // down for a while, the workload goes on
		aliveWhileDown := !p.dstProc.exited()
		p.dst.Restart(t)
		t.Logf("target database stop %d: caught an apply in progress: %v; down for %v; instance running while its database was down: %v",
			i+1, applying, time.Since(downAt).Round(time.Millisecond), aliveWhileDown)
		if !aliveWhileDown {
			t.Logf("target instance exited when its database went away (%v); restarting it", p.dstProc.cur.err)
			p.dstProc.start(t)
		}
		// The instance serves /readyz again once it reaches its database.
		dbtest.WaitFor(t, 20*time.Second, "target instance to reach its restarted database", func() bool {
			if p.dstProc.exited() {
				return true // reported below
			}
			resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/readyz", p.dstProc.port))
			if err != nil {
				return false
			}
			resp.Body.Close()
			return resp.StatusCode == http.StatusOK
		})
		if p.dstProc.exited() {
			t.Logf("target instance exited after its database came back (%v); restarting it", p.dstProc.cur.err)
			p.dstProc.start(t)
		}
	}
	crashPause(rng)
	if err := w.finish(); err != nil {
		t.Fatalf("workload: %v", err)
	}
	t.Logf("workload ran %v: %d transfers, %d inserts (%d ids), %d bulk statements",
		time.Since(phase).Round(time.Millisecond), w.counts.transfers.Load(), w.counts.inserts.Load(),
		w.insertedCount, w.counts.bulk.Load())

	t.Logf("when the workload stopped: %s", p.progress())
	converge := time.Now()
	p.waitConverged(t, 120*time.Second, crashTables...)
	t.Logf("converged %v after the workload stopped: %s", time.Since(converge).Round(time.Millisecond), p.progress())

	// No duplication, stated directly: the numbered rows on both sides are
	// exactly those the workload committed.
	for _, side := range []struct {
		name   string
		db     *sql.DB
		schema string
	}{{"source", p.srcDB, "public"}, {"target", p.dstDB, crashApplySchema}} {
		for _, q := range []string{
			`SELECT count(*), count(DISTINCT id), coalesce(sum(id), 0)::bigint FROM %s.numbered`,
			`SELECT count(*), count(DISTINCT n), coalesce(sum(n), 0)::bigint FROM %s.ledger`,
		} {
			var n, distinct, sum int64
			if err := side.db.QueryRow(fmt.Sprintf(q, side.schema)).Scan(&n, &distinct, &sum); err != nil {
				t.Fatal(err)
			}
			if n != w.insertedCount || distinct != n || sum != w.insertedSum {
				t.Errorf("%s: %s = %d rows, %d distinct, sum %d; want %d rows, all distinct, sum %d",
					side.name, fmt.Sprintf(q, side.schema), n, distinct, sum, w.insertedCount, w.insertedSum)
			}
		}
	}
	var total int64
	if err := p.dstDB.QueryRow(`SELECT sum(balance) FROM test.acct`).Scan(&total); err != nil {
		t.Fatal(err)
	}
	if total != crashAccounts*crashBalance {
		t.Errorf("target total balance = %d, want %d", total, crashAccounts*crashBalance)
	}
	var applied int64
	var held sql.NullString
	if err := p.dstDB.QueryRow(`SELECT applied_seq, error FROM teleport.source WHERE name = 'src'`).Scan(&applied, &held); err != nil {
		t.Fatal(err)
	}
	if held.Valid {
		t.Errorf("target still records an apply error: %s", held.String)
	}
	t.Logf("target applied %d batches", applied)

	// Neither side noticed an inconsistency on the way.
	for _, pr := range []*crashProc{p.srcProc, p.dstProc} {
		if bad := crashGrep(t, pr.log, "target lost acknowledged batches", "target has batches this source never cut", "batch held", "panic:"); len(bad) > 0 {
			t.Errorf("instance %s logged:\n%s", pr.name, strings.Join(bad, "\n"))
		}
	}
	for _, pr := range []*crashProc{p.srcProc, p.dstProc} {
		if err := pr.term(); err != nil {
			t.Errorf("instance %s after SIGTERM: %v, want exit 0", pr.name, err)
		}
	}
	t.Logf("whole test %v", time.Since(begin).Round(time.Millisecond))
}

// crashProxy forwards everything to the target and records each POST
// /batches the target answered 200. With chaos on, it also duplicates
// requests, loses requests and loses answers.
type crashProxy struct {
	rp *httputil.ReverseProxy

	mu    sync.Mutex
	rng   *rand.Rand
	chaos bool
	reqs  []crashRequest
	stats struct{ forwarded, duplicated, lostRequests, lostAnswers int }
}

// crashRequest is one POST /batches as the source sent it.
type crashRequest struct {
	header http.Header
	body   []byte
}

func newCrashProxy(target string, seed uint64) *crashProxy {
	u, _ := url.Parse(target) // built by the test, always valid
	rp := httputil.NewSingleHostReverseProxy(u)
	return &crashProxy{rp: rp, rng: rand.New(rand.NewPCG(seed, 2))}
}

// crashStatusWriter remembers the status code written through it.
type crashStatusWriter struct {
	http.ResponseWriter
	code int
}

func (w *crashStatusWriter) WriteHeader(code int) {
	w.code = code
	w.ResponseWriter.WriteHeader(code)
}

func (x *crashProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.URL.Path != "/batches" {
		x.rp.ServeHTTP(w, r)
		return
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, "test proxy: read body: "+err.Error(), http.StatusBadGateway)
		return
	}
	x.mu.Lock()
	action := 0
	if x.chaos {
		switch k := x.rng.IntN(100); {
		case k < 15:
			action = 1 // duplicate: the target gets it twice
			x.stats.duplicated++
		case k < 18:
			action = 2 // the answer is lost
			x.stats.lostAnswers++
		case k < 20:
			action = 3 // the request is lost
			x.stats.lostRequests++
		}
	}
	x.stats.forwarded++
	x.mu.Unlock()
	forward := func(w http.ResponseWriter) int {
		r2 := r.Clone(r.Context())
		r2.Body = io.NopCloser(bytes.NewReader(body))
		r2.ContentLength = int64(len(body))
		sw := &crashStatusWriter{ResponseWriter: w, code: http.StatusOK}
		x.rp.ServeHTTP(sw, r2)
		if sw.code == http.StatusOK {
			x.mu.Lock()
			x.reqs = append(x.reqs, crashRequest{header: r.Header.Clone(), body: body})
			x.mu.Unlock()
		}
		return sw.code
	}
	switch action {
	case 1:
		forward(httptest.NewRecorder())
	case 2:
		forward(httptest.NewRecorder())
		http.Error(w, "test proxy: answer lost", http.StatusBadGateway)
		return
	case 3:
		http.Error(w, "test proxy: request lost", http.StatusBadGateway)
		return
	}
	forward(w)
}

func (x *crashProxy) setChaos(on bool) {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.chaos = on
}

func (x *crashProxy) recorded() []crashRequest {
	x.mu.Lock()
	defer x.mu.Unlock()
	return append([]crashRequest(nil), x.reqs...)
}

// crashDecodeChunk decodes a recorded body, for messages.
func crashDecodeChunk(t *testing.T, body []byte) wire.BatchChunk {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	js, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	var c wire.BatchChunk
	if err := json.Unmarshal(js, &c); err != nil {
		t.Fatal(err)
	}
	return c
}

// crashTargetCounts is what the target stores about its sources.
type crashTargetCounts struct {
	chunks, sources int
	applied         int64
}

func (p *crashPair) counts(t *testing.T) crashTargetCounts {
	t.Helper()
	var c crashTargetCounts
	err := p.dstDB.QueryRow(`SELECT (SELECT count(*) FROM teleport.received_chunk), (SELECT count(*) FROM teleport.source),
		(SELECT coalesce(max(applied_seq), 0) FROM teleport.source)`).Scan(&c.chunks, &c.sources, &c.applied)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestCrash_ReplayedRequests: requests the source sent, replayed to the
// target after they were applied, change nothing; requests lost, answers
// lost and requests duplicated on the way lose and duplicate nothing; and
// unauthenticated, malformed or oversized requests store nothing.
func TestCrash_ReplayedRequests(t *testing.T) {
	seed := crashSeed(t)
	const token = "crash-test-token"
	var proxy *crashProxy
	p := newCrashPair(t, crashSchema, crashPairOptions{
		token: token,
		via: func(dstPort int) string {
			proxy = newCrashProxy(fmt.Sprintf("http://127.0.0.1:%d", dstPort), seed)
			srv := httptest.NewServer(proxy)
			t.Cleanup(srv.Close)
			return srv.URL
		},
		chunkRows: 100,     // batches of several chunks
		dstVacuum: 3600000, // the target keeps its chunks, so a stored replay would show
	})
	dstPort := p.dstProc.port

	// Replicate a workload through a proxy that loses and repeats requests.
	proxy.setChaos(true)
	execSQL(t, p.srcDB, `INSERT INTO public.acct SELECT i, $2 FROM generate_series(1, $1) i`, crashAccounts, crashBalance)
	execSQL(t, p.srcDB, `INSERT INTO public.bulk SELECT g, 0, 'seed' FROM generate_series(1, $1) g`, crashBulkRows)
	w := startCrashWorkload(p.srcDB, seed)
	defer w.finish()
	time.Sleep(3 * time.Second) // the workload runs
	if err := w.finish(); err != nil {
		t.Fatalf("workload: %v", err)
	}
	proxy.setChaos(false)
	converge := time.Now()
	p.waitConverged(t, 120*time.Second, crashTables...)
	t.Logf("converged %v after the workload stopped", time.Since(converge).Round(time.Millisecond))
	proxy.mu.Lock()
	t.Logf("proxy: %+v", proxy.stats)
	proxy.mu.Unlock()
	var n, sum int64
	if err := p.dstDB.QueryRow(`SELECT count(*), coalesce(sum(n), 0)::bigint FROM test.ledger`).Scan(&n, &sum); err != nil {
		t.Fatal(err)
	}
	if n != w.insertedCount || sum != w.insertedSum {
		t.Errorf("target ledger = %d rows, sum %d; want %d rows, sum %d", n, sum, w.insertedCount, w.insertedSum)
	}

	reqs := proxy.recorded()
	if len(reqs) < 2 {
		t.Fatalf("recorded %d POST /batches, want at least 2", len(reqs))
	}
	oldest, latest := reqs[0], reqs[len(reqs)-1]
	oc, lc := crashDecodeChunk(t, oldest.body), crashDecodeChunk(t, latest.body)
	t.Logf("recorded %d requests; replaying batch %d chunk %d (oldest) and batch %d chunk %d (latest)",
		len(reqs), oc.Seq, oc.Chunk, lc.Seq, lc.Chunk)
	if oldest.header.Get("Authorization") != "Bearer "+token {
		t.Errorf("source sent Authorization %q, want the bearer token", oldest.header.Get("Authorization"))
	}

	before := p.counts(t)
	beforeTables, err := crashTableStates(p.dstDB, crashApplySchema, crashTables)
	if err != nil {
		t.Fatal(err)
	}
	if before.chunks == 0 {
		t.Fatalf("target holds no chunk: its vacuum ran, the replays below would prove nothing")
	}
	replay := func(what string, r crashRequest) {
		t.Helper()
		code, answer := crashPost(t, dstPort, r.header, r.body)
		if code != http.StatusOK {
			t.Errorf("%s: POST /batches = %d %s, want 200", what, code, answer)
			return
		}
		var ack wire.BatchAck
		if err := json.Unmarshal(answer, &ack); err != nil {
			t.Errorf("%s: answer %s: %v", what, answer, err)
		}
		if ack.AppliedSeq != before.applied || ack.ReceivedSeq != before.applied {
			t.Errorf("%s: ack = %+v, want received and applied %d", what, ack, before.applied)
		}
	}
	check := func(when string, want crashTargetCounts) {
		t.Helper()
		if got := p.counts(t); got != want {
			t.Errorf("%s: target has %+v, want %+v", when, got, want)
		}
		got, err := crashTableStates(p.dstDB, crashApplySchema, crashTables)
		if err != nil {
			t.Fatal(err)
		}
		for _, table := range crashTables {
			if got[table] != beforeTables[table] {
				t.Errorf("%s: target table %s = %s, was %s", when, table, got[table], beforeTables[table])
			}
		}
	}

	// The chunks are still stored: the replays conflict with them.
	replay("duplicated latest request", latest)
	replay("duplicated latest request, again", latest)
	replay("replayed oldest request", oldest)
	check("after replays of stored chunks", before)

	// Once the target's vacuum deleted them, the replays still change
	// nothing: the batches are applied.
	execSQL(t, p.dstDB, `DELETE FROM teleport.received_chunk c USING teleport.source s WHERE s.name = c.source AND c.seq <= s.applied_seq`)
	vacuumed := before
	vacuumed.chunks = 0
	check("after vacuuming the chunks", vacuumed)
	replay("replayed latest request after vacuum", latest)
	replay("replayed oldest request after vacuum", oldest)
	check("after replays of vacuumed chunks", vacuumed)

	// Requests that must be refused, storing nothing.
	good := latest.header.Clone()
	noAuth := good.Clone()
	noAuth.Del("Authorization")
	wrongAuth := good.Clone()
	wrongAuth.Set("Authorization", "Bearer not-"+token)
	future := lc
	future.Seq = before.applied + 1 // would be the next batch to apply, if it were accepted
	future.Chunk, future.Last = 0, true
	futureJSON, err := json.Marshal(future)
	if err != nil {
		t.Fatal(err)
	}
	otherTarget := future
	otherTarget.Target = "someone-else"
	otherJSON, err := json.Marshal(otherTarget)
	if err != nil {
		t.Fatal(err)
	}
	oversized := make([]byte, 65<<20)
	if _, err := crand.Read(oversized); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		header http.Header
		body   []byte
		want   int
	}{
		{"no token", noAuth, crashGzip(t, futureJSON), http.StatusUnauthorized},
		{"wrong token", wrongAuth, crashGzip(t, futureJSON), http.StatusUnauthorized},
		{"malformed JSON", good, crashGzip(t, []byte("{not json")), http.StatusBadRequest},
		{"body not gzip", good, futureJSON, http.StatusBadRequest},
		{"truncated gzip", good, crashGzip(t, futureJSON)[:20], http.StatusBadRequest},
		{"chunk for another target", good, crashGzip(t, otherJSON), http.StatusBadRequest},
		{"65 MiB body", good, oversized, http.StatusRequestEntityTooLarge},
	}
	for _, tt := range tests {
		was := p.counts(t)
		code, answer := crashPost(t, dstPort, tt.header, tt.body)
		if code != tt.want {
			t.Errorf("%s: POST /batches = %d %.300s, want %d", tt.name, code, answer, tt.want)
		}
		check("after "+tt.name, was)
	}

	// The pair still replicates after all that.
	execSQL(t, p.srcDB, `UPDATE public.bulk SET v = v + 100`)
	if err := crashInsertNumbered(p.srcDB, w.insertedCount+1, w.insertedCount+10); err != nil {
		t.Fatal(err)
	}
	p.waitConverged(t, 60*time.Second, crashTables...)
	for _, pr := range []*crashProc{p.srcProc, p.dstProc} {
		if bad := crashGrep(t, pr.log, "target lost acknowledged batches", "target has batches this source never cut", "batch held", "panic:"); len(bad) > 0 {
			t.Errorf("instance %s logged:\n%s", pr.name, strings.Join(bad, "\n"))
		}
		if err := pr.term(); err != nil {
			t.Errorf("instance %s after SIGTERM: %v, want exit 0", pr.name, err)
		}
	}
}
