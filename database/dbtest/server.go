package dbtest

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	_ "github.com/lib/pq" // the "postgres" driver for database/sql
)

// errNoBinaries means no PostgreSQL server is installed: tests skip, or fail under CI=true.
var errNoBinaries = errors.New("PostgreSQL server binaries (initdb, pg_ctl, postgres) not found " +
	"in $PG_BINDIR, `pg_config --bindir` or /usr/lib/postgresql/*/bin; " +
	"install the PostgreSQL server (Debian: apt-get install postgresql) or set PG_BINDIR to its bin directory")

// maxSocketDir keeps "<dir>/.s.PGSQL.65535" within the 107 bytes a unix socket path may have.
const maxSocketDir = 90

// cmdTimeout bounds every server program we run; pg_ctl itself gives up after 60 s.
const cmdTimeout = 3 * time.Minute

// debianLibDir holds one directory per installed server version on Debian and Ubuntu
// (a variable for tests).
var debianLibDir = "/usr/lib/postgresql"

// binDir finds the server binaries once per test binary.
var binDir = sync.OnceValues(findBinDir)

// findBinDir looks in PG_BINDIR, then `pg_config --bindir`, then the newest /usr/lib/postgresql/*/bin.
func findBinDir() (string, error) {
	if d := os.Getenv("PG_BINDIR"); d != "" {
		if !hasServer(d) {
			return "", fmt.Errorf("PG_BINDIR=%s holds no initdb, pg_ctl and postgres; "+
				"point it at a PostgreSQL bin directory or unset it", d)
		}
		return d, nil
	}
	// pg_config may come from a client-only package (libpq-dev): use its answer only if the server is there.
	if out, err := exec.Command("pg_config", "--bindir").Output(); err == nil {
		if d := strings.TrimSpace(string(out)); hasServer(d) {
			return d, nil
		}
	}
	for _, d := range debianBinDirs() {
		if hasServer(d) {
			return d, nil
		}
	}
	return "", errNoBinaries
}

// hasServer reports whether dir holds the programs a cluster needs.
func hasServer(dir string) bool {
	for _, name := range []string{"initdb", "pg_ctl", "postgres"} {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil || fi.IsDir() || fi.Mode().Perm()&0o111 == 0 {
			return false
		}
	}
	return true
}

// compareVersions orders version directory names numerically: "9.6" < "10" < "15".
func compareVersions(a, b string) int {
	as, bs := strings.Split(a, "."), strings.Split(b, ".")
	for i := range max(len(as), len(bs)) {
		if c := cmp.Compare(versionPart(as, i), versionPart(bs, i)); c != 0 {
			return c
		}
	}
	return strings.Compare(a, b)
}

func versionPart(parts []string, i int) int {
	if i >= len(parts) {
		return 0
	}
	n, err := strconv.Atoi(parts[i])
	if err != nil {
		return -1 // not a version: sorts first, so it is tried last
	}
	return n
}

// serverCredential is the OS user to run server programs as: nil (ourselves) unless we are root,
// which PostgreSQL refuses; then "postgres".
var serverCredential = sync.OnceValues(func() (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("tests run as root, which PostgreSQL refuses, so the server must run as OS user postgres: %w; "+
			"create it (useradd --system postgres) or run the tests as a non-root user", err)
	}
	uid, err := strconv.ParseUint(u.Uid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("uid %q of OS user postgres: %w", u.Uid, err)
	}
	gid, err := strconv.ParseUint(u.Gid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("gid %q of OS user postgres: %w", u.Gid, err)
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
})

// newCluster creates the cluster's directory (owned by the server's user) and its watchdog.
func newCluster(bin string, cred *syscall.Credential) (*Cluster, error) {
	base, err := makeBaseDir(cred)
	if err != nil {
		return nil, err
	}
	c := &Cluster{
		Dir:    filepath.Join(base, "data"),
		Host:   "127.0.0.1",
		Socket: base,
		BinDir: bin,
		base:   base,
		cred:   cred,
	}
	c.logFile = filepath.Join(c.Dir, "server.log")
	if err := c.startWatchdog(); err != nil {
		return nil, errors.Join(err, os.RemoveAll(base))
	}
	return c, nil
}

// makeBaseDir makes a short temp directory: it holds the data directory and the unix socket.
// Unless TMPDIR says otherwise it is on /dev/shm when that is a roomy tmpfs: even with fsync=off,
// CREATE DATABASE takes 100-300 ms on a virtual disk and 10-30 ms in memory.
func makeBaseDir(cred *syscall.Credential) (string, error) {
	if os.Getenv("TMPDIR") == "" && roomyTmpfs("/dev/shm") {
		if base, err := os.MkdirTemp("/dev/shm", "pg"); err == nil {
			return ownBaseDir(base, cred)
		}
		// Not writable after all: fall back to the usual temp directory.
	}
	parent := "" // os.TempDir()
	if len(os.TempDir()) > maxSocketDir-12 || cred != nil && !traversableByAll(os.TempDir()) {
		parent = "/tmp"
	}
	base, err := os.MkdirTemp(parent, "pg")
	if err != nil {
		return "", fmt.Errorf("create cluster directory: %w", err)
	}
	return ownBaseDir(base, cred)
}

// ownBaseDir checks base's length and hands it to the server's OS user.
func ownBaseDir(base string, cred *syscall.Credential) (string, error) {
	if len(base) > maxSocketDir {
		return "", errors.Join(fmt.Errorf("cluster directory %s is too long for a unix socket path "+
			"(max %d bytes); set TMPDIR to a shorter directory", base, maxSocketDir), os.RemoveAll(base))
	}
	if cred != nil {
		if err := os.Chown(base, int(cred.Uid), int(cred.Gid)); err != nil {
			return "", errors.Join(fmt.Errorf("chown %s to OS user postgres: %w", base, err), os.RemoveAll(base))
		}
	}
	return base, nil
}

// roomyTmpfs reports whether dir is a tmpfs with at least 1 GiB free: a cluster needs about
// 100 MB, and Docker's default 64 MB /dev/shm would not do.
func roomyTmpfs(dir string) bool {
	const tmpfsMagic = 0x01021994
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return false
	}
	return st.Type == tmpfsMagic && uint64(st.Bavail)*uint64(st.Bsize) >= 1<<30
}

// traversableByAll reports whether every directory on the way to dir lets other users through,
// so the postgres user can reach a directory we create there.
func traversableByAll(dir string) bool {
	dir, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return false
	}
	for {
		fi, err := os.Stat(dir)
		if err != nil || fi.Mode().Perm()&0o001 == 0 {
			return false
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return true
		}
		dir = parent
	}
}

// watchdogScript waits for its stdin to close. "done" first means the cluster was stopped and
// removed already; a bare EOF means the test binary died (panic, -timeout, kill): then it stops the
// server the way `pg_ctl -m immediate` does (SIGQUIT), waits for the postmaster to remove its pid
// file as it exits (kill -0 would not do: an exited postmaster may stay a zombie, its parent gone)
// and removes the directory. $1 is the data directory, $2 the cluster directory.
const watchdogScript = `read -r line
[ "$line" = done ] && exit 0
pid=$(head -n 1 "$1/postmaster.pid" 2>/dev/null)
if [ -n "$pid" ] && kill -QUIT "$pid" 2>/dev/null; then
	i=0
	while [ -e "$1/postmaster.pid" ] && [ "$i" -lt 100 ]; do sleep 0.1; i=$((i+1)); done
fi
rm -rf "$2"
`

// startWatchdog starts a shell holding the read end of a pipe only this process can write to,
// so the server never outlives the test binary, even when Run does not get to stop it.
func (c *Cluster) startWatchdog() error {
	cmd := exec.Command("/bin/sh", "-c", watchdogScript, "dbtest-watchdog", c.Dir, c.base)
	// Its own process group, so a ^C to the test leaves it alive to clean up.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	w, err := cmd.StdinPipe()
	if err != nil {
		return fmt.Errorf("start cluster watchdog: %w", err)
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start cluster watchdog: %w", err)
	}
	c.watchdog, c.wdCmd = w, cmd
	return nil
}

// stopWatchdog tells the watchdog the cluster is gone and reaps it.
func (c *Cluster) stopWatchdog() {
	if c.watchdog == nil {
		return
	}
	// Errors mean the watchdog already exited; there is nothing more to tell it.
	_, _ = io.WriteString(c.watchdog, "done\n")
	_ = c.watchdog.Close()
	_ = c.wdCmd.Wait()
	c.watchdog, c.wdCmd = nil, nil
}

// BinPath returns the full path of a server program (initdb, pg_ctl, postgres) in BinDir.
// It does not check that the program exists.
func (c *Cluster) BinPath(name string) string {
	return filepath.Join(c.BinDir, name)
}

// ClientPath returns the full path of a client program ("pgbench", "pg_dump", "psql") that talks
// to this cluster. The server packages of other majors (see MajorBinDir) carry no client programs,
// and a pg_dump refuses a server newer than itself, so it looks, in order, in $PG_CLIENT_BINDIR,
// in $TELEPORT_PG_ROOT/client/bin (the pg_dump 18 that .ci/pg-majors builds), in the newest
// /usr/lib/postgresql/*/bin and in BinDir, and takes the first that has the program. Every
// cluster of a test binary therefore uses the same pg_dump, whatever its major. With none found it
// returns the BinDir path, whose error names the program when run.
func (c *Cluster) ClientPath(name string) string {
	dirs := []string{os.Getenv("PG_CLIENT_BINDIR"), filepath.Join(pgRoot(), "client", "bin")}
	dirs = append(dirs, debianBinDirs()...)
	for _, d := range append(dirs, c.BinDir) {
		if d == "" {
			continue
		}
		p := filepath.Join(d, name)
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() && fi.Mode().Perm()&0o111 != 0 {
			return p
		}
	}
	return c.BinPath(name)
}

// pgRoot is where .ci/pg-majors installs the server of each major: $TELEPORT_PG_ROOT, by default
// /var/cache/teleport-pg for root and ~/.cache/teleport-pg for anyone else.
func pgRoot() string {
	if d := os.Getenv("TELEPORT_PG_ROOT"); d != "" {
		return d
	}
	if os.Geteuid() != 0 {
		if d, err := os.UserCacheDir(); err == nil {
			return filepath.Join(d, "teleport-pg")
		}
	}
	return "/var/cache/teleport-pg"
}

// debianBinDirs lists /usr/lib/postgresql/*/bin, newest version first.
func debianBinDirs() []string {
	dirs, err := filepath.Glob(filepath.Join(debianLibDir, "*", "bin"))
	if err != nil {
		return nil // the pattern is fixed and valid: Glob fails only on a bad pattern
	}
	slices.SortFunc(dirs, func(a, b string) int {
		return -compareVersions(filepath.Base(filepath.Dir(a)), filepath.Base(filepath.Dir(b)))
	})
	return dirs
}

// MajorBinDir finds the server binaries of one PostgreSQL major: $TELEPORT_PG_ROOT/<major>/bin
// (installed by .ci/pg-majors), else /usr/lib/postgresql/<major>/bin. The error wraps
// errNoBinaries, so a test asking for a major that is not installed is skipped (failed under CI=true).
func MajorBinDir(major int) (string, error) {
	m := strconv.Itoa(major)
	for _, d := range []string{filepath.Join(pgRoot(), m, "bin"), filepath.Join(debianLibDir, m, "bin")} {
		if hasServer(d) {
			return d, nil
		}
	}
	return "", fmt.Errorf("PostgreSQL %d: no server binaries in %s or %s (.ci/pg-majors %d installs them): %w",
		major, filepath.Join(pgRoot(), m, "bin"), filepath.Join(debianLibDir, m, "bin"), major, errNoBinaries)
}

// run runs a server program as the server's OS user; the error names the command and holds its output.
func (c *Cluster) run(name string, args ...string) error {
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, c.BinPath(name), args...)
	cmd.Dir = c.base // initdb and postgres must be able to read their working directory
	cmd.Env = serverEnv(c.base, c.cred != nil)
	if c.cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: c.cred}
	}
	// pg_ctl start leaves the server running; if it ever held our output pipe, don't wait for it.
	cmd.WaitDelay = 5 * time.Second
	out, err := cmd.CombinedOutput()
	if err != nil {
		as := ""
		if c.cred != nil {
			as = " (as OS user postgres)"
		}
		return fmt.Errorf("%s%s: %w\n%s", strings.Join(cmd.Args, " "), as, err, indent(string(out)))
	}
	return nil
}

// serverEnv is our environment without the PG* variables that would redirect initdb and pg_ctl.
func serverEnv(home string, setHome bool) []string {
	env := slices.DeleteFunc(os.Environ(), func(kv string) bool {
		return strings.HasPrefix(kv, "PG") || setHome && strings.HasPrefix(kv, "HOME=")
	})
	if setHome {
		env = append(env, "HOME="+home) // root's home is closed to postgres
	}
	return env
}

// initdb creates the data directory: superuser postgres, trust over the unix socket,
// SCRAM passwords over TCP.
func (c *Cluster) initdb() error {
	args := []string{"-D", c.Dir, "-U", "postgres", "--auth-local=trust", "--auth-host=scram-sha-256",
		"-E", "UTF8", "--no-sync"}
	err := c.run("initdb", append(args, "--locale=C.UTF-8")...)
	if err == nil {
		return nil
	}
	// C.UTF-8 is missing on some systems (older glibc, musl); C sorts the same way.
	if rerr := os.RemoveAll(c.Dir); rerr != nil {
		return errors.Join(err, rerr)
	}
	if err2 := c.run("initdb", append(args, "--locale=C")...); err2 != nil {
		return fmt.Errorf("initdb with --locale=C.UTF-8 and with --locale=C:\n%w\n%w", err, err2)
	}
	return nil
}

// configure appends the throwaway settings to postgresql.conf. The port is given on the command
// line (pg_ctl -o -p) so a retry on another port needs no rewrite.
//
// fsync=off loses data only if the machine crashes. synchronous_commit stays on: off, a commit
// would sit in shared memory for up to 600 ms before reaching the kernel, and tests that stop the
// server with -m immediate (a crash of PostgreSQL, not of the machine) would lose it. With fsync
// off, a synchronous commit costs one write(2), so it is as fast.
func (c *Cluster) configure() error {
	conf := fmt.Sprintf(`
# dbtest: a throwaway cluster, fast rather than durable
listen_addresses = '127.0.0.1'
unix_socket_directories = '%s'
fsync = off
full_page_writes = off
max_connections = 200
shared_buffers = 128MB
logging_collector = off
lc_messages = 'C'
`, strings.ReplaceAll(c.Socket, "'", "''")) + strings.Join(c.settings, "\n") + "\n"
	path := filepath.Join(c.Dir, "postgresql.conf")
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return fmt.Errorf("configure cluster: %w", err)
	}
	if _, err := f.WriteString(conf); err != nil {
		return errors.Join(fmt.Errorf("configure cluster: write %s: %w", path, err), f.Close())
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("configure cluster: close %s: %w", path, err)
	}
	return nil
}

// startOnFreePort starts the server on a free port, trying another one if it was taken between
// our check and the server's bind.
func (c *Cluster) startOnFreePort() error {
	const attempts = 3
	var err error
	for range attempts {
		c.Port, err = FreePort()
		if err != nil {
			return err
		}
		var taken bool
		taken, err = c.pgctlStart()
		if err == nil || !taken {
			return err
		}
	}
	return fmt.Errorf("start PostgreSQL: the port was taken %d times in a row: %w", attempts, err)
}

// FreePort returns a TCP port on 127.0.0.1 that nothing listens on now and
// that this process has not handed out before. It picks below the kernel's
// ephemeral range: a port from that range, closed again until a server binds
// it, can meanwhile become the local end of any outgoing connection, and two
// calls in a row can be given the same one.
func FreePort() (int, error) {
	lo, hi := portRange()
	ports.Lock()
	defer ports.Unlock()
	for range 1000 {
		port := lo + rand.IntN(hi-lo)
		if ports.given[port] {
			continue
		}
		l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port))
		if err != nil {
			continue
		}
		if err := l.Close(); err != nil {
			return 0, fmt.Errorf("find a free port on 127.0.0.1: %w", err)
		}
		ports.given[port] = true
		return port, nil
	}
	return 0, fmt.Errorf("find a free port on 127.0.0.1: none free in %d-%d after 1000 tries", lo, hi)
}

// ports are the ports FreePort handed out in this process.
var ports = struct {
	sync.Mutex
	given map[int]bool
}{given: map[int]bool{}}

// portRange is where FreePort picks: from 10000 up to the start of the
// kernel's ephemeral range (32768 when it cannot be read).
func portRange() (lo, hi int) {
	hi = 32768
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			if n, err := strconv.Atoi(f[0]); err == nil && n > 11000 {
				hi = n
			}
		}
	}
	return 10000, hi
}

// pgctlStart starts the server on c.Port and waits until it accepts connections. taken reports
// a failure because the port was in use. The caller holds c.mu or owns c alone.
func (c *Cluster) pgctlStart() (taken bool, err error) {
	off := fileSize(c.logFile)
	err = c.run("pg_ctl", "-D", c.Dir, "-l", c.logFile, "-w", "-t", "60", "-o", "-p "+strconv.Itoa(c.Port), "start")
	if err == nil {
		c.running = true
		return false, nil
	}
	log := c.logSince(off)
	taken = strings.Contains(log, "Address already in use") || strings.Contains(log, "could not bind")
	// pg_ctl may have given up on a server still starting: make sure none is left behind. Usually
	// there is none, and this fails with "PID file does not exist".
	_ = c.run("pg_ctl", "-D", c.Dir, "-m", "immediate", "-w", "stop")
	return taken, fmt.Errorf("start PostgreSQL on port %d: %w\nserver log %s, last lines:\n%s",
		c.Port, err, c.logFile, indent(tail(log)))
}

// pgctlStop stops the server with the pg_ctl shutdown mode ("smart", "fast", "immediate").
func (c *Cluster) pgctlStop(mode string) error {
	if err := c.run("pg_ctl", "-D", c.Dir, "-m", mode, "-w", "-t", "60", "stop"); err != nil {
		return fmt.Errorf("stop PostgreSQL (%s): %w\nserver log %s, last lines:\n%s",
			mode, err, c.logFile, indent(tail(c.logSince(0))))
	}
	return nil
}

// Stop stops the server with the given pg_ctl shutdown mode ("fast", "immediate", "smart") and
// waits until it is down. Connections open to it are broken; open new ones after Restart.
// Stop only clusters from Start: other tests share the Shared one.
func (c *Cluster) Stop(t testing.TB, mode string) {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.running {
		t.Fatalf("dbtest: Stop(%q): the cluster on port %d is not running; Restart it before stopping it again", mode, c.Port)
	}
	c.closeAdmin()
	if err := c.pgctlStop(mode); err != nil {
		t.Fatalf("dbtest: Stop(%q): %v", mode, err)
	}
	c.running = false
}

// Restart starts a stopped server again on the same port and data directory (running crash
// recovery after an immediate stop) and returns once it accepts connections.
func (c *Cluster) Restart(t testing.TB) {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case c.running:
		t.Fatalf("dbtest: Restart: the cluster on port %d is running; Stop it first", c.Port)
	case c.base == "":
		t.Fatalf("dbtest: Restart: the cluster on port %d was removed at the end of its test", c.Port)
	}
	if _, err := c.pgctlStart(); err != nil {
		t.Fatalf("dbtest: Restart: %v\n(if the port was taken while the server was down, use a new cluster)", err)
	}
	if _, err := c.adminPool(); err != nil {
		t.Fatalf("dbtest: Restart: %v", err)
	}
}

// adminPool returns the cached superuser pool on database postgres, opening it if needed.
// The caller holds c.mu or owns c alone.
func (c *Cluster) adminPool() (*sql.DB, error) {
	if c.admin == nil {
		db, err := c.openAdmin("postgres")
		if err != nil {
			return nil, err
		}
		c.admin = db
	}
	return c.admin, nil
}

// closeAdmin closes the cached superuser pool; the caller holds c.mu.
func (c *Cluster) closeAdmin() {
	if c.admin != nil {
		// The pool is only ours; an error closing it (server already gone) leaves nothing to release.
		_ = c.admin.Close()
		c.admin = nil
	}
}

// openAdmin connects as superuser postgres to dbname over the unix socket (trust).
func (c *Cluster) openAdmin(dbname string) (*sql.DB, error) {
	dsn := fmt.Sprintf("host=%s port=%d user=postgres dbname=%s sslmode=disable connect_timeout=10",
		dsnValue(c.Socket), c.Port, dsnValue(dbname))
	db, err := openPing(dsn)
	if err != nil {
		return nil, fmt.Errorf("connect as postgres to database %q over unix socket %s (port %d): %w", dbname, c.Socket, c.Port, err)
	}
	return db, nil
}

// openPing opens a pool and checks that it can connect.
func openPing(dsn string) (*sql.DB, error) {
	db, err := sql.Open("postgres", dsn)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := db.PingContext(ctx); err != nil {
		return nil, errors.Join(err, db.Close())
	}
	return db, nil
}

// fileSize returns the size of path, 0 if it does not exist yet.
func fileSize(path string) int64 {
	fi, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return fi.Size()
}

// logSince returns the server log from byte offset off on, or a note saying why it can't.
func (c *Cluster) logSince(off int64) string {
	b, err := os.ReadFile(c.logFile)
	if err != nil {
		return fmt.Sprintf("(cannot read server log: %v)", err)
	}
	if off > int64(len(b)) {
		off = 0
	}
	return string(b[off:])
}

// ServerLog returns the server's log so far (lc_messages is C).
func (c *Cluster) ServerLog() string {
	return c.logSince(0)
}

// logTail returns the last lines of the server log, for error messages.
func (c *Cluster) logTail() string {
	return indent(tail(c.logSince(0)))
}

// tail returns the last 30 lines of s.
func tail(s string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > 30 {
		lines = lines[len(lines)-30:]
	}
	return strings.Join(lines, "\n")
}

// indent indents every line of s for error messages.
func indent(s string) string {
	s = strings.TrimRight(s, "\n")
	if s == "" {
		return "\t(no output)"
	}
	return "\t" + strings.ReplaceAll(s, "\n", "\n\t")
}
