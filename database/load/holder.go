package load

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// Holder keeps, on a source instance, the snapshot each target's initial
// load reads in, from one run of the load command to the next: a run that
// resumes a load reads in the same snapshot, so the tables and chunks the
// runs before copied stay good. A snapshot lives while the transaction that
// exported it is open, and the load command's own session ends with it.
// A held snapshot is let go when its load is finished, when no load command
// has run for it for HoldIdle (it holds back vacuum on the source as any
// long transaction does), and when the instance stops.
type Holder struct {
	db      *sql.DB
	log     *slog.Logger
	targets map[string]bool
	idle    time.Duration
	mu      sync.Mutex
	held    map[string]*held
}

type held struct {
	snap   *Snapshot
	since  time.Time
	unused time.Time // since when no load command of the target has run; zero while one runs
}

// HoldIdle is how long a held snapshot outlives the last run of its load.
const HoldIdle = 15 * time.Minute

// NewHolder returns the holder of the snapshots of targets' loads.
func NewHolder(db *sql.DB, targets []string, idle time.Duration, log *slog.Logger) *Holder {
	h := &Holder{db: db, log: log.With("worker", "load-snapshots"), targets: map[string]bool{}, idle: idle, held: map[string]*held{}}
	for _, t := range targets {
		h.targets[t] = true
	}
	return h
}

// ErrNoSuchTarget means a hold was asked for a target this instance lacks.
var ErrNoSuchTarget = fmt.Errorf("no such target")

// Hold returns the snapshot held for target's load and since when, and
// whether it was held already; fresh, or a held snapshot whose transaction
// ended, exports a new one.
func (h *Holder) Hold(ctx context.Context, target string, fresh bool) (id, text string, since time.Time, reused bool, err error) {
	if !h.targets[target] {
		return "", "", time.Time{}, false, fmt.Errorf("%w %q in this instance's targets", ErrNoSuchTarget, target)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if c := h.held[target]; c != nil {
		if !fresh && c.snap.alive(ctx) {
			c.unused = time.Time{}
			return c.snap.ID, c.snap.Text, c.since, true, nil
		}
		if !fresh {
			h.log.Warn("the held snapshot of a load is gone (the database restarted, or a timeout ended its session): "+
				"the load's unfinished tables are copied again from the start", "target", target, "held_since", c.since)
		}
		c.snap.Release()
		delete(h.held, target)
	}
	// The transaction outlives the request that asked for it.
	snap, err := ExportSnapshot(context.WithoutCancel(ctx), h.db)
	if err != nil {
		return "", "", time.Time{}, false, err
	}
	c := &held{snap: snap, since: time.Now()}
	h.held[target] = c
	h.log.Info("holding the snapshot of a load until it finishes, or for "+h.idle.String()+" after its last run", "target", target)
	return snap.ID, snap.Text, c.since, false, nil
}

// Release lets go of the snapshot held for target's load, if any, and
// reports whether there was one.
func (h *Holder) Release(target string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	c := h.held[target]
	if c == nil {
		return false
	}
	c.snap.Release()
	delete(h.held, target)
	h.log.Info("released the snapshot of a load", "target", target, "held_for", time.Since(c.since).Round(time.Second))
	return true
}

// holdCheckEvery is how often Run looks at the held snapshots.
const holdCheckEvery = 30 * time.Second

// Run lets go, every holdCheckEvery, of the snapshots whose load no command
// has run for idle (a load command holds the load's lock while it runs),
// and of all of them when ctx is done.
func (h *Holder) Run(ctx context.Context) error {
	tick := time.NewTicker(holdCheckEvery)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			h.mu.Lock()
			for target, c := range h.held {
				c.snap.Release()
				delete(h.held, target)
			}
			h.mu.Unlock()
			return nil
		case <-tick.C:
			h.check(ctx, time.Now())
		}
	}
}

func (h *Holder) check(ctx context.Context, now time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for target, c := range h.held {
		var running bool
		if err := h.db.QueryRowContext(ctx, `SELECT EXISTS (`+query("load_lock_holder")+`)`, loadLockKey, target).Scan(&running); err != nil {
			continue // the database is away: look again next time
		}
		switch {
		case running:
			c.unused = time.Time{}
		case c.unused.IsZero():
			c.unused = now
		case now.Sub(c.unused) >= h.idle:
			c.snap.Release()
			delete(h.held, target)
			h.log.Warn("released the snapshot of an unfinished load: no load command ran for it for "+h.idle.String()+
				"; the next run copies the tables it had not finished from the start", "target", target)
		case !c.snap.alive(ctx):
			c.snap.Release()
			delete(h.held, target)
			h.log.Warn("the held snapshot of an unfinished load is gone (the database restarted, or a timeout ended its session): "+
				"the next run copies the tables it had not finished from the start", "target", target)
		}
	}
}
