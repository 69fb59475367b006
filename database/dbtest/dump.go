package dbtest

import (
	"errors"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/lib/pq"
)

// DumpSchema returns pg_dump --schema-only of one schema of dbname, made
// comparable with the dump of a replica: comments, settings and blank lines
// are dropped, the schema's own statements are dropped and its name is
// removed from qualified names, and so are Teleport's capture triggers and
// the replica's DISABLE TRIGGER statements.
func (c *Cluster) DumpSchema(t testing.TB, dbname, schema string) string {
	t.Helper()
	return comparable(c.rawDump(t, dbname, schema), schema)
}

// DumpSchemaOn returns what PostgreSQL of on's major makes of one schema of
// dbname: DumpSchema of a scratch database on on where pg_dump's output
// was restored. A replica on another major than its source is compared
// with that, since each major writes some definitions its own way (views
// are deparsed anew, NOT NULL constraints named by 18). NOT NULL constraint
// names are dropped unless both servers are 18 or later: older majors have
// none to replicate.
func (c *Cluster) DumpSchemaOn(t testing.TB, on *Cluster, dbname, schema string) string {
	t.Helper()
	raw := c.rawDump(t, dbname, schema)
	admin := on.adminOrFatal(t, "DumpSchemaOn")
	scratch := dbName("restored_"+t.Name(), dbCounter.Add(1))
	if _, err := admin.Exec("CREATE DATABASE " + pq.QuoteIdentifier(scratch) + " OWNER " + pq.QuoteIdentifier(Role)); err != nil {
		t.Fatalf("dbtest: DumpSchemaOn: create database %s: %v", scratch, err)
	}
	defer on.dropDB(t, scratch)
	// pg_dump --schema leaves out extensions: make those of dbname first.
	var exts []string
	src, err := openPing(c.DSN(Role, RolePassword, dbname))
	if err != nil {
		t.Fatalf("dbtest: DumpSchemaOn: connect to %s: %v", dbname, err)
	}
	defer src.Close()
	rows, err := src.Query(`SELECT format('CREATE EXTENSION IF NOT EXISTS %I WITH SCHEMA %I', e.extname, n.nspname)
		FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace WHERE e.extname <> 'plpgsql'`)
	if err != nil {
		t.Fatalf("dbtest: DumpSchemaOn: list extensions of %s: %v", dbname, err)
	}
	for rows.Next() {
		var q string
		if err := rows.Scan(&q); err != nil {
			t.Fatalf("dbtest: DumpSchemaOn: list extensions of %s: %v", dbname, err)
		}
		exts = append(exts, q+";\n")
	}
	if err := errors.Join(rows.Err(), rows.Close()); err != nil {
		t.Fatalf("dbtest: DumpSchemaOn: list extensions of %s: %v", dbname, err)
	}
	// Errors are expected and harmless: the schema and Teleport's capture
	// triggers (whose functions live in schema teleport) are not restored,
	// and comparable leaves both out anyway.
	cmd := exec.Command(on.ClientPath("psql"), "-X", "-q", "-d", on.DSN(Role, RolePassword, scratch))
	cmd.Stdin = strings.NewReader(strings.Join(exts, "") + raw)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("dbtest: DumpSchemaOn: restore into %s: %v\n%s", scratch, err, out)
	}
	dump := comparable(on.rawDump(t, scratch, schema), schema)
	if min(c.Major(), on.Major()) < 18 {
		dump = notNullName.ReplaceAllString(dump, "NOT NULL")
	}
	return dump
}

// WithoutNotNullNames drops the names of NOT NULL constraints from a dump,
// for comparing it with DumpSchemaOn's.
func WithoutNotNullNames(dump string) string {
	return notNullName.ReplaceAllString(dump, "NOT NULL")
}

var notNullName = regexp.MustCompile(`CONSTRAINT (?:[a-z_][a-z0-9_$]*|"(?:[^"]|"")+") NOT NULL`)

// rawDump is pg_dump --schema-only of one schema of dbname, as it is.
func (c *Cluster) rawDump(t testing.TB, dbname, schema string) string {
	t.Helper()
	var out []byte
	for attempt := 1; ; attempt++ {
		cmd := exec.Command(c.ClientPath("pg_dump"), "--schema-only", "--no-owner", "--no-privileges",
			"--schema", schema, "--dbname", c.DSN(Role, RolePassword, dbname))
		var err error
		if out, err = cmd.Output(); err == nil {
			break
		}
		// pg_dump fails when an object it listed is dropped before it reads
		// it: a dump taken while DDL runs is tried again.
		if attempt == 5 {
			msg := ""
			if ee, ok := err.(*exec.ExitError); ok {
				msg = string(ee.Stderr)
			}
			t.Fatalf("dbtest: pg_dump %s: %v\n%s", dbname, err, msg)
		}
		time.Sleep(200 * time.Millisecond)
	}
	return string(out)
}

// comparable makes a dump of schema comparable with another's (see DumpSchema).
func comparable(out, schema string) string {
	qualified := regexp.MustCompile(`(^|[^A-Za-z0-9_$"])(` + regexp.QuoteMeta(schema) + `|"` + regexp.QuoteMeta(strings.ReplaceAll(schema, `"`, `""`)) + `")\.`)
	var keep []string
	for _, line := range strings.Split(out, "\n") {
		switch {
		case strings.TrimSpace(line) == "",
			strings.HasPrefix(line, "--"),
			strings.HasPrefix(line, `\restrict `), strings.HasPrefix(line, `\unrestrict `),
			strings.HasPrefix(line, "SET "),
			strings.HasPrefix(line, "SELECT pg_catalog.set_config"),
			strings.HasPrefix(line, "CREATE SCHEMA "),
			strings.HasPrefix(line, "COMMENT ON SCHEMA "),
			strings.Contains(line, "teleport_capture_"),
			strings.HasPrefix(line, "ALTER TABLE ") && strings.Contains(line, " DISABLE TRIGGER "):
			continue
		}
		keep = append(keep, qualified.ReplaceAllString(line, "$1"))
	}
	// "ALTER TABLE x" and "DISABLE TRIGGER y;" may sit on two lines.
	text := strings.Join(keep, "\n")
	text = regexp.MustCompile(`(?m)^ALTER TABLE [^\n]*\n\s+DISABLE TRIGGER [^\n]*;$\n?`).ReplaceAllString(text, "")
	return text
}

// ReadableDump returns pg_dump --schema-only of one schema of dbname as
// SQL to read and to run: settings, pg_dump's comments and runs of blank
// lines are dropped; names stay qualified.
func (c *Cluster) ReadableDump(t testing.TB, dbname, schema string) string {
	t.Helper()
	var keep []string
	blank := true
	for _, line := range strings.Split(c.rawDump(t, dbname, schema), "\n") {
		switch {
		case strings.HasPrefix(line, "--"),
			strings.HasPrefix(line, `\restrict `), strings.HasPrefix(line, `\unrestrict `),
			strings.HasPrefix(line, "SET "),
			strings.HasPrefix(line, "SELECT pg_catalog.set_config"):
			continue
		case strings.TrimSpace(line) == "":
			if blank {
				continue
			}
			blank = true
		default:
			blank = false
		}
		keep = append(keep, line)
	}
	return strings.TrimSpace(strings.Join(keep, "\n")) + "\n"
}
