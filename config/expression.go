package config

import (
	"fmt"
	"path"
	"strings"
)

// Expression is a parsed target_expression: a schema pattern and a table
// pattern, each a path.Match glob ("*" matches any run of characters but
// '/'). Everything that reads a target_expression reads it through here.
type Expression struct {
	Schema string
	Table  string
}

const expressionWant = `want "schema.table" with each part a pattern such as "public.*", "*.*" or "sales.order_*"`

// ParseExpression splits expr at its first dot and checks both patterns.
func ParseExpression(expr string) (Expression, error) {
	if expr == "" {
		return Expression{}, fmt.Errorf("required: %s", expressionWant)
	}
	schema, table, ok := strings.Cut(expr, ".")
	switch {
	case !ok:
		return Expression{}, fmt.Errorf("%q has no dot: %s", expr, expressionWant)
	case schema == "":
		return Expression{}, fmt.Errorf("%q has an empty schema part: %s", expr, expressionWant)
	case table == "":
		return Expression{}, fmt.Errorf("%q has an empty table part: %s", expr, expressionWant)
	}
	for _, p := range []struct{ part, pattern string }{{"schema", schema}, {"table", table}} {
		if _, err := path.Match(p.pattern, ""); err != nil {
			return Expression{}, fmt.Errorf("%q: %s part %q is not a valid pattern (%v): use * and ? as wildcards, [...] for a set of characters, \\ to escape", expr, p.part, p.pattern, err)
		}
	}
	return Expression{Schema: schema, Table: table}, nil
}

// Expression returns t's parsed target_expression; a malformed one (which
// Validate reports) matches nothing.
func (t Target) Expression() Expression {
	e, err := ParseExpression(t.TargetExpression)
	if err != nil {
		return Expression{Schema: "[", Table: "["} // an invalid pattern: Match is false for every name
	}
	return e
}

// Match reports whether t's target_expression selects the table
// schema.table.
func (t Target) Match(schema, table string) bool { return t.Expression().Match(schema, table) }

// Match reports whether e selects the table schema.table.
func (e Expression) Match(schema, table string) bool {
	return e.MatchSchema(schema) && match(e.Table, table)
}

// MatchSchema reports whether e selects tables of schema.
func (e Expression) MatchSchema(schema string) bool { return match(e.Schema, schema) }

func match(pattern, name string) bool {
	ok, err := path.Match(pattern, name)
	return err == nil && ok
}

// NamesOneSchema reports whether the schema part is a name rather than a
// pattern, as an apply_schema needs.
func (e Expression) NamesOneSchema() bool { return !strings.ContainsAny(e.Schema, `*?[\`) }

// SchemaRegex and TableRegex are the patterns as anchored PostgreSQL
// regular expressions that match the same names, for queries.
func (e Expression) SchemaRegex() string { return globRegex(e.Schema) }
func (e Expression) TableRegex() string  { return globRegex(e.Table) }

// globRegex translates a path.Match pattern into an anchored PostgreSQL
// regular expression that matches the same names.
func globRegex(glob string) string {
	var b strings.Builder
	b.WriteByte('^')
	inClass := false
	for i := 0; i < len(glob); i++ {
		c := glob[i]
		switch {
		case c == '\\' && i+1 < len(glob):
			i++
			writeLiteral(&b, glob[i])
		case inClass:
			if c == ']' {
				inClass = false
			}
			b.WriteByte(c)
		case c == '[':
			inClass = true
			b.WriteByte(c)
		case c == '*':
			b.WriteString("[^/]*")
		case c == '?':
			b.WriteString("[^/]")
		default:
			writeLiteral(&b, c)
		}
	}
	b.WriteByte('$')
	return b.String()
}

func writeLiteral(b *strings.Builder, c byte) {
	if strings.IndexByte(`.^$|()[]{}*+?\`, c) >= 0 {
		b.WriteByte('\\')
	}
	b.WriteByte(c)
}

// SnapshotSchema returns the schema catalog snapshots write names relative
// to: the source schema a target maps to its apply_schema (Validate makes
// it the same for every such target), or "" to qualify every name.
func (c Config) SnapshotSchema() string {
	for _, t := range c.Targets {
		if t.ApplySchema != "" {
			return t.Expression().Schema
		}
	}
	return ""
}

// MatchAny reports whether any target selects the table schema.table: the
// tables this source captures.
func (c Config) MatchAny(schema, table string) bool {
	for _, t := range c.Targets {
		if t.Match(schema, table) {
			return true
		}
	}
	return false
}

// NamesTable reports whether name, as an operator gives it on the command
// line (-tables), names the table schema.table: "schema.table", or "table"
// in whichever schema.
func NamesTable(name, schema, table string) bool {
	return name == schema+"."+table || (!strings.Contains(name, ".") && name == table)
}
