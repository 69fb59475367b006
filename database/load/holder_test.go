package load

import (
	"context"
	"database/sql"
	"errors"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/pagarme/teleport/database/dbtest"
)

// TestHolder: a held snapshot is given again until released, replaced when
// fresh or when its session died, kept while a load command holds the
// load's lock, and let go once none has for the idle time.
func TestHolder(t *testing.T) {
	ctx := context.Background()
	c := dbtest.Shared(t)
	db, name := c.NewDB(t)
	h := NewHolder(db, []string{"dst"}, time.Minute, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if _, _, _, _, err := h.Hold(ctx, "nope", false); !errors.Is(err, ErrNoSuchTarget) {
		t.Fatalf("Hold(nope) = %v, want ErrNoSuchTarget", err)
	}
	reqCtx, cancel := context.WithCancel(ctx)
	id, text, _, reused, err := h.Hold(reqCtx, "dst", false)
	cancel() // the request that asked ends; the snapshot stays
	if err != nil || reused || id == "" || text == "" {
		t.Fatalf("first Hold = %q %q reused %v, %v", id, text, reused, err)
	}
	imports := func(id string) bool {
		return InSnapshot(ctx, db, id, func(*sql.Tx) error { return nil }) == nil
	}
	if !imports(id) {
		t.Fatal("the held snapshot cannot be imported after the request that asked for it ended")
	}
	id2, text2, _, reused, err := h.Hold(ctx, "dst", false)
	if err != nil || !reused || id2 != id || text2 != text {
		t.Errorf("Hold again = %q reused %v (%v), want %q reused", id2, reused, err, id)
	}
	id3, _, _, reused, err := h.Hold(ctx, "dst", true)
	if err != nil || reused || id3 == id {
		t.Errorf("Hold fresh = %q reused %v (%v), want a new one", id3, reused, err)
	}
	if imports(id) {
		t.Error("the replaced snapshot can still be imported")
	}

	// Its session ends (a restart, a timeout): the next Hold exports anew.
	c.AdminExec(t, name, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
		WHERE datname = current_database() AND state = 'idle in transaction'`)
	id4, _, _, reused, err := h.Hold(ctx, "dst", false)
	if err != nil || reused || id4 == id3 || !imports(id4) {
		t.Errorf("Hold after its session ended = %q reused %v (%v), want a new one", id4, reused, err)
	}

	// Kept while a load runs (its lock held), however long; let go a
	// minute after.
	release, err := LockLoad(ctx, db, "dst")
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	h.check(ctx, now)
	h.check(ctx, now.Add(time.Hour))
	release()
	h.check(ctx, now.Add(2*time.Hour))
	if !imports(id4) {
		t.Fatal("the snapshot was let go while a load ran")
	}
	h.check(ctx, now.Add(2*time.Hour+59*time.Second))
	if !imports(id4) {
		t.Fatal("the snapshot was let go before the idle time")
	}
	h.check(ctx, now.Add(2*time.Hour+time.Minute))
	if imports(id4) {
		t.Error("the snapshot is still held a minute after the last load ran")
	}
	if h.Release("dst") {
		t.Error("Release after the idle release reports a snapshot")
	}
	if _, _, _, _, err := h.Hold(ctx, "dst", false); err != nil || !h.Release("dst") {
		t.Errorf("Hold then Release: %v", err)
	}
}
