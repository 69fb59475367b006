package batcher

import (
	"testing"
	"time"
)

// While changes trickle in, the next pass comes after a fifth of the
// interval; after an idle pass, or under a busy stream, after the interval.
func TestNextPass(t *testing.T) {
	tests := []struct {
		name     string
		interval time.Duration
		res      Result
		since    time.Duration
		want     time.Duration
	}{
		{"nothing cut", 100 * time.Millisecond, Result{}, 100 * time.Millisecond, 100 * time.Millisecond},
		{"a trickle: 50 events in 100 ms", 100 * time.Millisecond, Result{Batches: 1, Events: 50}, 100 * time.Millisecond, 20 * time.Millisecond},
		{"a busy stream: 2000 events in 100 ms", 100 * time.Millisecond, Result{Batches: 1, Events: 2000}, 100 * time.Millisecond, 100 * time.Millisecond},
		{"a fifth of a short interval is raised to 10 ms", 30 * time.Millisecond, Result{Batches: 1, Events: 1}, 30 * time.Millisecond, 10 * time.Millisecond},
		{"never more than the interval", 5 * time.Millisecond, Result{Batches: 1, Events: 1}, 5 * time.Millisecond, 5 * time.Millisecond},
		{"no time measured", 100 * time.Millisecond, Result{Batches: 1, Events: 1}, 0, 100 * time.Millisecond},
	}
	for _, tt := range tests {
		w := &Worker{interval: tt.interval}
		if got := w.nextPass(tt.res, tt.since); got != tt.want {
			t.Errorf("%s: nextPass = %v, want %v", tt.name, got, tt.want)
		}
	}
}
