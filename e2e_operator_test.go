package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

// status runs -mode status with cfg and args, and returns its output and
// whether it found replication healthy (exit status 0 against 2); any other
// failure fails the test.
func status(t *testing.T, cfg string, args ...string) (string, bool) {
	t.Helper()
	var out bytes.Buffer
	err := run(context.Background(), append([]string{"-config", cfg, "-mode", "status"}, args...), &out, testWriter{t})
	t.Logf("-mode status %s: %v\n%s", strings.Join(args, " "), err, out.String())
	switch {
	case err == nil:
		return out.String(), true
	case errors.As(err, new(unhealthy)):
		return out.String(), false
	}
	t.Fatalf("-mode status: %v\n%s", err, out.String())
	return "", false
}

// TestE2E_StatusMode: -mode status tells a healthy pair (exit 0) from one
// with a held batch (exit 2), from the instance's /status and, with the
// instance stopped, from its database.
func TestE2E_StatusMode(t *testing.T) {
	t.Parallel()
	p := newPair(t, "", "CREATE TABLE t (id int PRIMARY KEY, v text)")
	execSQL(t, p.srcDB, `INSERT INTO public.t VALUES (1, 'one')`)
	p.waitSame(t, 30*time.Second, "t")

	out, ok := status(t, p.srcCfg, "-json")
	var rep statusReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("-json: %v\n%s", err, out)
	}
	if !ok || !rep.Healthy || !rep.Instance.Answering || len(rep.Status.Targets) != 1 || rep.Status.Targets[0].LastSeq == 0 {
		t.Errorf("source, healthy pair: exit 0 %v, report %+v", ok, rep)
	}
	if out, ok := status(t, p.dstCfg); !ok || !strings.Contains(out, "source src: ") || !strings.HasSuffix(out, "healthy\n") {
		t.Errorf("target, healthy pair: exit 0 %v, output:\n%s", ok, out)
	}

	// A row the target has already: the next batch is held.
	execSQL(t, p.dstDB, `INSERT INTO public.t VALUES (2, 'target')`)
	execSQL(t, p.srcDB, `INSERT INTO public.t VALUES (2, 'source')`)
	deadline := time.Now().Add(30 * time.Second)
	for {
		out, ok := status(t, p.dstCfg)
		if !ok {
			if !strings.Contains(out, "HELD") || !strings.Contains(out, "duplicate key") {
				t.Errorf("held batch: output lacks the batch and its error:\n%s", out)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no held batch reported after 30 s:\n%s", out)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err := p.stopDst(); err != nil {
		t.Fatal(err)
	}
	if out, ok := status(t, p.dstCfg); ok || !strings.Contains(out, "not answering") || !strings.Contains(out, "HELD") {
		t.Errorf("held batch, target stopped: exit 0 %v, output:\n%s", ok, out)
	}
	// The source has a change for the stopped target: its sends fail, and
	// its status says why.
	execSQL(t, p.srcDB, `INSERT INTO public.t VALUES (10, 'ten')`)
	deadline = time.Now().Add(30 * time.Second)
	for {
		out, ok := status(t, p.srcCfg, "-max-lag", "1ms")
		if !ok && strings.Contains(out, "sending FAILS since") && strings.Contains(out, "target dst: sending fails since") &&
			strings.Contains(out, "target unreachable") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("target stopped: the source's status did not report the failing sends in 30 s:\n%s", out)
		}
		time.Sleep(100 * time.Millisecond)
	}

	execSQL(t, p.dstDB, `DELETE FROM public.t WHERE id = 2`)
	p.startDst(t)
	p.waitSame(t, 30*time.Second, "t")
	if err := p.stopSrc(); err != nil {
		t.Fatal(err)
	}
	out, ok = status(t, p.srcCfg)
	if !ok || !strings.Contains(out, "not answering") || !strings.Contains(out, "target dst: ") {
		t.Errorf("healthy pair, source stopped: exit 0 %v, output:\n%s", ok, out)
	}
	if out, ok := status(t, p.dstCfg, "-max-lag", "1ms"); !ok {
		t.Errorf("caught up, -max-lag 1ms: exit 0 %v, output:\n%s", ok, out)
	}
	// A change the stopped source has not cut: it lags.
	execSQL(t, p.srcDB, `INSERT INTO public.t VALUES (3, 'three')`)
	time.Sleep(10 * time.Millisecond)
	if out, ok := status(t, p.srcCfg, "-max-lag", "5ms"); ok || !strings.Contains(out, "target dst lags") {
		t.Errorf("a change not sent, -max-lag 5ms: exit 0 %v, output:\n%s", ok, out)
	}
}

// uninstallRun runs -mode uninstall with cfg and args.
func uninstallRun(t *testing.T, cfg string, args ...string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	err := run(context.Background(), append([]string{"-config", cfg, "-mode", "uninstall"}, args...), &out, testWriter{t})
	t.Logf("-mode uninstall %s: %v\n%s", strings.Join(args, " "), err, out.String())
	return out.String(), err
}

// TestE2E_Uninstall: -mode uninstall refuses while a change is in flight,
// then removes every trace of Teleport from the source (the application's
// writes go on as before, with no trigger left) and from the target, where
// -enable-triggers enables the triggers replication created disabled; run
// again, it finds nothing to do.
func TestE2E_Uninstall(t *testing.T) {
	t.Parallel()
	p := newPair(t, "", "CREATE TABLE t (id int PRIMARY KEY, v text)")
	execSQL(t, p.srcDB, `CREATE TABLE public.audit (id int);
		CREATE FUNCTION public.audit_t() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN INSERT INTO public.audit VALUES (NEW.id); RETURN NEW; END $$;
		CREATE TRIGGER audit_t AFTER INSERT ON public.t FOR EACH ROW EXECUTE FUNCTION public.audit_t()`)
	execSQL(t, p.srcDB, `INSERT INTO public.t VALUES (1, 'one')`)
	p.waitSame(t, 30*time.Second, "t", "audit")

	// The instance runs: refused.
	if out, err := uninstallRun(t, p.srcCfg); err == nil || !strings.Contains(err.Error(), "stop it first") || out != "" {
		t.Fatalf("uninstall while the instance runs = %v, output %q: want a refusal", err, out)
	}
	// A change the target has not been sent yet: refused, nothing removed.
	if err := p.stopSrc(); err != nil {
		t.Fatal(err)
	}
	execSQL(t, p.srcDB, `INSERT INTO public.t VALUES (2, 'two')`)
	if out, err := uninstallRun(t, p.srcCfg); err == nil || !strings.Contains(err.Error(), "target dst has not") || out != "" {
		t.Fatalf("uninstall with a change in flight = %v, output %q: want a refusal naming the target", err, out)
	}
	p.startSrc(t)
	p.waitSame(t, 30*time.Second, "t", "audit")
	if err := p.stopSrc(); err != nil {
		t.Fatal(err)
	}

	// The target runs and says it has applied everything.
	out, err := uninstallRun(t, p.srcCfg)
	if err != nil || !strings.Contains(out, "dropped capture trigger public.t teleport_capture_") || !strings.Contains(out, "dropped schema teleport") {
		t.Fatalf("uninstall on the source = %v, output:\n%s", err, out)
	}
	var left int
	execSQLScan(t, p.srcDB, `SELECT (SELECT count(*) FROM pg_trigger WHERE tgname LIKE 'teleport%')
		+ (SELECT count(*) FROM pg_namespace WHERE nspname = 'teleport')
		+ (SELECT count(*) FROM pg_proc WHERE proname LIKE 'capture%' OR proname = 'catalog_snapshot')`, &left)
	if left != 0 {
		t.Errorf("%d triggers, schemas or functions of Teleport's left on the source", left)
	}
	execSQL(t, p.srcDB, `INSERT INTO public.t VALUES (3, 'three'); UPDATE public.t SET v = 'uno' WHERE id = 1;
		DELETE FROM public.t WHERE id = 2; TRUNCATE public.audit`)

	if err := p.stopDst(); err != nil {
		t.Fatal(err)
	}
	out, err = uninstallRun(t, p.dstCfg, "-enable-triggers")
	if err != nil || !strings.Contains(out, "enabled trigger public.t audit_t") || !strings.Contains(out, "dropped schema teleport") {
		t.Fatalf("uninstall on the target = %v, output:\n%s", err, out)
	}
	var enabled string
	execSQLScan(t, p.dstDB, `SELECT tgenabled FROM pg_trigger WHERE tgname = 'audit_t'`, &enabled)
	if enabled != "O" {
		t.Errorf("trigger audit_t on the target: tgenabled %q, want O", enabled)
	}

	for _, cfg := range []string{p.srcCfg, p.dstCfg} {
		if out, err := uninstallRun(t, cfg, "-enable-triggers"); err != nil || !strings.HasPrefix(out, "nothing to remove") {
			t.Errorf("second uninstall = %v, output %q: want nothing to remove", err, out)
		}
	}
}
