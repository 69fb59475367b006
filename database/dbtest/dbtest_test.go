package dbtest_test

import (
	"database/sql"
	"fmt"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/pagarme/teleport/database/dbtest"
)

func TestMain(m *testing.M) { os.Exit(dbtest.Run(m)) }

func queryString(t *testing.T, db *sql.DB, q string, args ...any) string {
	t.Helper()
	var s string
	if err := db.QueryRow(q, args...).Scan(&s); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return s
}

func exec(t *testing.T, db *sql.DB, q string, args ...any) {
	t.Helper()
	if _, err := db.Exec(q, args...); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}

func TestCluster_NewDB(t *testing.T) {
	t.Parallel()
	c := dbtest.Shared(t)
	start := time.Now()
	db1, name1 := c.NewDB(t)
	t.Logf("NewDB took %v", time.Since(start))
	db2, name2 := c.NewDB(t)
	if name1 == name2 {
		t.Fatalf("NewDB names = %q, %q, want distinct", name1, name2)
	}
	for _, tc := range []struct {
		db   *sql.DB
		name string
	}{{db1, name1}, {db2, name2}} {
		if got := queryString(t, tc.db, "SELECT current_database()"); got != tc.name {
			t.Errorf("current_database() = %q, want %q", got, tc.name)
		}
		if got := queryString(t, tc.db, "SELECT current_user"); got != dbtest.Role {
			t.Errorf("current_user = %q, want %q", got, dbtest.Role)
		}
		var super, repl bool
		err := tc.db.QueryRow("SELECT rolsuper, rolreplication FROM pg_roles WHERE rolname = current_user").Scan(&super, &repl)
		if err != nil {
			t.Fatalf("read role attributes: %v", err)
		}
		if super || repl {
			t.Errorf("rolsuper, rolreplication = %v, %v, want false, false", super, repl)
		}
		owner := queryString(t, tc.db, "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = current_database()")
		if owner != dbtest.Role {
			t.Errorf("owner of %s = %q, want %q", tc.name, owner, dbtest.Role)
		}
		if got := queryString(t, tc.db, "SHOW server_encoding"); got != "UTF8" {
			t.Errorf("server_encoding = %q, want UTF8", got)
		}
	}
	// The role can work in its database, and the two databases are separate.
	exec(t, db1, "CREATE TABLE only_in_db1 (id int PRIMARY KEY, note text)")
	exec(t, db1, "INSERT INTO only_in_db1 VALUES (1, 'é')")
	if got := queryString(t, db2, "SELECT coalesce(to_regclass('only_in_db1')::text, 'missing')"); got != "missing" {
		t.Errorf("table of db1 seen in db2 as %q", got)
	}
	if got := queryString(t, db1, "SELECT note FROM only_in_db1 WHERE id = 1"); got != "é" {
		t.Errorf("note = %q, want %q", got, "é")
	}
}

func TestCluster_NewDBName(t *testing.T) {
	t.Parallel()
	c := dbtest.Shared(t)
	t.Run("Weird name: Ünïcode, spaces, \"quotes\" and a long tail that goes on and on and on and on", func(t *testing.T) {
		_, name := c.NewDB(t)
		if len(name) > 63 || name != strings.ToLower(name) || !strings.HasPrefix(name, "t_") {
			t.Errorf("NewDB name = %q, want lower case, t_ prefix, at most 63 bytes", name)
		}
		for _, r := range name {
			if !('a' <= r && r <= 'z' || '0' <= r && r <= '9' || r == '_') {
				t.Errorf("NewDB name = %q, has %q", name, r)
			}
		}
	})
}

func TestCluster_Admin(t *testing.T) {
	t.Parallel()
	c := dbtest.Shared(t)
	db, name := c.NewDB(t)
	admin := c.Admin(t, name)
	var super bool
	if err := admin.QueryRow("SELECT rolsuper FROM pg_roles WHERE rolname = current_user").Scan(&super); err != nil {
		t.Fatalf("read role attributes: %v", err)
	}
	if !super {
		t.Errorf("Admin: rolsuper = false, want true")
	}
	c.AdminExec(t, name, "CREATE TABLE admin_only (id int); REVOKE ALL ON admin_only FROM PUBLIC")
	if _, err := db.Exec("SELECT * FROM admin_only"); err == nil {
		t.Errorf("SELECT on the superuser's table as %s succeeded, want permission denied", dbtest.Role)
	}
}

func TestCluster_CreateRole(t *testing.T) {
	t.Parallel()
	c := dbtest.Shared(t)
	const role, password = "dbtest_extra", `a "tricky" pass'word \ with spaces`
	t.Run("use", func(t *testing.T) {
		_, name := c.NewDB(t)
		c.CreateRole(t, role, password, "NOSUPERUSER NOREPLICATION")
		// Objects and privileges in a database the role outlives make its drop go through DROP OWNED.
		c.AdminExec(t, name, "GRANT CREATE ON SCHEMA public TO "+role+"; GRANT CREATE ON DATABASE "+name+" TO "+role)
		db, err := sql.Open("postgres", c.DSN(role, password, name))
		if err != nil {
			t.Fatalf("sql.Open: %v", err)
		}
		defer db.Close()
		if got := queryString(t, db, "SELECT current_user"); got != role {
			t.Errorf("current_user = %q, want %q", got, role)
		}
		exec(t, db, "CREATE TABLE owned_by_extra (id int)")
	})
	admin := c.Admin(t, "postgres")
	if got := queryString(t, admin, "SELECT count(*)::text FROM pg_roles WHERE rolname = $1", role); got != "0" {
		t.Errorf("after the test, %s roles named %s, want 0 (dropped in cleanup)", got, role)
	}
}

func TestStart(t *testing.T) {
	t.Parallel()
	shared := dbtest.Shared(t)
	c := dbtest.Start(t)
	if c.Port == shared.Port || c.Dir == shared.Dir || c.Socket == shared.Socket {
		t.Errorf("Start = port %d dir %s socket %s, same as Shared's port %d dir %s socket %s",
			c.Port, c.Dir, c.Socket, shared.Port, shared.Dir, shared.Socket)
	}
	if _, err := os.Stat(c.ClientPath("psql")); err != nil {
		t.Errorf("ClientPath(psql): %v", err)
	}

	db, name := c.NewDB(t)
	exec(t, db, "CREATE TABLE survivor (id int PRIMARY KEY, note text)")
	exec(t, db, "INSERT INTO survivor VALUES (1, 'still here')")

	start := time.Now()
	c.Stop(t, "immediate")
	c.Restart(t)
	t.Logf("Stop(immediate) and Restart took %v", time.Since(start))

	// Connections from before the stop are broken: use a new pool.
	db = c.Connect(t, name)
	if got := queryString(t, db, "SELECT note FROM survivor WHERE id = 1"); got != "still here" {
		t.Errorf("after Restart, note = %q, want %q", got, "still here")
	}

	c.Stop(t, "fast")
	c.Restart(t)
	db = c.Connect(t, name)
	if got := queryString(t, db, "SELECT count(*)::text FROM survivor"); got != "1" {
		t.Errorf("after a fast Restart, count = %s, want 1", got)
	}
}

// fatalTB records Fatalf and ends the goroutine, as testing.T does.
type fatalTB struct {
	testing.TB
	msg string
}

func (f *fatalTB) Helper() {}

func (f *fatalTB) Fatalf(format string, args ...any) {
	f.msg = format
	runtime.Goexit()
}

func TestWaitFor(t *testing.T) {
	t.Parallel()
	calls := 0
	dbtest.WaitFor(t, 5*time.Second, "cond never true", func() bool {
		calls++
		return calls == 3
	})
	if calls != 3 {
		t.Errorf("WaitFor called cond %d times, want 3", calls)
	}

	f := &fatalTB{TB: t}
	done := make(chan struct{})
	start := time.Now()
	go func() {
		defer close(done)
		dbtest.WaitFor(f, 100*time.Millisecond, "never", func() bool { return false })
	}()
	<-done
	if f.msg == "" {
		t.Errorf("WaitFor with a false cond returned without Fatalf")
	}
	if took := time.Since(start); took < 100*time.Millisecond || took > 2*time.Second {
		t.Errorf("WaitFor with a 100ms timeout gave up after %v", took)
	}
}

func TestLogger(t *testing.T) {
	t.Parallel()
	log := dbtest.Logger(t)
	log.Info("from the test", "key", "value")
	var late func()
	t.Run("ended", func(t *testing.T) {
		l := dbtest.Logger(t)
		l.Debug("inside the subtest")
		late = func() { l.Info("after the subtest ended") }
	})
	late() // must be dropped, not panic
}

func TestCluster_NewDBParallel(t *testing.T) {
	t.Parallel()
	c := dbtest.Shared(t)
	for i := range 8 {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			t.Parallel()
			start := time.Now()
			db, _ := c.NewDB(t)
			t.Logf("NewDB took %v", time.Since(start))
			exec(t, db, "CREATE TABLE x AS SELECT g, repeat('x', 100) AS pad FROM generate_series(1, 20000) g")
		})
	}
}

func TestStart_Settings(t *testing.T) {
	t.Parallel()
	c := dbtest.Start(t, "work_mem = '7MB'", "wal_level = logical")
	db := c.Admin(t, "postgres")
	for setting, want := range map[string]string{"work_mem": "7MB", "wal_level": "logical"} {
		var got string
		if err := db.QueryRow(`SELECT current_setting($1)`, setting).Scan(&got); err != nil || got != want {
			t.Errorf("%s = %q, %v; want %q", setting, got, err, want)
		}
	}
}
