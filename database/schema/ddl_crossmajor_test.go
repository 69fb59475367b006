package schema_test

import (
	"context"
	"database/sql"
	"slices"
	"strings"
	"testing"

	"github.com/pagarme/teleport/database"
	"github.com/pagarme/teleport/database/dbtest"
	"github.com/pagarme/teleport/database/schema"
)

// newerSchema uses what PostgreSQL 18 has and older majors lack, one object
// each, beside a plain table.
var newerSchema = []string{
	`CREATE TABLE acct (id int PRIMARY KEY, email text, code text, qty int NOT NULL,
	                    twice int GENERATED ALWAYS AS (qty * 2) VIRTUAL,
	                    CONSTRAINT acct_email UNIQUE NULLS NOT DISTINCT (email),
	                    CONSTRAINT qty_positive CHECK (qty > 0) NOT ENFORCED)`,
	`ALTER TABLE acct ADD CONSTRAINT acct_code_present NOT NULL code`,
	`CREATE UNIQUE INDEX acct_code ON acct (code) NULLS NOT DISTINCT`,
	`CREATE FUNCTION add_one(a int) RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT a + 1; END`,
	`CREATE TABLE plain (id int PRIMARY KEY, v text NOT NULL)`,
	// any_value is new in 16: an older target cannot create the view.
	`CREATE VIEW any_code AS SELECT any_value(code) AS code FROM acct`,
}

// TestCrossMajor_DiffNewerFeatures diffs a PostgreSQL 18 schema and applies
// it to targets on 18, 17 and 13: the 18 target gets the same schema; older
// ones take everything they can, report each object they do without and
// why (what the diff knows to be newer, and a view the target's own error
// refuses), and keep the rows' values (a virtual column becomes a stored one).
// A later rename of a named NOT NULL constraint reaches the 18 target and
// is nothing to the older ones.
func TestCrossMajor_DiffNewerFeatures(t *testing.T) {
	src := dbtest.SharedMajor(t, 18)
	srcDB, srcName := src.NewDB(t)
	for _, q := range newerSchema {
		dbtest.Exec(t, srcDB, q)
	}
	public := schema.Scope{
		Schema: func(s string) bool { return s == "public" },
		Table:  func(s, _ string) bool { return s == "public" },
	}
	first := snapshot(t, srcDB, "")
	create, skipped := schema.Diff(nil, &first, public)
	if len(skipped) > 0 {
		t.Fatalf("the diff left out %v: a target's major decides that, not the source", skipped)
	}
	dbtest.Exec(t, srcDB, `ALTER TABLE acct RENAME CONSTRAINT acct_code_present TO code_nn`)
	second := snapshot(t, srcDB, "")
	rename, _ := schema.Diff(&first, &second, public)
	dbtest.Exec(t, srcDB, `INSERT INTO acct (id, email, code, qty) VALUES (1, NULL, 'a', 3)`)

	tests := []struct {
		major int
		want  []string // objects reported as left out
	}{
		{18, nil},
		{17, []string{`constraint "qty_positive" on "public"."acct"`, `table "public"."acct"`}},
		{13, []string{`constraint "acct_email" on "public"."acct"`, `constraint "qty_positive" on "public"."acct"`,
			`function "public"."add_one"(a integer)`, `index "public"."acct_code"`, `table "public"."acct"`, `view "public"."any_code"`}},
	}
	for _, tt := range tests {
		dst := dbtest.SharedMajor(t, tt.major)
		dstDB, dstName := dst.NewDB(t)
		got := applyReported(t, dstDB, create)
		got = append(got, applyReported(t, dstDB, rename)...)
		var objects []string
		for _, u := range got {
			objects = append(objects, u.Object)
			if !strings.Contains(u.Reason, "PostgreSQL 13") && !strings.Contains(u.Reason, "PostgreSQL 17") {
				t.Errorf("PostgreSQL %d: %s left out for %q, want a reason naming the major it needs", tt.major, u.Object, u.Reason)
			}
		}
		slices.Sort(objects)
		if !slices.Equal(objects, tt.want) {
			t.Errorf("PostgreSQL %d left out %q, want %q", tt.major, objects, tt.want)
		}
		dbtest.Exec(t, dstDB, `INSERT INTO acct (id, email, code, qty) VALUES (1, NULL, 'a', 3)`)
		var twice int
		if err := dstDB.QueryRow(`SELECT twice FROM acct`).Scan(&twice); err != nil || twice != 6 {
			t.Errorf("PostgreSQL %d: generated column = %d (%v), want 6", tt.major, twice, err)
		}
		if tt.major == 18 {
			a, b := src.DumpSchema(t, srcName, "public"), dst.DumpSchema(t, dstName, "public")
			if a != b {
				t.Errorf("PostgreSQL 18 to 18: dumps differ\n%s", lineDiff(a, b))
			}
		}
	}
}

// applyReported applies ddl in one transaction and returns what the target
// left out.
func applyReported(t *testing.T, db *sql.DB, ddl schema.DDL) []schema.Unsupported {
	t.Helper()
	ctx := context.Background()
	var skipped []schema.Unsupported
	err := database.InTx(ctx, db, func(tx *sql.Tx) error {
		var err error
		skipped, err = schema.ApplyDDL(ctx, tx, ddl)
		return err
	})
	if err != nil {
		t.Fatalf("apply DDL: %v", err)
	}
	return skipped
}
