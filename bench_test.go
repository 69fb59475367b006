package main

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/pagarme/teleport/database/capture"
	"github.com/pagarme/teleport/database/dbtest"
	"github.com/pagarme/teleport/database/migrate"
)

// The benchmarks run only with TELEPORT_BENCH=1 (make bench): they take
// minutes and their figures mean something only on a quiet machine. Each
// prints its figure beside a reference measured in the same run.

func benchOnly(t *testing.T) {
	if os.Getenv("TELEPORT_BENCH") != "1" {
		t.Skip("benchmark: run with make bench (TELEPORT_BENCH=1)")
	}
}

// proc is a teleport instance run as its own process, so its memory can be
// read and it can be stopped and started.
type proc struct {
	cmd *exec.Cmd
	log *bytes.Buffer
}

func startProc(t *testing.T, cfgPath string) *proc {
	t.Helper()
	bin, err := buildBinary()
	if err != nil {
		t.Fatal(err)
	}
	p := &proc{cmd: exec.Command(bin, "-config", cfgPath), log: &bytes.Buffer{}}
	p.cmd.Stderr = p.log
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		p.stop()
		if t.Failed() {
			t.Logf("log of teleport -config %s:\n%s", cfgPath, p.log.String())
		}
	})
	return p
}

// peakRSS is the process's peak resident memory (VmHWM) in MiB.
func (p *proc) peakRSS() float64 {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	if err != nil {
		return 0
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if v, ok := strings.CutPrefix(s.Text(), "VmHWM:"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 64)
			return kb / 1024
		}
	}
	return 0
}

// cpuSeconds is the user plus system CPU time the process has used.
func (p *proc) cpuSeconds() float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.cmd.Process.Pid))
	if err != nil {
		return 0
	}
	// Fields after the command name, which is in parentheses and may hold spaces.
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	if len(f) < 13 {
		return 0
	}
	utime, _ := strconv.ParseFloat(f[11], 64)
	stime, _ := strconv.ParseFloat(f[12], 64)
	return (utime + stime) / 100 // USER_HZ is 100 on Linux
}

func (p *proc) stop() {
	if p.cmd.ProcessState != nil {
		return
	}
	_ = p.cmd.Process.Signal(os.Interrupt)
	_ = p.cmd.Wait() // exit status is checked by the tests that care; here the process only has to be gone
}

// benchPair is a source and a target cluster with pgbench's tables on both
// and configs for both instances (not started).
type benchPair struct {
	src, dst       *dbtest.Cluster
	srcDB, dstDB   *sql.DB
	srcName        string
	dstName        string
	srcCfg, dstCfg string
	dstPort        int
}

func newBenchPair(t *testing.T, scale int) *benchPair {
	t.Helper()
	setPasswordEnv(t)
	p := &benchPair{src: dbtest.Start(t), dst: dbtest.Start(t)}
	p.srcDB, p.srcName = p.src.NewDB(t)
	p.dstDB, p.dstName = p.dst.NewDB(t)
	for _, side := range []struct {
		c    *dbtest.Cluster
		name string
	}{{p.src, p.srcName}, {p.dst, p.dstName}} {
		pgbench(t, side.c, side.name, "-i", "-q", "-s", strconv.Itoa(scale), "--foreign-keys")
	}
	for _, db := range []*sql.DB{p.srcDB, p.dstDB} {
		execSQL(t, db, `CREATE TABLE public.bulk (aid int PRIMARY KEY, bid int, abalance int, filler char(84));
			CREATE TABLE public.heartbeat (seq int PRIMARY KEY, sent_at timestamptz NOT NULL);
			`+mixedTableSQL)
	}
	if p.dst.Major() >= 15 {
		// Let the target apply as native replication does (see the
		// README's Privileges); benchReplication also measures without.
		p.dst.AdminExec(t, p.dstName, `GRANT SET ON PARAMETER session_replication_role TO `+dbtest.Role)
	}
	p.dstPort = freePort(t)
	p.dstCfg = writeConfig(t, instance{name: "dst", c: p.dst, dbname: p.dstName, port: p.dstPort})
	p.srcCfg = writeConfig(t, instance{name: "src", c: p.src, dbname: p.srcName, port: freePort(t),
		targets: fmt.Sprintf("  dst:\n    target_expression: \"public.*\"\n    endpoint:\n      hostname: \"127.0.0.1\"\n      port: %d\n", p.dstPort)})
	return p
}

var tpsRE = regexp.MustCompile(`tps = ([0-9.]+) \(without initial connection time\)`)

// pgbench runs pgbench as the unprivileged role and returns its output.
func pgbench(t *testing.T, c *dbtest.Cluster, dbname string, args ...string) string {
	t.Helper()
	cmd := exec.Command(c.ClientPath("pgbench"), append([]string{"-h", c.Host, "-p", strconv.Itoa(c.Port), "-U", dbtest.Role}, append(args, dbname)...)...)
	cmd.Env = append(os.Environ(), "PGPASSWORD="+dbtest.RolePassword)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("pgbench %v: %v\n%s", args, err, out)
	}
	return string(out)
}

func pgbenchTPS(t *testing.T, c *dbtest.Cluster, dbname string, args ...string) float64 {
	t.Helper()
	out := pgbench(t, c, dbname, args...)
	m := tpsRE.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no tps in pgbench output:\n%s", out)
	}
	tps, _ := strconv.ParseFloat(m[1], 64)
	return tps
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}

// waitApplied waits until the target has applied every batch the source has
// cut, and returns when that happened.
func waitApplied(t *testing.T, p *benchPair, timeout time.Duration) time.Time {
	t.Helper()
	var last int64
	dbtest.WaitFor(t, timeout, "the target to apply every batch", func() bool {
		if err := p.srcDB.QueryRow(`SELECT next_seq - 1 FROM teleport.target_state WHERE name = 'dst'`).Scan(&last); err != nil {
			return false
		}
		var applied int64
		if err := p.dstDB.QueryRow(`SELECT coalesce(max(applied_seq), 0) FROM teleport.source`).Scan(&applied); err != nil {
			return false
		}
		return last > 0 && applied >= last
	})
	return time.Now()
}

// nativeRef measures PostgreSQL's own logical replication on the same
// workloads, as the reference: the subscription is disabled while the
// backlog is written, then enabled, and timed until the target has it all.
type nativeRef struct {
	insertRowsPerSec, updateRowsPerSec, mixedRowsPerSec, oltpTxPerSec float64
	lag, idleLag                                                      lagFigures
}

// mixedSingles is how many single-row transactions the mixed backlog has
// after its 1,000,000-row INSERT.
const mixedSingles = 100000

// writeMixed writes the mixed backlog into public.mixed: one INSERT of
// 1,000,000 rows, then mixedSingles transactions of one row each.
func writeMixed(t *testing.T, c *dbtest.Cluster, name string, db *sql.DB, clients int) {
	t.Helper()
	execSQL(t, db, `INSERT INTO public.mixed SELECT i, 0 FROM generate_series(1, 1000000) i`)
	script := filepath.Join(t.TempDir(), "single.sql")
	if err := os.WriteFile(script, []byte("INSERT INTO public.mixed (v) VALUES (1);\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	pgbench(t, c, name, "-n", "-f", script, "-c", strconv.Itoa(clients), "-j", "2", "-M", "prepared", "-t", strconv.Itoa(mixedSingles/clients))
}

// mixedTableSQL creates the mixed backlog's table: its single-row inserts
// take ids from 2,000,000 on.
const mixedTableSQL = `CREATE TABLE public.mixed (id bigint GENERATED BY DEFAULT AS IDENTITY (START WITH 2000000) PRIMARY KEY, v int)`

func measureNative(t *testing.T, scale, clients, perClient int) nativeRef {
	t.Helper()
	src := dbtest.Start(t, "wal_level = logical")
	dst := dbtest.Start(t)
	_, srcName := src.NewDB(t)
	dstDB, dstName := dst.NewDB(t)
	for _, side := range []struct {
		c    *dbtest.Cluster
		name string
	}{{src, srcName}, {dst, dstName}} {
		pgbench(t, side.c, side.name, "-i", "-q", "-s", strconv.Itoa(scale), "--foreign-keys")
		side.c.AdminExec(t, side.name, `CREATE TABLE public.bulk (aid int PRIMARY KEY, bid int, abalance int, filler char(84)); ALTER TABLE public.bulk OWNER TO teleport;
			CREATE TABLE public.heartbeat (seq int PRIMARY KEY, sent_at timestamptz NOT NULL); ALTER TABLE public.heartbeat OWNER TO teleport;
			`+mixedTableSQL+`; ALTER TABLE public.mixed OWNER TO teleport`)
	}
	src.AdminExec(t, srcName, `CREATE PUBLICATION bench FOR TABLE public.pgbench_accounts, public.pgbench_branches, public.pgbench_tellers, public.pgbench_history, public.bulk, public.heartbeat, public.mixed`)
	dst.AdminExec(t, dstName, fmt.Sprintf(`CREATE SUBSCRIPTION bench CONNECTION 'host=%s port=%d dbname=%s user=postgres' PUBLICATION bench WITH (copy_data = false)`, src.Socket, src.Port, srcName))
	dstAdmin := dst.Admin(t, dstName)
	srcAdmin := src.Admin(t, srcName)
	count := func(db *sql.DB, table string) int64 {
		var n int64
		if err := db.QueryRow(`SELECT count(*) FROM ` + table).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	var ref nativeRef
	// disable stops the subscription and waits for its apply worker to
	// exit: until then it goes on applying what the source writes.
	disable := func() {
		execSQL(t, dstAdmin, `ALTER SUBSCRIPTION bench DISABLE`)
		dbtest.WaitFor(t, time.Minute, "the subscription's apply worker to stop", func() bool {
			var n int
			return dstAdmin.QueryRow(`SELECT count(*) FROM pg_stat_subscription WHERE subname = 'bench' AND pid IS NOT NULL`).Scan(&n) == nil && n == 0
		})
	}

	disable()
	execSQL(t, srcAdmin, `INSERT INTO public.bulk SELECT i, 1, 0, '' FROM generate_series(1, 1000000) i`)
	start := time.Now()
	execSQL(t, dstAdmin, `ALTER SUBSCRIPTION bench ENABLE`)
	dbtest.WaitFor(t, 10*time.Minute, "native replication of the bulk insert", func() bool { return count(dstDB, "public.bulk") == 1000000 })
	ref.insertRowsPerSec = 1e6 / time.Since(start).Seconds()

	disable()
	execSQL(t, srcAdmin, `UPDATE public.bulk SET abalance = abalance + 1`)
	start = time.Now()
	execSQL(t, dstAdmin, `ALTER SUBSCRIPTION bench ENABLE`)
	dbtest.WaitFor(t, 10*time.Minute, "native replication of the bulk update", func() bool { return count(dstDB, "public.bulk WHERE abalance = 1") == 1000000 })
	ref.updateRowsPerSec = 1e6 / time.Since(start).Seconds()

	disable()
	writeMixed(t, src, srcName, srcAdmin, clients)
	start = time.Now()
	execSQL(t, dstAdmin, `ALTER SUBSCRIPTION bench ENABLE`)
	dbtest.WaitFor(t, 10*time.Minute, "native replication of the mixed backlog", func() bool { return count(dstDB, "public.mixed") == 1000000+mixedSingles })
	ref.mixedRowsPerSec = (1e6 + mixedSingles) / time.Since(start).Seconds()

	disable()
	pgbench(t, src, srcName, "-c", strconv.Itoa(clients), "-j", "2", "-M", "prepared", "-t", strconv.Itoa(perClient))
	want := count(srcAdmin, "public.pgbench_history")
	start = time.Now()
	execSQL(t, dstAdmin, `ALTER SUBSCRIPTION bench ENABLE`)
	// history gets one row per transaction, the transaction's last change.
	dbtest.WaitFor(t, 10*time.Minute, "native replication of the pgbench backlog", func() bool { return count(dstDB, "public.pgbench_history") == want })
	ref.oltpTxPerSec = float64(clients*perClient) / time.Since(start).Seconds()
	srcDB := src.Connect(t, srcName)
	ref.idleLag = measureLag(t, src, srcName, srcDB, dstDB, true)
	ref.lag = measureLag(t, src, srcName, srcDB, dstDB, false)
	execSQL(t, dstAdmin, `DROP SUBSCRIPTION bench`)
	return ref
}

// lagFigures are the delays of heartbeat rows from source to target, and
// the CPU seconds the source cluster's processes used meanwhile.
type lagFigures struct {
	p50, p99, max time.Duration
	srcCPU        float64
}

// clusterCPU returns the CPU seconds c's processes have used: the
// postmaster's, its exited children's (it reaps them) and its live ones'.
func clusterCPU(t *testing.T, c *dbtest.Cluster) float64 {
	t.Helper()
	pidText, err := os.ReadFile(filepath.Join(c.Dir, "postmaster.pid"))
	if err != nil {
		t.Fatal(err)
	}
	pm, _ := strconv.Atoi(strings.TrimSpace(strings.SplitN(string(pidText), "\n", 2)[0]))
	// stat returns a process's fields after its name: ppid is [1],
	// utime, stime, cutime and cstime [11] to [14].
	stat := func(pid string) []string {
		b, err := os.ReadFile("/proc/" + pid + "/stat")
		if err != nil {
			return nil
		}
		return strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	}
	ticks := func(f []string, from, to int) float64 {
		var sum float64
		for i := from; i <= to && i < len(f); i++ {
			v, _ := strconv.ParseFloat(f[i], 64)
			sum += v
		}
		return sum
	}
	total := ticks(stat(strconv.Itoa(pm)), 11, 14)
	procs, _ := os.ReadDir("/proc")
	for _, e := range procs {
		if f := stat(e.Name()); len(f) > 14 && f[1] == strconv.Itoa(pm) {
			total += ticks(f, 11, 12)
		}
	}
	return total / 100 // USER_HZ
}

func (l lagFigures) String() string {
	ms := func(d time.Duration) string { return fmt.Sprintf("%.0f", float64(d)/float64(time.Millisecond)) }
	return ms(l.p50) + " / " + ms(l.p99) + " / " + ms(l.max)
}

// lagDuration is how long pgbench runs at a fixed rate while lag is sampled;
// idleLagDuration how long lag is sampled with nothing else running.
const (
	lagDuration     = 60 * time.Second
	idleLagDuration = 20 * time.Second
)

// measureLag runs pgbench at 500 TPS on the source for lagDuration (idle:
// nothing, for idleLagDuration) while a heartbeat row is inserted every
// 100 ms, and returns how long each heartbeat took to appear on the target
// (one clock: both clusters are on this machine), polled every 5 ms.
func measureLag(t *testing.T, c *dbtest.Cluster, name string, src, dst *sql.DB, idle bool) lagFigures {
	t.Helper()
	d := lagDuration
	if idle {
		d = idleLagDuration
	}
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	load := make(chan string, 1)
	go func() {
		if idle {
			load <- ""
			return
		}
		load <- pgbench(t, c, name, "-c", "4", "-j", "2", "-M", "prepared", "--rate", "500", "-T", strconv.Itoa(int(d/time.Second)))
	}()
	// Heartbeats are numbered after those of an earlier run.
	var seen int
	if err := src.QueryRow(`SELECT coalesce(max(seq), 0) FROM public.heartbeat`).Scan(&seen); err != nil {
		t.Fatal(err)
	}
	cpu0 := clusterCPU(t, c)
	sent := map[int]time.Time{}
	var mu sync.Mutex
	beat := make(chan error, 1)
	go func() {
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for seq := seen + 1; ctx.Err() == nil; seq++ {
			mu.Lock()
			sent[seq] = time.Now()
			mu.Unlock()
			if _, err := src.ExecContext(ctx, `INSERT INTO public.heartbeat VALUES ($1, now())`, seq); err != nil && ctx.Err() == nil {
				beat <- fmt.Errorf("heartbeat %d: %w", seq, err)
				return
			}
			select {
			case <-ctx.Done():
			case <-tick.C:
			}
		}
		beat <- nil
	}()
	var lags []time.Duration
	for ctx.Err() == nil {
		var top sql.NullInt64
		if err := dst.QueryRow(`SELECT max(seq) FROM public.heartbeat`).Scan(&top); err == nil && int(top.Int64) > seen {
			now := time.Now()
			mu.Lock()
			for s := seen + 1; s <= int(top.Int64); s++ {
				lags = append(lags, now.Sub(sent[s]))
			}
			mu.Unlock()
			seen = int(top.Int64)
		}
		time.Sleep(5 * time.Millisecond) // the sampling period, not a wait for a condition
	}
	<-load
	if err := <-beat; err != nil {
		t.Fatal(err)
	}
	if len(lags) == 0 {
		t.Fatalf("no heartbeat reached the target in %v", d)
	}
	slices.Sort(lags)
	return lagFigures{p50: lags[len(lags)/2], p99: lags[len(lags)*99/100], max: lags[len(lags)-1], srcCPU: clusterCPU(t, c) - cpu0}
}

// benchReplication measures catch-up and lag against native logical
// replication: backlogs written while the target side is stopped (for
// Teleport, the target instance; for native, the subscription), then timed
// until the target has them all.
func benchReplication(t *testing.T) []benchRow {
	const clients, perClient = 4, 25000
	native := measureNative(t, 10, clients, perClient)
	p := newBenchPair(t, 10)
	ctx := context.Background()
	var table []benchRow
	ratio := func(a, b float64) string { return fmt.Sprintf("%.2f", a/b) }

	// drain starts both instances (the source restarts with the target, so
	// the drain does not wait out the transmitter's backoff from the time
	// the target was down) and times them until every batch is applied.
	var src, dst *proc
	var srcRSS, dstRSS float64
	drain := func() time.Duration {
		waitCut(t, p.srcDB)
		src.stop()
		start := time.Now()
		dst = startProc(t, p.dstCfg)
		src = startProc(t, p.srcCfg)
		waitApplied(t, p, 10*time.Minute)
		took := time.Since(start)
		srcRSS, dstRSS = max(srcRSS, src.peakRSS()), max(dstRSS, dst.peakRSS())
		return took
	}

	// Bulk catch-up: one transaction inserts 1,000,000 rows while the target
	// instance is stopped; then it starts and drains. Then one UPDATE of
	// them all, the same way.
	src = startProc(t, p.srcCfg)
	waitCapture(t, p.srcDB)
	execSQL(t, p.srcDB, `INSERT INTO public.bulk SELECT i, 1, 0, '' FROM generate_series(1, 1000000) i`)
	took := drain()
	table = append(table, benchRow{"1,000,000-row INSERT backlog, rows/s (ref: native)", fmt.Sprintf("%.0f", 1e6/took.Seconds()),
		fmt.Sprintf("%.0f", native.insertRowsPerSec), ratio(1e6/took.Seconds(), native.insertRowsPerSec)})
	dst.stop()
	execSQL(t, p.srcDB, `UPDATE public.bulk SET abalance = abalance + 1`)
	took = drain()
	table = append(table, benchRow{"1,000,000-row UPDATE backlog, rows/s (ref: native)", fmt.Sprintf("%.0f", 1e6/took.Seconds()),
		fmt.Sprintf("%.0f", native.updateRowsPerSec), ratio(1e6/took.Seconds(), native.updateRowsPerSec)})
	dst.stop()

	// Mixed catch-up: a 1,000,000-row INSERT, then 100,000 single-row
	// transactions, queued while the target instance is stopped.
	writeMixed(t, p.src, p.srcName, p.srcDB, clients)
	took = drain()
	mixed := (1e6 + mixedSingles) / took.Seconds()
	table = append(table, benchRow{fmt.Sprintf("1,000,000-row INSERT then %d one-row transactions backlog, rows/s (ref: native)", mixedSingles),
		fmt.Sprintf("%.0f", mixed), fmt.Sprintf("%.0f", native.mixedRowsPerSec), ratio(mixed, native.mixedRowsPerSec)})
	table = append(table, benchRow{"peak RSS during them, MiB: source / target", fmt.Sprintf("%.0f / %.0f", srcRSS, dstRSS), "", ""})
	dst.stop()

	// OLTP catch-up: pgbench transactions queued while the target instance is
	// stopped, then drained.
	var before int64
	if err := p.srcDB.QueryRowContext(ctx, `SELECT next_seq - 1 FROM teleport.target_state WHERE name = 'dst'`).Scan(&before); err != nil {
		t.Fatal(err)
	}
	pgbench(t, p.src, p.srcName, "-c", strconv.Itoa(clients), "-j", "2", "-M", "prepared", "-t", strconv.Itoa(perClient))
	waitCut(t, p.srcDB)
	var events int64
	if err := p.srcDB.QueryRowContext(ctx, `SELECT coalesce(sum(nrows), 0) FROM teleport.batch WHERE target = 'dst' AND seq > $1`, before).Scan(&events); err != nil {
		t.Fatal(err)
	}
	took = drain()
	tps := clients * perClient / took.Seconds()
	table = append(table, benchRow{fmt.Sprintf("%d pgbench transactions backlog, tx/s (ref: native)", clients*perClient), fmt.Sprintf("%.0f", tps),
		fmt.Sprintf("%.0f", native.oltpTxPerSec), ratio(tps, native.oltpTxPerSec)})
	table = append(table, benchRow{"  same, target instance CPU s / drain s", fmt.Sprintf("%.1f / %.1f", dst.cpuSeconds(), took.Seconds()), "", ""})
	table = append(table, benchRow{"  same, row changes/s applied", fmt.Sprintf("%.0f", float64(events)/took.Seconds()), "", ""})

	// Lag with nothing but the heartbeat, then at 500 TPS.
	for _, run := range []struct {
		idle       bool
		name, load string
		native     lagFigures
	}{
		{true, "lag with nothing but the heartbeat", "", native.idleLag},
		{false, "lag at 500 TPS", ", pgbench's backends included", native.lag},
	} {
		srcCPU, dstCPU := src.cpuSeconds(), dst.cpuSeconds()
		lag := measureLag(t, p.src, p.srcName, p.srcDB, p.dstDB, run.idle)
		srcCPU, dstCPU = src.cpuSeconds()-srcCPU, dst.cpuSeconds()-dstCPU
		table = append(table, benchRow{run.name + ", ms p50 / p99 / max (ref: native)", lag.String(), run.native.String(), ""})
		table = append(table, benchRow{"  same, CPU s: source cluster" + run.load + " (ref: native's, walsender included)",
			fmt.Sprintf("%.1f", lag.srcCPU), fmt.Sprintf("%.1f", run.native.srcCPU), ratio(lag.srcCPU, run.native.srcCPU)})
		table = append(table, benchRow{"  same, CPU s: source instance / target instance", fmt.Sprintf("%.1f / %.1f", srcCPU, dstCPU), "", ""})
	}
	table = append(table, benchRow{"peak RSS during the OLTP backlog and lag run, MiB: src / dst", fmt.Sprintf("%.0f / %.0f", src.peakRSS(), dst.peakRSS()), "", ""})
	waitCut(t, p.srcDB)
	waitApplied(t, p, 5*time.Minute)

	// The same backlog with a target role that may not set
	// session_replication_role, so foreign keys are checked as rows apply.
	if p.dst.Major() >= 15 {
		dst.stop()
		p.dst.AdminExec(t, p.dstName, `REVOKE SET ON PARAMETER session_replication_role FROM `+dbtest.Role)
		pgbench(t, p.src, p.srcName, "-c", strconv.Itoa(clients), "-j", "2", "-M", "prepared", "-t", strconv.Itoa(perClient))
		took = drain()
		tps := clients * perClient / took.Seconds()
		table = append(table, benchRow{"  same, target role may not set session_replication_role", fmt.Sprintf("%.0f", tps),
			fmt.Sprintf("%.0f", native.oltpTxPerSec), ratio(tps, native.oltpTxPerSec)})
	}
	src.stop()
	dst.stop()
	for _, tbl := range []string{"pgbench_accounts", "pgbench_branches", "pgbench_tellers", "pgbench_history", "bulk", "heartbeat"} {
		a, _ := checksum(p.srcDB, "public."+tbl)
		b, _ := checksum(p.dstDB, "public."+tbl)
		if a != b {
			t.Errorf("after the benchmark, %s differs: source %s, target %s", tbl, a, b)
		}
	}
	return table
}

type benchRow struct {
	name, figure, reference, ratio string
}

func printBench(t *testing.T, table []benchRow) {
	var b strings.Builder
	fmt.Fprintf(&b, "\n%-56s %14s %14s %7s\n", "scenario", "teleport", "reference", "ratio")
	for _, r := range table {
		fmt.Fprintf(&b, "%-56s %14s %14s %7s\n", r.name, r.figure, r.reference, r.ratio)
	}
	t.Log(b.String())
	fmt.Print(b.String())
}

// TestBench runs every scenario and prints one table: Teleport's figure,
// the reference measured in the same run, and their ratio.
func TestBench(t *testing.T) {
	benchOnly(t)
	var table []benchRow
	for _, sc := range []struct {
		name string
		run  func(*testing.T) []benchRow
	}{{"capture", benchCapture}, {"replication", benchReplication}, {"load", benchLoad}} {
		t.Run(sc.name, func(t *testing.T) { table = append(table, sc.run(t)...) })
	}
	printBench(t, table)
}

// pgqTrigger is the peer capture is measured against: PgQ's C row trigger
// (Debian's postgresql-NN-pgq3), which writes one event per row into its
// queue table.
const pgqTrigger = "bench_pgq"

// benchCapture measures what capture costs the source's writers: no capture,
// Teleport's statement-level triggers, and PgQ's C trigger, on pgbench's
// TPC-B-like load (runs alternated, medians of three) and on bulk
// statements. No instance runs, so only the triggers are measured.
func benchCapture(t *testing.T) []benchRow {
	ctx := context.Background()
	c := dbtest.Start(t)
	db, name := c.NewDB(t)
	pgbench(t, c, name, "-i", "-q", "-s", "10")
	if _, err := migrate.Migrate(ctx, db); err != nil {
		t.Fatal(err)
	}
	execSQL(t, db, `CREATE TABLE public.bulk (aid int PRIMARY KEY, bid int, abalance int, filler char(84))`)
	admin := c.Admin(t, name)
	if _, err := admin.Exec(`CREATE EXTENSION pgq`); err != nil {
		var major int
		_ = admin.QueryRow(`SELECT current_setting('server_version_num')::int / 10000`).Scan(&major)
		t.Fatalf("PgQ, the reference for capture, is not installed (%v): install postgresql-%d-pgq3 (make bench does)", err, major)
	}
	execSQL(t, admin, `GRANT pgq_writer TO `+dbtest.Role)
	tables := []string{"public.pgbench_accounts", "public.pgbench_branches", "public.pgbench_tellers", "public.pgbench_history", "public.bulk"}
	// The floors: statement triggers shaped as Teleport's (transition
	// tables and all) that do nothing, insert one constant row into an
	// unindexed table, or one row into a table with a btree on the
	// transaction id, as Teleport's event table has.
	execSQL(t, db, `CREATE TABLE public.floor_sink (v int);
		CREATE TABLE public.floor_sink_btree (xid xid8 DEFAULT pg_current_xact_id());
		CREATE INDEX ON public.floor_sink_btree (xid);
		CREATE FUNCTION public.floor_empty() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN RETURN NULL; END$$;
		CREATE FUNCTION public.floor_row() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN INSERT INTO public.floor_sink VALUES (1); RETURN NULL; END$$;
		CREATE FUNCTION public.floor_btree() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN INSERT INTO public.floor_sink_btree DEFAULT VALUES; RETURN NULL; END$$;`)
	// For bulk statements, one more floor: a trigger that turns every row
	// of its transition tables into JSON once and keeps nothing, what any
	// capture of rows as JSON must do (the empty trigger is the cost of
	// the transition tables themselves).
	execSQL(t, db, `CREATE FUNCTION public.floor_json() RETURNS trigger LANGUAGE plpgsql AS $$
		DECLARE total bigint;
		BEGIN
			IF TG_OP <> 'INSERT' THEN
				SELECT sum(octet_length(row_to_json(o.*)::text)) INTO total FROM o;
			END IF;
			IF TG_OP <> 'DELETE' THEN
				SELECT sum(octet_length(row_to_json(n.*)::text)) INTO total FROM n;
			END IF;
			RETURN NULL;
		END$$;`)
	floors := map[string]string{"floor: empty trigger": "floor_empty", "floor: one row": "floor_row", "floor: one row, btree": "floor_btree", "floor: rows to JSON": "floor_json"}
	modes := []string{"none", "floor: empty trigger", "floor: one row", "floor: one row, btree", "teleport", "pgq"}
	setMode := func(mode string) {
		dropCapture(t, db)
		for _, tbl := range tables {
			execSQL(t, admin, `DROP TRIGGER IF EXISTS `+pgqTrigger+` ON `+tbl)
			for _, tr := range []string{"floor_insert", "floor_update", "floor_delete"} {
				execSQL(t, db, `DROP TRIGGER IF EXISTS `+tr+` ON `+tbl)
			}
		}
		execSQL(t, db, `TRUNCATE public.floor_sink, public.floor_sink_btree`)
		execSQL(t, admin, `SELECT pgq.drop_queue(queue_name, true) FROM pgq.queue`)
		execSQL(t, db, `TRUNCATE teleport.event`)
		switch mode {
		case "teleport":
			if _, err := capture.InstallCapture(ctx, db, func(schema, _ string) bool { return schema == "public" }, false); err != nil {
				t.Fatal(err)
			}
		case "floor: empty trigger", "floor: one row", "floor: one row, btree", "floor: rows to JSON":
			for _, tbl := range tables {
				execSQL(t, db, `CREATE TRIGGER floor_insert AFTER INSERT ON `+tbl+` REFERENCING NEW TABLE AS n FOR EACH STATEMENT EXECUTE FUNCTION public.`+floors[mode]+`();
					CREATE TRIGGER floor_update AFTER UPDATE ON `+tbl+` REFERENCING OLD TABLE AS o NEW TABLE AS n FOR EACH STATEMENT EXECUTE FUNCTION public.`+floors[mode]+`();
					CREATE TRIGGER floor_delete AFTER DELETE ON `+tbl+` REFERENCING OLD TABLE AS o FOR EACH STATEMENT EXECUTE FUNCTION public.`+floors[mode]+`()`)
			}
		case "pgq":
			execSQL(t, admin, `SELECT pgq.create_queue('bench')`)
			for _, tbl := range tables {
				execSQL(t, admin, `CREATE TRIGGER `+pgqTrigger+` AFTER INSERT OR UPDATE OR DELETE ON `+tbl+` FOR EACH ROW EXECUTE FUNCTION pgq.logutriga('bench')`)
			}
		}
		execSQL(t, db, `VACUUM ANALYZE`)
		execSQL(t, admin, `CHECKPOINT`)
	}
	// One session committing loopTx transactions of one UPDATE and one
	// INSERT each, timed: on two shared cores its time moves far less than
	// pgbench's TPS, so it shows what each mode adds to a transaction.
	execSQL(t, db, `CREATE PROCEDURE public.bench_loop(n int) LANGUAGE plpgsql AS $$
		BEGIN
			FOR i IN 1..n LOOP
				UPDATE public.pgbench_accounts SET abalance = abalance + 1 WHERE aid = (i * 7919) % 1000000 + 1;
				INSERT INTO public.pgbench_history (tid, bid, aid, delta, mtime) VALUES (1, 1, i, 1, now());
				COMMIT;
			END LOOP;
		END $$`)
	const loopTx = 20000
	tps := map[string][]float64{}
	perTx := map[string][]float64{} // µs per loop transaction
	for round := range 3 {
		for _, mode := range modes {
			setMode(mode)
			tps[mode] = append(tps[mode], pgbenchTPS(t, c, name, "-c", "4", "-j", "2", "-M", "prepared", "-T", "8"))
			start := time.Now()
			execSQL(t, db, fmt.Sprintf(`CALL public.bench_loop(%d)`, loopTx))
			perTx[mode] = append(perTx[mode], float64(time.Since(start).Microseconds())/loopTx)
		}
		var line []string
		for _, mode := range modes {
			line = append(line, fmt.Sprintf("%s %.0f (%.1f µs/tx alone)", mode, tps[mode][round], perTx[mode][round]))
		}
		t.Logf("round %d: tps %s", round+1, strings.Join(line, ", "))
	}
	// Bulk statements, modes alternated, medians of three: an INSERT of
	// 1,000,000 rows into an empty table, then an UPDATE of all of them.
	bulkModes := []string{"none", "floor: empty trigger", "floor: rows to JSON", "teleport", "pgq"}
	bulk := map[string][2][]float64{} // seconds: INSERT, UPDATE
	for range 3 {
		for _, mode := range bulkModes {
			setMode(mode)
			execSQL(t, db, `TRUNCATE public.bulk`)
			execSQL(t, admin, `CHECKPOINT`)
			start := time.Now()
			execSQL(t, db, `INSERT INTO public.bulk SELECT i, 1, 0, '' FROM generate_series(1, 1000000) i`)
			ins := time.Since(start)
			execSQL(t, db, `VACUUM public.bulk`)
			execSQL(t, db, `TRUNCATE teleport.event, public.floor_sink, public.floor_sink_btree`)
			execSQL(t, admin, `CHECKPOINT`)
			start = time.Now()
			execSQL(t, db, `UPDATE public.bulk SET abalance = abalance + 1`)
			b := bulk[mode]
			bulk[mode] = [2][]float64{append(b[0], ins.Seconds()), append(b[1], time.Since(start).Seconds())}
		}
	}
	setMode("none")
	none := median(tps["none"])
	ratio := func(a, b float64) string { return fmt.Sprintf("%.2f", a/b) }
	var table []benchRow
	for _, mode := range modes[1:] {
		table = append(table, benchRow{"pgbench TPS, capture: " + mode + " (ref: none)", fmt.Sprintf("%.0f", median(tps[mode])), fmt.Sprintf("%.0f", none), ratio(median(tps[mode]), none)})
	}
	noneTx := median(perTx["none"])
	for _, mode := range modes[1:] {
		table = append(table, benchRow{"µs per transaction of one UPDATE and one INSERT, one session, capture: " + mode + " (ref: none)",
			fmt.Sprintf("%.1f", median(perTx[mode])), fmt.Sprintf("%.1f", noneTx), ratio(median(perTx[mode]), noneTx)})
	}
	for i, stmt := range []string{"INSERT", "UPDATE"} {
		none := median(bulk["none"][i])
		for _, mode := range bulkModes[1:] {
			took := median(bulk[mode][i])
			table = append(table, benchRow{stmt + " 1,000,000 rows, s, capture: " + mode + " (ref: none)", fmt.Sprintf("%.2f", took), fmt.Sprintf("%.2f", none), ratio(took, none)})
		}
	}
	return table
}

// dropCapture removes every capture trigger, for runs without capture.
func dropCapture(t *testing.T, db *sql.DB) {
	t.Helper()
	rows, err := db.Query(`SELECT format('DROP TRIGGER %I ON %s', tgname, tgrelid::regclass) FROM pg_trigger WHERE tgname LIKE 'teleport\_capture\_%'`)
	if err != nil {
		t.Fatal(err)
	}
	var stmts []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		stmts = append(stmts, s)
	}
	rows.Close()
	for _, s := range stmts {
		execSQL(t, db, s)
	}
}

// waitCapture waits until the source instance has installed its triggers
// and taken target dst's first tick: a change committed before that tick is
// not in dst's stream (an initial load's business).
func waitCapture(t *testing.T, db *sql.DB) {
	t.Helper()
	dbtest.WaitFor(t, 30*time.Second, "capture triggers and target dst's first tick", func() bool {
		var n int
		return db.QueryRow(`SELECT (SELECT count(*) FROM pg_trigger WHERE tgname = 'teleport_capture_insert' AND tgrelid = 'public.bulk'::regclass)
			+ (SELECT count(*) FROM teleport.target_state WHERE name = 'dst')`).Scan(&n) == nil && n == 2
	})
}

// waitCut waits until the source's batcher has cut every change committed
// so far into batches: until target dst's last tick sees every event. (A
// tick taken after the call is no sign: a batcher that has cut everything
// takes no more ticks until something new is written.)
func waitCut(t *testing.T, db *sql.DB) {
	t.Helper()
	dbtest.WaitFor(t, 2*time.Minute, "the batcher to cut what was committed", func() bool {
		var pending bool
		err := db.QueryRow(`SELECT EXISTS (SELECT 1 FROM teleport.target_state g JOIN teleport.tick k ON k.id = g.last_tick
			JOIN teleport.event e ON e.xid >= pg_snapshot_xmin(k.snapshot) AND NOT pg_visible_in_snapshot(e.xid, k.snapshot)
			WHERE g.name = 'dst')`).Scan(&pending)
		return err == nil && !pending
	})
}

// loadScale is the pgbench scale of the initial-load benchmark.
const loadScale = 50

// loadRuns is how many times each side of the load benchmark runs: 3, or
// TELEPORT_BENCH_RUNS.
func loadRuns() int {
	if n, err := strconv.Atoi(os.Getenv("TELEPORT_BENCH_RUNS")); err == nil && n > 0 {
		return n
	}
	return 3
}

// benchLoad times an initial load of a pgbench database against the
// practical limit between the same two clusters: psql's COPY (SELECT ...)
// TO STDOUT piped into psql's COPY ... FROM STDIN, table by table, into the
// same empty tables. Runs alternate, loadRuns of each; the table shows medians.
func benchLoad(t *testing.T) []benchRow {
	setPasswordEnv(t)
	src, dst := dbtest.Start(t), dbtest.Start(t)
	srcDB, srcName := src.NewDB(t)
	pgbench(t, src, srcName, "-i", "-q", "-s", strconv.Itoa(loadScale))
	tables := []string{"pgbench_accounts", "pgbench_branches", "pgbench_tellers", "pgbench_history"}

	// cpu is what both clusters' processes have used so far, in seconds.
	cpu := func() float64 { return clusterCPU(t, src) + clusterCPU(t, dst) }
	// pipe returns its time, and the CPU seconds of both clusters and of
	// the psql processes.
	pipe := func() (time.Duration, float64, float64) {
		_, name := dst.NewDB(t)
		pgbench(t, dst, name, "-i", "-q", "-I", "dtp", "-s", strconv.Itoa(loadScale)) // the tables and keys, no rows
		psql := func(c *dbtest.Cluster, db, sql string) string {
			return fmt.Sprintf("%s -X -q -h %s -p %d -U %s -d %s -c '%s'", c.ClientPath("psql"), c.Host, c.Port, dbtest.Role, db, sql)
		}
		var procs float64
		cpu0 := cpu()
		start := time.Now()
		for _, tbl := range tables {
			cmd := exec.Command("sh", "-c", psql(src, srcName, "COPY (SELECT * FROM public."+tbl+") TO STDOUT")+" | "+
				psql(dst, name, "COPY public."+tbl+" FROM STDIN"))
			cmd.Env = append(os.Environ(), "PGPASSWORD="+dbtest.RolePassword)
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("pipe %s: %v\n%s", tbl, err, out)
			}
			procs += (cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()).Seconds() // the shell's, its psqls' included
		}
		return time.Since(start), cpu() - cpu0, procs
	}

	type loadRun struct {
		took                    time.Duration
		bytes                   int64
		srcRSS, dstRSS, loadRSS float64
		verify, hash            time.Duration // -mode verify of pgbench_accounts, and the plain hash query
		clusterCPU, procCPU     float64       // CPU seconds of the load: both clusters, the three teleport processes
	}
	runs := 0
	teleport := func(flags ...string) loadRun {
		runs++
		dstDB, dstName := dst.NewDB(t)
		port := freePort(t)
		target := fmt.Sprintf("dst%d", runs)
		dstCfg := writeConfig(t, instance{name: target, c: dst, dbname: dstName, port: port})
		srcCfg := writeConfig(t, instance{name: "src", c: src, dbname: srcName, port: freePort(t),
			targets: fmt.Sprintf("  %s:\n    target_expression: \"public.*\"\n    endpoint:\n      hostname: \"127.0.0.1\"\n      port: %d\n", target, port)})
		dstProc := startProc(t, dstCfg)
		srcProc := startProc(t, srcCfg)
		dbtest.WaitFor(t, time.Minute, "the schema on the target", func() bool {
			var n int
			return dstDB.QueryRow(`SELECT count(*) FROM pg_tables WHERE schemaname = 'public' AND tablename LIKE 'pgbench%'`).Scan(&n) == nil && n == len(tables)
		})
		bin, err := buildBinary()
		if err != nil {
			t.Fatal(err)
		}
		var log bytes.Buffer
		cmd := exec.Command(bin, append([]string{"-config", srcCfg, "-mode", "initial-load", "-load-target", target}, flags...)...)
		cmd.Stderr = &log
		cpu0, srcCPU0, dstCPU0 := cpu(), srcProc.cpuSeconds(), dstProc.cpuSeconds()
		start := time.Now()
		if err := cmd.Run(); err != nil {
			t.Fatalf("load: %v\n%s", err, log.String())
		}
		r := loadRun{took: time.Since(start), srcRSS: srcProc.peakRSS(), dstRSS: dstProc.peakRSS(), clusterCPU: cpu() - cpu0,
			procCPU: srcProc.cpuSeconds() - srcCPU0 + dstProc.cpuSeconds() - dstCPU0 + (cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()).Seconds()}
		if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
			r.loadRSS = float64(ru.Maxrss) / 1024
		}
		m := regexp.MustCompile(`initial load done.* bytes=(\d+)`).FindStringSubmatch(log.String())
		if m == nil {
			t.Fatalf("no byte count in the load's log:\n%s", log.String())
		}
		r.bytes, _ = strconv.ParseInt(m[1], 10, 64)
		// Verify the loaded table against its reference: the hash query
		// on the source alone.
		start = time.Now()
		if _, err := srcDB.Exec(`SELECT count(*), sum(hashtext(t::text)) FROM public.pgbench_accounts t`); err != nil {
			t.Fatal(err)
		}
		r.hash = time.Since(start)
		start = time.Now()
		out, err := exec.Command(bin, "-config", srcCfg, "-mode", "verify", "-target", target, "-tables", "pgbench_accounts").CombinedOutput()
		r.verify = time.Since(start)
		if err != nil || !strings.Contains(string(out), "1 tables equal") {
			t.Fatalf("verify after load %d: %v\n%s", runs, err, out)
		}
		srcProc.stop()
		dstProc.stop()
		for _, tbl := range tables {
			a, _ := checksum(srcDB, "public."+tbl)
			b, _ := checksum(dstDB, "public."+tbl)
			if a != b {
				t.Errorf("after load %d, %s differs: source %s, target %s", runs, tbl, a, b)
			}
		}
		return r
	}

	var pipes, loads, chunked, verifies, hashes []float64
	var pipeCPU, loadCPU [2][]float64 // clusters, processes
	var last loadRun
	for range loadRuns() {
		took, clusters, procs := pipe()
		pipes = append(pipes, took.Seconds())
		pipeCPU = [2][]float64{append(pipeCPU[0], clusters), append(pipeCPU[1], procs)}
		last = teleport()
		loads = append(loads, last.took.Seconds())
		loadCPU = [2][]float64{append(loadCPU[0], last.clusterCPU), append(loadCPU[1], last.procCPU)}
		verifies, hashes = append(verifies, last.verify.Seconds()), append(hashes, last.hash.Seconds())
		chunked = append(chunked, teleport("-chunk-mb", "128").took.Seconds())
	}
	mib := float64(last.bytes) / (1 << 20)
	tp, pp, cp := mib/median(loads), mib/median(pipes), mib/median(chunked)
	return []benchRow{
		{fmt.Sprintf("initial load, pgbench scale %d (%.0f MiB of COPY text; every table whole: none reaches 2 GiB), MiB/s (ref: psql COPY pipe)", loadScale, mib),
			fmt.Sprintf("%.1f", tp), fmt.Sprintf("%.1f", pp), fmt.Sprintf("%.2f", tp/pp)},
		{"  same, CPU s: both clusters / the load's processes (ref: the pipe's clusters / its psqls)",
			fmt.Sprintf("%.1f / %.1f", median(loadCPU[0]), median(loadCPU[1])), fmt.Sprintf("%.1f / %.1f", median(pipeCPU[0]), median(pipeCPU[1])), ""},
		{"same, pgbench_accounts in parallel chunks of 128 MiB (-chunk-mb 128)", fmt.Sprintf("%.1f", cp), fmt.Sprintf("%.1f", pp), fmt.Sprintf("%.2f", cp/pp)},
		{"peak RSS during it, MiB: source / target / load command", fmt.Sprintf("%.0f / %.0f / %.0f", last.srcRSS, last.dstRSS, last.loadRSS), "", ""},
		{fmt.Sprintf("-mode verify of pgbench_accounts (scale %d), s (ref: its hash query on the source)", loadScale),
			fmt.Sprintf("%.2f", median(verifies)), fmt.Sprintf("%.2f", median(hashes)), fmt.Sprintf("%.2f", median(verifies)/median(hashes))},
	}
}
