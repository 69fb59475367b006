package server_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/pagarme/teleport/config"
	"github.com/pagarme/teleport/database/dbtest"
	"github.com/pagarme/teleport/database/migrate"
	"github.com/pagarme/teleport/database/schema"
	"github.com/pagarme/teleport/database/store"
	"github.com/pagarme/teleport/server"
	"github.com/pagarme/teleport/server/wire"
)

const statusToken = "status-s3cret"

// newStatusServer returns a source+target server on db, with a token.
func newStatusServer(t *testing.T, db *sql.DB) http.Handler {
	t.Helper()
	cfg := config.Default().Server
	cfg.AuthToken = statusToken
	return server.New(cfg, db, server.Info{Name: "me", Version: "v-test", Role: "source+target"}, dbtest.Logger(t)).Handler()
}

func migratedDB(t *testing.T, c *dbtest.Cluster) *sql.DB {
	t.Helper()
	db, _ := c.NewDB(t)
	if _, err := migrate.Migrate(context.Background(), db); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	return db
}

func mustExec(t *testing.T, db *sql.DB, q string, args ...any) {
	t.Helper()
	if _, err := db.Exec(q, args...); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}

// getStatus answers GET /status with its code, raw body and decoded body.
func getStatus(t *testing.T, h http.Handler) (int, string, wire.Status) {
	t.Helper()
	rec := do(h, http.MethodGet, "/status", "192.0.2.7:1", "Bearer "+statusToken)
	var st wire.Status
	if rec.Code == http.StatusOK {
		if err := json.Unmarshal(rec.Body.Bytes(), &st); err != nil {
			t.Fatalf("GET /status body %q: %v", rec.Body, err)
		}
	}
	return rec.Code, rec.Body.String(), st
}

func TestServer_StatusEmpty(t *testing.T) {
	t.Parallel()
	db := migratedDB(t, dbtest.Shared(t))
	code, body, _ := getStatus(t, newStatusServer(t, db))
	if code != http.StatusOK || !strings.Contains(body, `"targets":[]`) || !strings.Contains(body, `"sources":[]`) || !strings.Contains(body, `"loads":[]`) {
		t.Errorf("GET /status on a fresh database = %d %s, want 200 with \"targets\":[], \"sources\":[] and \"loads\":[]", code, body)
	}
}

func TestServer_StatusReplication(t *testing.T) {
	t.Parallel()
	db := migratedDB(t, dbtest.Shared(t))
	ctx := context.Background()

	// As a source: target "dst" has batches 1..4 cut (3, 5, 7, 9 events),
	// 1..3 stored and 1 applied, so batch 2, cut 120 seconds ago, is the
	// oldest not applied.
	var tick int64
	if err := db.QueryRow(`INSERT INTO teleport.tick (snapshot) VALUES (pg_current_snapshot()) RETURNING id`).Scan(&tick); err != nil {
		t.Fatalf("insert tick: %v", err)
	}
	mustExec(t, db, `WITH g AS (INSERT INTO teleport.target (name, schema_regex, table_regex) VALUES ('dst', '^.*$', '^.*$')),
		c AS (INSERT INTO teleport.cursor (target, tick, next_seq) VALUES ('dst', $1, 5))
		INSERT INTO teleport.ack (target, acked_seq, applied_seq) VALUES ('dst', 3, 1)`, tick)
	for i, ago := range []int{180, 120, 60, 30} {
		seq := i + 1
		mustExec(t, db, `INSERT INTO teleport.batch (target, seq, from_tick, to_tick, events, nrows, chunk_rows, schema_regex, table_regex, tick_time)
			VALUES ('dst', $1, $2, $2, $3::int, $3::int, 1000, '^.*$', '^.*$', now() - $4 * interval '1 second')`,
			seq, tick, 2*seq+1, ago)
	}

	// As a target: "held" applied batch 1 (tick 5 minutes ago) and batch 2,
	// stored in full, fails; "idle" applied all it sent.
	storeBatch := func(source string, seq int64, tickTime time.Time) {
		t.Helper()
		c := store.StoredChunk{Source: source, Seq: seq, Chunk: 0, Last: true, Events: 1, Rows: 1, TickTime: tickTime, Body: []byte("x")}
		if _, err := store.StoreChunk(ctx, db, c); err != nil {
			t.Fatalf("StoreChunk(%s %d): %v", source, seq, err)
		}
	}
	now := time.Now()
	storeBatch("held", 1, now.Add(-5*time.Minute))
	storeBatch("held", 2, now.Add(-4*time.Minute))
	if err := store.MarkBatchApplied(ctx, db, "held", 1, now.Add(-5*time.Minute)); err != nil {
		t.Fatal(err)
	}
	if err := store.RecordApplyError(ctx, db, "held", 2, "insert into public.t: duplicate key value violates unique constraint"); err != nil {
		t.Fatal(err)
	}
	if err := store.SkipBatch(ctx, db, "held", 2); err != nil {
		t.Fatal(err)
	}
	left := schema.Unsupported{Object: `index "public"."t_code"`, Reason: "NULLS NOT DISTINCT needs PostgreSQL 15; this target runs PostgreSQL 13"}
	if err := schema.SaveSourceSkipped(ctx, db, "held", left); err != nil {
		t.Fatal(err)
	}
	storeBatch("idle", 1, now.Add(-time.Hour))
	if err := store.MarkBatchApplied(ctx, db, "idle", 1, now.Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	// "new" has applied nothing yet: its lag runs from its waiting batch.
	storeBatch("new", 1, now.Add(-10*time.Minute))

	// The transmitter says sends to dst fail.
	since := now.Add(-time.Minute).UTC()
	cfg := config.Default().Server
	cfg.AuthToken = statusToken
	srv := server.New(cfg, db, server.Info{Name: "me", Version: "v-test", Role: "source+target", Failing: func() map[string]wire.SendFailure {
		return map[string]wire.SendFailure{"dst": {Error: "target unreachable", Since: since, Failures: 7}, "gone": {Error: "x"}}
	}}, dbtest.Logger(t))
	code, body, st := getStatus(t, srv.Handler())
	if code != http.StatusOK {
		t.Fatalf("GET /status = %d %s, want 200", code, body)
	}
	t.Logf("GET /status = %s", body)
	if strings.Contains(body, statusToken) || strings.Contains(body, dbtest.RolePassword) {
		t.Errorf("GET /status = %s, holds a secret", body)
	}
	if st.Name != "me" || st.Role != "source+target" {
		t.Errorf("GET /status = %+v, want name me, role source+target", st)
	}

	if len(st.Targets) != 1 {
		t.Fatalf("GET /status targets = %+v, want dst only", st.Targets)
	}
	g := st.Targets[0]
	if g.Name != "dst" || g.LastSeq != 4 || g.AckedSeq != 3 || g.AppliedSeq != 1 || g.UnsentBatches != 1 || g.PendingEvents != 9 {
		t.Errorf("GET /status targets[0] = %+v, want dst, last 4, acked 3, applied 1, 1 unsent batch of 9 events", g)
	}
	if g.LagSeconds < 120 || g.LagSeconds > 180 {
		t.Errorf("GET /status targets[0].lag_seconds = %v, want about 120: batch 2's tick time", g.LagSeconds)
	}
	if f := g.SendFailure; f == nil || f.Error != "target unreachable" || !f.Since.Equal(since) || f.Failures != 7 {
		t.Errorf("GET /status targets[0].send_failure = %+v, want the transmitter's", f)
	}
	if time.Since(g.LastTickAt) > time.Minute {
		t.Errorf("GET /status targets[0].last_tick_at = %v, want the tick just taken", g.LastTickAt)
	}

	if len(st.Sources) != 3 {
		t.Fatalf("GET /status sources = %+v, want held, idle, new", st.Sources)
	}
	held, idle, fresh := st.Sources[0], st.Sources[1], st.Sources[2]
	if held.Name != "held" || held.ReceivedSeq != 2 || held.AppliedSeq != 1 || held.AppliedAt == nil ||
		!held.Held || held.HeldSeq != 2 || !strings.Contains(held.Error, "duplicate key") || held.ErrorSince == nil || held.SkipSeq != 2 {
		t.Errorf("GET /status sources[0] = %+v, want held at batch 2 with its error, skip 2", held)
	}
	if held.LagSeconds < 300 || held.LagSeconds > 360 {
		t.Errorf("GET /status sources[0].lag_seconds = %v, want about 300: batch 1's tick time", held.LagSeconds)
	}
	if len(held.SchemaSkipped) != 1 || held.SchemaSkipped[0].Object != left.Object || held.SchemaSkipped[0].Reason != left.Reason ||
		held.SchemaSkipped[0].FirstSeen.IsZero() {
		t.Errorf("GET /status sources[0].schema_skipped = %+v, want %+v with when it was seen", held.SchemaSkipped, left)
	}
	if idle.SchemaSkipped == nil || len(idle.SchemaSkipped) != 0 {
		t.Errorf("GET /status sources[1].schema_skipped = %#v, want empty, not null", idle.SchemaSkipped)
	}
	if idle.Name != "idle" || idle.ReceivedSeq != 1 || idle.AppliedSeq != 1 || idle.Held || idle.Error != "" ||
		idle.ErrorSince != nil || idle.LagSeconds != 0 {
		t.Errorf("GET /status sources[1] = %+v, want idle caught up, not held, lag 0", idle)
	}
	if fresh.Name != "new" || fresh.ReceivedSeq != 1 || fresh.AppliedSeq != 0 || fresh.AppliedAt != nil ||
		fresh.LagSeconds < 600 || fresh.LagSeconds > 660 {
		t.Errorf("GET /status sources[2] = %+v, want new with nothing applied, lag about 600", fresh)
	}

	// The JSON keys, as documented.
	var raw map[string]any
	if err := json.Unmarshal([]byte(body), &raw); err != nil {
		t.Fatal(err)
	}
	keys := map[string][]string{
		"targets": {"name", "last_seq", "acked_seq", "applied_seq", "unsent_batches", "pending_events", "lag_seconds", "last_tick_at", "schema_skipped", "send_failure"},
		"sources": {"name", "received_seq", "applied_seq", "applied_at", "held", "held_seq", "error", "error_since", "skip_seq", "lag_seconds", "schema_skipped", "receiving"},
	}
	for list, want := range keys {
		items, _ := raw[list].([]any)
		if len(items) == 0 {
			t.Fatalf("GET /status %s = %v, want a list", list, raw[list])
		}
		item, _ := items[0].(map[string]any)
		for _, k := range want {
			if _, ok := item[k]; !ok {
				t.Errorf("GET /status %s[0] = %v, has no key %q", list, item, k)
			}
		}
		if len(item) != len(want) {
			t.Errorf("GET /status %s[0] has keys %v, want exactly %v", list, item, want)
		}
	}

	// /metrics carries the same figures.
	rec := do(srv.Handler(), http.MethodGet, "/metrics", "192.0.2.7:1", "Bearer "+statusToken)
	for _, want := range []string{
		"teleport_up 1\n",
		`teleport_target_last_seq{target="dst"} 4` + "\n",
		`teleport_target_applied_seq{target="dst"} 1` + "\n",
		`teleport_source_held{source="held"} 1` + "\n",
		`teleport_source_held{source="idle"} 0` + "\n",
		`teleport_source_schema_skipped{source="held"} 1` + "\n",
		"# TYPE teleport_target_lag_seconds gauge\n",
		`teleport_target_send_failing_seconds{target="dst"} 6`, // a minute, 60.x seconds
	} {
		if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), want) {
			t.Errorf("GET /metrics = %d, has no line %q:\n%s", rec.Code, want, rec.Body)
		}
	}
}

func TestServer_StatusDatabaseDown(t *testing.T) {
	t.Parallel()
	c := dbtest.Start(t)
	db := migratedDB(t, c)
	h := newStatusServer(t, db)
	if code, body, _ := getStatus(t, h); code != http.StatusOK {
		t.Fatalf("GET /status with the database up = %d %s, want 200", code, body)
	}
	c.Stop(t, "immediate")
	db.SetMaxIdleConns(0) // drop pooled connections so the status dials the stopped server
	code, body, _ := getStatus(t, h)
	var e wire.ErrorResponse
	if err := json.Unmarshal([]byte(body), &e); err != nil || code != http.StatusServiceUnavailable ||
		!strings.Contains(e.Error, "replication status") {
		t.Errorf("GET /status with the database stopped = %d %s, want 503 with a JSON error naming the replication status", code, body)
	}
	if rec := do(h, http.MethodGet, "/metrics", "192.0.2.7:1", "Bearer "+statusToken); !strings.Contains(rec.Body.String(), "teleport_up 0\n") {
		t.Errorf("GET /metrics with the database stopped = %d %s, want teleport_up 0", rec.Code, rec.Body)
	}
}

// An idle source takes no tick, so a target's last tick may be an hour old
// when a change arrives: its lag is no more than the time since the batcher
// last found nothing to cut, not the hour.
func TestServer_StatusLagAfterIdle(t *testing.T) {
	t.Parallel()
	db := migratedDB(t, dbtest.Shared(t))
	var tick int64
	if err := db.QueryRow(`INSERT INTO teleport.tick (snapshot, created_at) VALUES (pg_current_snapshot(), now() - interval '1 hour') RETURNING id`).Scan(&tick); err != nil {
		t.Fatalf("insert tick: %v", err)
	}
	mustExec(t, db, `WITH g AS (INSERT INTO teleport.target (name, schema_regex, table_regex) VALUES ('dst', '^.*$', '^.*$')),
		c AS (INSERT INTO teleport.cursor (target, tick, next_seq) VALUES ('dst', $1, 3))
		INSERT INTO teleport.ack (target, acked_seq, applied_seq) VALUES ('dst', 2, 2)`, tick)
	mustExec(t, db, `INSERT INTO teleport.event (relid, schema_name, table_name, op, nrows, data) VALUES (0, 'public', 't', 'I', 1, '[]')`)
	lag := func(quiet func() time.Time) float64 {
		cfg := config.Default().Server
		cfg.AuthToken = statusToken
		h := server.New(cfg, db, server.Info{Name: "me", Role: "source", Quiet: quiet}, dbtest.Logger(t)).Handler()
		code, body, st := getStatus(t, h)
		if code != http.StatusOK || len(st.Targets) != 1 {
			t.Fatalf("GET /status = %d %s", code, body)
		}
		return st.Targets[0].LagSeconds
	}
	if got := lag(nil); got < 3500 {
		t.Errorf("lag without the batcher's word = %v, want the hour since the last tick", got)
	}
	if got := lag(func() time.Time { return time.Now().Add(-2 * time.Second) }); got < 1.9 || got > 60 {
		t.Errorf("lag when the batcher found nothing 2 s ago = %v, want about 2", got)
	}
}
