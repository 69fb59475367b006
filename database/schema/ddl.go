package schema

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/lib/pq"

	"github.com/pagarme/teleport/database"
)

// DDL is the schema change one snapshot makes to the one before, for one
// target: statements in dependency order, run on the target with
// search_path set to SearchPath mapped through the target's apply_schema.
type DDL struct {
	SearchPath string    `json:"search_path"`
	Items      []DDLItem `json:"items"`
	// SourceMajor is the source's PostgreSQL major (0 when not known): a
	// target on another one leaves out the Optional items it cannot take.
	SourceMajor int `json:"source_major,omitempty"`
}

// DDLItem is one statement of a DDL change.
type DDLItem struct {
	// Key names the object a CREATE makes ("table orders"): a target that
	// already has an object under that key adopts it when its definition is
	// the same, and reports both when it is not.
	Key   string `json:"key,omitempty"`
	SQL   string `json:"sql"`
	Adopt bool   `json:"adopt,omitempty"` // a CREATE: the target may have the object already
	// Early items (enum labels added to an existing type) are committed on
	// the target before the batch that carries them: a label added in a
	// transaction cannot be used until it commits.
	Early bool `json:"early,omitempty"`
	// MinMajor, when set, is the oldest PostgreSQL major that takes SQL: a
	// target on an older major runs Older instead, or nothing when Older is
	// "". Why, when set, says what such a target does without, and the
	// target reports it under Object in its /status (schema_skipped).
	MinMajor int    `json:"min_major,omitempty"`
	Older    string `json:"older,omitempty"`
	Why      string `json:"why,omitempty"`
	Object   string `json:"object,omitempty"`
	// Optional items make objects no row change needs (functions, views,
	// indexes, constraints, triggers, extension versions): a target on
	// another major than the source's that cannot take one leaves it out
	// and reports it.
	Optional bool `json:"optional,omitempty"`
}

// optionalPhases make objects no row change needs.
var optionalPhases = map[int]bool{phaseExtensions: true, phaseFunctions: true, phaseAggregates: true, phaseViews: true,
	phaseIndexes: true, phaseConstraints: true, phaseForeignKeys: true, phaseTriggers: true}

// For returns the statement a target on PostgreSQL major runs for the
// item, "" for none.
func (it DDLItem) For(major int) string {
	if major < it.MinMajor {
		return it.Older
	}
	return it.SQL
}

// Unsupported is an object the diff leaves out, and why.
type Unsupported struct {
	Object string
	Reason string
}

// Scope says which objects of a snapshot a target takes: schema-level
// objects (types, functions, extensions) of the schemas Schema accepts, and
// the tables, views and sequences Table accepts.
type Scope struct {
	Schema func(schema string) bool
	Table  func(schema, name string) bool
}

// Diff returns the DDL that turns a target that has old into one that has
// cur, for the objects scope takes. A nil old means the target was sent
// nothing yet: every object is created. Every CREATE is adoptable: a target
// that has the object already, defined the same, keeps it (a user may have
// restored a schema-only dump there). Objects are matched by oid and
// columns by number, so renames come out as ALTER ... RENAME.
func Diff(old *Snapshot, cur *Snapshot, scope Scope) (DDL, []Unsupported) {
	d := differ{cur: cur, scope: scope}
	d.prev = &Snapshot{SearchPath: cur.SearchPath}
	if old != nil {
		d.prev = old
	}
	d.index()
	d.schemas()
	d.extensions()
	d.types()
	d.sequences()
	d.functions()
	d.tables()
	d.views()
	var items []DDLItem
	for _, p := range d.phases {
		items = append(items, p...)
	}
	return DDL{SearchPath: cur.SearchPath, Items: items, SourceMajor: cur.Major}, d.unsupported
}

// The phases of a diff, run in this order.
const (
	phaseDropTriggers = iota
	phaseDropViews
	phaseDropConstraints
	phaseDropIndexes
	phaseDetach
	phaseDropColumns
	phaseDropTables
	phaseDropSequences
	phaseDropFunctions
	phaseDropTypes
	phaseEnumLabels // before renames: labels are placed by their neighbours' old names
	phaseRenames
	phaseCreateSchemas
	phaseExtensions
	phaseTypes
	phaseSequences
	phaseFunctions
	phaseTables
	phaseColumns
	phaseConstraints
	phaseIndexes
	phaseForeignKeys
	phaseOwnedBy
	phaseAggregates
	phaseViews
	phaseTriggers
	phaseSetval
	phaseDropSchemas
	phaseCount
)

type differ struct {
	prev, cur   *Snapshot
	scope       Scope
	phases      [phaseCount][]DDLItem
	unsupported []Unsupported

	prevTables, curTables map[OID]*Relation
	prevViews, curViews   map[OID]*View
	changedTables         map[OID]bool // a column dropped or retyped: views on it are rebuilt
}

func (d *differ) add(phase int, key, sql string) {
	d.phases[phase] = append(d.phases[phase], DDLItem{Key: key, SQL: sql, Adopt: key != "", Optional: optionalPhases[phase]})
}

// addNewer adds a statement only PostgreSQL minMajor and later take (0:
// every major): an older target runs older instead ("" for nothing) and,
// when why is set, reports object as left out for that reason.
func (d *differ) addNewer(phase int, key, sql string, minMajor int, older, object, why string) {
	if minMajor == 0 {
		d.add(phase, key, sql)
		return
	}
	d.phases[phase] = append(d.phases[phase], DDLItem{Key: key, SQL: sql, Adopt: key != "", Optional: optionalPhases[phase],
		MinMajor: minMajor, Older: older, Object: object, Why: why})
}

// newerSyntax returns the oldest major that takes a constraint or index
// definition (pg_get_constraintdef, pg_get_indexdef) and what an older one
// lacks, or 0 when every supported major takes it.
func newerSyntax(def string) (int, string) {
	switch {
	case strings.Contains(def, " WITHOUT OVERLAPS") || strings.Contains(def, "PERIOD "):
		return 18, "temporal keys (WITHOUT OVERLAPS, PERIOD) need PostgreSQL 18"
	case strings.Contains(def, " NOT ENFORCED"):
		return 18, "NOT ENFORCED constraints need PostgreSQL 18"
	case strings.Contains(def, " NULLS NOT DISTINCT"):
		return 15, "NULLS NOT DISTINCT needs PostgreSQL 15"
	}
	return 0, ""
}

func (d *differ) skip(object, reason string) {
	d.unsupported = append(d.unsupported, Unsupported{Object: object, Reason: reason})
}

// name is schema.name as the DDL writes it: unqualified in the search path.
func (d *differ) name(schema, name string) string {
	if schema == d.cur.SearchPath {
		return database.QuoteIdent(name)
	}
	return database.QuoteQualified(schema, name)
}

func (d *differ) index() {
	d.prevTables, d.curTables = map[OID]*Relation{}, map[OID]*Relation{}
	for i := range d.prev.Tables {
		d.prevTables[d.prev.Tables[i].OID] = &d.prev.Tables[i]
	}
	for i := range d.cur.Tables {
		d.curTables[d.cur.Tables[i].OID] = &d.cur.Tables[i]
	}
	d.prevViews, d.curViews = map[OID]*View{}, map[OID]*View{}
	for i := range d.prev.Views {
		d.prevViews[d.prev.Views[i].OID] = &d.prev.Views[i]
	}
	for i := range d.cur.Views {
		d.curViews[d.cur.Views[i].OID] = &d.cur.Views[i]
	}
	d.changedTables = map[OID]bool{}
}

// byOID pairs the objects of two lists by oid: fn gets (old, new), either
// nil when the object is only in one. Pairs come in new's order, then the
// dropped ones in old's order.
func byOID[T any](prev, cur []T, oid func(*T) OID, keep func(*T) bool, fn func(o, n *T)) {
	old := map[OID]*T{}
	for i := range prev {
		if keep(&prev[i]) {
			old[oid(&prev[i])] = &prev[i]
		}
	}
	seen := map[OID]bool{}
	for i := range cur {
		if !keep(&cur[i]) {
			continue
		}
		id := oid(&cur[i])
		seen[id] = true
		fn(old[id], &cur[i])
	}
	for i := range prev {
		if keep(&prev[i]) && !seen[oid(&prev[i])] {
			fn(&prev[i], nil)
		}
	}
}

func (d *differ) schemas() {
	byOID(d.prev.Schemas, d.cur.Schemas, func(s *Schema) OID { return s.OID },
		func(s *Schema) bool { return d.scope.Schema(s.Name) }, func(o, n *Schema) {
			switch {
			case o == nil:
				if n.Name == d.cur.SearchPath {
					// The target's apply schema: the applier creates it.
					return
				}
				d.add(phaseCreateSchemas, "schema "+database.QuoteIdent(n.Name), "CREATE SCHEMA "+database.QuoteIdent(n.Name))
			case n == nil:
				d.add(phaseDropSchemas, "", "DROP SCHEMA "+database.QuoteIdent(o.Name))
			case o.Name != n.Name:
				d.add(phaseRenames, "", fmt.Sprintf("ALTER SCHEMA %s RENAME TO %s", database.QuoteIdent(o.Name), database.QuoteIdent(n.Name)))
			}
		})
}

func (d *differ) extensions() {
	byOID(d.prev.Extensions, d.cur.Extensions, func(e *Extension) OID { return e.OID },
		func(e *Extension) bool { return d.scope.Schema(e.Schema) }, func(o, n *Extension) {
			switch {
			case o == nil:
				schema := ""
				if n.Schema != d.cur.SearchPath {
					schema = " SCHEMA " + database.QuoteIdent(n.Schema)
				}
				d.add(phaseExtensions, "", fmt.Sprintf("CREATE EXTENSION IF NOT EXISTS %s%s", database.QuoteIdent(n.Name), schema))
			case n == nil:
				d.add(phaseDropTypes, "", "DROP EXTENSION IF EXISTS "+database.QuoteIdent(o.Name))
			case o.Version != n.Version:
				d.add(phaseExtensions, "", fmt.Sprintf("ALTER EXTENSION %s UPDATE TO %s", database.QuoteIdent(n.Name), pq.QuoteLiteral(n.Version)))
			}
		})
}

func (d *differ) types() {
	byOID(d.prev.Types, d.cur.Types, func(t *Type) OID { return t.OID },
		func(t *Type) bool { return d.scope.Schema(t.Schema) }, func(o, n *Type) {
			switch {
			case n == nil:
				d.add(phaseDropTypes, "", map[string]string{"d": "DROP DOMAIN ", "e": "DROP TYPE ", "c": "DROP TYPE "}[o.Kind]+d.name(o.Schema, o.Name))
				return
			case o == nil:
				// Whatever its owner: a captured table may use it, and
				// creating it on the target needs nothing on the source.
				d.createType(n)
				return
			}
			name := d.name(n.Schema, n.Name)
			if o.Name != n.Name || o.Schema != n.Schema {
				d.renameObject(phaseRenames, map[string]string{"d": "DOMAIN", "e": "TYPE", "c": "TYPE"}[n.Kind], o.Schema, o.Name, n.Schema, n.Name)
			}
			switch n.Kind {
			case "e":
				d.alterEnum(name, d.name(o.Schema, o.Name), o, n)
			case "c":
				d.alterComposite(name, o, n)
			case "d":
				d.alterDomain(name, o, n)
			}
		})
}

// renameObject renames and moves an object: kind is the word ALTER takes.
func (d *differ) renameObject(phase int, kind, oldSchema, oldName, newSchema, newName string) {
	cur := d.name(oldSchema, oldName)
	if oldName != newName {
		d.add(phase, "", fmt.Sprintf("ALTER %s %s RENAME TO %s", kind, cur, database.QuoteIdent(newName)))
		cur = d.name(oldSchema, newName)
	}
	if oldSchema != newSchema {
		d.add(phase, "", fmt.Sprintf("ALTER %s %s SET SCHEMA %s", kind, cur, database.QuoteIdent(newSchema)))
	}
}

func (d *differ) createType(t *Type) {
	name := d.name(t.Schema, t.Name)
	key := "type " + name
	switch t.Kind {
	case "e":
		labels := make([]string, len(t.Labels))
		for i, l := range t.Labels {
			labels[i] = pq.QuoteLiteral(l.Label)
		}
		d.add(phaseTypes, key, fmt.Sprintf("CREATE TYPE %s AS ENUM (%s)", name, strings.Join(labels, ", ")))
	case "c":
		attrs := make([]string, len(t.Attrs))
		for i, a := range t.Attrs {
			attrs[i] = database.QuoteIdent(a.Name) + " " + a.Type
		}
		d.add(phaseTypes, key, fmt.Sprintf("CREATE TYPE %s AS (%s)", name, strings.Join(attrs, ", ")))
	case "d":
		var b strings.Builder
		fmt.Fprintf(&b, "CREATE DOMAIN %s AS %s", name, t.Base)
		if t.Default != nil {
			b.WriteString(" DEFAULT " + *t.Default)
		}
		if t.NotNull {
			b.WriteString(" NOT NULL")
		}
		for _, c := range t.Checks {
			fmt.Fprintf(&b, " CONSTRAINT %s %s", database.QuoteIdent(c.Name), c.Def)
		}
		d.add(phaseTypes, key, b.String())
	}
}

// alterEnum adds new labels where the new order puts them, and renames
// labels. Labels are added first, under the type's old name and next to
// their neighbours' old names, so the statement reads the same whether the
// applier commits it ahead of the batch or runs it in the batch.
func (d *differ) alterEnum(name, oldName string, o, n *Type) {
	old := map[OID]string{}
	for _, l := range o.Labels {
		old[l.OID] = l.Label
	}
	label := func(l EnumLabel) string {
		if was, ok := old[l.OID]; ok {
			return was
		}
		return l.Label
	}
	for i, l := range n.Labels {
		prev, ok := old[l.OID]
		switch {
		case ok && prev != l.Label:
			d.add(phaseRenames, "", fmt.Sprintf("ALTER TYPE %s RENAME VALUE %s TO %s", name, pq.QuoteLiteral(prev), pq.QuoteLiteral(l.Label)))
		case !ok:
			where := ""
			if i+1 < len(n.Labels) {
				where = " BEFORE " + pq.QuoteLiteral(label(n.Labels[i+1]))
			} else if i > 0 {
				where = " AFTER " + pq.QuoteLiteral(label(n.Labels[i-1]))
			}
			d.phases[phaseEnumLabels] = append(d.phases[phaseEnumLabels], DDLItem{
				SQL:   fmt.Sprintf("ALTER TYPE %s ADD VALUE IF NOT EXISTS %s%s", oldName, pq.QuoteLiteral(l.Label), where),
				Early: true,
			})
		}
	}
	seen := map[OID]bool{}
	for _, l := range n.Labels {
		seen[l.OID] = true
	}
	for _, l := range o.Labels {
		if !seen[l.OID] {
			d.skip("enum "+name+" label "+pq.QuoteLiteral(l.Label), "PostgreSQL cannot drop an enum label; the target keeps it")
		}
	}
}

func (d *differ) alterComposite(name string, o, n *Type) {
	old := map[int16]*Column{}
	for i := range o.Attrs {
		old[o.Attrs[i].Num] = &o.Attrs[i]
	}
	for _, a := range n.Attrs {
		p, ok := old[a.Num]
		delete(old, a.Num)
		if !ok {
			d.add(phaseTypes, "", fmt.Sprintf("ALTER TYPE %s ADD ATTRIBUTE %s %s", name, database.QuoteIdent(a.Name), a.Type))
			continue
		}
		if p.Name != a.Name {
			d.add(phaseRenames, "", fmt.Sprintf("ALTER TYPE %s RENAME ATTRIBUTE %s TO %s", name, database.QuoteIdent(p.Name), database.QuoteIdent(a.Name)))
		}
		if p.Type != a.Type {
			d.add(phaseTypes, "", fmt.Sprintf("ALTER TYPE %s ALTER ATTRIBUTE %s TYPE %s", name, database.QuoteIdent(a.Name), a.Type))
		}
	}
	for _, num := range slices.Sorted(maps.Keys(old)) {
		d.add(phaseDropTypes, "", fmt.Sprintf("ALTER TYPE %s DROP ATTRIBUTE %s", d.name(o.Schema, o.Name), database.QuoteIdent(old[num].Name)))
	}
}

func (d *differ) alterDomain(name string, o, n *Type) {
	if o.Base != n.Base {
		d.skip("domain "+name, fmt.Sprintf("its base type changed from %s to %s, which ALTER DOMAIN cannot do", o.Base, n.Base))
	}
	if !eqPtr(o.Default, n.Default) {
		if n.Default == nil {
			d.add(phaseTypes, "", fmt.Sprintf("ALTER DOMAIN %s DROP DEFAULT", name))
		} else {
			d.add(phaseTypes, "", fmt.Sprintf("ALTER DOMAIN %s SET DEFAULT %s", name, *n.Default))
		}
	}
	if o.NotNull != n.NotNull {
		d.add(phaseTypes, "", fmt.Sprintf("ALTER DOMAIN %s %s NOT NULL", name, map[bool]string{true: "SET", false: "DROP"}[n.NotNull]))
	}
	byOID(o.Checks, n.Checks, func(c *Constraint) OID { return c.OID }, func(*Constraint) bool { return true }, func(oc, nc *Constraint) {
		switch {
		case nc == nil:
			d.add(phaseDropConstraints, "", fmt.Sprintf("ALTER DOMAIN %s DROP CONSTRAINT %s", d.name(o.Schema, o.Name), database.QuoteIdent(oc.Name)))
		case oc == nil:
			d.add(phaseTypes, "", fmt.Sprintf("ALTER DOMAIN %s ADD CONSTRAINT %s %s", name, database.QuoteIdent(nc.Name), nc.Def))
		case oc.Name != nc.Name:
			d.add(phaseRenames, "", fmt.Sprintf("ALTER DOMAIN %s RENAME CONSTRAINT %s TO %s", name, database.QuoteIdent(oc.Name), database.QuoteIdent(nc.Name)))
		}
	})
}

// sequenceScope: a sequence behind a column goes with its table.
func (d *differ) seqKeep(s *Snapshot) func(*Sequence) bool {
	tables := map[OID]*Relation{}
	for i := range s.Tables {
		tables[s.Tables[i].OID] = &s.Tables[i]
	}
	return func(q *Sequence) bool {
		if q.OwnerTable != nil {
			if t := tables[*q.OwnerTable]; t != nil {
				return d.scope.Table(t.Schema, t.Name)
			}
		}
		return d.scope.Table(q.Schema, q.Name)
	}
}

func (d *differ) sequences() {
	keepOld, keepNew := d.seqKeep(d.prev), d.seqKeep(d.cur)
	old := map[OID]*Sequence{}
	for i := range d.prev.Sequences {
		if keepOld(&d.prev.Sequences[i]) {
			old[d.prev.Sequences[i].OID] = &d.prev.Sequences[i]
		}
	}
	for i := range d.cur.Sequences {
		n := &d.cur.Sequences[i]
		if !keepNew(n) {
			continue
		}
		o := old[n.OID]
		delete(old, n.OID)
		identity := n.Identity != nil && *n.Identity
		if !identity {
			name := d.name(n.Schema, n.Name)
			switch {
			case o == nil:
				d.add(phaseSequences, "sequence "+name, fmt.Sprintf("CREATE SEQUENCE %s AS %s INCREMENT BY %d MINVALUE %d MAXVALUE %d START WITH %d CACHE %d%s",
					name, n.Type, n.Increment, n.Min, n.Max, n.Start, n.Cache, map[bool]string{true: " CYCLE", false: ""}[n.Cycle]))
			default:
				if o.Name != n.Name || o.Schema != n.Schema {
					d.renameObject(phaseRenames, "SEQUENCE", o.Schema, o.Name, n.Schema, n.Name)
				}
				if o.Type != n.Type || o.Increment != n.Increment || o.Min != n.Min || o.Max != n.Max || o.Start != n.Start || o.Cache != n.Cache || o.Cycle != n.Cycle {
					d.add(phaseSequences, "", fmt.Sprintf("ALTER SEQUENCE %s AS %s INCREMENT BY %d MINVALUE %d MAXVALUE %d START WITH %d CACHE %d %s",
						name, n.Type, n.Increment, n.Min, n.Max, n.Start, n.Cache, map[bool]string{true: "CYCLE", false: "NO CYCLE"}[n.Cycle]))
				}
			}
			if n.OwnerTable != nil && (o == nil || !eqPtr(o.OwnerTable, n.OwnerTable) || !eqPtr(o.OwnerColumn, n.OwnerColumn)) {
				if t, c := d.column(d.cur, *n.OwnerTable, *n.OwnerColumn); t != nil {
					d.add(phaseOwnedBy, "", fmt.Sprintf("ALTER SEQUENCE %s OWNED BY %s.%s", name, d.name(t.Schema, t.Name), database.QuoteIdent(c.Name)))
				}
			}
		}
		if n.LastValue == nil || o != nil && eqPtr(o.LastValue, n.LastValue) {
			continue
		}
		// Keep the target's sequence at or ahead of the source's, never
		// moving it back.
		pick := "GREATEST"
		if n.Increment < 0 {
			pick = "LEAST"
		}
		seq := pq.QuoteLiteral(d.name(n.Schema, n.Name))
		if identity {
			t, c := d.column(d.cur, *n.OwnerTable, *n.OwnerColumn)
			if t == nil {
				continue
			}
			seq = fmt.Sprintf("pg_catalog.pg_get_serial_sequence(%s, %s)", pq.QuoteLiteral(d.name(t.Schema, t.Name)), pq.QuoteLiteral(c.Name))
		}
		d.add(phaseSetval, "", fmt.Sprintf(
			"SELECT pg_catalog.setval(s, %s(%d, pg_catalog.pg_sequence_last_value(s))) FROM (SELECT %s::pg_catalog.regclass AS s) q",
			pick, *n.LastValue, seq))
	}
	for _, id := range slices.Sorted(maps.Keys(old)) {
		o := old[id]
		if o.Identity == nil || !*o.Identity {
			d.add(phaseDropSequences, "", "DROP SEQUENCE IF EXISTS "+d.name(o.Schema, o.Name))
		}
	}
}

func (d *differ) column(s *Snapshot, table OID, num int16) (*Relation, *Column) {
	for i := range s.Tables {
		if s.Tables[i].OID != table {
			continue
		}
		for j := range s.Tables[i].Columns {
			if s.Tables[i].Columns[j].Num == num {
				return &s.Tables[i], &s.Tables[i].Columns[j]
			}
		}
	}
	return nil, nil
}

func (d *differ) functions() {
	byOID(d.prev.Functions, d.cur.Functions, func(f *Function) OID { return f.OID },
		func(f *Function) bool { return d.scope.Schema(f.Schema) }, func(o, n *Function) {
			if n == nil {
				kind := map[string]string{"p": "PROCEDURE", "a": "AGGREGATE"}[o.Kind]
				if kind == "" {
					kind = "FUNCTION"
				}
				d.add(phaseDropFunctions, "", fmt.Sprintf("DROP %s IF EXISTS %s(%s)", kind, d.name(o.Schema, o.Name), o.IdentityArgs))
				return
			}
			what := fmt.Sprintf("function %s(%s)", database.QuoteQualified(n.Schema, n.Name), n.IdentityArgs)
			if !n.Owned {
				d.skip(what, "owned by a role teleport is not a member of")
				return
			}
			if n.Kind == "a" {
				d.aggregate(o, n, what)
				return
			}
			if n.Def == nil || (n.Language != "sql" && n.Language != "plpgsql") {
				d.skip(what, fmt.Sprintf("written in %s: only SQL and PL/pgSQL functions replicate", n.Language))
				return
			}
			def, ok := functionBody(n)
			if !ok {
				d.skip(what, "its definition could not be read")
				return
			}
			kind := map[string]string{"p": "PROCEDURE"}[n.Kind]
			if kind == "" {
				kind = "FUNCTION"
			}
			name := d.name(n.Schema, n.Name)
			// A SQL-standard body (BEGIN ATOMIC or RETURN, PostgreSQL 14) has no prosrc.
			minMajor, why := 0, ""
			if n.Language == "sql" && n.Body == "" {
				minMajor, why = 14, "SQL-standard function bodies (BEGIN ATOMIC, RETURN) need PostgreSQL 14"
			}
			if o != nil && (o.Name != n.Name || o.Schema != n.Schema) {
				d.add(phaseRenames, "", fmt.Sprintf("ALTER %s %s(%s) RENAME TO %s", kind, d.name(o.Schema, o.Name), o.IdentityArgs, database.QuoteIdent(n.Name)))
				if o.Schema != n.Schema {
					d.add(phaseRenames, "", fmt.Sprintf("ALTER %s %s(%s) SET SCHEMA %s", kind, d.name(o.Schema, n.Name), o.IdentityArgs, database.QuoteIdent(n.Schema)))
				}
			}
			if o != nil && o.Result != nil && n.Result != nil && *o.Result != *n.Result {
				// CREATE OR REPLACE cannot change a result type.
				d.add(phaseFunctions, "", fmt.Sprintf("DROP %s %s(%s)", kind, name, n.IdentityArgs))
				o = nil
			}
			if o != nil && o.Def != nil && d.sameFunction(o, n) {
				return
			}
			key := ""
			if o == nil {
				key = fmt.Sprintf("function %s(%s)", name, n.IdentityArgs)
			}
			d.addNewer(phaseFunctions, key, fmt.Sprintf("CREATE OR REPLACE %s %s(%s", kind, name, def), minMajor, "", what, why)
		})
}

// sameFunction reports whether two versions of a function have one
// definition, but for its name.
func (d *differ) sameFunction(o, n *Function) bool {
	ob, ok1 := functionBody(o)
	nb, ok2 := functionBody(n)
	return ok1 && ok2 && ob == nb
}

// functionBody returns pg_get_functiondef's text after "name(": the
// arguments, attributes and body.
func functionBody(f *Function) (string, bool) {
	if f.Def == nil {
		return "", false
	}
	rest, ok := strings.CutPrefix(*f.Def, f.Prefix)
	return strings.TrimRight(rest, "\n"), ok
}

func (d *differ) aggregate(o, n *Function, what string) {
	a := n.Aggregate
	if a == nil || a.Kind != "n" {
		d.skip(what, "ordered-set and hypothetical-set aggregates are not replicated")
		return
	}
	name := d.name(n.Schema, n.Name)
	if o != nil && (o.Name != n.Name || o.Schema != n.Schema) {
		d.add(phaseRenames, "", fmt.Sprintf("ALTER AGGREGATE %s(%s) RENAME TO %s", d.name(o.Schema, o.Name), o.IdentityArgs, database.QuoteIdent(n.Name)))
		if o.Schema != n.Schema {
			d.add(phaseRenames, "", fmt.Sprintf("ALTER AGGREGATE %s(%s) SET SCHEMA %s", d.name(o.Schema, n.Name), o.IdentityArgs, database.QuoteIdent(n.Schema)))
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "CREATE OR REPLACE AGGREGATE %s(%s) (SFUNC = %s, STYPE = %s", name, n.Args, a.SFunc, a.SType)
	if a.FinalFunc != nil {
		b.WriteString(", FINALFUNC = " + *a.FinalFunc)
	}
	if a.CombineFunc != nil {
		b.WriteString(", COMBINEFUNC = " + *a.CombineFunc)
	}
	if a.InitCond != nil {
		b.WriteString(", INITCOND = " + pq.QuoteLiteral(*a.InitCond))
	}
	if a.SortOp != nil {
		b.WriteString(", SORTOP = OPERATOR(" + *a.SortOp + ")")
	}
	b.WriteString(")")
	if o != nil && o.Aggregate != nil && *o.Aggregate == *n.Aggregate && o.Args == n.Args {
		return
	}
	key := ""
	if o == nil {
		key = fmt.Sprintf("aggregate %s(%s)", name, n.IdentityArgs)
	}
	d.add(phaseAggregates, key, b.String())
}

func eqPtr[T comparable](a, b *T) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}
