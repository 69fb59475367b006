// Package database is the base the packages that speak SQL share: it opens
// connections, runs transactions, quotes names, names SQLSTATEs, checks the
// role's privileges and loads each package's queries from its embedded
// sql/queries. The subjects are its subpackages: migrate (the teleport
// schema), store (the bookkeeping in teleport.*), capture, schema, apply and
// load.
package database

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/lib/pq"
	"github.com/lib/pq/pqerror"

	"github.com/pagarme/teleport/config"
)

//go:embed sql
var sqlFiles embed.FS

// query returns the text of one of this package's queries,
// sql/queries/NAME.sql.
var query = QueryFiles(sqlFiles, "sql/queries")

// registry holds the queries of every package loaded with QueryFiles, by
// name, for TestQueriesPrepare.
var registry = map[string]string{}

// QueryFiles loads the NAME.sql files of dir in fsys, at init: a missing
// directory stops the program at once, not mid-run. It returns the
// function that gives a query's text by NAME; a NAME with no file is a
// programming error (it panics) caught by TestQueriesPrepare. Names are
// unique across packages.
func QueryFiles(fsys fs.FS, dir string) func(name string) string {
	entries, err := fs.ReadDir(fsys, dir)
	if err != nil {
		panic(fmt.Sprintf("read embedded %s: %v", dir, err))
	}
	m := make(map[string]string, len(entries))
	for _, e := range entries {
		b, err := fs.ReadFile(fsys, path.Join(dir, e.Name()))
		if err != nil {
			panic(fmt.Sprintf("read embedded %s: %v", e.Name(), err))
		}
		name := strings.TrimSuffix(e.Name(), ".sql")
		if _, dup := registry[name]; dup {
			panic("two query files named " + e.Name())
		}
		m[name], registry[name] = string(b), string(b)
	}
	return func(name string) string {
		q, ok := m[name]
		if !ok {
			panic("no query file " + dir + "/" + name + ".sql")
		}
		return q
	}
}

// AllQueries returns the queries of every package loaded so far, by name.
func AllQueries() map[string]string { return maps.Clone(registry) }

// Querier is what *sql.DB, *sql.Tx and *sql.Conn share, so query functions
// work in and out of a transaction.
type Querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// ConnString returns the lib/pq connection string for c. Values are quoted,
// so passwords and names may hold spaces, quotes and backslashes. An empty
// password is left out so that PGPASSWORD, PGPASSFILE and ~/.pgpass apply.
func ConnString(c config.Database, appName string) string {
	kv := [][2]string{
		{"host", c.Hostname},
		{"port", strconv.Itoa(c.Port)},
		{"dbname", c.Database},
		{"user", c.Username},
		{"sslmode", c.SSLMode},
		{"application_name", appName},
		{"connect_timeout", "10"},
		// Teleport qualifies every name it uses; pinning search_path means no
		// object in a user's schema can stand in for a built-in it calls.
		// JIT stays off: Teleport's queries read a few rows through an
		// index, and a plan costed high (event tables not analysed yet)
		// spent 0.7 s compiling each of them to read a batch in 4 ms.
		{"options", "-c search_path=pg_catalog,pg_temp -c jit=off"},
	}
	if c.Password != "" {
		kv = append(kv, [2]string{"password", c.Password})
	}
	var b strings.Builder
	for i, p := range kv {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(p[0])
		b.WriteString("='")
		b.WriteString(strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(p[1]))
		b.WriteByte('\'')
	}
	return b.String()
}

// Open connects to the configured database and checks that it answers. The
// error names the host, port, database and user, never the password.
func Open(ctx context.Context, c config.Database, appName string) (*sql.DB, error) {
	where := fmt.Sprintf("database %q on %s:%d as %q", c.Database, c.Hostname, c.Port, c.Username)
	conn, err := pq.NewConnector(ConnString(c, appName))
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", where, err)
	}
	db := sql.OpenDB(conn)
	db.SetMaxOpenConns(16)
	db.SetMaxIdleConns(8)
	db.SetConnMaxIdleTime(5 * time.Minute)
	pingCtx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	if err := db.PingContext(pingCtx); err != nil {
		_ = db.Close() // the ping error is the one worth reporting
		return nil, fmt.Errorf("connect to %s: %w (check database.hostname, port, username and the password or PGPASSFILE)", where, err)
	}
	return db, nil
}

// InTx runs fn in a transaction: it commits when fn returns nil and rolls
// back otherwise, so no path leaks an open transaction.
func InTx(ctx context.Context, db *sql.DB, fn func(tx *sql.Tx) error) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback() // fn's error says what went wrong; the rollback error would only repeat it
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// SQLState returns the SQLSTATE code of a PostgreSQL error, or "" when err
// did not come from the server. Codes are named by lib/pq's pqerror, never
// written as literals.
func SQLState(err error) pqerror.Code {
	var pe *pq.Error
	if errors.As(err, &pe) {
		return pe.Code
	}
	return ""
}

// UnsafeNewEnumValue reports whether err is the use of an enum label added
// in the same transaction, usable only once that commits.
func UnsafeNewEnumValue(err error) bool {
	return SQLState(err) == pqerror.UnsafeNewEnumValueUsage
}

// QuoteIdent quotes a name for SQL text with the driver's quoting.
func QuoteIdent(name string) string { return pq.QuoteIdentifier(name) }

// QuoteQualified quotes schema.name for SQL text.
func QuoteQualified(schema, name string) string {
	return pq.QuoteIdentifier(schema) + "." + pq.QuoteIdentifier(name)
}

// Ended returns the cluster's transaction state as text (the current
// snapshot: the xid horizon and the transactions in progress). Two equal
// answers mean that no transaction that wrote anything ended between them,
// so nothing committed since (a catalog change, a row) can be seen.
func Ended(ctx context.Context, q Querier) (string, error) {
	var s string
	if err := q.QueryRowContext(ctx, `SELECT pg_catalog.pg_current_snapshot()::text`).Scan(&s); err != nil {
		return "", fmt.Errorf("read the transaction state: %w", err)
	}
	return s, nil
}

// OwnSchema is the schema Teleport keeps its state, events and functions in.
const OwnSchema = "teleport"

// ReservedSchema reports whether name is a schema changes are never applied
// to: teleport's own and PostgreSQL's.
func ReservedSchema(name string) bool {
	return name == OwnSchema || name == "information_schema" || strings.HasPrefix(name, "pg_")
}

// SetApplyOrigin marks the transaction as applying changes from source
// (SET LOCAL teleport.origin, as a bound parameter): capture triggers on this
// database record the origin, so the change is never sent back to source.
func SetApplyOrigin(ctx context.Context, tx *sql.Tx, source string) error {
	if _, err := tx.ExecContext(ctx, query("apply_set_origin"), source); err != nil {
		return fmt.Errorf("set teleport.origin: %w", err)
	}
	return nil
}

// InSavepoint runs fn inside the savepoint name of tx: released when fn
// succeeds, rolled back when it fails, so tx goes on either way. It
// returns fn's error; err is a failure of the savepoint itself, after
// which tx cannot be used.
func InSavepoint(ctx context.Context, tx *sql.Tx, name string, fn func() error) (fnErr, err error) {
	if _, err := tx.ExecContext(ctx, "SAVEPOINT "+QuoteIdent(name)); err != nil {
		return nil, fmt.Errorf("savepoint %s: %w", name, err)
	}
	if fnErr = fn(); fnErr == nil {
		if _, err := tx.ExecContext(ctx, "RELEASE SAVEPOINT "+QuoteIdent(name)); err != nil {
			return nil, fmt.Errorf("release savepoint %s: %w", name, err)
		}
		return nil, nil
	}
	if _, err := tx.ExecContext(ctx, "ROLLBACK TO SAVEPOINT "+QuoteIdent(name)); err != nil {
		return fnErr, fmt.Errorf("rollback to savepoint %s: %w", name, err)
	}
	return fnErr, nil
}
