package database

import (
	"context"
	"errors"
	"fmt"
)

// MinServerVersion is the oldest PostgreSQL Teleport supports: 13 brought
// pg_current_xact_id and xid8, which batches are cut by.
const MinServerVersion = 130000

// Role describes the connected role and what it may do, as read by
// CheckPrivileges.
type Role struct {
	Name          string
	Database      string
	ServerVersion int
	Superuser     bool
	Replication   bool
}

// CheckPrivileges checks that the connected role can run Teleport on this
// database and reports every missing grant at once, each with the statement
// that fixes it. It never needs superuser or replication, and says nothing
// against them either.
func CheckPrivileges(ctx context.Context, q Querier) (Role, error) {
	var r Role
	var schemaExists, canCreateInDB, schemaUsable bool
	var schemaOwner string
	err := q.QueryRowContext(ctx, query("role_privileges")).Scan(
		&r.Name, &r.Database, &r.ServerVersion, &r.Superuser, &r.Replication,
		&canCreateInDB, &schemaExists, &schemaOwner, &schemaUsable)
	if err != nil {
		return r, fmt.Errorf("check privileges: %w", err)
	}
	var errs []error
	if r.ServerVersion < MinServerVersion {
		errs = append(errs, fmt.Errorf("PostgreSQL server version %d is too old: teleport needs 13 or later", r.ServerVersion))
	}
	switch {
	case !schemaExists && !canCreateInDB:
		errs = append(errs, fmt.Errorf("role %s lacks CREATE on database %s, needed once to create the teleport schema: as the database owner run GRANT CREATE ON DATABASE %s TO %s",
			QuoteIdent(r.Name), QuoteIdent(r.Database), QuoteIdent(r.Database), QuoteIdent(r.Name)))
	case schemaExists && !schemaUsable:
		errs = append(errs, fmt.Errorf("role %s lacks USAGE and CREATE on schema teleport (owned by %s): as its owner run ALTER SCHEMA teleport OWNER TO %s",
			QuoteIdent(r.Name), QuoteIdent(schemaOwner), QuoteIdent(r.Name)))
	}
	return r, errors.Join(errs...)
}
