// Package apply applies a batch's row changes on a target: grouped by table
// when it can, one by one in order when it must, with the same end state.
package apply

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/lib/pq"
	"github.com/lib/pq/pqerror"

	"github.com/pagarme/teleport/database"
	"github.com/pagarme/teleport/server/wire"
)

// ErrConflict means a change did not find what the source saw: an UPDATE or
// DELETE matched fewer rows than it changed on the source. The batch is held
// until the cause is fixed or an operator skips it. Other reasons a change
// cannot be applied (a duplicate key, a constraint, a permission) come as
// the server's errors; database.SQLState reads their code.
var ErrConflict = errors.New("conflict")

// conflictError reads as its message alone and matches ErrConflict.
type conflictError struct{ msg string }

func (e *conflictError) Error() string        { return e.msg }
func (e *conflictError) Is(target error) bool { return target == ErrConflict }

func conflictf(format string, args ...any) error {
	return &conflictError{msg: fmt.Sprintf(format, args...)}
}

// TableCache holds what ApplyEvents reads from the catalog about each table,
// across transactions: each transaction starts with Begin, and the first
// time it applies changes to a table, one query for all of them checks
// that the catalog rows read then are unchanged (see
// apply_table_versions.sql), so a table changed since, by a schema change
// applied here or by the target's own DDL, is read again. The statements
// prepared for a transaction end with it.
type TableCache struct {
	tables map[[2]string]*applyTable

	asReplica bool                 // statements may run in replica mode (see NewTableCache)
	mode      string               // session_replication_role set last in the transaction; "" when unknown
	versions  map[[2]string]string // per table this transaction checked, the version it read ("" for no table)
	stmts     map[string]*sql.Stmt // prepared in this transaction
}

// NewTableCache returns an empty cache. With asReplica
// (the role may set session_replication_role), changes to tables without
// triggers of their own are applied in replica mode, as PostgreSQL's
// logical replication applies them: without foreign key checks or actions,
// which the source ran already and whose effects come as changes of their
// own.
func NewTableCache(asReplica bool) *TableCache {
	return &TableCache{tables: map[[2]string]*applyTable{}, asReplica: asReplica,
		versions: map[[2]string]string{}, stmts: map[string]*sql.Stmt{}}
}

// Forget empties the cache, after a schema change: tables are read and
// statements prepared again.
func (c *TableCache) Forget() {
	for _, st := range c.stmts {
		_ = st.Close() // a statement of a changed table may no longer be valid; closing only frees it
	}
	clear(c.stmts)
	clear(c.tables)
	clear(c.versions)
}

// check makes sure the entries of the tables events change are current in
// tx: it reads the versions of those not checked yet in one query and
// drops the entries whose version changed.
func (c *TableCache) check(ctx context.Context, tx *sql.Tx, events []wire.Event) error {
	var keys [][2]string
	var names []string
	for _, e := range events {
		k := [2]string{e.Schema, e.Table}
		if _, checked := c.versions[k]; !checked && !slices.Contains(keys, k) {
			keys = append(keys, k)
			names = append(names, database.QuoteQualified(e.Schema, e.Table))
		}
	}
	if len(keys) == 0 {
		return nil
	}
	rows, err := tx.QueryContext(ctx, query("apply_table_versions"), pq.Array(names))
	if err != nil {
		return fmt.Errorf("read table versions: %w", err)
	}
	defer rows.Close()
	byName := map[string]string{}
	for rows.Next() {
		var name, version string
		if err := rows.Scan(&name, &version); err != nil {
			return fmt.Errorf("read table versions: %w", err)
		}
		byName[name] = version
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read table versions: %w", err)
	}
	for i, k := range keys {
		v := byName[names[i]] // "" for no table: its lookup fails as it should
		if t := c.tables[k]; t != nil && (v == "" || t.version != v) {
			delete(c.tables, k)
		}
		c.versions[k] = v
	}
	return nil
}

type applyTable struct {
	name        string // quoted schema.table
	version     string // see apply_table_versions.sql; read before the columns
	partitioned bool
	fkActions   bool                 // a foreign key of it cascades, sets null or sets default
	triggers    bool                 // it or a partition has a trigger replica mode would change (see apply_table_columns.sql)
	cols        []applyColumn        // in attnum order
	stmts       map[string]*sql.Stmt // the cache's, of the transaction
}

type applyColumn struct {
	name           string
	generated      bool // GENERATED ALWAYS AS (...) STORED: never written
	identityAlways bool // GENERATED ALWAYS AS IDENTITY: insertable with OVERRIDING SYSTEM VALUE, never updatable
	primaryKey     bool
}

func (c *TableCache) table(ctx context.Context, tx *sql.Tx, schema, name string) (*applyTable, error) {
	key := [2]string{schema, name}
	if t, ok := c.tables[key]; ok {
		return t, nil
	}
	t := &applyTable{name: database.QuoteQualified(schema, name), version: c.versions[key], stmts: c.stmts}
	rows, err := tx.QueryContext(ctx, query("apply_table_columns"), t.name)
	if err != nil {
		return nil, fmt.Errorf("read columns: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var kind string
		var col applyColumn
		if err := rows.Scan(&kind, &col.name, &col.generated, &col.identityAlways, &col.primaryKey, &t.fkActions, &t.triggers); err != nil {
			return nil, fmt.Errorf("read columns: %w", err)
		}
		if kind != "r" && kind != "p" {
			return nil, fmt.Errorf("%s is not a table (relkind %s)", t.name, kind)
		}
		t.partitioned = kind == "p"
		t.cols = append(t.cols, col)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read columns: %w", err)
	}
	if t.version != "" { // read by this transaction's check, before the columns: a change since shows next time
		c.tables[key] = t
	}
	return t, nil
}

// ApplyEvents applies events, in order, in tx. Each event's rows go through
// json_populate_recordset, so values keep every digit and byte the source
// produced; identifiers are quoted and data is bound as a parameter, never
// pasted into SQL. Runs of truncates become one TRUNCATE, so tables linked
// by foreign keys are truncated together.
//
// With a primary key (all its columns present in the event), updates and
// deletes are set-based, matching the old key; an update may change the key.
// Without one, they go one row at a time, each matching one row equal to the
// whole old row as text, as REPLICA IDENTITY FULL does. Generated columns
// are never written; identity columns GENERATED ALWAYS are inserted with
// OVERRIDING SYSTEM VALUE but cannot be updated to a value, so an update
// that changes one fails rather than diverge silently.
//
// An update or delete that finds fewer rows than the source changed is
// ErrConflict. A column the event has and the table lacks fails with
// SQLSTATE 42703, a missing table with 42P01 (through errors.As), so the
// caller can tell a schema not yet there from a conflict.
func ApplyEvents(ctx context.Context, tx *sql.Tx, cache *TableCache, events []wire.Event) error {
	if err := cache.check(ctx, tx, events); err != nil {
		return err
	}
	for i := 0; i < len(events); i++ {
		if events[i].Op != wire.OpTruncate {
			if err := applyEvent(ctx, tx, cache, events[i]); err != nil {
				return err
			}
			continue
		}
		j := i + 1
		for j < len(events) && events[j].Op == wire.OpTruncate {
			j++
		}
		if err := truncate(ctx, tx, cache, events[i:j]); err != nil {
			return err
		}
		i = j - 1
	}
	return nil
}

func truncate(ctx context.Context, tx *sql.Tx, cache *TableCache, events []wire.Event) error {
	var names []string
	var tables []*applyTable
	seen := map[[2]string]bool{}
	for _, e := range events {
		key := [2]string{e.Schema, e.Table}
		if seen[key] {
			continue
		}
		seen[key] = true
		t, err := lookupTable(ctx, tx, cache, e)
		if err != nil {
			return fmt.Errorf("truncate %s: %w", database.QuoteQualified(e.Schema, e.Table), err)
		}
		tables = append(tables, t)
		// ONLY, as the source's trigger fired for this table alone; a
		// partitioned table cannot be truncated ONLY, and its partitions
		// are truncated on the source too.
		if t.partitioned {
			names = append(names, t.name)
		} else {
			names = append(names, "ONLY "+t.name)
		}
	}
	stmt := "TRUNCATE " + strings.Join(names, ", ")
	if err := cache.useMode(ctx, tx, tables...); err != nil {
		return fmt.Errorf("truncate %s: %w", strings.Join(names, ", "), err)
	}
	if _, err := tx.ExecContext(ctx, stmt); err != nil {
		return fmt.Errorf("truncate %s: %w", strings.Join(names, ", "), err)
	}
	return nil
}

func lookupTable(ctx context.Context, tx *sql.Tx, cache *TableCache, e wire.Event) (*applyTable, error) {
	if database.ReservedSchema(e.Schema) {
		return nil, fmt.Errorf("schema %s is reserved", database.QuoteIdent(e.Schema))
	}
	return cache.table(ctx, tx, e.Schema, e.Table)
}

func applyEvent(ctx context.Context, tx *sql.Tx, cache *TableCache, e wire.Event) error {
	var what string
	switch e.Op {
	case wire.OpInsert:
		what = "insert into " + database.QuoteQualified(e.Schema, e.Table)
	case wire.OpUpdate:
		what = "update " + database.QuoteQualified(e.Schema, e.Table)
	case wire.OpDelete:
		what = "delete from " + database.QuoteQualified(e.Schema, e.Table)
	default:
		return fmt.Errorf("event %d on %s: unknown op %q", e.ID, database.QuoteQualified(e.Schema, e.Table), e.Op)
	}
	t, err := lookupTable(ctx, tx, cache, e)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	keys, err := firstRowKeys(e.Op, e.Data)
	if err != nil {
		return fmt.Errorf("%s: event %d: %w", what, e.ID, err)
	}
	cols, err := t.columnsFor(keys)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if err := cache.useMode(ctx, tx, t); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	switch e.Op {
	case wire.OpInsert:
		err = insertRows(ctx, tx, t, cols, e)
	case wire.OpUpdate:
		err = updateRows(ctx, tx, t, cols, e)
	case wire.OpDelete:
		err = deleteRows(ctx, tx, t, cols, e)
	}
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return nil
}

// columnsFor returns the table's writable columns the event's rows carry, in
// table order. A key the table has no column for means its schema is behind
// the source's: 42703, as PostgreSQL would say, rather than a value dropped.
func (t *applyTable) columnsFor(keys []string) ([]applyColumn, error) {
	has := make(map[string]bool, len(keys))
	for _, k := range keys {
		has[k] = true
	}
	var cols []applyColumn
	for _, c := range t.cols {
		if has[c.name] {
			delete(has, c.name)
			if !c.generated {
				cols = append(cols, c)
			}
		}
	}
	for _, k := range keys {
		if has[k] {
			return nil, &pq.Error{
				Severity: "ERROR",
				Code:     pqerror.UndefinedColumn,
				Message:  fmt.Sprintf("column %s of relation %s does not exist", database.QuoteIdent(k), t.name),
			}
		}
	}
	if len(cols) == 0 {
		return nil, errors.New("no writable column in the event")
	}
	return cols, nil
}

// firstRowKeys returns the column names of the event's first row: every row
// of one event has the same (row_to_json of one table).
func firstRowKeys(op wire.Op, data json.RawMessage) ([]string, error) {
	row, err := firstRow(op, data)
	if err != nil {
		return nil, err
	}
	var keys []string
	if err := wire.ObjectMembers(row, func(name, _ []byte) { keys = append(keys, string(name)) }); err != nil {
		return nil, fmt.Errorf("read data: %w", err)
	}
	return keys, nil
}

// sameKeys reports whether the event's rows have the column names keys,
// in that order, as firstRowKeys would return them.
func sameKeys(op wire.Op, data json.RawMessage, keys []string) (bool, error) {
	row, err := firstRow(op, data)
	if err != nil {
		return false, err
	}
	n, same := 0, true
	err = wire.ObjectMembers(row, func(name, _ []byte) {
		same = same && n < len(keys) && string(name) == keys[n]
		n++
	})
	if err != nil {
		return false, fmt.Errorf("read data: %w", err)
	}
	return same && n == len(keys), nil
}

// firstRow returns the event's first row (an update's first old row).
func firstRow(op wire.Op, data json.RawMessage) ([]byte, error) {
	var row []byte
	var err error
	if op == wire.OpUpdate {
		err = wire.UpdatePairs(data, func(old, _ []byte) bool { row = old; return false })
		if err == nil && row == nil {
			err = errors.New("JSON: empty array")
		}
	} else {
		row, err = wire.FirstElem(data)
	}
	if err != nil {
		return nil, fmt.Errorf("read data: %w", err)
	}
	return row, nil
}

func insertRows(ctx context.Context, tx *sql.Tx, t *applyTable, cols []applyColumn, e wire.Event) error {
	list := colList("", cols)
	stmt := "INSERT INTO " + t.name + " (" + list + ") OVERRIDING SYSTEM VALUE SELECT " + colList("r.", cols) +
		" FROM pg_catalog.json_populate_recordset(NULL::" + t.name + ", $1::json) r"
	n, err := execCount(ctx, tx, t, stmt, string(e.Data))
	if err != nil {
		return err
	}
	if n != int64(e.Rows) {
		return conflictf("%d rows inserted, the source inserted %d", n, e.Rows)
	}
	return nil
}

func updateRows(ctx context.Context, tx *sql.Tx, t *applyTable, cols []applyColumn, e wire.Event) error {
	var set, ident []applyColumn
	for _, c := range cols {
		if c.identityAlways {
			ident = append(ident, c)
		} else {
			set = append(set, c)
		}
	}
	if len(ident) > 0 {
		var conds []string
		for _, c := range ident {
			k := pq.QuoteLiteral(c.name)
			conds = append(conds, "(e->0->>"+k+") IS DISTINCT FROM (e->1->>"+k+")")
		}
		var changed int64
		check := "SELECT count(*) FROM pg_catalog.json_array_elements($1::json) e WHERE " + strings.Join(conds, " OR ")
		if err := tx.QueryRowContext(ctx, check, string(e.Data)).Scan(&changed); err != nil {
			return err
		}
		if changed > 0 {
			return fmt.Errorf("%d rows change a column GENERATED ALWAYS AS IDENTITY, which can only be updated to DEFAULT: make it GENERATED BY DEFAULT on this target", changed)
		}
	}
	if len(set) == 0 {
		return errors.New("no updatable column in the event")
	}
	pk, ok := t.keyIn(cols)
	if !ok {
		return updateEach(ctx, tx, t, cols, set, e)
	}
	var match []string
	for _, c := range pk {
		q := database.QuoteIdent(c.name)
		match = append(match, "t."+q+" = o."+q)
	}
	// The old and new rows go as two arrays, each parsed once by
	// json_populate_recordset and paired by position. A table with a column
	// named ordinality would make the pairing column ambiguous: its pairs
	// are parsed one by one, each a record function in FROM, evaluated once
	// per pair (as (record).column in a select list, once per column).
	head := "UPDATE " + t.name + " t SET (" + colList("", set) + ") = ROW(" + colList("n.", set) + ")"
	where := " WHERE " + strings.Join(match, " AND ")
	var stmt string
	var args []any
	if t.column("ordinality") {
		stmt = head + " FROM pg_catalog.json_array_elements($1::json) e," +
			" pg_catalog.json_populate_record(NULL::" + t.name + ", e->0) o," +
			" pg_catalog.json_populate_record(NULL::" + t.name + ", e->1) n" + where
		args = []any{string(e.Data)}
	} else {
		olds, news, err := splitPairs(e.Data)
		if err != nil {
			return fmt.Errorf("event %d: read data: %w", e.ID, err)
		}
		stmt = head + " FROM ROWS FROM (pg_catalog.json_populate_recordset(NULL::" + t.name + ", $1::json)) WITH ORDINALITY o" +
			" JOIN ROWS FROM (pg_catalog.json_populate_recordset(NULL::" + t.name + ", $2::json)) WITH ORDINALITY n" +
			" ON n.ordinality = o.ordinality" + where
		args = []any{olds, news}
	}
	n, err := execCount(ctx, tx, t, stmt, args...)
	if err != nil {
		return err
	}
	return checkFound(n, t, e)
}

// updateEach updates one row per old/new pair, each matching one row equal
// to the old row as text, so of two identical rows only one changes.
func updateEach(ctx context.Context, tx *sql.Tx, t *applyTable, cols, set []applyColumn, e wire.Event) error {
	var pairs [][2]json.RawMessage
	if err := json.Unmarshal(e.Data, &pairs); err != nil {
		return fmt.Errorf("event %d: read data: %w", e.ID, err)
	}
	stmt := "UPDATE " + t.name + " t SET (" + colList("", set) + ") = ROW(" + colList("n.", set) + ")" +
		" FROM pg_catalog.json_populate_record(NULL::" + t.name + ", $2::json) n" +
		" WHERE (t.tableoid, t.ctid) = (" + findRow(t, cols) + ")"
	found := int64(0)
	for _, p := range pairs {
		n, err := execCount(ctx, tx, t, stmt, string(p[0]), string(p[1]))
		if err != nil {
			return err
		}
		found += n
	}
	return checkFound(found, t, e)
}

func deleteRows(ctx context.Context, tx *sql.Tx, t *applyTable, cols []applyColumn, e wire.Event) error {
	pk, ok := t.keyIn(cols)
	if !ok {
		return deleteEach(ctx, tx, t, cols, e)
	}
	var match []string
	for _, c := range pk {
		q := database.QuoteIdent(c.name)
		match = append(match, "t."+q+" = o."+q)
	}
	stmt := "DELETE FROM " + t.name + " t USING pg_catalog.json_populate_recordset(NULL::" + t.name + ", $1::json) o" +
		" WHERE " + strings.Join(match, " AND ")
	n, err := execCount(ctx, tx, t, stmt, string(e.Data))
	if err != nil {
		return err
	}
	return checkFound(n, t, e)
}

// deleteEach deletes one row per old row, as updateEach updates.
func deleteEach(ctx context.Context, tx *sql.Tx, t *applyTable, cols []applyColumn, e wire.Event) error {
	var olds []json.RawMessage
	if err := json.Unmarshal(e.Data, &olds); err != nil {
		return fmt.Errorf("event %d: read data: %w", e.ID, err)
	}
	stmt := "DELETE FROM " + t.name + " t WHERE (t.tableoid, t.ctid) = (" + findRow(t, cols) + ")"
	found := int64(0)
	for _, o := range olds {
		n, err := execCount(ctx, tx, t, stmt, string(o))
		if err != nil {
			return err
		}
		found += n
	}
	return checkFound(found, t, e)
}

// findRow selects the (tableoid, ctid) of one row of t equal to the row $1
// in cols, compared as text: every type has a text form, not every type has
// equality (json, point), and NULL compares equal to NULL. The tableoid
// keeps a partitioned table's rows apart, whose ctids repeat across partitions.
func findRow(t *applyTable, cols []applyColumn) string {
	return "SELECT s.tableoid, s.ctid FROM " + t.name + " s," +
		" pg_catalog.json_populate_record(NULL::" + t.name + ", $1::json) o" +
		" WHERE ROW(" + colList("s.", cols) + ")::text = ROW(" + colList("o.", cols) + ")::text LIMIT 1"
}

// column reports whether t has a column called name.
func (t *applyTable) column(name string) bool {
	return slices.ContainsFunc(t.cols, func(c applyColumn) bool { return c.name == name })
}

// splitPairs turns an update's [[old, new], ...] into the JSON arrays of
// its old rows and of its new rows, in the same order.
func splitPairs(data []byte) (olds, news string, err error) {
	var o, n strings.Builder
	o.Grow(len(data) / 2)
	n.Grow(len(data) / 2)
	o.WriteByte('[')
	n.WriteByte('[')
	err = wire.UpdatePairs(data, func(old, new []byte) bool {
		if o.Len() > 1 {
			o.WriteByte(',')
			n.WriteByte(',')
		}
		o.Write(old)
		n.Write(new)
		return true
	})
	if err != nil {
		return "", "", err
	}
	o.WriteByte(']')
	n.WriteByte(']')
	return o.String(), n.String(), nil
}

// keyIn returns the primary key's columns when the table has one and the
// event carries all of them.
func (t *applyTable) keyIn(cols []applyColumn) ([]applyColumn, bool) {
	have := make(map[string]bool, len(cols))
	for _, c := range cols {
		have[c.name] = true
	}
	var pk []applyColumn
	for _, c := range t.cols {
		if c.primaryKey {
			if !have[c.name] {
				return nil, false
			}
			pk = append(pk, c)
		}
	}
	return pk, len(pk) > 0
}

// checkFound compares the rows an UPDATE or DELETE matched with the rows the
// source changed. Fewer is a conflict, except on a table whose foreign keys
// have ON DELETE or ON UPDATE actions: the source records the rows such an
// action changed after the statement that caused it, and by then the
// target's own foreign key has already made the same change.
func checkFound(n int64, t *applyTable, e wire.Event) error {
	rows := e.Rows
	if n < int64(rows) && !t.fkActions {
		return conflictf("%d of %d rows not found", int64(rows)-n, rows)
	}
	if n > int64(rows) {
		return conflictf("%d rows matched, the source changed %d", n, rows)
	}
	return nil
}

// execCount runs stmt, prepared once per transaction: a batch applies the
// same few statements many times, and a prepared statement is parsed and
// planned once. The statements end with tx.
func execCount(ctx context.Context, tx *sql.Tx, t *applyTable, stmt string, args ...any) (int64, error) {
	ps, ok := t.stmts[stmt]
	if !ok {
		var err error
		if ps, err = tx.PrepareContext(ctx, stmt); err != nil {
			return 0, err
		}
		t.stmts[stmt] = ps
	}
	res, err := ps.ExecContext(ctx, args...)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

func colList(prefix string, cols []applyColumn) string {
	var b strings.Builder
	for i, c := range cols {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(prefix)
		b.WriteString(database.QuoteIdent(c.name))
	}
	return b.String()
}
