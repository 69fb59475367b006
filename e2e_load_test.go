package main

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pagarme/teleport/database/dbtest"
	"github.com/pagarme/teleport/server/wire"
)

// loadTablesSQL are tables that test what COPY must carry: a table with no
// primary key and repeated rows, values of 1 MB, awkward values, a
// partitioned table, a generated column and foreign keys with a cascade.
const loadTablesSQL = `
CREATE TABLE nopk (a int, b text);
INSERT INTO nopk SELECT i % 50, 'row ' || (i % 7) FROM generate_series(1, 3000) i;
CREATE TABLE blobs (id int PRIMARY KEY, t text, b bytea);
INSERT INTO blobs SELECT i, (SELECT string_agg(md5(i::text || j::text), '') FROM generate_series(1, 32768) j),
       decode((SELECT string_agg(md5(j::text || i::text), '') FROM generate_series(1, 32768) j), 'hex')
FROM generate_series(1, 4) i;
CREATE TABLE odd ("Mixed Case" text, n numeric, ts timestamptz, arr text[], j json, jb jsonb, f float8, iv interval);
INSERT INTO odd VALUES (E'tab\there\nnewline\\backslash \\N', 12345678901234567890.123456789, '2024-02-29 23:59:59.999999+05:30',
    ARRAY['a,b', NULL, '"q"', ''], '{"k" :  [1, 2.50]}', '{"x": null}', 'NaN', '1 year 2 mons -3 days 04:05:06.7'),
    ('', 'NaN', 'infinity', '{}', 'null', '[]', '-Infinity', '-1 microsecond'),
    (NULL, NULL, NULL, NULL, NULL, NULL, 1e-308, NULL),
    ('ünïcödé ✓ 日本', -0.000000000000000000001, '-infinity', ARRAY[E'\\'], '"\u00e9"', '"\u00e9"', 0.1, '0');
CREATE TABLE parent (id int PRIMARY KEY, name text);
CREATE TABLE child (id int PRIMARY KEY, parent_id int NOT NULL REFERENCES parent ON DELETE CASCADE,
                    qty int, total int GENERATED ALWAYS AS (qty * 2) STORED);
INSERT INTO parent SELECT i, 'p' || i FROM generate_series(1, 500) i;
INSERT INTO child SELECT i, 1 + i % 500, i FROM generate_series(1, 2000) i;
CREATE TABLE measure (at date NOT NULL, v int) PARTITION BY RANGE (at);
CREATE TABLE measure_2023 PARTITION OF measure FOR VALUES FROM ('2023-01-01') TO ('2024-01-01');
CREATE TABLE measure_2024 PARTITION OF measure FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
INSERT INTO measure SELECT '2023-06-01'::date + i % 400, i FROM generate_series(1, 1000) i;
ANALYZE;
`

var loadTables = []string{"nopk", "blobs", "odd", "parent", "child", "measure"}

// newLoadPair is a source with tables made by setup and an empty target,
// both instances running: the target gets the schema from the stream.
func newLoadPair(t *testing.T, applySchema string, setup func(db *sql.DB, c *dbtest.Cluster, name string)) *pair {
	t.Helper()
	setPasswordEnv(t)
	p := &pair{src: sourceCluster(t), dst: targetCluster(t), applySchema: applySchema}
	p.srcDB, p.srcName = p.src.NewDB(t)
	p.dstDB, p.dstName = p.dst.NewDB(t)
	setup(p.srcDB, p.src, p.srcName)
	p.start(t)
	return p
}

func countFKs(t *testing.T, db *sql.DB, schema string) int {
	t.Helper()
	var n int
	execSQLScan(t, db, fmt.Sprintf(`SELECT count(*) FROM pg_constraint c JOIN pg_namespace n ON n.oid = c.connamespace
		WHERE c.contype = 'f' AND n.nspname = '%s' AND c.conparentid = 0`, schema), &n)
	return n
}

// TestE2E_InitialLoadTables loads tables of every awkward kind into an empty
// target, mapped to another schema, while rows change on the source; then
// checks the refusals: a second load at once, a reload without -overwrite.
func TestE2E_InitialLoadTables(t *testing.T) {
	t.Parallel()
	p := newLoadPair(t, "test", func(db *sql.DB, _ *dbtest.Cluster, _ string) {
		execSQL(t, db, "BEGIN; SET LOCAL search_path = public; "+loadTablesSQL+"; COMMIT")
	})
	p.waitSchema(t, 30*time.Second, "test", "first sync")
	// Changes before the load: the target has the tables empty, so the
	// update is a conflict until the load brings the rows.
	execSQL(t, p.srcDB, `UPDATE public.parent SET name = 'before load' WHERE id = 1`)
	execSQL(t, p.srcDB, `INSERT INTO public.nopk VALUES (-1, 'before load')`)
	execSQL(t, p.srcDB, `INSERT INTO public.measure_2024 VALUES ('2024-03-01', -5)`) // to a partition directly

	log, err := p.runLoad(t, "-parallel", "3")
	if err != nil {
		t.Fatalf("load: %v\n%s", err, log)
	}
	for _, want := range []string{"initial load begun", "initial load copied", "initial load done"} {
		if !strings.Contains(log, want) {
			t.Errorf("load log lacks %q:\n%s", want, log)
		}
	}
	// Changes after the load, cascades included.
	execSQL(t, p.srcDB, `UPDATE public.parent SET name = 'after load' WHERE id = 2`)
	execSQL(t, p.srcDB, `DELETE FROM public.parent WHERE id = 3`)
	execSQL(t, p.srcDB, `INSERT INTO public.nopk VALUES (-2, 'after load')`)
	execSQL(t, p.srcDB, `UPDATE public.blobs SET t = t || 'x' WHERE id = 4`)
	execSQL(t, p.srcDB, `INSERT INTO public.measure_2023 VALUES ('2023-02-02', -6); UPDATE public.measure_2024 SET v = -7 WHERE v = -5`)
	p.waitSame(t, 60*time.Second, loadTables...)
	if got := countFKs(t, p.dstDB, "test"); got != 1 {
		t.Errorf("target has %d foreign keys after the load, want 1 (child -> parent)", got)
	}
	l, ok := p.loadStatus(t)
	if !ok || l.State != "finished" || l.TablesDone != len(loadTables) {
		t.Errorf("/status load = %+v, want finished with %d tables", l, len(loadTables))
	}

	t.Run("second load at once is refused", func(t *testing.T) {
		conn, err := p.srcDB.Conn(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		defer conn.ExecContext(context.Background(), `SELECT pg_advisory_unlock_all()`) //nolint:errcheck // the pool's connection must not keep the lock
		var got bool
		if err := conn.QueryRowContext(context.Background(), `SELECT pg_try_advisory_lock((x'746c6f61'::bigint << 32) | (hashtext('dst')::bigint & 4294967295))`).Scan(&got); err != nil || !got {
			t.Fatalf("take the load lock: %v %v", got, err)
		}
		log, err := p.runLoad(t)
		if err == nil || !strings.Contains(err.Error(), "already running") || !strings.Contains(err.Error(), "backend pid") {
			t.Errorf("load while another runs: %v, want refused naming the other\n%s", err, log)
		}
	})
	t.Run("reload needs -overwrite", func(t *testing.T) {
		log, err := p.runLoad(t)
		if err == nil || !strings.Contains(err.Error(), "-overwrite") {
			t.Fatalf("reload without -overwrite: %v, want refused mentioning -overwrite\n%s", err, log)
		}
		execSQL(t, p.dstDB, `INSERT INTO test.nopk VALUES (-3, 'only on the target')`)
		if log, err := p.runLoad(t, "-overwrite"); err != nil {
			t.Fatalf("reload with -overwrite: %v\n%s", err, log)
		}
		execSQL(t, p.srcDB, `UPDATE public.parent SET name = 'after reload' WHERE id = 4`)
		p.waitSame(t, 60*time.Second, loadTables...)
	})
	t.Run("resync of a table and its foreign-key peers", func(t *testing.T) {
		// The target drifts in child and in nopk; a resync of child
		// copies parent with it (they share a key), and leaves nopk.
		execSQL(t, p.dstDB, `DELETE FROM test.child WHERE id <= 10; UPDATE test.parent SET name = 'drift' WHERE id = 9;
			INSERT INTO test.nopk VALUES (-5, 'only on the target')`)
		log, err := p.runLoad(t, "-tables", "child")
		if err != nil {
			t.Fatalf("resync of child: %v\n%s", err, log)
		}
		if !strings.Contains(log, "resync begun") || !strings.Contains(log, `public\".\"parent`) {
			t.Errorf("resync log lacks its start or the table linked by a foreign key:\n%s", log)
		}
		execSQL(t, p.srcDB, `UPDATE public.parent SET name = 'after resync' WHERE id = 5; INSERT INTO public.nopk VALUES (-4, 'after resync')`)
		p.waitSame(t, 60*time.Second, "child", "parent", "measure", "blobs", "odd")
		var extra int
		execSQLScan(t, p.dstDB, `SELECT count(*) FROM test.nopk WHERE b = 'only on the target'`, &extra)
		if extra != 1 {
			t.Errorf("nopk, not resynced, lost the target's own row: %d left", extra)
		}
		if got := countFKs(t, p.dstDB, "test"); got != 1 {
			t.Errorf("target has %d foreign keys after the resync, want 1 (child -> parent)", got)
		}
		l, ok := p.loadStatus(t)
		if !ok || !l.Resync || l.State != "finished" || l.TablesDone != 2 {
			t.Errorf("/status load after the resync = %+v, want a finished resync of 2 tables", l)
		}
	})
}

// pgbenchWrites runs pgbench against the pair's source, 2 clients at rate
// transactions a second in all, in runs of 5 s with args added, until stop
// is called; stop returns pgbench's error, if it failed. Each run begins,
// unless args has -n, by emptying pgbench_history.
func pgbenchWrites(t *testing.T, p *pair, rate int, args ...string) (stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	writes := make(chan error, 1)
	go func() {
		var out []byte
		var err error
		for ctx.Err() == nil && err == nil {
			cmd := exec.CommandContext(ctx, p.src.ClientPath("pgbench"), append(append([]string{"-h", p.src.Host, "-p", strconv.Itoa(p.src.Port),
				"-U", dbtest.Role, "-c", "2", "-j", "2", "--rate", strconv.Itoa(rate), "-T", "5"}, args...), p.srcName)...)
			cmd.Env = append(os.Environ(), "PGPASSWORD="+dbtest.RolePassword)
			out, err = cmd.CombinedOutput()
		}
		if ctx.Err() != nil {
			err = nil
		} else if err != nil {
			err = fmt.Errorf("pgbench: %v\n%s", err, out)
		}
		writes <- err
	}()
	var once sync.Once
	var err error
	stop = func() error {
		once.Do(func() { cancel(); err = <-writes })
		return err
	}
	t.Cleanup(func() { _ = stop() })
	return stop
}

// TestE2E_InitialLoadPgbench loads a pgbench database of scale 20 into an
// empty target while pgbench writes to the source, and ends with the same
// rows on both sides: in one run, and with the load command killed twice
// mid-way and run again, the target instance restarted during the last run.
func TestE2E_InitialLoadPgbench(t *testing.T) {
	t.Parallel()
	for _, interrupted := range []bool{false, true} {
		t.Run(map[bool]string{false: "one run", true: "killed twice and resumed"}[interrupted], func(t *testing.T) {
			t.Parallel()
			testLoadPgbench(t, interrupted)
		})
	}
}

func testLoadPgbench(t *testing.T, interrupted bool) {
	p := newLoadPair(t, "", func(_ *sql.DB, c *dbtest.Cluster, name string) {
		pgbench(t, c, name, "-i", "-q", "-s", "20", "--foreign-keys")
	})
	tables := []string{"pgbench_accounts", "pgbench_branches", "pgbench_tellers", "pgbench_history"}
	p.waitSchema(t, 60*time.Second, "public", "first sync")
	fks := countFKs(t, p.srcDB, "public")

	stopWrites := pgbenchWrites(t, p, 200)

	bin, err := buildBinary()
	if err != nil {
		t.Fatal(err)
	}
	logPath := t.TempDir() + "/load.log"
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	start := func() *exec.Cmd {
		// pgbench_accounts (about 260 MB) goes in chunks of 32 MiB.
		cmd := exec.Command(bin, "-config", p.srcCfg, "-mode", "initial-load", "-load-target", "dst", "-parallel", "2", "-chunk-mb", "32")
		cmd.Stdout, cmd.Stderr = logf, logf
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		return cmd
	}
	// copying reports whether a table is being copied, more than rows in.
	copying := func(l wire.LoadStatus, rows int64) bool {
		return slices.ContainsFunc(l.Tables, func(ts wire.LoadTableStatus) bool { return ts.State == "copying" && ts.Rows > rows })
	}
	// idle waits until the target has let go of the copies of a killed run.
	idle := func() {
		dbtest.WaitFor(t, 30*time.Second, "the target to drop the killed run's copies", func() bool {
			l, ok := p.loadStatus(t)
			return !ok || !copying(l, -1)
		})
	}
	// chunksDone lists pgbench_accounts' chunks done on the target, each
	// with when it was copied.
	chunksDone := func() string {
		var s string
		if err := p.dstDB.QueryRow(`SELECT coalesce(string_agg(chunk || ' ' || done_at, ', ' ORDER BY chunk), '')
			FROM teleport.load_chunk WHERE table_name = 'pgbench_accounts'`).Scan(&s); err != nil {
			t.Fatal(err)
		}
		return s
	}
	// waitLoad waits until the load's status satisfies when.
	waitLoad := func(step string, when func(wire.LoadStatus) bool) wire.LoadStatus {
		var l wire.LoadStatus
		dbtest.WaitFor(t, 2*time.Minute, step, func() bool {
			var ok bool
			l, ok = p.loadStatus(t)
			return ok && when(l)
		})
		return l
	}
	kill := func(cmd *exec.Cmd, run int, l wire.LoadStatus) {
		t.Logf("killing load run %d: %d tables done, %d rows", run, l.TablesDone, l.Rows)
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		idle()
	}
	// Interrupted, the load runs three times. Run 1 is killed early in
	// pgbench_accounts' copy, and the source instance restarted, which
	// lets go of the snapshot it held for the load: run 2 starts the
	// table over in a new snapshot. Run 2 goes through a restart of the
	// target instance (the chunks it was copying fail and are tried again,
	// those done stay done) and is killed further in: run 3 reads in the
	// same snapshot, still held by the source instance, and keeps the
	// chunks done.
	var before, killed string // the chunks done when the target stopped, and when run 2 was killed
	resumes := 0
	cmd := start()
	if interrupted {
		kill(cmd, 1, waitLoad("load run 1 mid-way", func(l wire.LoadStatus) bool { return copying(l, 100000) }))
		if err := p.stopSrc(); err != nil {
			t.Fatal(err)
		}
		p.startSrc(t)
		cmd = start()
		waitLoad("load run 2 copying, a chunk done", func(l wire.LoadStatus) bool {
			return slices.ContainsFunc(l.Tables, func(ts wire.LoadTableStatus) bool {
				// Copying: this run's (the killed run's copies are gone).
				return ts.State == "copying" && ts.ChunksDone >= 1 && ts.ChunksDone < ts.Chunks-2
			})
		})
		if err := p.stopDst(); err != nil {
			t.Fatal(err)
		}
		before = chunksDone()
		p.startDst(t)
		kill(cmd, 2, waitLoad("load run 2 further in", func(l wire.LoadStatus) bool { return l.TablesDone >= 1 && copying(l, 1000000) }))
		killed = chunksDone()
		cmd = start()
		resumes = 2
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("last load run: %v\n%s", err, mustRead(t, logPath))
	}
	if err := stopWrites(); err != nil {
		t.Fatal(err)
	}
	p.waitSame(t, 2*time.Minute, tables...)
	if got := countFKs(t, p.dstDB, "public"); got != fks {
		t.Errorf("target has %d foreign keys after the load, source %d", got, fks)
	}
	log := mustRead(t, logPath)
	if !regexp.MustCompile(`msg="copying a table in chunks" .*pgbench_accounts.* chunks=9 key=aid`).MatchString(log) {
		t.Errorf("load log does not say pgbench_accounts was copied in chunks:\n%s", log)
	}
	runs := regexp.MustCompile(`msg="resuming initial load" .* same_snapshot=(\w+) chunks_kept=(\d+)`).FindAllStringSubmatch(log, -1)
	if len(runs) != resumes {
		t.Fatalf("load log says it resumed %d times, want %d:\n%s", len(runs), resumes, log)
	}
	if !interrupted {
		return
	}
	if r := runs[0]; r[1] != "false" || r[2] != "0" {
		t.Errorf("run 2, after the source instance restarted: same_snapshot=%s chunks_kept=%s, want false and 0", r[1], r[2])
	}
	if r := runs[1]; r[1] != "true" || r[2] == "0" {
		t.Errorf("run 3, the source instance holding the snapshot: same_snapshot=%s chunks_kept=%s, want true and some", r[1], r[2])
	}
	if !strings.Contains(log, "table copy failed, trying again") {
		t.Errorf("load log does not show the copy cut by the target's restart tried again:\n%s", log)
	}
	// The chunks done when the target stopped, and when run 2 was killed,
	// were not copied again.
	after := chunksDone()
	for _, c := range []struct{ when, done string }{{"run 2 was killed", killed}, {"the target stopped", before}} {
		if c.done == "" || !containsAll(after, strings.Split(c.done, ", ")) {
			t.Errorf("chunks of pgbench_accounts done when %s: %q; after the load: %q; want them kept", c.when, c.done, after)
		}
	}
}

// containsAll reports whether s contains every one of parts.
func containsAll(s string, parts []string) bool {
	for _, p := range parts {
		if !strings.Contains(s, p) {
			return false
		}
	}
	return true
}
