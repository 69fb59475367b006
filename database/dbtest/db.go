package dbtest

import (
	"database/sql"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/lib/pq"
	"github.com/lib/pq/pqerror"
)

// dbCounter numbers the databases NewDB creates, so names never repeat within a test binary.
var dbCounter atomic.Int64

// maxIdent is PostgreSQL's limit on identifier length, in bytes (NAMEDATALEN-1).
const maxIdent = 63

// NewDB creates a fresh, empty database owned by Role, named after the test ("t_<test>_<n>",
// lower case, at most 63 bytes), and returns a pool connected to it as Role over TCP with
// RolePassword, plus its name. The database is dropped WITH (FORCE) in t.Cleanup, after the
// pools opened on it by Connect are closed.
func (c *Cluster) NewDB(t testing.TB) (*sql.DB, string) {
	t.Helper()
	name := dbName(t.Name(), dbCounter.Add(1))
	admin := c.adminOrFatal(t, "NewDB")
	q := "CREATE DATABASE " + pq.QuoteIdentifier(name) + " OWNER " + pq.QuoteIdentifier(Role)
	if _, err := admin.Exec(q); err != nil {
		t.Fatalf("dbtest: NewDB: %s: %v\nserver log %s, last lines:\n%s", q, err, c.logFile, c.logTail())
	}
	t.Cleanup(func() { c.dropDB(t, name) })
	return c.Connect(t, name), name
}

// dbName turns a test name into a database name: "t_" + the name's lower-case letters and digits,
// other runs of characters as "_", truncated so that the whole, with "_<n>", fits in 63 bytes.
func dbName(test string, n int64) string {
	var b strings.Builder
	sep := false
	for _, r := range strings.ToLower(test) {
		if 'a' <= r && r <= 'z' || '0' <= r && r <= '9' {
			if sep && b.Len() > 0 {
				b.WriteByte('_')
			}
			b.WriteRune(r)
			sep = false
		} else {
			sep = true
		}
	}
	suffix := "_" + strconv.FormatInt(n, 10)
	s := b.String()
	if limit := maxIdent - len("t_") - len(suffix); len(s) > limit {
		s = strings.TrimRight(s[:limit], "_")
	}
	if s == "" {
		return "t" + suffix
	}
	return "t_" + s + suffix
}

// dropDB drops a database made by NewDB, unless the cluster is down (it is removed whole).
func (c *Cluster) dropDB(t testing.TB, name string) {
	c.mu.Lock()
	if !c.running {
		c.mu.Unlock()
		return
	}
	admin, err := c.adminPool()
	version := c.version
	c.mu.Unlock()
	if err != nil {
		t.Errorf("dbtest: drop database %s: %v", name, err)
		return
	}
	q := "DROP DATABASE IF EXISTS " + pq.QuoteIdentifier(name) + " WITH (FORCE)"
	if version < 130000 {
		// WITH (FORCE) is new in PostgreSQL 13; before, end the sessions ourselves.
		const kill = "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()"
		if _, err := admin.Exec(kill, name); err != nil {
			t.Errorf("dbtest: drop database %s: end its sessions: %v", name, err)
			return
		}
		q = "DROP DATABASE IF EXISTS " + pq.QuoteIdentifier(name)
	}
	if _, err := admin.Exec(q); err != nil {
		t.Errorf("dbtest: %s: %v", q, err)
	}
}

// adminOrFatal returns the cluster's cached superuser pool, failing the test if the cluster is
// down or unreachable.
func (c *Cluster) adminOrFatal(t testing.TB, fn string) *sql.DB {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.running {
		t.Fatalf("dbtest: %s: the cluster on port %d is not running; call Restart first", fn, c.Port)
	}
	db, err := c.adminPool()
	if err != nil {
		t.Fatalf("dbtest: %s: %v\nserver log %s, last lines:\n%s", fn, err, c.logFile, c.logTail())
	}
	return db
}

// Connect opens a pool connected as Role to database dbname over TCP with RolePassword, checks
// that it can connect, and closes it in t.Cleanup.
func (c *Cluster) Connect(t testing.TB, dbname string) *sql.DB {
	t.Helper()
	db, err := openPing(c.DSN(Role, RolePassword, dbname))
	if err != nil {
		t.Fatalf("dbtest: Connect(%q): connect as %s to %s:%d: %v\nserver log %s, last lines:\n%s",
			dbname, Role, c.Host, c.Port, err, c.logFile, c.logTail())
	}
	t.Cleanup(func() {
		// The server may be stopped already, failing the goodbye; nothing is left to release.
		_ = db.Close()
	})
	return db
}

// Admin opens a pool connected as the superuser "postgres" to database dbname over the unix
// socket, checks that it can connect, and closes it in t.Cleanup. Use it for setup that needs
// privileges, never for what the code under test should be able to do as Role.
func (c *Cluster) Admin(t testing.TB, dbname string) *sql.DB {
	t.Helper()
	db, err := c.openAdmin(dbname)
	if err != nil {
		t.Fatalf("dbtest: Admin(%q): %v\nserver log %s, last lines:\n%s", dbname, err, c.logFile, c.logTail())
	}
	t.Cleanup(func() {
		// As in Connect: a stopped server fails the goodbye; nothing is left to release.
		_ = db.Close()
	})
	return db
}

// AdminExec runs sql, which may hold several statements, as the superuser in database dbname,
// failing the test on error. Use it for setup that needs privileges (extensions, other roles'
// objects, grants).
func (c *Cluster) AdminExec(t testing.TB, dbname, sql string) {
	t.Helper()
	var err error
	if dbname == "postgres" {
		_, err = c.adminOrFatal(t, "AdminExec").Exec(sql)
	} else {
		db, oerr := c.openAdmin(dbname)
		if oerr != nil {
			t.Fatalf("dbtest: AdminExec(%q): %v", dbname, oerr)
		}
		_, err = db.Exec(sql)
		// The statement's outcome is what matters; closing a pool we are done with can only fail
		// on an already broken connection.
		_ = db.Close()
	}
	if err != nil {
		t.Fatalf("dbtest: AdminExec(%q): %v\nSQL:\n%s", dbname, err, indent(sql))
	}
}

// CreateRole creates a login role: CREATE ROLE name LOGIN <attrs> PASSWORD password, where attrs
// is a clause such as "NOSUPERUSER NOREPLICATION" (or ""), for privilege tests. Roles are
// cluster-wide, so pick a name unique to the test. The role is dropped in t.Cleanup, after
// DROP OWNED BY in every database it still owns objects or holds privileges in (which also
// revokes its privileges on databases); owning a database keeps it from being dropped.
func (c *Cluster) CreateRole(t testing.TB, name, password, attrs string) {
	t.Helper()
	q := fmt.Sprintf("CREATE ROLE %s LOGIN %s PASSWORD %s", pq.QuoteIdentifier(name), attrs, pq.QuoteLiteral(password))
	if _, err := c.adminOrFatal(t, "CreateRole").Exec(q); err != nil {
		hint := ""
		if pq.As(err, pqerror.DuplicateObject) != nil {
			hint = "\nroles are cluster-wide: use a name unique to the test, or a private cluster (Start)"
		}
		t.Fatalf("dbtest: CreateRole(%q, %q): %v%s", name, attrs, err, hint)
	}
	t.Cleanup(func() { c.dropRole(t, name) })
}

// dropRole drops a role made by CreateRole. A role that still owns objects or holds privileges
// cannot be dropped, so first DROP OWNED BY it in each database where it does.
func (c *Cluster) dropRole(t testing.TB, name string) {
	c.mu.Lock()
	if !c.running {
		c.mu.Unlock()
		return
	}
	admin, err := c.adminPool()
	c.mu.Unlock()
	if err != nil {
		t.Errorf("dbtest: drop role %s: %v", name, err)
		return
	}
	drop := "DROP ROLE IF EXISTS " + pq.QuoteIdentifier(name)
	_, err = admin.Exec(drop)
	if pq.As(err, pqerror.DependentObjectsStillExist) == nil {
		if err != nil {
			t.Errorf("dbtest: %s: %v", drop, err)
		}
		return
	}
	// dbid 0 marks privileges on shared objects (GRANT ... ON DATABASE): DROP OWNED BY in any
	// database revokes those, so use postgres.
	const dbsQuery = `SELECT DISTINCT coalesce(d.datname, 'postgres') FROM pg_shdepend s LEFT JOIN pg_database d ON d.oid = s.dbid
		WHERE s.refclassid = 'pg_authid'::regclass AND s.refobjid = (SELECT oid FROM pg_roles WHERE rolname = $1)`
	rows, err := admin.Query(dbsQuery, name)
	if err != nil {
		t.Errorf("dbtest: drop role %s: find its databases: %v", name, err)
		return
	}
	var dbs []string
	for rows.Next() {
		var db string
		if err := rows.Scan(&db); err != nil {
			t.Errorf("dbtest: drop role %s: find its databases: %v", name, err)
			return
		}
		dbs = append(dbs, db)
	}
	if err := rows.Err(); err != nil {
		t.Errorf("dbtest: drop role %s: find its databases: %v", name, err)
		return
	}
	for _, dbname := range dbs {
		db, err := c.openAdmin(dbname)
		if err != nil {
			t.Errorf("dbtest: drop role %s: %v", name, err)
			return
		}
		_, err = db.Exec("DROP OWNED BY " + pq.QuoteIdentifier(name))
		_ = db.Close() // done with it either way; a close error cannot undo the DROP OWNED
		if err != nil {
			t.Errorf("dbtest: drop role %s: DROP OWNED BY in database %s: %v", name, dbname, err)
			return
		}
	}
	if _, err := admin.Exec(drop); err != nil {
		t.Errorf("dbtest: %s (after DROP OWNED BY in %v): %v", drop, dbs, err)
	}
}

// DSN returns a lib/pq key=value connection string for role, password and dbname over TCP
// to Host:Port, with sslmode=disable and a 10 s connect timeout.
func (c *Cluster) DSN(role, password, dbname string) string {
	return fmt.Sprintf("host=%s port=%d user=%s password=%s dbname=%s sslmode=disable connect_timeout=10",
		dsnValue(c.Host), c.Port, dsnValue(role), dsnValue(password), dsnValue(dbname))
}

// dsnValue quotes a key=value connection string value when it needs it.
func dsnValue(s string) string {
	if s != "" && !strings.ContainsAny(s, " \t\r\n\f\v'\\=") {
		return s
	}
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + "'"
}
