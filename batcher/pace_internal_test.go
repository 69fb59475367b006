package batcher

import (
	"testing"
	"time"
)

// While changes trickle in, the next pass comes after a fifth of the
// interval; under a busy stream, after the interval. A pass that cuts
// nothing is followed quickly for quickFor after a batch, then at the
// interval.
func TestNextPass(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	type pass struct {
		res   Result
		since time.Duration
		at    time.Time
		want  time.Duration
	}
	tests := []struct {
		name     string
		interval time.Duration
		passes   []pass
	}{
		{"nothing ever cut", 100 * time.Millisecond, []pass{{Result{}, 100 * time.Millisecond, t0, 100 * time.Millisecond}}},
		{"a trickle: 50 events in 100 ms", 100 * time.Millisecond, []pass{{Result{Batches: 1, Events: 50}, 100 * time.Millisecond, t0, 20 * time.Millisecond}}},
		{"a busy stream: 2000 events in 100 ms", 100 * time.Millisecond, []pass{{Result{Batches: 1, Events: 2000}, 100 * time.Millisecond, t0, 100 * time.Millisecond}}},
		{"a fifth of a short interval is raised to 10 ms", 30 * time.Millisecond, []pass{{Result{Batches: 1, Events: 1}, 30 * time.Millisecond, t0, 10 * time.Millisecond}}},
		{"never more than the interval", 5 * time.Millisecond, []pass{{Result{Batches: 1, Events: 1}, 5 * time.Millisecond, t0, 5 * time.Millisecond}}},
		{"no time measured", 100 * time.Millisecond, []pass{{Result{Batches: 1, Events: 1}, 0, t0, 100 * time.Millisecond}}},
		{"empty passes after a batch: quick until quickFor has passed", 100 * time.Millisecond, []pass{
			{Result{Batches: 1, Events: 1}, 100 * time.Millisecond, t0, 20 * time.Millisecond},
			{Result{}, 20 * time.Millisecond, t0.Add(20 * time.Millisecond), 20 * time.Millisecond},
			{Result{}, 20 * time.Millisecond, t0.Add(quickFor - time.Millisecond), 20 * time.Millisecond},
			{Result{}, 20 * time.Millisecond, t0.Add(quickFor), 100 * time.Millisecond},
		}},
		{"a new batch starts the quick time again", 100 * time.Millisecond, []pass{
			{Result{Batches: 1, Events: 1}, 100 * time.Millisecond, t0, 20 * time.Millisecond},
			{Result{Batches: 1, Events: 1}, 20 * time.Millisecond, t0.Add(quickFor / 2), 20 * time.Millisecond},
			{Result{}, 20 * time.Millisecond, t0.Add(quickFor), 20 * time.Millisecond},
			{Result{}, 20 * time.Millisecond, t0.Add(quickFor * 3 / 2), 100 * time.Millisecond},
		}},
		{"empty passes after a busy stream are quick too", 100 * time.Millisecond, []pass{
			{Result{Batches: 1, Events: 2000}, 100 * time.Millisecond, t0, 100 * time.Millisecond},
			{Result{}, 100 * time.Millisecond, t0.Add(100 * time.Millisecond), 20 * time.Millisecond},
		}},
	}
	for _, tt := range tests {
		w := &Worker{interval: tt.interval}
		for i, p := range tt.passes {
			if got := w.nextPass(p.res, p.since, p.at); got != p.want {
				t.Errorf("%s, pass %d: nextPass = %v, want %v", tt.name, i+1, got, p.want)
			}
		}
	}
}
