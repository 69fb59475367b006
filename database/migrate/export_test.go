package migrate

import (
	"context"
	"fmt"

	"github.com/pagarme/teleport/database"
)

// SchemaVersion returns the highest migration version recorded in the
// database, or 0 when the teleport schema is not there yet.
func SchemaVersion(ctx context.Context, q database.Querier) (int, error) {
	var exists bool
	if err := q.QueryRowContext(ctx, `SELECT pg_catalog.to_regclass('teleport.schema_migration') IS NOT NULL`).Scan(&exists); err != nil || !exists {
		return 0, err
	}
	var v int
	if err := q.QueryRowContext(ctx, query("schema_version")).Scan(&v); err != nil {
		return 0, fmt.Errorf("read schema version: %w", err)
	}
	return v, nil
}
