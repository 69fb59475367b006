// The end-to-end tests' fixture: clusters of the majors under test, instance
// configs and processes, a source and a target paired over HTTP, a fault
// proxy for the link between them, and the checks they share.

package main

import (
	"bytes"
	"cmp"
	"compress/gzip"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
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
	"github.com/pagarme/teleport/vacuum"
)

func TestMain(m *testing.M) {
	// Sources move on to their next slot every fraction of a second, so
	// every end-to-end test runs across many rotations and emptied slots.
	vacuum.RotateEvery = 300 * time.Millisecond
	code := dbtest.Run(m)
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// The end-to-end tests run a source and a target cluster of PG_BINDIR's
// major. TELEPORT_TEST_MAJORS=13:18 runs every pair across two majors
// instead, source on 13 and target on 18, as `make test` does for the
// upgrade and downgrade pairs it tests.
var testMajors = sync.OnceValues(func() ([2]int, error) {
	v := os.Getenv("TELEPORT_TEST_MAJORS")
	if v == "" {
		return [2]int{}, nil
	}
	a, b, ok := strings.Cut(v, ":")
	src, err1 := strconv.Atoi(a)
	dst, err2 := strconv.Atoi(b)
	if !ok || err1 != nil || err2 != nil {
		return [2]int{}, fmt.Errorf("TELEPORT_TEST_MAJORS=%q: want SOURCE:TARGET, such as 13:18", v)
	}
	return [2]int{src, dst}, nil
})

// testMajor is the major TELEPORT_TEST_MAJORS sets for the source (side 0)
// or the target (side 1), 0 for PG_BINDIR's.
func testMajor(t testing.TB, side int) int {
	t.Helper()
	m, err := testMajors()
	if err != nil {
		t.Fatal(err)
	}
	return m[side]
}

// sourceCluster is the cluster a test's source database lives in: the
// shared one, of the source major when TELEPORT_TEST_MAJORS sets one.
func sourceCluster(t testing.TB) *dbtest.Cluster {
	t.Helper()
	if m := testMajor(t, 0); m != 0 {
		return dbtest.SharedMajor(t, m)
	}
	return dbtest.Shared(t)
}

// targetCluster starts a private cluster for a test's target database, of
// the target major when TELEPORT_TEST_MAJORS sets one. Each setting is a
// postgresql.conf line.
func targetCluster(t testing.TB, settings ...string) *dbtest.Cluster {
	t.Helper()
	if m := testMajor(t, 1); m != 0 {
		return dbtest.StartMajor(t, m, settings...)
	}
	return dbtest.Start(t, settings...)
}

// privateSourceCluster starts a private cluster for a source database, for
// tests that stop it or change its settings.
func privateSourceCluster(t testing.TB, settings ...string) *dbtest.Cluster {
	t.Helper()
	if m := testMajor(t, 0); m != 0 {
		return dbtest.StartMajor(t, m, settings...)
	}
	return dbtest.Start(t, settings...)
}

// freePort returns a loopback TCP port nobody listens on right now and no
// other test of this binary was given.
func freePort(t testing.TB) int {
	t.Helper()
	port, err := dbtest.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	return port
}

// instance is the part of a config file the tests vary.
type instance struct {
	name    string
	c       *dbtest.Cluster
	dbname  string
	port    int
	token   string
	targets string // YAML of the targets section, indented, or ""
	user    string // the role to connect as; "" is dbtest.Role
	extra   string // top-level YAML lines, or ""
}

// writeConfig writes an upstream-style config file for inst and returns its path.
func writeConfig(t testing.TB, inst instance) string {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, `batch_size: 10000
processing_intervals:
  batcher: 100
  transmitter: 100
  applier: 100
  vacuum: 500
  ddlwatcher: 5000
database:
  name: %q
  database: %q
  hostname: %q
  username: %q
  password: "${TELEPORT_TEST_PW}"
  port: %d
  sslmode: disable
server:
  hostname: "127.0.0.1"
  port: %d
`, inst.name, inst.dbname, inst.c.Host, cmp.Or(inst.user, dbtest.Role), inst.c.Port, inst.port)
	b.WriteString(inst.extra)
	if inst.token != "" {
		fmt.Fprintf(&b, "  auth_token: %q\n", inst.token)
	}
	if inst.targets != "" {
		b.WriteString("targets:\n" + inst.targets)
	}
	p := filepath.Join(t.TempDir(), inst.name+".yml")
	if err := os.WriteFile(p, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// inProc is an instance running in-process.
type inProc struct {
	done chan struct{} // closed when run has returned
	err  error         // what run returned, once done is closed
	stop func() error  // cancels run and reports what it returned
}

// spawnInstance runs an instance in-process without waiting for it to serve.
// It is stopped in t.Cleanup.
func spawnInstance(t testing.TB, cfgPath string) *inProc {
	t.Helper()
	return spawnInstanceLog(t, cfgPath, testWriter{t})
}

// spawnInstanceLog is spawnInstance with the instance's log written to log.
func spawnInstanceLog(t testing.TB, cfgPath string, log io.Writer) *inProc {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	p := &inProc{done: make(chan struct{})}
	go func() {
		p.err = run(ctx, []string{"-config", cfgPath}, os.Stdout, log)
		close(p.done)
	}()
	var once sync.Once
	var err error
	p.stop = func() error {
		once.Do(func() {
			cancel()
			select {
			case <-p.done:
				err = p.err
			case <-time.After(10 * time.Second):
				err = fmt.Errorf("instance did not stop within 10s")
			}
		})
		return err
	}
	t.Cleanup(func() { _ = p.stop() })
	return p
}

// waitUp waits until the instance serves /status on port and returns it; an
// instance that stops instead fails the test at once, with its error.
func (p *inProc) waitUp(t testing.TB, port int, token string) wire.Status {
	t.Helper()
	var st wire.Status
	dbtest.WaitFor(t, 20*time.Second, fmt.Sprintf("instance on port %d to serve /status", port), func() bool {
		select {
		case <-p.done:
			t.Fatalf("instance for port %d stopped during start-up: %v", port, p.err)
		default:
		}
		s, code, err := getStatus(port, token)
		st = s
		return err == nil && code == http.StatusOK
	})
	return st
}

// startInstance runs an instance in-process, waits until it serves /status on
// port and returns a func that stops it and reports what run returned.
func startInstance(t testing.TB, cfgPath string, port int, token string) (stop func() error) {
	t.Helper()
	p := spawnInstance(t, cfgPath)
	p.waitUp(t, port, token)
	return p.stop
}

// testWriter sends an instance's log lines to t.Log.
type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func getStatus(port int, token string) (wire.Status, int, error) {
	req, _ := http.NewRequest(http.MethodGet, fmt.Sprintf("http://127.0.0.1:%d/status", port), nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return wire.Status{}, 0, err
	}
	defer resp.Body.Close()
	var st wire.Status
	err = json.NewDecoder(resp.Body).Decode(&st)
	return st, resp.StatusCode, err
}

func waitStatus(t testing.TB, port int, token string) wire.Status {
	t.Helper()
	var st wire.Status
	dbtest.WaitFor(t, 20*time.Second, fmt.Sprintf("instance on port %d to serve /status", port), func() bool {
		s, code, err := getStatus(port, token)
		st = s
		return err == nil && code == http.StatusOK
	})
	return st
}

func mustRead(t testing.TB, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// binDir holds the command buildBinary built, removed by TestMain.
var binDir string

// buildBinary builds the teleport command once per test binary.
var buildBinary = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "teleport-bin")
	if err != nil {
		return "", err
	}
	binDir = dir
	bin := filepath.Join(dir, "teleport")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build: %v\n%s", err, out)
	}
	return bin, nil
})

// setPasswordEnv puts the test role's password where the configurations
// writeConfig writes look for it. It is the same for every test, so
// parallel tests may share it.
func setPasswordEnv(t testing.TB) {
	t.Helper()
	if err := os.Setenv("TELEPORT_TEST_PW", dbtest.RolePassword); err != nil {
		t.Fatal(err)
	}
}

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

	// Set before start, for tests of the link: the port the source sends
	// to instead of the target's (a proxy's), and lines added to the
	// source's config, top level and under its target.
	viaPort                  int
	srcExtra, srcTargetExtra string
	targetExpr               string    // the source's target_expression for dst; "" is public.*
	srcLog                   io.Writer // also gets the source's log; nil: the test's log only
}

// newPair creates schemaSQL (unqualified names) in public on the source and
// in applySchema (or public) on the target, writes both configs and starts
// both instances.
func newPair(t *testing.T, applySchema, schemaSQL string) *pair {
	t.Helper()
	p := newPairStopped(t, applySchema, schemaSQL)
	p.start(t)
	return p
}

// newPairStopped is newPair without starting the instances.
func newPairStopped(t *testing.T, applySchema, schemaSQL string) *pair {
	t.Helper()
	return newPairOn(t, targetCluster(t), applySchema, schemaSQL)
}

// newPairOn is newPairStopped with the target's database on dst.
func newPairOn(t *testing.T, dst *dbtest.Cluster, applySchema, schemaSQL string) *pair {
	t.Helper()
	setPasswordEnv(t)
	p := &pair{src: sourceCluster(t), dst: dst, applySchema: applySchema}
	p.srcDB, p.srcName = p.src.NewDB(t)
	p.dstDB, p.dstName = p.dst.NewDB(t)
	execSQL(t, p.srcDB, "BEGIN; SET LOCAL search_path = public; "+schemaSQL+"; COMMIT")
	dstSchema := "public"
	if applySchema != "" {
		dstSchema = applySchema
		execSQL(t, p.dstDB, "CREATE SCHEMA "+applySchema)
	}
	execSQL(t, p.dstDB, "BEGIN; SET LOCAL search_path = "+dstSchema+"; "+schemaSQL+"; COMMIT")
	return p
}

// start writes both configs, the source sending targetExpr (public.* by
// default) to the target (into applySchema when set), and starts both
// instances.
func (p *pair) start(t *testing.T) {
	t.Helper()
	if p.dstPort == 0 {
		p.srcPort, p.dstPort = freePort(t), freePort(t)
	}
	p.dstCfg = writeConfig(t, instance{name: "dst", c: p.dst, dbname: p.dstName, port: p.dstPort})
	p.writeSrcConfig(t)
	p.startDst(t)
	p.startSrc(t)
}

// writeSrcConfig writes the source instance's configuration, its one
// target dst.
func (p *pair) writeSrcConfig(t *testing.T) {
	target := fmt.Sprintf("  dst:\n    target_expression: %q\n    endpoint:\n      hostname: \"127.0.0.1\"\n      port: %d\n%s",
		cmp.Or(p.targetExpr, "public.*"), cmp.Or(p.viaPort, p.dstPort), p.srcTargetExtra)
	if p.applySchema != "" {
		target += fmt.Sprintf("    apply_schema: %q\n", p.applySchema)
	}
	p.srcCfg = writeConfig(t, instance{name: "src", c: p.src, dbname: p.srcName, port: p.srcPort, targets: target, extra: p.srcExtra})
}

func (p *pair) startSrc(t *testing.T) {
	if p.srcLog == nil {
		p.stopSrc = startInstance(t, p.srcCfg, p.srcPort, "")
		return
	}
	src := spawnInstanceLog(t, p.srcCfg, io.MultiWriter(testWriter{t}, p.srcLog))
	src.waitUp(t, p.srcPort, "")
	p.stopSrc = src.stop
}

func (p *pair) startDst(t *testing.T) {
	p.stopDst = startInstance(t, p.dstCfg, p.dstPort, "")
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

// dstStatus is the pair's replication state, for failure messages: what
// the target has applied of the source, why the source's sends fail if
// they do (from its /status), and the sessions of either database that are
// waiting or have been running a statement for over a second.
func (p *pair) dstStatus(t *testing.T) string {
	var b strings.Builder
	var s string
	_ = p.dstDB.QueryRow(`SELECT coalesce(string_agg(format('%s applied %s error %s', name, applied_seq, error), '; '), 'no source') FROM teleport.source`).Scan(&s) // best effort, for the message only
	b.WriteString(s)
	if st, code, err := getStatus(p.srcPort, ""); err == nil && code == http.StatusOK {
		for _, tg := range st.Targets {
			fmt.Fprintf(&b, "\nsource: target %s cut %d acked %d applied %d", tg.Name, tg.LastSeq, tg.AckedSeq, tg.AppliedSeq)
			if f := tg.SendFailure; f != nil {
				fmt.Fprintf(&b, "; sending fails since %s (%d passes): %s", f.Since.Format(time.RFC3339Nano), f.Failures, f.Error)
			}
		}
	}
	for side, db := range map[string]*sql.DB{"source": p.srcDB, "target": p.dstDB} {
		rows, err := db.Query(`SELECT pid, state, coalesce(wait_event_type || ':' || wait_event, ''),
				round(extract(epoch FROM now() - query_start)::numeric, 1), left(query, 160)
			FROM pg_catalog.pg_stat_activity
			WHERE datname = current_database() AND pid <> pg_backend_pid() AND state <> 'idle'
			  AND (wait_event_type = 'Lock' OR now() - query_start > interval '1 second')`)
		if err != nil {
			continue
		}
		for rows.Next() {
			var pid int
			var state, wait, secs, query string
			if rows.Scan(&pid, &state, &wait, &secs, &query) == nil {
				fmt.Fprintf(&b, "\n%s session %d %s %s for %s s: %s", side, pid, state, wait, secs, strings.Join(strings.Fields(query), " "))
			}
		}
		rows.Close()
	}
	return b.String()
}

// linkProxy is a TCP proxy between a source and its target that plays a
// bad link: it forwards at most rate bytes a second each way, resets the
// connection every resetEvery bytes sent towards the target (mid-request,
// as a flaky link does), and with hold set forwards nothing at all (a
// blackhole: the connection stays open, no byte moves).
type linkProxy struct {
	ln         net.Listener
	target     string
	rate       int   // bytes per second each way; 0: unlimited
	resetEvery int64 // 0: never
	hold       atomic.Bool

	mu     sync.Mutex
	upTo   int64 // bytes towards the target since the last reset
	up     int64 // bytes towards the target in all
	resets int
}

func newLinkProxy(t *testing.T, target string, rate int, resetEvery int64) *linkProxy {
	t.Helper()
	// A small receive buffer, as the far end of a slow link has: bytes the
	// proxy has not forwarded stay unacknowledged in the sender's queue
	// instead of piling up here (loopback would take megabytes at once).
	lc := net.ListenConfig{Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		if err := rc.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 16<<10)
		}); err != nil {
			return err
		}
		return serr
	}}
	ln, err := lc.Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	x := &linkProxy{ln: ln, target: target, rate: rate, resetEvery: resetEvery}
	var conns sync.WaitGroup
	t.Cleanup(func() {
		_ = ln.Close()
		x.hold.Store(false)
		conns.Wait()
	})
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return // closed by the cleanup
			}
			conns.Go(func() { x.serve(c) })
		}
	}()
	return x
}

func (x *linkProxy) port() int { return x.ln.Addr().(*net.TCPAddr).Port }

func (x *linkProxy) serve(c net.Conn) {
	d, err := net.Dial("tcp", x.target)
	if err != nil {
		_ = c.Close()
		return
	}
	reset := func() {
		_ = c.(*net.TCPConn).SetLinger(0) // close with RST, as a dropped link shows
		_ = c.Close()
		_ = d.Close()
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		x.pump(d, c, false, reset)
	}()
	x.pump(c, d, true, reset)
	<-done
}

// pump copies from → to in pieces, at the rate, counting what goes
// towards the target and resetting the connection at resetEvery.
func (x *linkProxy) pump(from, to net.Conn, up bool, reset func()) {
	defer reset()
	piece := 4 << 10
	buf := make([]byte, piece)
	for {
		n, err := from.Read(buf)
		for n > 0 && x.hold.Load() {
			time.Sleep(10 * time.Millisecond)
		}
		if n > 0 {
			if x.rate > 0 {
				time.Sleep(time.Duration(n) * time.Second / time.Duration(x.rate))
			}
			if up {
				x.mu.Lock()
				x.up += int64(n)
				x.upTo += int64(n)
				cut := x.resetEvery > 0 && x.upTo >= x.resetEvery
				if cut {
					x.upTo = 0
					x.resets++
				}
				x.mu.Unlock()
				if cut {
					return // mid-request: this piece never arrives
				}
			}
			if _, werr := to.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

func (x *linkProxy) stats() (up int64, resets int) {
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.up, x.resets
}

// metric reads one sample of the target's /metrics, -1 when absent.
func metric(t *testing.T, port int, sample string) int64 {
	t.Helper()
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/metrics", port))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, sample+" "); ok {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				t.Fatalf("metric %s = %q", sample, v)
			}
			return n
		}
	}
	return -1
}

// newLinkPair prepares a pair replicating table blob (id, v) whose source
// sends through a linkProxy; start it with p.start.
func newLinkPair(t *testing.T, rate int, resetEvery int64) (*pair, *linkProxy) {
	t.Helper()
	p := newPairStopped(t, "", `CREATE TABLE blob (id int PRIMARY KEY, v text)`)
	p.srcPort, p.dstPort = freePort(t), freePort(t)
	link := newLinkProxy(t, fmt.Sprintf("127.0.0.1:%d", p.dstPort), rate, resetEvery)
	p.viaPort = link.port()
	return p, link
}

// peakRSS is a process's peak resident memory, from /proc.
func peakRSS(t *testing.T, pid int) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				t.Fatalf("VmHWM %q: %v", v, err)
			}
			return kb << 10
		}
	}
	t.Fatal("no VmHWM in /proc status")
	return 0
}

func crashGzip(t *testing.T, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// crashPost posts body to the target's /batches with header and returns
// the status and the answer.
func crashPost(t *testing.T, port int, header http.Header, body []byte) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, fmt.Sprintf("http://127.0.0.1:%d/batches", port), bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header = header.Clone()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("POST /batches: %v", err)
	}
	defer resp.Body.Close()
	answer, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("POST /batches: read answer: %v", err)
	}
	return resp.StatusCode, answer
}

// waitSchema waits until pg_dump --schema-only of the replicated schema is
// the same on both sides, but for the schema's name. Across majors, the
// target's is compared with what its major makes of the source's dump.
func (p *pair) waitSchema(t *testing.T, timeout time.Duration, dstSchema, step string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		var a, b string
		if p.src.Major() == p.dst.Major() {
			a, b = p.src.DumpSchema(t, p.srcName, "public"), p.dst.DumpSchema(t, p.dstName, dstSchema)
		} else {
			a, b = p.src.DumpSchemaOn(t, p.dst, p.srcName, "public"), p.dst.DumpSchema(t, p.dstName, dstSchema)
			if min(p.src.Major(), p.dst.Major()) < 18 {
				b = dbtest.WithoutNotNullNames(b)
			}
		}
		if a == b {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("step %q: schemas still differ after %v\nsource:\n%s\ntarget:\n%s\n%s", step, timeout, a, b, p.dstStatus(t))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func execSQLScan(t *testing.T, db *sql.DB, q string, dst any) {
	t.Helper()
	if err := db.QueryRow(q).Scan(dst); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}

// runLoad runs the load command in-process and returns its error and log.
func (p *pair) runLoad(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var log bytes.Buffer
	err := run(context.Background(), append([]string{"-config", p.srcCfg, "-mode", "initial-load", "-load-target", "dst"}, args...),
		os.Stdout, &syncWriter{w: &log})
	return log.String(), err
}

// loadStatus is the target's view of the load from src.
func (p *pair) loadStatus(t *testing.T) (wire.LoadStatus, bool) {
	t.Helper()
	st, code, err := getStatus(p.dstPort, "")
	if err != nil || code != 200 {
		return wire.LoadStatus{}, false
	}
	for _, l := range st.Loads {
		if l.Source == "src" {
			return l, true
		}
	}
	return wire.LoadStatus{}, false
}

// syncWriter is an io.Writer safe for the load's concurrent loggers.
type syncWriter struct {
	mu sync.Mutex
	w  *bytes.Buffer
}

func (s *syncWriter) Write(b []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(b)
}

func (s *syncWriter) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.String()
}
