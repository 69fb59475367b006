// Package schema replicates schema changes: catalog snapshots, the pure
// diff between two of them, the DDL it yields and its apply on a target,
// the event trigger, and the schema changes that travel in a batch.
package schema

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/pagarme/teleport/database"
)

// OID is an object id as the snapshot's JSON spells it: PostgreSQL writes
// oid values as strings.
type OID uint32

// UnmarshalJSON reads an oid written as a string or a number.
func (o *OID) UnmarshalJSON(b []byte) error {
	n, err := strconv.ParseUint(strings.Trim(string(b), `"`), 10, 32)
	if err != nil {
		return fmt.Errorf("read oid %s: %w", b, err)
	}
	*o = OID(n)
	return nil
}

// Snapshot is what the catalog holds of the user's schemas at one moment,
// as schema_snapshot.sql reads it. Objects are identified by oid (columns and
// attributes by number), so two snapshots tell a rename from a drop and a
// create. Every definition is written relative to SearchPath: names that
// search_path reaches are not qualified.
type Snapshot struct {
	SearchPath string      `json:"search_path"`
	Major      int         `json:"major"` // the server's PostgreSQL major
	Schemas    []Schema    `json:"schemas"`
	Extensions []Extension `json:"extensions"`
	Types      []Type      `json:"types"`
	Tables     []Relation  `json:"tables"`
	Sequences  []Sequence  `json:"sequences"`
	Views      []View      `json:"views"`
	Functions  []Function  `json:"functions"`
}

// Schema is a namespace.
type Schema struct {
	OID  OID    `json:"oid"`
	Name string `json:"name"`
}

// Extension is an installed extension.
type Extension struct {
	OID     OID    `json:"oid"`
	Name    string `json:"name"`
	Schema  string `json:"schema"`
	Version string `json:"version"`
}

// Type is an enum (Kind "e"), a composite type ("c") or a domain ("d").
type Type struct {
	OID     OID          `json:"oid"`
	Schema  string       `json:"schema"`
	Name    string       `json:"name"`
	Kind    string       `json:"kind"`
	Labels  []EnumLabel  `json:"labels"`   // enum, in sort order
	Attrs   []Column     `json:"attrs"`    // composite
	Base    string       `json:"base"`     // domain
	NotNull bool         `json:"not_null"` // domain
	Default *string      `json:"default"`  // domain
	Checks  []Constraint `json:"checks"`   // domain
	Owned   bool         `json:"owned"`
}

// EnumLabel is one value of an enum.
type EnumLabel struct {
	OID   OID    `json:"oid"`
	Label string `json:"label"`
}

// Relation is a table, a partitioned table or a partition.
type Relation struct {
	OID          OID          `json:"oid"`
	Schema       string       `json:"schema"`
	Name         string       `json:"name"`
	Kind         string       `json:"kind"` // "r" or "p"
	Unlogged     bool         `json:"unlogged"`
	Owned        bool         `json:"owned"`
	Options      []string     `json:"options"`       // storage parameters, as "name=value"
	PartitionKey *string      `json:"partition_key"` // pg_get_partkeydef, for "p"
	Parent       *OID         `json:"parent"`        // the parent of a partition or inheritance child
	Bound        *string      `json:"bound"`         // a partition's FOR VALUES ...
	Columns      []Column     `json:"columns"`
	Constraints  []Constraint `json:"constraints"`
	Indexes      []Index      `json:"indexes"`
	Triggers     []Trigger    `json:"triggers"`
}

// Column is a table's column or a composite type's attribute.
type Column struct {
	Num       int16   `json:"num"`
	Name      string  `json:"name"`
	Type      string  `json:"type"`
	NotNull   bool    `json:"not_null"`
	Default   *string `json:"default"`
	Generated *string `json:"generated"` // GENERATED ALWAYS AS (...) STORED, or VIRTUAL
	Virtual   bool    `json:"virtual"`   // a VIRTUAL generated column (PostgreSQL 18)
	// NotNullName names the column's NOT NULL constraint (PostgreSQL 18;
	// nil before): kept when it is not the name PostgreSQL would choose.
	NotNullName *string `json:"not_null_name"`
	Identity    string  `json:"identity"`  // "a" always, "d" by default, "" none
	Collation   *string `json:"collation"` // when not the type's own
	Local       bool    `json:"local"`     // defined by the table, not only inherited
}

// Constraint is a table's or a domain's constraint.
type Constraint struct {
	OID  OID    `json:"oid"`
	Name string `json:"name"`
	Type string `json:"type"` // p, u, c, f, x
	Def  string `json:"def"`  // pg_get_constraintdef
	Ref  *OID   `json:"ref"`  // the table a foreign key references
	// Inherited constraints come from a partition\'s parent (and go with it).
	Inherited bool `json:"inherited"`
}

// Index is an index that backs no constraint.
type Index struct {
	OID    OID    `json:"oid"`
	Name   string `json:"name"`
	Def    string `json:"def"`    // pg_get_indexdef, which always qualifies the table
	Prefix string `json:"prefix"` // Def up to and including " USING "
	// Inherited indexes are a partition's part of its parent's index.
	Inherited bool `json:"inherited"`
}

// Trigger is a user trigger (teleport's own are left out).
type Trigger struct {
	OID     OID    `json:"oid"`
	Name    string `json:"name"`
	Def     string `json:"def"` // pg_get_triggerdef, which always qualifies the table
	On      string `json:"on"`  // " ON schema.table " as Def spells it
	Enabled bool   `json:"enabled"`
}

// Sequence is a sequence, standalone, owned by a column or behind an
// identity column.
type Sequence struct {
	OID         OID    `json:"oid"`
	Schema      string `json:"schema"`
	Name        string `json:"name"`
	Type        string `json:"type"`
	Start       int64  `json:"start"`
	Increment   int64  `json:"increment"`
	Min         int64  `json:"min"`
	Max         int64  `json:"max"`
	Cache       int64  `json:"cache"`
	Cycle       bool   `json:"cycle"`
	LastValue   *int64 `json:"last_value"`
	OwnerTable  *OID   `json:"owner_table"`
	OwnerColumn *int16 `json:"owner_column"`
	Identity    *bool  `json:"identity"`
}

// View is a view or a materialized view.
type View struct {
	OID          OID      `json:"oid"`
	Schema       string   `json:"schema"`
	Name         string   `json:"name"`
	Materialized bool     `json:"materialized"`
	Def          string   `json:"def"`
	Columns      []Column `json:"columns"`
	Depends      []OID    `json:"depends"` // relations its query reads
	Indexes      []Index  `json:"indexes"` // a materialized view's
}

// Function is a function ("f"), procedure ("p"), aggregate ("a") or window
// function ("w").
type Function struct {
	OID          OID        `json:"oid"`
	Schema       string     `json:"schema"`
	Name         string     `json:"name"`
	Kind         string     `json:"kind"`
	Args         string     `json:"args"`
	IdentityArgs string     `json:"identity_args"`
	Result       *string    `json:"result"`
	Language     string     `json:"language"`
	Trusted      bool       `json:"trusted"`
	Body         string     `json:"body"`
	Def          *string    `json:"def"`    // pg_get_functiondef, sql and plpgsql only
	Prefix       string     `json:"prefix"` // Def up to the "(" after the name
	Owned        bool       `json:"owned"`
	Aggregate    *Aggregate `json:"aggregate"`
}

// Aggregate is what CREATE AGGREGATE needs beyond the function's name and
// arguments.
type Aggregate struct {
	Kind        string  `json:"kind"` // n normal, o ordered-set, h hypothetical
	SFunc       string  `json:"sfunc"`
	SType       string  `json:"stype"`
	FinalFunc   *string `json:"finalfunc"`
	CombineFunc *string `json:"combinefunc"`
	InitCond    *string `json:"initcond"`
	SortOp      *string `json:"sortop"`
}

// TakeSnapshot reads the catalog in tx, with names written relative to
// searchPath (a schema name, or "" to qualify every name), and returns the
// snapshot, its JSON text and a hash of the text.
func TakeSnapshot(ctx context.Context, tx *sql.Tx, searchPath string) (Snapshot, string, string, error) {
	// pg_catalog, not named, is searched first: the query's operators and
	// functions cannot be shadowed by the user's.
	path := "pg_catalog, pg_temp"
	if searchPath != "" {
		path = database.QuoteIdent(searchPath)
	}
	if _, err := tx.ExecContext(ctx, "SET LOCAL search_path TO "+path); err != nil {
		return Snapshot{}, "", "", fmt.Errorf("snapshot the catalog: %w", err)
	}
	var text string
	err := tx.QueryRowContext(ctx, query("schema_snapshot"), searchPath).Scan(&text)
	if _, rerr := tx.ExecContext(ctx, "SET LOCAL search_path TO pg_catalog, pg_temp"); err == nil && rerr != nil {
		err = rerr
	}
	if err != nil {
		return Snapshot{}, "", "", fmt.Errorf("snapshot the catalog: %w", err)
	}
	var s Snapshot
	if err := json.Unmarshal([]byte(text), &s); err != nil {
		return Snapshot{}, "", "", fmt.Errorf("read catalog snapshot: %w", err)
	}
	sum := sha256.Sum256([]byte(text))
	return s, text, hex.EncodeToString(sum[:]), nil
}
