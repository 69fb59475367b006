package store_test

import (
	"context"
	"database/sql"
	"testing"
	"time"

	"github.com/pagarme/teleport/database/dbtest"
	"github.com/pagarme/teleport/database/store"
)

// execSQL runs statements that set up a test's rows.
func execSQL(t *testing.T, db *sql.DB, q string, args ...any) {
	t.Helper()
	if _, err := db.Exec(q, args...); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}

// insertTick records a tick of the current snapshot, dated ago.
func insertTick(t *testing.T, db *sql.DB, ago time.Duration) int64 {
	t.Helper()
	var id int64
	err := db.QueryRow(`INSERT INTO teleport.tick (snapshot, created_at)
		VALUES (pg_current_snapshot(), now() - $1 * interval '1 second') RETURNING id`, ago.Seconds()).Scan(&id)
	if err != nil {
		t.Fatalf("insert tick: %v", err)
	}
	return id
}

// insertTarget records a target whose batches 1..next-1 were cut from tick,
// each with events 10*seq and tick time ago(seq).
func insertTarget(t *testing.T, db *sql.DB, name, schemaRegex string, tick, next, acked, applied int64, ago func(seq int64) time.Duration) {
	t.Helper()
	execSQL(t, db, `WITH g AS (INSERT INTO teleport.target (name, schema_regex, table_regex) VALUES ($1, $2, '^.*$')),
		c AS (INSERT INTO teleport.cursor (target, tick, next_seq) VALUES ($1, $3, $4))
		INSERT INTO teleport.ack (target, acked_seq, applied_seq) VALUES ($1, $5, $6)`, name, schemaRegex, tick, next, acked, applied)
	for seq := int64(1); seq < next; seq++ {
		execSQL(t, db, `INSERT INTO teleport.batch (target, seq, from_tick, to_tick, events, nrows, chunk_rows, schema_regex, table_regex, tick_time)
			VALUES ($1, $2, $3, $3, $4::int, $4::int, 1000, '^.*$', '^.*$', now() - $5 * interval '1 second')`,
			name, seq, tick, 10*seq, ago(seq).Seconds())
	}
}

func insertEvent(t *testing.T, db *sql.DB, schema string, origin any) {
	t.Helper()
	execSQL(t, db, `INSERT INTO teleport.event (relid, schema_name, table_name, op, origin, nrows, data)
		VALUES (0, $1, 't', 'I', $2, 1, '[{"id":1}]')`, schema, origin)
}

func TestTargetStatuses(t *testing.T) {
	t.Parallel()
	db, _ := dbtest.Migrated(t)
	ctx := context.Background()
	if got, err := store.TargetStatuses(ctx, db); err != nil || len(got) != 0 {
		t.Fatalf("TargetStatuses(no targets) = %+v, %v; want none", got, err)
	}

	old := insertTick(t, db, time.Hour)
	byAge := func(seq int64) time.Duration { return time.Duration(100-10*seq) * time.Minute }
	// behind: batches 1..5 cut, 1..3 stored, 1..2 applied: batch 3 is the
	// oldest not applied, cut 70 minutes ago.
	insertTarget(t, db, "behind", "^.*$", old, 6, 3, 2, byAge)
	recent := insertTick(t, db, 30*time.Second)
	// fresh: nothing cut yet, but an event it takes was written after its
	// last tick, 30 seconds ago.
	insertTarget(t, db, "fresh", "^public$", recent, 1, 0, 0, byAge)
	// filtered: the events since its last tick are not for it: another
	// schema, or echoes of changes it sent.
	insertTarget(t, db, "filtered", "^other$", recent, 1, 0, 0, byAge)
	insertEvent(t, db, "public", nil)
	insertEvent(t, db, "other", "filtered")
	// caught: every batch applied, and its last tick came after every event.
	insertTarget(t, db, "caught", "^.*$", insertTick(t, db, 0), 3, 2, 2, byAge)

	got, err := store.TargetStatuses(ctx, db)
	if err != nil {
		t.Fatalf("TargetStatuses: %v", err)
	}
	type want struct {
		name                 string
		last, acked, applied int64
		unsent, pending      int64
		lagMin, lagMax       time.Duration
	}
	wants := []want{
		{"behind", 5, 3, 2, 2, 40 + 50, 70 * time.Minute, 71 * time.Minute},
		{"caught", 2, 2, 2, 0, 0, 0, 0},
		{"filtered", 0, 0, 0, 0, 0, 0, 0},
		{"fresh", 0, 0, 0, 0, 0, 30 * time.Second, 90 * time.Second},
	}
	if len(got) != len(wants) {
		t.Fatalf("TargetStatuses = %+v, want %d targets", got, len(wants))
	}
	for i, w := range wants {
		g := got[i]
		if g.Name != w.name || g.LastSeq != w.last || g.AckedSeq != w.acked || g.AppliedSeq != w.applied ||
			g.UnsentBatches() != w.unsent || g.PendingEvents != w.pending || g.Lag < w.lagMin || g.Lag > w.lagMax {
			t.Errorf("TargetStatuses()[%d] = %+v (unsent %d), want %+v", i, g, g.UnsentBatches(), w)
		}
		if g.LastTickAt.IsZero() {
			t.Errorf("TargetStatuses()[%d].LastTickAt is zero, want the last tick's time", i)
		}
	}
}

func TestNow(t *testing.T) {
	t.Parallel()
	db, _ := dbtest.Migrated(t)
	now, err := store.Now(context.Background(), db)
	if err != nil {
		t.Fatalf("Now: %v", err)
	}
	if d := time.Since(now); d < -time.Minute || d > time.Minute {
		t.Errorf("Now() = %v, want within a minute of this host's %v", now, time.Now())
	}
}

func TestChunkTickTime(t *testing.T) {
	t.Parallel()
	db, _ := dbtest.Migrated(t)
	ctx := context.Background()
	storeChunk(t, db, chunk("a", 1, 0, false))
	storeChunk(t, db, chunk("a", 1, 1, true))
	got, ok, err := store.ChunkTickTime(ctx, db, "a", 1)
	if err != nil || !ok || !got.Equal(chunk("a", 1, 0, false).TickTime) {
		t.Errorf("ChunkTickTime(a, 1) = %v, %v, %v; want %v, true, nil", got, ok, err, chunk("a", 1, 0, false).TickTime)
	}
	if _, ok, err := store.ChunkTickTime(ctx, db, "a", 2); ok || err != nil {
		t.Errorf("ChunkTickTime(a, 2) = _, %v, %v; want false, nil: not stored", ok, err)
	}
}
