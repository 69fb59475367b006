package dbtest

import (
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"
)

// DumpSchema returns pg_dump --schema-only of one schema of dbname, made
// comparable with the dump of a replica: comments, settings and blank lines
// are dropped, the schema's own statements are dropped and its name is
// removed from qualified names, and so are Teleport's capture triggers and
// the replica's DISABLE TRIGGER statements.
func (c *Cluster) DumpSchema(t testing.TB, dbname, schema string) string {
	t.Helper()
	var out []byte
	for attempt := 1; ; attempt++ {
		cmd := exec.Command(c.BinPath("pg_dump"), "--schema-only", "--no-owner", "--no-privileges",
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
	qualified := regexp.MustCompile(`(^|[^A-Za-z0-9_$"])(` + regexp.QuoteMeta(schema) + `|"` + regexp.QuoteMeta(strings.ReplaceAll(schema, `"`, `""`)) + `")\.`)
	var keep []string
	for _, line := range strings.Split(string(out), "\n") {
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
