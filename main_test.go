package main

import (
	"bytes"
	"cmp"
	"context"
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
	"syscall"
	"testing"
	"time"

	"github.com/pagarme/teleport/database/dbtest"
	"github.com/pagarme/teleport/server/wire"
)

func TestMain(m *testing.M) { os.Exit(dbtest.Run(m)) }

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

// freePort returns a loopback TCP port nobody listens on right now.
func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
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

func TestRun_StartsAsUnprivilegedRole(t *testing.T) {
	setPasswordEnv(t)
	c := dbtest.Shared(t)
	db, name := c.NewDB(t)
	inst := instance{name: "source-1", c: c, dbname: name, port: freePort(t), token: "tok-1",
		targets: "  my-target:\n    target_expression: \"public.*\"\n    endpoint:\n      hostname: \"127.0.0.1\"\n      port: 3001\n    apply_schema: \"test\"\n"}
	p := spawnInstance(t, writeConfig(t, inst))
	st := p.waitUp(t, inst.port, inst.token)
	stop := p.stop
	if st.Name != "source-1" || st.Role != "source" {
		t.Errorf("/status = %+v, want name source-1, role source", st)
	}
	if _, code, _ := getStatus(inst.port, "wrong"); code != http.StatusUnauthorized {
		t.Errorf("/status with a wrong token = %d, want 401", code)
	}
	var owner string
	if err := db.QueryRow(`SELECT pg_get_userbyid(nspowner) FROM pg_namespace WHERE nspname = 'teleport'`).Scan(&owner); err != nil {
		t.Fatalf("teleport schema not created: %v", err)
	}
	if owner != dbtest.Role {
		t.Errorf("teleport schema owner = %q, want %q", owner, dbtest.Role)
	}
	if err := stop(); err != nil {
		t.Errorf("run after cancel = %v, want nil", err)
	}
}

func TestRun_TwoInstancesStartAtOnce(t *testing.T) {
	setPasswordEnv(t)
	c := dbtest.Shared(t)
	_, name := c.NewDB(t)
	a := instance{name: "a", c: c, dbname: name, port: freePort(t)}
	b := instance{name: "b", c: c, dbname: name, port: freePort(t)}
	pa, pb := writeConfig(t, a), writeConfig(t, b)
	procA, procB := spawnInstance(t, pa), spawnInstance(t, pb)
	procA.waitUp(t, a.port, "")
	procB.waitUp(t, b.port, "")
	stopA, stopB := procA.stop, procB.stop
	if err := stopA(); err != nil {
		t.Errorf("instance a: %v", err)
	}
	if err := stopB(); err != nil {
		t.Errorf("instance b: %v", err)
	}
}

func TestRun_StartupErrors(t *testing.T) {
	setPasswordEnv(t)
	c := dbtest.Shared(t)
	_, name := c.NewDB(t)
	good := writeConfig(t, instance{name: "x", c: c, dbname: name, port: freePort(t)})
	c.CreateRole(t, "tp_main_nocreate", "pw", "NOSUPERUSER")
	noCreate := strings.ReplaceAll(mustRead(t, good), `username: "teleport"`, `username: "tp_main_nocreate"`)
	noCreate = strings.ReplaceAll(noCreate, `"${TELEPORT_TEST_PW}"`, `"pw"`)
	noCreatePath := filepath.Join(t.TempDir(), "nocreate.yml")
	if err := os.WriteFile(noCreatePath, []byte(noCreate), 0o600); err != nil {
		t.Fatal(err)
	}
	badDB := strings.ReplaceAll(mustRead(t, good), fmt.Sprintf("port: %d\n  sslmode", c.Port), fmt.Sprintf("port: %d\n  sslmode", freePort(t)))
	badDBPath := filepath.Join(t.TempDir(), "baddb.yml")
	if err := os.WriteFile(badDBPath, []byte(badDB), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		args []string
		want []string
	}{
		{"missing config", []string{"-config", "/nonexistent/teleport.yml"}, []string{"/nonexistent/teleport.yml"}},
		{"bad mode", []string{"-config", good, "-mode", "sideways"}, []string{"-mode", "replication, initial-load or uninstall"}},
		{"uninstall without source", []string{"-config", good, "-mode", "uninstall"}, []string{"-mode uninstall needs -source NAME"}},
		{"-source without uninstall", []string{"-config", good, "-source", "s"}, []string{"-source is only used with -mode uninstall"}},
		{"initial-load without target", []string{"-config", good, "-mode", "initial-load"}, []string{"-load-target"}},
		{"initial-load of an unknown target", []string{"-config", good, "-mode", "initial-load", "-load-target", "nope"}, []string{"nope", "no such target"}},
		{"initial-load with no parallelism", []string{"-config", good, "-mode", "initial-load", "-load-target", "x", "-parallel", "0"}, []string{"-parallel 0", "1 to 64"}},
		{"-overwrite without initial-load", []string{"-config", good, "-overwrite"}, []string{"-overwrite", "only used with -mode initial-load"}},
		{"stray argument", []string{"-config", good, "extra"}, []string{"extra"}},
		{"bad log format", []string{"-config", good, "-log-format", "xml"}, []string{"-log-format"}},
		{"database unreachable", []string{"-config", badDBPath}, []string{"connect to database", name}},
		{"missing privilege", []string{"-config", noCreatePath}, []string{"lacks CREATE on database", "GRANT CREATE ON DATABASE"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stderr bytes.Buffer
			err := run(context.Background(), tt.args, &stderr, &stderr)
			if err == nil {
				t.Fatalf("run(%q) = nil, want an error", tt.args)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("run(%q) = %q, want it to mention %q", tt.args, err, w)
				}
			}
		})
	}
}

func mustRead(t testing.TB, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// buildBinary builds the teleport command once per test binary.
var buildBinary = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "teleport-bin")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "teleport")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build: %v\n%s", err, out)
	}
	return bin, nil
})

// TestBinary_ExitCodes runs the real binary: one clear stderr line and exit 1
// on a start-up failure, exit 0 on SIGTERM.
func TestBinary_ExitCodes(t *testing.T) {
	bin, err := buildBinary()
	if err != nil {
		t.Fatal(err)
	}
	setPasswordEnv(t)

	t.Run("bad config", func(t *testing.T) {
		p := filepath.Join(t.TempDir(), "bad.yml")
		if err := os.WriteFile(p, []byte("batch_size: 1\nbatchsize: 2\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(bin, "-config", p)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		err := cmd.Run()
		if code := cmd.ProcessState.ExitCode(); code != 1 {
			t.Errorf("exit code = %d (%v), want 1", code, err)
		}
		lines := strings.Split(strings.TrimSpace(stderr.String()), "\n")
		if len(lines) != 1 || !strings.Contains(lines[0], "batchsize") || !strings.Contains(lines[0], p) {
			t.Errorf("stderr = %q, want one line naming the file and the key", stderr.String())
		}
	})

	runBin := func(t *testing.T, args ...string) (int, string) {
		t.Helper()
		cmd := exec.Command(bin, args...)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		_ = cmd.Run() // the exit code says how it went
		return cmd.ProcessState.ExitCode(), stderr.String()
	}
	t.Run("help", func(t *testing.T) {
		code, stderr := runBin(t, "-h")
		if code != 0 || !strings.Contains(stderr, "-config") || !strings.Contains(stderr, "-mode") {
			t.Errorf("teleport -h = exit %d, stderr %q; want 0 and the usage", code, stderr)
		}
	})
	t.Run("unknown flag", func(t *testing.T) {
		code, stderr := runBin(t, "-bogus")
		if n := strings.Count(stderr, "flag provided but not defined: -bogus"); code != 1 || n != 1 {
			t.Errorf("teleport -bogus = exit %d, the error %d times in %q; want 1, once", code, n, stderr)
		}
	})
	t.Run("one line per problem", func(t *testing.T) {
		p := filepath.Join(t.TempDir(), "bad.yml")
		if err := os.WriteFile(p, []byte("batch_size: 0\ndatabase:\n  port: 0\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		code, stderr := runBin(t, "-config", p)
		lines := strings.Split(strings.TrimSpace(stderr), "\n")
		if code != 1 || len(lines) != 3 {
			t.Fatalf("exit %d, stderr %q; want 1 and three lines (batch_size, database.name, database.port)", code, stderr)
		}
		for _, l := range lines {
			if !strings.HasPrefix(l, "teleport: "+p+": ") {
				t.Errorf("line %q does not start with teleport: and the file", l)
			}
		}
	})
	t.Run("json fatal line", func(t *testing.T) {
		code, stderr := runBin(t, "-log-format", "json", "-config", filepath.Join(t.TempDir(), "none.yml"))
		var m map[string]any
		if err := json.Unmarshal([]byte(strings.TrimSpace(stderr)), &m); code != 1 || err != nil || m["level"] != "ERROR" ||
			!strings.Contains(fmt.Sprint(m["err"]), "no such configuration file") {
			t.Errorf("exit %d, stderr %q; want 1 and one JSON line saying the file is missing", code, stderr)
		}
	})

	t.Run("version", func(t *testing.T) {
		out, err := exec.Command(bin, "-version").Output()
		if err != nil || !strings.HasPrefix(string(out), "teleport ") {
			t.Errorf("teleport -version = %q, %v", out, err)
		}
	})

	t.Run("SIGTERM", func(t *testing.T) {
		c := dbtest.Shared(t)
		_, name := c.NewDB(t)
		inst := instance{name: "sig", c: c, dbname: name, port: freePort(t)}
		cmd := exec.Command(bin, "-config", writeConfig(t, inst), "-log-format", "json")
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = cmd.Process.Kill() })
		waitStatus(t, inst.port, "")
		start := time.Now()
		if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("teleport after SIGTERM: %v, want exit 0\n%s", err, stderr.String())
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("teleport still running 10s after SIGTERM")
		}
		t.Logf("stopped %v after SIGTERM", time.Since(start).Round(time.Millisecond))
		for _, line := range strings.Split(strings.TrimSpace(stderr.String()), "\n") {
			var m map[string]any
			if err := json.Unmarshal([]byte(line), &m); err != nil {
				t.Errorf("-log-format json wrote a line that is not JSON: %q", line)
			}
			if strings.Contains(line, dbtest.RolePassword) {
				t.Errorf("log line leaks the database password: %q", line)
			}
		}
	})
}

// setPasswordEnv puts the test role's password where the configurations
// writeConfig writes look for it. It is the same for every test, so
// parallel tests may share it.
func setPasswordEnv(t testing.TB) {
	t.Helper()
	if err := os.Setenv("TELEPORT_TEST_PW", dbtest.RolePassword); err != nil {
		t.Fatal(err)
	}
}
