package main

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"
)

func TestRepeatHandler(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	now := time.Unix(0, 0)
	log := slog.New(newRepeatHandler(slog.NewTextHandler(&buf, nil), time.Minute, func() time.Time { return now })).With("worker", "batcher")
	other := log.With("worker", "vacuum")
	for range 5 {
		log.Error("pass failed", "err", errors.New("connection refused"))
		log.Info("pass done") // below Warn: never held back
	}
	other.Error("pass failed", "err", errors.New("connection refused"))
	log.Error("pass failed", "err", errors.New("another error"))
	now = now.Add(time.Minute)
	log.Error("pass failed", "err", errors.New("connection refused"))

	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	var errs []string
	infos := 0
	for _, l := range lines {
		switch {
		case strings.Contains(l, "level=ERROR"):
			errs = append(errs, l)
		case strings.Contains(l, "level=INFO"):
			infos++
		}
	}
	if infos != 5 {
		t.Errorf("info lines = %d, want all 5", infos)
	}
	if len(errs) != 4 {
		t.Fatalf("error lines = %d, want 4 (first, other worker, other error, after a minute):\n%s", len(errs), buf.String())
	}
	if strings.Contains(errs[0], "repeats") || !strings.Contains(errs[3], "repeats=4") {
		t.Errorf("first line %q, line after a minute %q: want repeats=4 on the second only", errs[0], errs[3])
	}
	if !strings.Contains(errs[1], "worker=vacuum") || !strings.Contains(errs[2], "another error") {
		t.Errorf("lines %q and %q: want the other worker's and the other error's first lines", errs[1], errs[2])
	}
}
