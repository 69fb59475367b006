// Package migrate creates and upgrades the teleport schema from the
// numbered migrations in sql/migrations; sql/schema.sql shows the result.
package migrate

import (
	"context"
	"database/sql"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"

	"github.com/pagarme/teleport/database"
)

// migrationLockKey is the advisory lock that serialises migrations, so two
// instances starting at once on one database take turns instead of racing.
const migrationLockKey int64 = 0x74656c65706f7274 // "teleport"

// Migration is one versioned SQL file under sql/migrations.
type Migration struct {
	Version int
	Name    string
	SQL     string
}

// Migrations returns the embedded migrations in version order.
func Migrations() ([]Migration, error) {
	const dir = "sql/migrations"
	entries, err := fs.ReadDir(sqlFiles, dir)
	if err != nil {
		return nil, fmt.Errorf("read embedded migrations: %w", err)
	}
	var ms []Migration
	for _, e := range entries {
		num, name, ok := strings.Cut(strings.TrimSuffix(e.Name(), ".sql"), "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v <= 0 {
			return nil, fmt.Errorf("migration file %s: name must be NNNN_name.sql", e.Name())
		}
		b, err := fs.ReadFile(sqlFiles, path.Join(dir, e.Name()))
		if err != nil {
			return nil, fmt.Errorf("read migration %s: %w", e.Name(), err)
		}
		ms = append(ms, Migration{Version: v, Name: name, SQL: string(b)})
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].Version < ms[j].Version })
	for i := 1; i < len(ms); i++ {
		if ms[i].Version == ms[i-1].Version {
			return nil, fmt.Errorf("two migrations with version %d", ms[i].Version)
		}
	}
	return ms, nil
}

// Migrate creates the teleport schema if needed and applies, in order, every
// embedded migration not yet recorded in teleport.schema_migration, each in
// its own transaction. It returns the versions it applied. Running it again
// applies nothing; two instances running it at once take turns.
func Migrate(ctx context.Context, db *sql.DB) ([]int, error) {
	ms, err := Migrations()
	if err != nil {
		return nil, err
	}
	conn, err := db.Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("migrate: %w", err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, `SELECT pg_advisory_lock($1)`, migrationLockKey); err != nil {
		return nil, fmt.Errorf("migrate: take advisory lock: %w", err)
	}
	// The lock is per session; release it before the connection returns to the pool.
	defer conn.ExecContext(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock($1)`, migrationLockKey) //nolint:errcheck // closing the session releases it anyway

	var exists bool
	if err := conn.QueryRowContext(ctx, query("schema_exists")).Scan(&exists); err != nil {
		return nil, fmt.Errorf("migrate: look up the teleport schema: %w", err)
	}
	// CREATE SCHEMA IF NOT EXISTS checks the CREATE privilege even when the
	// schema is there, so only a database without it needs that privilege.
	if !exists {
		if _, err := conn.ExecContext(ctx, `CREATE SCHEMA teleport`); err != nil {
			return nil, fmt.Errorf("migrate: create schema teleport: %w", err)
		}
	}
	if _, err := conn.ExecContext(ctx, query("schema_migration_create")); err != nil {
		return nil, fmt.Errorf("migrate: create teleport.schema_migration: %w", err)
	}
	done := map[int]bool{}
	rows, err := conn.QueryContext(ctx, `SELECT version FROM teleport.schema_migration`)
	if err != nil {
		return nil, fmt.Errorf("migrate: read applied versions: %w", err)
	}
	for rows.Next() {
		var v int
		if err := rows.Scan(&v); err != nil {
			rows.Close()
			return nil, fmt.Errorf("migrate: read applied versions: %w", err)
		}
		done[v] = true
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("migrate: read applied versions: %w", err)
	}
	latest := 0
	for v := range done {
		latest = max(latest, v)
	}
	if n := len(ms); n > 0 && latest > ms[n-1].Version {
		return nil, fmt.Errorf("migrate: the database is at schema version %d but this teleport knows only up to %d: run the newer teleport binary", latest, ms[n-1].Version)
	}

	var applied []int
	for _, m := range ms {
		if done[m.Version] {
			continue
		}
		tx, err := conn.BeginTx(ctx, nil)
		if err != nil {
			return applied, fmt.Errorf("migrate %04d_%s: %w", m.Version, m.Name, err)
		}
		if _, err := tx.ExecContext(ctx, m.SQL); err != nil {
			_ = tx.Rollback() // the statement's error is the one to report
			return applied, fmt.Errorf("migrate %04d_%s: %w", m.Version, m.Name, err)
		}
		if _, err := tx.ExecContext(ctx, query("schema_migration_insert"), m.Version, m.Name); err != nil {
			_ = tx.Rollback() // as above
			return applied, fmt.Errorf("migrate %04d_%s: record version: %w", m.Version, m.Name, err)
		}
		if err := tx.Commit(); err != nil {
			return applied, fmt.Errorf("migrate %04d_%s: commit: %w", m.Version, m.Name, err)
		}
		applied = append(applied, m.Version)
	}
	return applied, nil
}

// SchemaVersion returns the highest migration version recorded in the
// database, or 0 when the teleport schema is not there yet.
func SchemaVersion(ctx context.Context, q database.Querier) (int, error) {
	installed, err := Installed(ctx, q)
	if err != nil || !installed {
		return 0, err
	}
	var v int
	if err := q.QueryRowContext(ctx, query("schema_version")).Scan(&v); err != nil {
		return 0, fmt.Errorf("read schema version: %w", err)
	}
	return v, nil
}

// Current reports whether the database holds the teleport schema, and
// fails unless it is at this binary's version: the modes that read it
// without migrating it (status, uninstall) read only that one.
func Current(ctx context.Context, q database.Querier) (bool, error) {
	v, err := SchemaVersion(ctx, q)
	if err != nil || v == 0 {
		return false, err
	}
	ms, err := Migrations()
	if err != nil {
		return true, err
	}
	if latest := ms[len(ms)-1].Version; v != latest {
		return true, fmt.Errorf("the teleport schema of this database is at version %d, this binary's at %d: "+
			"use the binary that runs there, or run this one once in replication mode, which migrates it", v, latest)
	}
	return true, nil
}
