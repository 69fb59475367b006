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
	// Warnings are what the role lacks for some uses only: a target that
	// is sent schema public without apply_schema needs CREATE on it, which
	// PostgreSQL 15 and later no longer grant to every role.
	Warnings []string
}

// CheckPrivileges checks that the connected role can run Teleport on this
// database and reports every missing grant at once, each with the statement
// that fixes it. It never needs superuser or replication, and says nothing
// against them either.
func CheckPrivileges(ctx context.Context, q Querier) (Role, error) {
	var r Role
	var schemaExists, canCreateInDB, schemaUsable, publicCreate bool
	var schemaOwner string
	err := q.QueryRowContext(ctx, query("role_privileges")).Scan(
		&r.Name, &r.Database, &r.ServerVersion, &r.Superuser, &r.Replication,
		&canCreateInDB, &schemaExists, &schemaOwner, &schemaUsable, &publicCreate)
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
	if !publicCreate {
		r.Warnings = append(r.Warnings, fmt.Sprintf("role %s lacks CREATE on schema public of database %s: a source replicating schema public here without apply_schema cannot create its tables "+
			"(as the owner of schema public run GRANT CREATE ON SCHEMA public TO %s; PostgreSQL 15 and later no longer grant it to every role)",
			QuoteIdent(r.Name), QuoteIdent(r.Database), QuoteIdent(r.Name)))
	}
	return r, errors.Join(errs...)
}
