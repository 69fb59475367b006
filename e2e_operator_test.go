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
