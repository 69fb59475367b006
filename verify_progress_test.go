package main

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
	"time"
)

func TestVerifyProgress(t *testing.T) {
	p := &verifyProgress{target: "dst", tables: 2, size: 300 << 20, start: time.Now().Add(-10 * time.Second)}
	p.begin("public.small", 100<<20)
	p.step(100<<20, 100<<20)
	p.end()
	p.begin("public.big", 200<<20)
	p.step(50<<20, 200<<20)
	n := p.now()
	if n.tablesDone != 1 || n.done != 150<<20 || n.size != 300<<20 {
		t.Fatalf("progress = %+v, want 1 table done, 150 of 300 MiB", n)
	}
	// 150 MiB in 10 s: 15 MiB/s, 10 s left.
	if got, want := n.line("dst"), "verifying dst: 1/2 tables, 150.0 of 300.0 MiB, 15.0 MiB/s, public.big 25%, 10s left"; got != want {
		t.Errorf("line = %q, want %q", got, want)
	}
	// A table grown past its estimate grows the total, never shows over 100%.
	p.step(250<<20, 250<<20)
	if n := p.now(); n.size != 350<<20 || !strings.Contains(n.line("dst"), "public.big 100%") {
		t.Errorf("after growth: %+v, %q", n, n.line("dst"))
	}
	p.end()
	if got := p.now().line("dst"); !strings.Contains(got, "waiting for the target") {
		t.Errorf("source side done: line = %q", got)
	}

	var logBuf, live bytes.Buffer
	q := &verifyProgress{target: "dst", tables: 1, size: 10, start: time.Now()}
	q.begin("public.t", 10)
	q.step(5, 10)
	stop := q.report(&live, slog.New(slog.NewTextHandler(&logBuf, nil)), 20*time.Millisecond)
	time.Sleep(600 * time.Millisecond)
	stop()
	if !strings.Contains(logBuf.String(), "verify progress (source side)") || !strings.Contains(logBuf.String(), "table=public.t") {
		t.Errorf("progress log = %q", logBuf.String())
	}
	if !strings.Contains(live.String(), "\r\033[Kverifying dst: 0/1 tables") || !strings.HasSuffix(live.String(), "\r\033[K") {
		t.Errorf("live line = %q, want it drawn and cleared at the end", live.String())
	}
}
