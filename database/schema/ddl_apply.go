package schema

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/lib/pq/pqerror"

	"github.com/pagarme/teleport/database"
)

// missingObject reports whether err says an object a statement needs does
// not exist (yet): the statement is tried again after the others.
func missingObject(err error) bool {
	switch database.SQLState(err) {
	case pqerror.UndefinedTable, pqerror.UndefinedObject, pqerror.UndefinedFunction, pqerror.InvalidSchemaName, pqerror.UndefinedColumn:
		return true
	}
	return false
}

// ReadDDL decodes and checks a DDL event's data.
func ReadDDL(data []byte) (DDL, error) {
	var d DDL
	if err := json.Unmarshal(data, &d); err != nil {
		return DDL{}, fmt.Errorf("read schema change: %w", err)
	}
	if len(d.Items) == 0 {
		return DDL{}, errors.New("read schema change: no statements")
	}
	if d.SearchPath != "" && database.ReservedSchema(d.SearchPath) {
		return DDL{}, fmt.Errorf("read schema change: schema %q is reserved", d.SearchPath)
	}
	for i, it := range d.Items {
		if strings.TrimSpace(it.SQL) == "" {
			return DDL{}, fmt.Errorf("read schema change: item %d has no statement", i)
		}
	}
	return d, nil
}

// setDDLPath points unqualified names at schema ("" for none) for the rest
// of tx, or back at pg_catalog alone.
func setDDLPath(ctx context.Context, tx *sql.Tx, schema string) error {
	path := "pg_catalog, pg_temp"
	if schema != "" {
		path = database.QuoteIdent(schema)
	}
	_, err := tx.ExecContext(ctx, "SET LOCAL search_path TO "+path)
	return err
}

// ApplyDDL runs a schema change in tx. Unqualified names resolve in (and
// objects are created in) d.SearchPath, created if missing. Function bodies
// are not checked at creation, as pg_dump does, since they may name objects
// created later in the list. A statement that fails because an object it
// needs is missing is tried again after the others, until no more succeed.
//
// An adoptable item whose object the target already has is skipped when the
// target's definition is the same and is an error naming both when not.
//
// Items a newer PostgreSQL major than the target's asks for run in the form
// the target takes (DDLItem.For); what the target then does without is
// returned, for the caller to report.
func ApplyDDL(ctx context.Context, tx *sql.Tx, d DDL) ([]Unsupported, error) {
	var p DDLPart
	done, skipped, err := ApplyDDLPart(ctx, tx, d, &p)
	if err == nil && !done {
		err = errors.New("schema change applied in part only") // cannot happen: no lock budget
	}
	return skipped, err
}

// DDLPart is where a part of a schema change applied over several
// transactions starts, and when it ends: a change too big for the lock
// table in one transaction (creating thousands of tables) is applied in
// parts, each committed with the place the next starts from.
type DDLPart struct {
	Next     int   // the first item not tried yet
	Deferred []int // items tried that wait for an object a later item makes
	// Locks, when above 0, ends the part once its transaction holds that
	// many locks: after the item that took it there.
	Locks int

	have map[string]string // the target's own definitions, read by the first part that needs them
}

// lockCheckEvery is how many items a part runs between two counts of the
// locks its transaction holds.
const lockCheckEvery = 8

// ApplyDDLPart runs d's items from p.Next on in tx, as ApplyDDL does, until
// tx holds p.Locks locks, and moves p on to where the next part starts. It
// reports whether the change is applied in full. Items deferred for want of
// an object are tried again at the end of each part, and until no more
// succeed by the part that runs the last item.
func ApplyDDLPart(ctx context.Context, tx *sql.Tx, d DDL, p *DDLPart) (bool, []Unsupported, error) {
	if d.SearchPath != "" {
		if _, err := tx.ExecContext(ctx, "CREATE SCHEMA IF NOT EXISTS "+database.QuoteIdent(d.SearchPath)); err != nil {
			return false, nil, fmt.Errorf("create schema %s: %w", database.QuoteIdent(d.SearchPath), err)
		}
	}
	if _, err := tx.ExecContext(ctx, "SET LOCAL check_function_bodies TO off"); err != nil {
		return false, nil, err
	}
	major := serverMajor(ctx, tx)
	items, skipped, err := forServer(d.Items, major)
	if err != nil {
		return false, nil, err
	}
	if p.Next > 0 {
		skipped = nil // reported by the first part
	}
	// leaveOut reports whether the target leaves out an item that failed
	// with err, and records it: only an optional item, on a target of
	// another major than the source's (older, mostly: newer syntax; newer
	// at times: an extension version it does not ship).
	leaveOut := func(it DDLItem, err error) (bool, error) {
		if !it.Optional || d.SourceMajor == 0 {
			return false, nil
		}
		m, merr := major()
		if merr != nil || m == d.SourceMajor {
			return false, merr
		}
		skipped = append(skipped, Unsupported{Object: cmp.Or(it.Object, it.Key, it.SQL),
			Reason: fmt.Sprintf("PostgreSQL %d cannot take what PostgreSQL %d wrote: %v", m, d.SourceMajor, err)})
		return true, nil
	}
	// The target's own definitions, by key, read when the first CREATE
	// comes: after the drops and renames before it (items come in phases,
	// drops first, so a later part may use what an earlier one read).
	adopted := func(it DDLItem) (bool, error) {
		if !it.Adopt || it.Key == "" {
			return false, nil
		}
		if p.have == nil {
			var err error
			if p.have, err = ownDefinitions(ctx, tx, d.SearchPath); err != nil {
				return false, err
			}
			if err := setDDLPath(ctx, tx, d.SearchPath); err != nil {
				return false, err
			}
		}
		def, ok := p.have[it.Key]
		switch {
		case !ok:
			return false, nil
		case def == it.SQL:
			return true, nil
		}
		return false, fmt.Errorf("the target already has %s, defined differently: the source has\n  %s\nthe target has\n  %s\nmake the target's definition the same as the source's (or drop it there) and the batch is applied on the next pass", it.Key, it.SQL, def)
	}
	// try runs item i. When it waits for an object a later item may make,
	// it says so and returns why.
	try := func(i int) (waits bool, err error) {
		it := items[i]
		skip, err := adopted(it)
		if err != nil || skip {
			return false, err
		}
		err = execSavepoint(ctx, tx, it.SQL)
		switch {
		case err == nil:
			return false, nil
		case missingObject(err):
			return true, err
		}
		if left, lerr := leaveOut(it, err); left || lerr != nil {
			return false, lerr
		}
		return false, fmt.Errorf("%s: %w%s", it.SQL, err, privilegeHint(it.SQL, err))
	}
	if err := setDDLPath(ctx, tx, d.SearchPath); err != nil {
		return false, nil, err
	}
	if p.Next > len(items) || slices.ContainsFunc(p.Deferred, func(i int) bool { return i < 0 || i >= p.Next }) {
		return false, nil, fmt.Errorf("schema change of %d items cannot resume at item %d (deferred %v)", len(items), p.Next, p.Deferred)
	}
	pending, errs := p.Deferred, make([]error, len(p.Deferred))
	for p.Next < len(items) {
		waits, err := try(p.Next)
		switch {
		case waits:
			pending, errs = append(pending, p.Next), append(errs, err)
		case err != nil:
			return false, nil, err
		}
		p.Next++
		if p.Locks > 0 && p.Next < len(items) && p.Next%lockCheckEvery == 0 {
			n, err := heldLocks(ctx, tx)
			if err != nil {
				return false, nil, err
			}
			if n >= p.Locks {
				break
			}
		}
	}
	last := p.Next == len(items)
	for len(pending) > 0 {
		var retry []int
		var rerrs []error
		for _, i := range pending {
			waits, err := try(i)
			switch {
			case waits:
				retry, rerrs = append(retry, i), append(rerrs, err)
			case err != nil:
				return false, nil, err
			}
		}
		progress := len(retry) < len(pending)
		pending, errs = retry, rerrs
		if !last {
			break // a later part makes more objects
		}
		if progress {
			continue
		}
		// Nothing more succeeds: what an older target may leave out goes,
		// and the rest is tried once more.
		var keep []int
		var kerrs []error
		for k, i := range pending {
			left, err := leaveOut(items[i], errs[k])
			if err != nil {
				return false, nil, err
			}
			if !left {
				keep, kerrs = append(keep, i), append(kerrs, errs[k])
			}
		}
		if len(keep) == len(pending) {
			return false, nil, fmt.Errorf("%s: %w", items[pending[0]].SQL, errs[0])
		}
		pending, errs = keep, kerrs
	}
	p.Deferred = pending
	return last && len(pending) == 0, skipped, setDDLPath(ctx, tx, "")
}

// privilegeHint says how to give the target's role what statement stmt,
// which failed with err, lacked; "" for another error.
func privilegeHint(stmt string, err error) string {
	switch {
	case database.SQLState(err) != pqerror.InsufficientPrivilege:
		return ""
	case strings.HasPrefix(stmt, "CREATE EXTENSION"):
		return " (only a superuser may create an extension that is not trusted: as one, run this statement on the target, and the batch is applied on the next pass)"
	}
	return " (grant the target's role what it lacks, and the batch is applied on the next pass: for a schema, as its owner GRANT CREATE ON SCHEMA name TO the role, " +
		"which PostgreSQL 15 and later no longer grant on public to every role; or map the schema with apply_schema)"
}

// heldLocks counts the locks the session holds.
func heldLocks(ctx context.Context, tx *sql.Tx) (int, error) {
	var n int
	err := tx.QueryRowContext(ctx, `SELECT count(*) FROM pg_catalog.pg_locks WHERE pid = pg_catalog.pg_backend_pid()`).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("count the locks held: %w", err)
	}
	return n, nil
}

// serverMajor returns a func that asks the server q talks to for its
// PostgreSQL major, once.
func serverMajor(ctx context.Context, q database.Querier) func() (int, error) {
	var major int
	var err error
	var asked bool
	return func() (int, error) {
		if !asked {
			asked = true
			err = q.QueryRowContext(ctx, `SELECT pg_catalog.current_setting('server_version_num')::int / 10000`).Scan(&major)
			if err != nil {
				err = fmt.Errorf("read the server's major version: %w", err)
			}
		}
		return major, err
	}
}

// forServer returns the items as a server of major runs them: each in the
// form its major takes, those it runs nothing for left out, and what it
// does without. It asks major only when an item depends on it.
func forServer(items []DDLItem, major func() (int, error)) ([]DDLItem, []Unsupported, error) {
	if !slices.ContainsFunc(items, func(it DDLItem) bool { return it.MinMajor > 0 }) {
		return items, nil, nil
	}
	m, err := major()
	if err != nil {
		return nil, nil, err
	}
	out := make([]DDLItem, 0, len(items))
	var skipped []Unsupported
	for _, it := range items {
		stmt := it.For(m)
		if m < it.MinMajor && it.Why != "" {
			skipped = append(skipped, Unsupported{Object: it.Object, Reason: fmt.Sprintf("%s; this target runs PostgreSQL %d", it.Why, m)})
		}
		if stmt == "" {
			continue
		}
		it.SQL = stmt
		out = append(out, it)
	}
	return out, skipped, nil
}

// ApplyEarlyDDL commits, in a transaction of its own, the items of d that
// must be committed before a batch can use them (enum labels), skipping
// those whose type the target does not have yet: the batch creates it, and
// a label added with the type can be used at once.
func ApplyEarlyDDL(ctx context.Context, db *sql.DB, d DDL) error {
	if !slices.ContainsFunc(d.Items, func(it DDLItem) bool { return it.Early }) {
		return nil
	}
	return database.InTx(ctx, db, func(tx *sql.Tx) error {
		if err := setDDLPath(ctx, tx, d.SearchPath); err != nil {
			return err
		}
		items, _, err := forServer(d.Items, serverMajor(ctx, tx)) // ApplyDDL reports what is left out
		if err != nil {
			return err
		}
		for _, it := range items {
			if !it.Early {
				continue
			}
			if err := execSavepoint(ctx, tx, it.SQL); err != nil && !missingObject(err) {
				return fmt.Errorf("%s: %w", it.SQL, err)
			}
		}
		return nil
	})
}

func execSavepoint(ctx context.Context, tx *sql.Tx, stmt string) error {
	if _, err := tx.ExecContext(ctx, "SAVEPOINT teleport_ddl"); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, stmt); err != nil {
		if _, rerr := tx.ExecContext(ctx, "ROLLBACK TO SAVEPOINT teleport_ddl"); rerr != nil {
			return rerr
		}
		return err
	}
	_, err := tx.ExecContext(ctx, "RELEASE SAVEPOINT teleport_ddl")
	return err
}

// ownDefinitions returns what Diff would create for every object the
// target has, by key, written relative to schema.
func ownDefinitions(ctx context.Context, tx *sql.Tx, schema string) (map[string]string, error) {
	own, _, _, err := TakeSnapshot(ctx, tx, schema)
	if err != nil {
		return nil, err
	}
	all := Scope{Schema: func(string) bool { return true }, Table: func(string, string) bool { return true }}
	d, _ := Diff(nil, &own, all)
	have := make(map[string]string, len(d.Items))
	for _, it := range d.Items {
		if it.Key != "" {
			have[it.Key] = it.SQL
		}
	}
	return have, nil
}

// AppliedAhead returns which schema changes of batch (source, seq), by
// their rank in the batch, were applied ahead of it.
func AppliedAhead(ctx context.Context, q database.Querier, source string, seq int64) (map[int]bool, error) {
	rows, err := q.QueryContext(ctx, query("ddl_ahead_list"), source, seq)
	if err != nil {
		return nil, fmt.Errorf("read schema changes applied ahead of batch %d: %w", seq, err)
	}
	defer rows.Close()
	ahead := map[int]bool{}
	for rows.Next() {
		var k int
		if err := rows.Scan(&k); err != nil {
			return nil, err
		}
		ahead[k] = true
	}
	return ahead, rows.Err()
}

// RecordAppliedAhead records that the k-th schema change of batch
// (source, seq) was applied ahead of it.
func RecordAppliedAhead(ctx context.Context, q database.Querier, source string, seq int64, k int) error {
	if _, err := q.ExecContext(ctx, query("ddl_ahead_insert"), source, seq, k); err != nil {
		return fmt.Errorf("record schema change %d of batch %d applied ahead: %w", k, seq, err)
	}
	return nil
}

// ForgetAppliedAhead drops the records of batch (source, seq), applied now.
func ForgetAppliedAhead(ctx context.Context, q database.Querier, source string, seq int64) error {
	if _, err := q.ExecContext(ctx, query("ddl_ahead_delete"), source, seq); err != nil {
		return fmt.Errorf("forget schema changes applied ahead of batch %d: %w", seq, err)
	}
	return nil
}

// WantsSchema reports whether an apply error may come from a schema change
// not applied yet: a missing table, column, type or function, a value the
// column's type does not take yet (a new enum label, a widened type: class
// 22) or a constraint the source has dropped or relaxed (class 23).
func WantsSchema(err error) bool {
	code := database.SQLState(err)
	if code == "" {
		return false
	}
	class := code.Class()
	return missingObject(err) || class == pqerror.ClassDataException || class == pqerror.ClassIntegrityConstraintViolation
}
