package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pagarme/teleport/database/dbtest"
)

func TestRun_StartsAsUnprivilegedRole(t *testing.T) {
	setPasswordEnv(t)
	c := dbtest.Shared(t)
	db, name := c.NewDB(t)
	inst := instance{name: "source-1", c: c, dbname: name, port: freePort(t), token: "tok-1",
		targets: "  my-target:\n    target_expression: \"public.*\"\n    endpoint:\n      hostname: \"127.0.0.1\"\n      port: 3001\n    apply_schema: \"test\"\n"}
	p := spawnInstance(t, writeConfig(t, inst))
	st := p.waitUp(t, inst.port, inst.token)
	stop := p.stop
	if st.Name != "source-1" || st.Role != "source" {
		t.Errorf("/status = %+v, want name source-1, role source", st)
	}
	if _, code, _ := getStatus(inst.port, "wrong"); code != http.StatusUnauthorized {
		t.Errorf("/status with a wrong token = %d, want 401", code)
	}
	var owner string
	if err := db.QueryRow(`SELECT pg_get_userbyid(nspowner) FROM pg_namespace WHERE nspname = 'teleport'`).Scan(&owner); err != nil {
		t.Fatalf("teleport schema not created: %v", err)
	}
	if owner != dbtest.Role {
		t.Errorf("teleport schema owner = %q, want %q", owner, dbtest.Role)
	}
	if err := stop(); err != nil {
		t.Errorf("run after cancel = %v, want nil", err)
	}
}

func TestRun_TwoInstancesStartAtOnce(t *testing.T) {
	setPasswordEnv(t)
	c := dbtest.Shared(t)
	_, name := c.NewDB(t)
	a := instance{name: "a", c: c, dbname: name, port: freePort(t)}
	b := instance{name: "b", c: c, dbname: name, port: freePort(t)}
	pa, pb := writeConfig(t, a), writeConfig(t, b)
	procA, procB := spawnInstance(t, pa), spawnInstance(t, pb)
	procA.waitUp(t, a.port, "")
	procB.waitUp(t, b.port, "")
	stopA, stopB := procA.stop, procB.stop
	if err := stopA(); err != nil {
		t.Errorf("instance a: %v", err)
	}
	if err := stopB(); err != nil {
		t.Errorf("instance b: %v", err)
	}
}

func TestRun_StartupErrors(t *testing.T) {
	setPasswordEnv(t)
	c := dbtest.Shared(t)
	_, name := c.NewDB(t)
	good := writeConfig(t, instance{name: "x", c: c, dbname: name, port: freePort(t)})
	c.CreateRole(t, "tp_main_nocreate", "pw", "NOSUPERUSER")
	noCreate := strings.ReplaceAll(mustRead(t, good), `username: "teleport"`, `username: "tp_main_nocreate"`)
	noCreate = strings.ReplaceAll(noCreate, `"${TELEPORT_TEST_PW}"`, `"pw"`)
	noCreatePath := filepath.Join(t.TempDir(), "nocreate.yml")
	if err := os.WriteFile(noCreatePath, []byte(noCreate), 0o600); err != nil {
		t.Fatal(err)
	}
	badDB := strings.ReplaceAll(mustRead(t, good), fmt.Sprintf("port: %d\n  sslmode", c.Port), fmt.Sprintf("port: %d\n  sslmode", freePort(t)))
	badDBPath := filepath.Join(t.TempDir(), "baddb.yml")
	if err := os.WriteFile(badDBPath, []byte(badDB), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		args []string
		want []string
	}{
		{"missing config", []string{"-config", "/nonexistent/teleport.yml"}, []string{"/nonexistent/teleport.yml"}},
		{"bad mode", []string{"-config", good, "-mode", "sideways"}, []string{"-mode", "replication, initial-load, status, verify or uninstall"}},
		{"-json without status", []string{"-config", good, "-json"}, []string{"-json is only used with -mode status and verify"}},
		{"-max-lag without status", []string{"-config", good, "-mode", "verify", "-target", "x", "-max-lag", "1s"}, []string{"-max-lag is only used with -mode status"}},
		{"verify without target", []string{"-config", good, "-mode", "verify"}, []string{"-mode verify needs -target"}},
		{"-tables in replication", []string{"-config", good, "-tables", "a"}, []string{"-tables is only used with -mode verify and initial-load"}},
		{"-target with initial-load", []string{"-config", good, "-mode", "initial-load", "-load-target", "x", "-target", "x"}, []string{"-target is only used with -mode verify", "-load-target"}},
		{"resync with -overwrite", []string{"-config", good, "-mode", "initial-load", "-load-target", "x", "-tables", "a", "-overwrite"}, []string{"-overwrite is not used with -tables"}},
		{"verify of an unknown target", []string{"-config", good, "-mode", "verify", "-target", "nope"}, []string{"-target \"nope\"", "no such target"}},
		{"status with no lag allowed", []string{"-config", good, "-mode", "status", "-max-lag", "0s"}, []string{"-max-lag 0s", "above 0"}},
		{"status where teleport never ran", []string{"-config", good, "-mode", "status"}, []string{"no teleport schema"}},
		{"-source without uninstall", []string{"-config", good, "-source", "s"}, []string{"only used with -mode uninstall"}},
		{"-force without uninstall", []string{"-config", good, "-force"}, []string{"only used with -mode uninstall"}},
		{"-force with -source", []string{"-config", good, "-mode", "uninstall", "-source", "s", "-force"}, []string{"not with -source"}},
		{"initial-load without target", []string{"-config", good, "-mode", "initial-load"}, []string{"-load-target"}},
		{"initial-load of an unknown target", []string{"-config", good, "-mode", "initial-load", "-load-target", "nope"}, []string{"nope", "no such target"}},
		{"initial-load with no parallelism", []string{"-config", good, "-mode", "initial-load", "-load-target", "x", "-parallel", "0"}, []string{"-parallel 0", "1 to 64"}},
		{"negative chunk size", []string{"-config", good, "-mode", "initial-load", "-load-target", "x", "-chunk-mb", "-1"}, []string{"-chunk-mb -1", "0 (no chunks)"}},
		{"-chunk-mb without initial-load", []string{"-config", good, "-mode", "verify", "-chunk-mb", "64"}, []string{"-chunk-mb is only used with -mode initial-load"}},
		{"-overwrite without initial-load", []string{"-config", good, "-overwrite"}, []string{"-overwrite", "only used with -mode initial-load"}},
		{"stray argument", []string{"-config", good, "extra"}, []string{"extra"}},
		{"bad log format", []string{"-config", good, "-log-format", "xml"}, []string{"-log-format"}},
		{"database unreachable", []string{"-config", badDBPath}, []string{"connect to database", name}},
		{"missing privilege", []string{"-config", noCreatePath}, []string{"lacks CREATE on database", "GRANT CREATE ON DATABASE"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stderr bytes.Buffer
			err := run(context.Background(), tt.args, &stderr, &stderr)
			if err == nil {
				t.Fatalf("run(%q) = nil, want an error", tt.args)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("run(%q) = %q, want it to mention %q", tt.args, err, w)
				}
			}
		})
	}
}

// TestBinary_ExitCodes runs the real binary: one clear stderr line and exit 1
// on a start-up failure, exit 0 on SIGTERM.
func TestBinary_ExitCodes(t *testing.T) {
	bin, err := buildBinary()
	if err != nil {
		t.Fatal(err)
	}
	setPasswordEnv(t)

	t.Run("bad config", func(t *testing.T) {
		p := filepath.Join(t.TempDir(), "bad.yml")
		if err := os.WriteFile(p, []byte("batch_size: 1\nbatchsize: 2\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(bin, "-config", p)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		err := cmd.Run()
		if code := cmd.ProcessState.ExitCode(); code != 1 {
			t.Errorf("exit code = %d (%v), want 1", code, err)
		}
		lines := strings.Split(strings.TrimSpace(stderr.String()), "\n")
		if len(lines) != 1 || !strings.Contains(lines[0], "batchsize") || !strings.Contains(lines[0], p) {
			t.Errorf("stderr = %q, want one line naming the file and the key", stderr.String())
		}
	})

	runBin := func(t *testing.T, args ...string) (int, string) {
		t.Helper()
		cmd := exec.Command(bin, args...)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		_ = cmd.Run() // the exit code says how it went
		return cmd.ProcessState.ExitCode(), stderr.String()
	}
	t.Run("help", func(t *testing.T) {
		code, stderr := runBin(t, "-h")
		if code != 0 || !strings.Contains(stderr, "-config") || !strings.Contains(stderr, "-mode") {
			t.Errorf("teleport -h = exit %d, stderr %q; want 0 and the usage", code, stderr)
		}
	})
	t.Run("unknown flag", func(t *testing.T) {
		code, stderr := runBin(t, "-bogus")
		if n := strings.Count(stderr, "flag provided but not defined: -bogus"); code != 1 || n != 1 {
			t.Errorf("teleport -bogus = exit %d, the error %d times in %q; want 1, once", code, n, stderr)
		}
	})
	t.Run("one line per problem", func(t *testing.T) {
		p := filepath.Join(t.TempDir(), "bad.yml")
		if err := os.WriteFile(p, []byte("batch_size: 0\ndatabase:\n  port: 0\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		code, stderr := runBin(t, "-config", p)
		lines := strings.Split(strings.TrimSpace(stderr), "\n")
		if code != 1 || len(lines) != 3 {
			t.Fatalf("exit %d, stderr %q; want 1 and three lines (batch_size, database.name, database.port)", code, stderr)
		}
		for _, l := range lines {
			if !strings.HasPrefix(l, "teleport: "+p+": ") {
				t.Errorf("line %q does not start with teleport: and the file", l)
			}
		}
	})
	t.Run("json fatal line", func(t *testing.T) {
		code, stderr := runBin(t, "-log-format", "json", "-config", filepath.Join(t.TempDir(), "none.yml"))
		var m map[string]any
		if err := json.Unmarshal([]byte(strings.TrimSpace(stderr)), &m); code != 1 || err != nil || m["level"] != "ERROR" ||
			!strings.Contains(fmt.Sprint(m["err"]), "no such configuration file") {
			t.Errorf("exit %d, stderr %q; want 1 and one JSON line saying the file is missing", code, stderr)
		}
	})

	t.Run("status of a held batch", func(t *testing.T) {
		c := dbtest.Shared(t)
		db, name := dbtest.Migrated(t)
		dbtest.Exec(t, db, `INSERT INTO teleport.source (name, error, error_seq, error_at) VALUES ('s', 'a conflict', 1, now())`)
		cfg := writeConfig(t, instance{name: "x", c: c, dbname: name, port: freePort(t)})
		cmd := exec.Command(bin, "-config", cfg, "-mode", "status")
		out, _ := cmd.Output() // the exit code says how it went
		if code := cmd.ProcessState.ExitCode(); code != 2 || !strings.Contains(string(out), "batch 1 HELD: a conflict") {
			t.Errorf("teleport -mode status = exit %d, stdout %q; want 2 and the held batch", code, out)
		}
	})

	t.Run("version", func(t *testing.T) {
		out, err := exec.Command(bin, "-version").Output()
		if err != nil || !strings.HasPrefix(string(out), "teleport ") {
			t.Errorf("teleport -version = %q, %v", out, err)
		}
	})

	t.Run("SIGTERM", func(t *testing.T) {
		c := dbtest.Shared(t)
		_, name := c.NewDB(t)
		inst := instance{name: "sig", c: c, dbname: name, port: freePort(t)}
		cmd := exec.Command(bin, "-config", writeConfig(t, inst), "-log-format", "json")
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = cmd.Process.Kill() })
		waitStatus(t, inst.port, "")
		start := time.Now()
		if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("teleport after SIGTERM: %v, want exit 0\n%s", err, stderr.String())
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("teleport still running 10s after SIGTERM")
		}
		t.Logf("stopped %v after SIGTERM", time.Since(start).Round(time.Millisecond))
		for _, line := range strings.Split(strings.TrimSpace(stderr.String()), "\n") {
			var m map[string]any
			if err := json.Unmarshal([]byte(line), &m); err != nil {
				t.Errorf("-log-format json wrote a line that is not JSON: %q", line)
			}
			if strings.Contains(line, dbtest.RolePassword) {
				t.Errorf("log line leaks the database password: %q", line)
			}
		}
	})
}
