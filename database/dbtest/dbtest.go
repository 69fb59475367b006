// Package dbtest starts throwaway PostgreSQL clusters for tests. Import it only from _test.go files.
//
// A test binary shares one cluster (Shared), started on first use and stopped by Run; tests that
// stop, restart or need a second server start private clusters (Start). Each test works in its own
// database (NewDB), owned by the unprivileged Role, so tests can run in parallel:
//
//	func TestMain(m *testing.M) { os.Exit(dbtest.Run(m)) }
//
//	func TestSomething(t *testing.T) {
//		t.Parallel()
//		db, _ := dbtest.Shared(t).NewDB(t)
//		...
//	}
//
// The server binaries are found through PG_BINDIR, then `pg_config --bindir`, then the newest
// /usr/lib/postgresql/*/bin. Without them tests are skipped, unless CI=true, where they fail.
// PostgreSQL refuses to run as root, so when the tests run as root the server runs as the OS user
// "postgres".
//
// A cluster lives in one short temp directory (data directory, server.log inside it, unix socket),
// on /dev/shm when that is a tmpfs with 1 GiB free and TMPDIR is unset, else in TMPDIR or /tmp.
// It listens on 127.0.0.1 on a free port and runs with fsync=off and full_page_writes=off: fast,
// and losing nothing unless the machine itself crashes. Commits stay synchronous, so a server
// stopped with -m immediate (a PostgreSQL crash) keeps every committed row. A watchdog process
// stops the server and removes the directory if the test binary dies without reaching Run's end.
package dbtest

import (
	"database/sql"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"sync"
	"syscall"
	"testing"

	"github.com/lib/pq"
)

const (
	// Role is the unprivileged role tests connect as, the minimal role the README documents:
	// LOGIN NOSUPERUSER NOREPLICATION NOCREATEDB NOCREATEROLE, with password RolePassword.
	// It owns every database NewDB creates.
	Role = "teleport"
	// RolePassword is Role's password; Role logs in over TCP with SCRAM-SHA-256.
	RolePassword = "teleport-test"
)

// Cluster is a running (or stopped) throwaway PostgreSQL cluster.
type Cluster struct {
	Dir    string // data directory
	Host   string // TCP address the server listens on: "127.0.0.1"
	Port   int    // TCP port, also the number in the unix socket's name
	Socket string // unix socket directory, short: os.MkdirTemp("/dev/shm" or "", "pg"); holds Dir too
	BinDir string // directory holding initdb, pg_ctl, postgres and the client programs

	base     string              // temp directory holding Dir; removed when the cluster is destroyed
	logFile  string              // server log (pg_ctl -l), inside Dir
	cred     *syscall.Credential // run server programs as this user; nil: as ourselves
	version  int                 // server_version_num, e.g. 150004
	settings []string            // postgresql.conf lines added by Start

	mu       sync.Mutex
	running  bool
	admin    *sql.DB        // superuser pool on database postgres; nil until used, closed by Stop
	watchdog io.WriteCloser // stdin of the process that stops the server if this process dies
	wdCmd    *exec.Cmd
}

// clusters lists every cluster started and not yet destroyed, so Run can stop them.
var clusters struct {
	mu   sync.Mutex
	list []*Cluster
}

// shared holds the clusters returned by Shared and SharedMajor, by bin directory; err is reported
// to every caller if one failed to start.
var shared struct {
	mu sync.Mutex
	m  map[string]sharedCluster
}

type sharedCluster struct {
	c   *Cluster
	err error
}

// Run runs the tests (m.Run) and then stops every cluster this package started, whether or not the
// tests passed, and removes their directories. Use it as
//
//	func TestMain(m *testing.M) { os.Exit(dbtest.Run(m)) }
//
// A cluster left running by a crash (a panic, a -timeout) is stopped by a watchdog process when
// the test binary exits.
func Run(m *testing.M) int {
	code := m.Run()
	clusters.mu.Lock()
	list := slices.Clone(clusters.list)
	clusters.mu.Unlock()
	for _, c := range list {
		if err := c.destroy(); err != nil {
			fmt.Fprintf(os.Stderr, "dbtest: %v\n", err)
			if code == 0 {
				code = 1
			}
		}
	}
	shared.mu.Lock()
	shared.m = nil
	shared.mu.Unlock()
	return code
}

// Shared returns the cluster shared by the whole test binary, starting it on first use; callers
// wait while it starts, and if it fails to start every caller fails with that error (or skips,
// when the server binaries are missing and CI is not true). Run stops it. Tests must not Stop it:
// use Start for a cluster of your own.
func Shared(t testing.TB) *Cluster {
	t.Helper()
	bin, err := binDir()
	if err != nil {
		failStart(t, err)
	}
	return sharedIn(t, bin)
}

// SharedMajor is Shared for one PostgreSQL major (see MajorBinDir): one cluster per major for the
// whole test binary. A major that is not installed skips the test, or fails it under CI=true.
func SharedMajor(t testing.TB, major int) *Cluster {
	t.Helper()
	bin, err := MajorBinDir(major)
	if err != nil {
		failStart(t, err)
	}
	return sharedIn(t, bin)
}

func sharedIn(t testing.TB, bin string) *Cluster {
	t.Helper()
	shared.mu.Lock()
	defer shared.mu.Unlock()
	sc, ok := shared.m[bin]
	if !ok {
		sc.c, sc.err = start(bin, nil)
		if shared.m == nil {
			shared.m = map[string]sharedCluster{}
		}
		shared.m[bin] = sc
	}
	if sc.err != nil {
		failStart(t, sc.err)
	}
	return sc.c
}

// Start starts a new private cluster for this test (end-to-end tests need two), on its own port
// and directories. It is stopped (immediate) and removed in t.Cleanup. Each setting is a
// postgresql.conf line added to the defaults, such as "wal_level = logical".
func Start(t testing.TB, settings ...string) *Cluster {
	t.Helper()
	bin, err := binDir()
	if err != nil {
		failStart(t, err)
	}
	return startIn(t, bin, settings)
}

// StartMajor is Start with the server of one PostgreSQL major (see MajorBinDir), whatever
// PG_BINDIR says: tests across majors start one cluster of each. A major that is not installed
// skips the test, or fails it under CI=true.
func StartMajor(t testing.TB, major int, settings ...string) *Cluster {
	t.Helper()
	bin, err := MajorBinDir(major)
	if err != nil {
		failStart(t, err)
	}
	c := startIn(t, bin, settings)
	if c.Major() != major {
		t.Fatalf("dbtest: the server in %s is PostgreSQL %d, not %d", bin, c.Major(), major)
	}
	return c
}

func startIn(t testing.TB, bin string, settings []string) *Cluster {
	t.Helper()
	c, err := start(bin, settings)
	if err != nil {
		failStart(t, err)
	}
	t.Cleanup(func() {
		if err := c.destroy(); err != nil {
			t.Errorf("dbtest: %v", err)
		}
	})
	return c
}

// failStart skips the test when there are no server binaries (fails under CI=true) and fails it
// on any other error.
func failStart(t testing.TB, err error) {
	t.Helper()
	if errors.Is(err, errNoBinaries) {
		if os.Getenv("CI") == "true" {
			t.Fatalf("dbtest: %v (CI=true, so this is a failure, not a skip)", err)
		}
		t.Skipf("dbtest: skipping: %v", err)
	}
	t.Fatalf("dbtest: %v", err)
}

// start creates, starts and prepares a cluster and registers it for Run.
func start(bin string, settings []string) (*Cluster, error) {
	cred, err := serverCredential()
	if err != nil {
		return nil, err
	}
	c, err := newCluster(bin, cred)
	if err != nil {
		return nil, err
	}
	c.settings = settings
	if err := c.init(); err != nil {
		if derr := c.destroy(); derr != nil {
			err = errors.Join(err, derr)
		}
		return nil, err
	}
	clusters.mu.Lock()
	clusters.list = append(clusters.list, c)
	clusters.mu.Unlock()
	return c, nil
}

// init runs initdb, starts the server on a free port and creates Role.
func (c *Cluster) init() error {
	if err := c.initdb(); err != nil {
		return err
	}
	if err := c.configure(); err != nil {
		return err
	}
	if err := c.startOnFreePort(); err != nil {
		return err
	}
	db, err := c.adminPool()
	if err != nil {
		return err
	}
	q := fmt.Sprintf("CREATE ROLE %s LOGIN NOSUPERUSER NOREPLICATION NOCREATEDB NOCREATEROLE PASSWORD %s",
		pq.QuoteIdentifier(Role), pq.QuoteLiteral(RolePassword))
	if _, err := db.Exec(q); err != nil {
		return fmt.Errorf("create role %s in cluster %s: %w", Role, c.Dir, err)
	}
	if err := db.QueryRow("SELECT current_setting('server_version_num')::int").Scan(&c.version); err != nil {
		return fmt.Errorf("read server version of cluster %s: %w", c.Dir, err)
	}
	return nil
}

// Major is the server's major version: 13, 14, ... 18.
func (c *Cluster) Major() int { return c.version / 10000 }

// destroy stops the server (immediate) if it runs, removes the cluster's directories and
// unregisters it. It is safe to call twice.
func (c *Cluster) destroy() error {
	clusters.mu.Lock()
	clusters.list = slices.DeleteFunc(clusters.list, func(x *Cluster) bool { return x == c })
	clusters.mu.Unlock()

	c.mu.Lock()
	defer c.mu.Unlock()
	var errs []error
	c.closeAdmin()
	if c.running {
		if err := c.pgctlStop("immediate"); err != nil {
			errs = append(errs, err)
		} else {
			c.running = false
		}
	}
	if !c.running && c.base != "" {
		if err := os.RemoveAll(c.base); err != nil {
			errs = append(errs, fmt.Errorf("remove cluster directory: %w", err))
		} else {
			c.base = ""
		}
	}
	if !c.running {
		// Left running, the server is still the watchdog's to stop when this process exits.
		c.stopWatchdog()
	}
	return errors.Join(errs...)
}
