package migrate

import (
	"context"
	"database/sql"
	"fmt"
	"io/fs"
	"regexp"
	"strings"

	"github.com/lib/pq"

	"github.com/pagarme/teleport/database"
)

// PathFix is what KeepOutOfSearchPath did.
type PathFix struct {
	Role, Database string
	From, To       string   // the role's search_path in the database before and after; "" when left alone
	Moved          []string // objects moved out of Teleport's schema, and where
	NotMoved       []string // objects left in it, each with why and what to do
}

// KeepOutOfSearchPath keeps Teleport's schema out of the connected role's
// search path in this database. A role named teleport, like the schema,
// finds it first in PostgreSQL's default search path ("$user", public), so
// the tables its migrations create without a schema would land among
// Teleport's own and never be replicated. The role's path in the database is
// set to the same without Teleport's schema (ALTER ROLE ... IN DATABASE ...
// SET search_path, which a role may do for itself), and objects that are not
// Teleport's are moved to the first existing schema left in it (else
// public), where the role's sessions then find them. It changes nothing when
// the path does not lead to Teleport's schema and the role is not named
// like it. With neither ALTER ROLE nor ALTER DATABASE setting search_path,
// the path taken is PostgreSQL's default, "$user", public: a different
// default in postgresql.conf is not seen (only a superuser may read it).
func KeepOutOfSearchPath(ctx context.Context, db *sql.DB) (PathFix, error) {
	var fix PathFix
	var setting sql.NullString
	if err := db.QueryRowContext(ctx, query("role_search_path")).Scan(&fix.Role, &fix.Database, &setting); err != nil {
		return fix, fmt.Errorf("read the search_path of the connected role: %w", err)
	}
	path := `"$user", public` // PostgreSQL's default
	if setting.Valid {
		path = setting.String
	}
	var keep []string
	changed := false
	for _, el := range splitPath(path) {
		if el == database.OwnSchema || el == "$user" && fix.Role == database.OwnSchema {
			changed = true
			continue
		}
		keep = append(keep, el)
	}
	if changed {
		fix.From = path
		quoted := make([]string, len(keep))
		for i, el := range keep {
			quoted[i] = database.QuoteIdent(el)
		}
		fix.To = strings.Join(quoted, ", ")
		value := fix.To
		if value == "" {
			value, fix.To = "''", "''"
		}
		stmt := "ALTER ROLE CURRENT_USER IN DATABASE " + database.QuoteIdent(fix.Database) + " SET search_path TO " + value
		if _, err := db.ExecContext(ctx, stmt); err != nil {
			return fix, fmt.Errorf("keep schema %s out of the search path of role %s, where its unqualified objects would land and not be replicated: %s: %w "+
				"(run it as a role that may, or rename the role)", database.OwnSchema, database.QuoteIdent(fix.Role), stmt, err)
		}
	}
	if !changed && fix.Role != database.OwnSchema {
		return fix, nil // nobody's unqualified objects land in Teleport's schema
	}
	to, err := firstSchema(ctx, db, keep)
	if err != nil {
		return fix, err
	}
	return fix, moveForeignObjects(ctx, db, to, &fix)
}

// firstSchema is the first schema of path that exists and is not
// PostgreSQL's ("$user" already taken out), else public: where the role's
// sessions now create what they create without a schema.
func firstSchema(ctx context.Context, db *sql.DB, path []string) (string, error) {
	for _, name := range path {
		if name == "$user" || database.ReservedSchema(name) {
			continue
		}
		var ok bool
		if err := db.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_namespace WHERE nspname = $1)`, name).Scan(&ok); err != nil {
			return "", fmt.Errorf("look up schema %s: %w", database.QuoteIdent(name), err)
		}
		if ok {
			return name, nil
		}
	}
	return "public", nil
}

// splitPath splits a search_path setting into its schema names, unquoted.
func splitPath(path string) []string {
	var out []string
	for _, el := range strings.Split(path, ",") {
		el = strings.TrimSpace(el)
		if len(el) >= 2 && el[0] == '"' && el[len(el)-1] == '"' {
			el = strings.ReplaceAll(el[1:len(el)-1], `""`, `"`)
		}
		if el != "" {
			out = append(out, el)
		}
	}
	return out
}

// runtimeObjects are the objects of Teleport's schema that no migration
// makes: use_event_triggers creates them (see schema.SetEventTriggers).
var runtimeObjects = []string{"catalog_snapshot", "capture_ddl"}

// ownObjectRE finds the names of the objects sql/schema.sql makes in
// Teleport's schema.
var ownObjectRE = regexp.MustCompile(`(?m)(?:^CREATE (?:TABLE|FUNCTION|VIEW|TYPE|SEQUENCE)|SEQUENCE NAME) teleport\.(\w+)`)

// OwnObjects returns the names of the objects of Teleport's schema: those
// the migrations make (as sql/schema.sql shows them) and runtimeObjects.
func OwnObjects() ([]string, error) {
	b, err := fs.ReadFile(sqlFiles, "sql/schema.sql")
	if err != nil {
		return nil, err
	}
	names := append([]string(nil), runtimeObjects...)
	for _, m := range ownObjectRE.FindAllStringSubmatch(string(b), -1) {
		names = append(names, m[1])
	}
	return names, nil
}

// object is an object of Teleport's schema that is not Teleport's.
type object struct{ kind, name, identity string }

// foreignObjects lists the objects of Teleport's schema that are not
// Teleport's (see OwnObjects).
func foreignObjects(ctx context.Context, db *sql.DB) ([]object, error) {
	own, err := OwnObjects()
	if err != nil {
		return nil, err
	}
	rows, err := db.QueryContext(ctx, query("foreign_objects"), pq.Array(own))
	if err != nil {
		return nil, fmt.Errorf("list the objects others made in schema %s: %w", database.OwnSchema, err)
	}
	defer rows.Close()
	var objs []object
	for rows.Next() {
		var o object
		if err := rows.Scan(&o.kind, &o.name, &o.identity); err != nil {
			return nil, fmt.Errorf("list the objects others made in schema %s: %w", database.OwnSchema, err)
		}
		objs = append(objs, o)
	}
	return objs, rows.Err()
}

// moveForeignObjects moves the objects of Teleport's schema that are not
// Teleport's to schema to, each in a transaction of its own, and records
// what it did, or why it could not, in fix.
func moveForeignObjects(ctx context.Context, db *sql.DB, to string, fix *PathFix) error {
	objs, err := foreignObjects(ctx, db)
	if err != nil {
		return err
	}
	for _, o := range objs {
		stmt := fmt.Sprintf("ALTER %s %s.%s SET SCHEMA %s", o.kind, database.QuoteIdent(database.OwnSchema), o.identity, database.QuoteIdent(to))
		if o.kind == "EXTENSION" {
			stmt = fmt.Sprintf("ALTER EXTENSION %s SET SCHEMA %s", o.identity, database.QuoteIdent(to))
		}
		what := strings.ToLower(o.kind) + " " + database.QuoteQualified(database.OwnSchema, o.name)
		if _, err := db.ExecContext(ctx, stmt); err != nil {
			todo := "move it, or rename it and drop it there"
			if o.kind == "EXTENSION" {
				todo = "as a superuser (its objects are the bootstrap superuser's), run " + stmt
			}
			fix.NotMoved = append(fix.NotMoved, fmt.Sprintf("%s is not Teleport's and is not replicated there, and moving it failed: %s: %v (%s)", what, stmt, err, todo))
			continue
		}
		fix.Moved = append(fix.Moved, fmt.Sprintf("%s to schema %s", what, database.QuoteIdent(to)))
	}
	return nil
}
