package dbtest

import (
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

func TestDBName(t *testing.T) {
	tests := []struct {
		test string
		n    int64
		want string
	}{
		{"TestFoo", 1, "t_testfoo_1"},
		{"TestFoo/sub_test", 12, "t_testfoo_sub_test_12"},
		{"TestÜber/ a  \"b\" ", 3, "t_test_ber_a_b_3"},
		{"!!!", 4, "t_4"},
		{"Test" + strings.Repeat("x", 100), 123456, "t_test" + strings.Repeat("x", 63-len("t_test_123456")) + "_123456"},
		{"Test" + strings.Repeat("x", 54) + "/yyyy", 7, "t_test" + strings.Repeat("x", 54) + "_7"}, // no trailing "_"
	}
	for _, tt := range tests {
		got := dbName(tt.test, tt.n)
		if got != tt.want {
			t.Errorf("dbName(%q, %d) = %q, want %q", tt.test, tt.n, got, tt.want)
		}
		if len(got) > maxIdent {
			t.Errorf("dbName(%q, %d) = %q, %d bytes, want at most %d", tt.test, tt.n, got, len(got), maxIdent)
		}
	}
}

func TestDSNValue(t *testing.T) {
	tests := []struct{ in, want string }{
		{"teleport", "teleport"},
		{"", "''"},
		{"a b", "'a b'"},
		{`it's \ here`, `'it\'s \\ here'`},
		{"k=v", "'k=v'"},
	}
	for _, tt := range tests {
		if got := dsnValue(tt.in); got != tt.want {
			t.Errorf("dsnValue(%q) = %s, want %s", tt.in, got, tt.want)
		}
	}
}

func TestCompareVersions(t *testing.T) {
	tests := []struct {
		a, b string
		want int
	}{
		{"9.6", "10", -1},
		{"15", "10", 1},
		{"16", "16", 0},
		{"weird", "9.6", -1},
	}
	for _, tt := range tests {
		if got := compareVersions(tt.a, tt.b); got != tt.want {
			t.Errorf("compareVersions(%q, %q) = %d, want %d", tt.a, tt.b, got, tt.want)
		}
	}
}

// fakeServer makes dir/<version>/bin with executable initdb, pg_ctl and postgres.
func fakeServer(t *testing.T, dir, version string) string {
	t.Helper()
	bin := filepath.Join(dir, version, "bin")
	if err := os.MkdirAll(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"initdb", "pg_ctl", "postgres"} {
		if err := os.WriteFile(filepath.Join(bin, name), []byte("#!/bin/sh\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return bin
}

func TestFindBinDir(t *testing.T) {
	lib := t.TempDir()
	old := debianLibDir
	debianLibDir = lib
	t.Cleanup(func() { debianLibDir = old })
	t.Setenv("PATH", t.TempDir()) // no pg_config
	t.Setenv("PG_BINDIR", "")

	if _, err := findBinDir(); !errors.Is(err, errNoBinaries) {
		t.Errorf("findBinDir() with nothing installed = %v, want errNoBinaries", err)
	}

	fakeServer(t, lib, "9.6")
	want := fakeServer(t, lib, "15")
	fakeServer(t, lib, "10")
	if err := os.MkdirAll(filepath.Join(lib, "17", "bin"), 0o755); err != nil { // client only
		t.Fatal(err)
	}
	if got, err := findBinDir(); got != want || err != nil {
		t.Errorf("findBinDir() = %q, %v, want %q, nil", got, err, want)
	}

	other := fakeServer(t, t.TempDir(), "14")
	t.Setenv("PG_BINDIR", other)
	if got, err := findBinDir(); got != other || err != nil {
		t.Errorf("findBinDir() with PG_BINDIR = %q, %v, want %q, nil", got, err, other)
	}

	t.Setenv("PG_BINDIR", filepath.Join(lib, "17", "bin"))
	if _, err := findBinDir(); err == nil || errors.Is(err, errNoBinaries) {
		t.Errorf("findBinDir() with PG_BINDIR lacking initdb = %v, want an error that fails, not skips", err)
	}
}

// recordTB records how a helper ended the test.
type recordTB struct {
	testing.TB
	skipped, failed bool
}

func (r *recordTB) Helper() {}
func (r *recordTB) Skipf(string, ...any) {
	r.skipped = true
	runtime.Goexit()
}
func (r *recordTB) Fatalf(string, ...any) {
	r.failed = true
	runtime.Goexit()
}

func TestFailStart(t *testing.T) {
	tests := []struct {
		ci          string
		err         error
		skip, fatal bool
	}{
		{"", errNoBinaries, true, false},
		{"true", errNoBinaries, false, true},
		{"", errors.New("initdb: boom"), false, true},
	}
	for _, tt := range tests {
		t.Setenv("CI", tt.ci)
		r := &recordTB{TB: t}
		done := make(chan struct{})
		go func() {
			defer close(done)
			failStart(r, tt.err)
		}()
		<-done
		if r.skipped != tt.skip || r.failed != tt.fatal {
			t.Errorf("failStart(CI=%q, %v): skipped, failed = %v, %v, want %v, %v",
				tt.ci, tt.err, r.skipped, r.failed, tt.skip, tt.fatal)
		}
	}
}

func TestMajorBinDir(t *testing.T) {
	root, lib := t.TempDir(), t.TempDir()
	old := debianLibDir
	debianLibDir = lib
	t.Cleanup(func() { debianLibDir = old })
	t.Setenv("TELEPORT_PG_ROOT", root)

	ours, debian := fakeServer(t, root, "13"), fakeServer(t, lib, "15")
	fakeServer(t, lib, "13")
	if got, err := MajorBinDir(13); got != ours || err != nil {
		t.Errorf("MajorBinDir(13) = %q, %v, want %q (TELEPORT_PG_ROOT before Debian's)", got, err, ours)
	}
	if got, err := MajorBinDir(15); got != debian || err != nil {
		t.Errorf("MajorBinDir(15) = %q, %v, want %q", got, err, debian)
	}
	if _, err := MajorBinDir(17); !errors.Is(err, errNoBinaries) || !strings.Contains(err.Error(), ".ci/pg-majors 17") {
		t.Errorf("MajorBinDir(17) with none installed = %v, want errNoBinaries saying how to install it", err)
	}
}

func TestClientPath(t *testing.T) {
	root, lib, own := t.TempDir(), t.TempDir(), t.TempDir()
	old := debianLibDir
	debianLibDir = lib
	t.Cleanup(func() { debianLibDir = old })
	t.Setenv("TELEPORT_PG_ROOT", root)
	t.Setenv("PG_CLIENT_BINDIR", "")
	program := func(dir, name string) string {
		t.Helper()
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte("#!/bin/sh\n"), 0o755); err != nil {
			t.Fatal(err)
		}
		return p
	}
	c := &Cluster{BinDir: own}
	built := program(filepath.Join(root, "client", "bin"), "pg_dump")
	program(filepath.Join(lib, "15", "bin"), "pg_dump")
	psql := program(filepath.Join(lib, "15", "bin"), "psql")
	program(filepath.Join(lib, "13", "bin"), "psql")
	only := program(own, "only_here")
	for name, want := range map[string]string{"pg_dump": built, "psql": psql, "only_here": only, "missing": filepath.Join(own, "missing")} {
		if got := c.ClientPath(name); got != want {
			t.Errorf("ClientPath(%q) = %q, want %q", name, got, want)
		}
	}
	chosen := program(t.TempDir(), "pg_dump")
	t.Setenv("PG_CLIENT_BINDIR", filepath.Dir(chosen))
	if got := c.ClientPath("pg_dump"); got != chosen {
		t.Errorf("ClientPath(pg_dump) with PG_CLIENT_BINDIR = %q, want %q", got, chosen)
	}
}
