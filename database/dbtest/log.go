package dbtest

import (
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
)

// Logger returns a *slog.Logger, at Debug level, writing each record as a text line through
// t.Log, so a test's output holds what the code under test logged. Records logged after the test
// ended (by a goroutine still winding down) are dropped instead of panicking.
func Logger(t testing.TB) *slog.Logger {
	w := &tbWriter{t: t}
	t.Cleanup(w.close)
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{
		Level: slog.LevelDebug,
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey && len(groups) == 0 {
				return slog.String(slog.TimeKey, a.Value.Time().Format("15:04:05.000"))
			}
			return a
		},
	}))
}

// tbWriter writes to t.Log until the test's cleanup.
type tbWriter struct {
	mu   sync.Mutex
	t    testing.TB
	done bool
}

// Write logs p through t.Log, or drops it once the test has ended. It never fails.
func (w *tbWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	// Holding mu while logging keeps close from returning, and so the test from completing, mid-line.
	if !w.done {
		w.t.Log(strings.TrimSuffix(string(p), "\n"))
	}
	return len(p), nil
}

func (w *tbWriter) close() {
	w.mu.Lock()
	w.done = true
	w.mu.Unlock()
}

// WaitFor calls cond at once and then every 20ms until it returns true, and fails the test with
// msg if it has not within timeout. Call it from the test's goroutine.
func WaitFor(t testing.TB, timeout time.Duration, msg string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("dbtest: WaitFor: %s (still false after %v)", msg, timeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
