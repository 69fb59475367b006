package transmitter_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"database/sql"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pagarme/teleport/config"
	"github.com/pagarme/teleport/database"
	"github.com/pagarme/teleport/database/capture"
	"github.com/pagarme/teleport/database/dbtest"
	"github.com/pagarme/teleport/database/migrate"
	"github.com/pagarme/teleport/database/schema"
	"github.com/pagarme/teleport/database/store"
	"github.com/pagarme/teleport/server/wire"
	"github.com/pagarme/teleport/transmitter"
)

func TestMain(m *testing.M) { os.Exit(dbtest.Run(m)) }

const sourceName = "src"

// source is a migrated source database with table public.t captured and
// its targets recorded.
type source struct {
	db   *sql.DB
	from map[string]int64 // target -> tick its next batch starts at
	seq  map[string]int64 // target -> last batch cut
}

func newSource(t *testing.T, targets ...string) *source {
	t.Helper()
	ctx := context.Background()
	db, _ := dbtest.Shared(t).NewDB(t)
	if _, err := migrate.Migrate(ctx, db); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	exec(t, db, `CREATE TABLE public.t (id int PRIMARY KEY, doc json, note text)`)
	if _, err := capture.InstallCapture(ctx, db, func(string, string) bool { return true }, false); err != nil {
		t.Fatalf("InstallCapture: %v", err)
	}
	tick := insertTick(t, db)
	s := &source{db: db, from: map[string]int64{}, seq: map[string]int64{}}
	var specs []store.TargetSpec
	for _, name := range targets {
		specs = append(specs, store.TargetSpec{Name: name, SchemaRegex: `^public$`, TableRegex: `^.*$`})
		s.from[name] = tick.ID
	}
	if _, err := store.SyncTargets(ctx, db, specs, tick.ID); err != nil {
		t.Fatalf("SyncTargets: %v", err)
	}
	return s
}

// cut takes a tick and records target's next batch: the events since the
// previous one.
func (s *source) cut(t *testing.T, target string, chunkRows int) store.Batch {
	t.Helper()
	ctx := context.Background()
	tick := insertTick(t, s.db)
	points, err := schema.SchemaPoints(ctx, s.db, target, s.from[target], tick.ID, 0)
	if err != nil {
		t.Fatalf("SchemaPoints: %v", err)
	}
	n, rows := schema.CountEvents(points)
	if n == 0 {
		t.Fatalf("cut: no events for %s", target)
	}
	b := store.Batch{Target: target, Seq: s.seq[target] + 1, FromTick: s.from[target], ToTick: tick.ID,
		Events: n, Rows: rows, ChunkRows: chunkRows, TickTime: tick.CreatedAt}
	if err := store.InsertBatch(ctx, s.db, b); err != nil {
		t.Fatalf("InsertBatch: %v", err)
	}
	s.from[target], s.seq[target] = tick.ID, b.Seq
	return b
}

// insertTick takes a tick in a transaction of its own, as the batcher does.
func insertTick(t *testing.T, db *sql.DB) store.Tick {
	t.Helper()
	var tick store.Tick
	err := database.InTx(context.Background(), db, func(tx *sql.Tx) error {
		var err error
		tick, err = store.InsertTick(context.Background(), tx)
		return err
	})
	if err != nil {
		t.Fatalf("InsertTick: %v", err)
	}
	return tick
}

func (s *source) events(t *testing.T, b store.Batch) []wire.Event {
	t.Helper()
	var es []wire.Event
	if err := schema.BatchEvents(context.Background(), s.db, b, func(e wire.Event) error {
		es = append(es, e)
		return nil
	}); err != nil {
		t.Fatalf("BatchEvents: %v", err)
	}
	return es
}

func (s *source) acked(t *testing.T, target string) int64 {
	t.Helper()
	var n int64
	if err := s.db.QueryRow(`SELECT acked_seq FROM teleport.target_state WHERE name = $1`, target).Scan(&n); err != nil {
		t.Fatalf("read acked_seq: %v", err)
	}
	return n
}

func exec(t *testing.T, db *sql.DB, q string, args ...any) {
	t.Helper()
	if _, err := db.Exec(q, args...); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}

// fakeTarget stands in for a target's POST /batches and GET /batches/{source}:
// it records what it receives and answers like the real server.
type fakeTarget struct {
	t     *testing.T
	token string

	mu       sync.Mutex
	chunks   []wire.BatchChunk
	bodies   [][]byte // gzip bodies as received
	received int64
	applied  int64
	fail     []int // statuses to answer the next POSTs with
	stale    bool  // answer 200 without storing, as a target holding other chunks of the batch did
	gets     int
	hang     chan struct{} // when set, POSTs wait for it or for the client to go
	hanging  int
}

func (f *fakeTarget) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /batches/{source}", func(w http.ResponseWriter, r *http.Request) {
		if !f.authorized(w, r) {
			return
		}
		f.mu.Lock()
		f.gets++
		ack := wire.BatchAck{Source: r.PathValue("source"), ReceivedSeq: f.received, AppliedSeq: f.applied}
		f.mu.Unlock()
		reply(w, http.StatusOK, ack)
	})
	mux.HandleFunc("POST /batches", func(w http.ResponseWriter, r *http.Request) {
		if !f.authorized(w, r) {
			return
		}
		if got := r.Header.Get("Content-Type"); got != "application/json" {
			f.t.Errorf("Content-Type = %q, want application/json", got)
		}
		if got := r.Header.Get("Content-Encoding"); got != "gzip" {
			f.t.Errorf("Content-Encoding = %q, want gzip", got)
		}
		body, err := io.ReadAll(r.Body)
		if err != nil {
			reply(w, http.StatusBadRequest, wire.ErrorResponse{Error: err.Error()})
			return
		}
		f.mu.Lock()
		hang := f.hang
		if hang != nil {
			f.hanging++
		}
		f.mu.Unlock()
		if hang != nil {
			select {
			case <-hang:
			case <-r.Context().Done():
			}
			return
		}
		zr, err := gzip.NewReader(bytes.NewReader(body))
		if err != nil {
			f.t.Errorf("body is not gzip: %v", err)
			reply(w, http.StatusBadRequest, wire.ErrorResponse{Error: err.Error()})
			return
		}
		dec := json.NewDecoder(zr)
		dec.DisallowUnknownFields()
		var c wire.BatchChunk
		if err := dec.Decode(&c); err != nil {
			f.t.Errorf("decode chunk: %v", err)
			reply(w, http.StatusBadRequest, wire.ErrorResponse{Error: err.Error()})
			return
		}
		f.mu.Lock()
		defer f.mu.Unlock()
		if len(f.fail) > 0 {
			code := f.fail[0]
			f.fail = f.fail[1:]
			reply(w, code, wire.ErrorResponse{Error: "boom"})
			return
		}
		if f.stale {
			reply(w, http.StatusOK, wire.BatchAck{Source: c.Source, ReceivedSeq: f.received, AppliedSeq: f.applied})
			return
		}
		f.chunks = append(f.chunks, c)
		f.bodies = append(f.bodies, body)
		if c.Last {
			f.received = max(f.received, c.Seq)
		}
		reply(w, http.StatusOK, wire.BatchAck{Source: c.Source, ReceivedSeq: f.received, AppliedSeq: f.applied})
	})
	return mux
}

func (f *fakeTarget) authorized(w http.ResponseWriter, r *http.Request) bool {
	if f.token != "" && r.Header.Get("Authorization") != "Bearer "+f.token {
		reply(w, http.StatusUnauthorized, wire.ErrorResponse{Error: "missing or wrong bearer token: the source's targets.NAME.auth_token must equal this instance's server.auth_token"})
		return false
	}
	if f.token == "" && r.Header.Get("Authorization") != "" {
		f.t.Errorf("Authorization sent with no auth_token configured")
	}
	return true
}

func (f *fakeTarget) got() []wire.BatchChunk {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]wire.BatchChunk(nil), f.chunks...)
}

func reply(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v) // the client went away; the test sees that elsewhere
}

// serve starts f on a loopback httptest server and returns its endpoint.
func serve(t *testing.T, f *fakeTarget) config.Endpoint {
	t.Helper()
	srv := httptest.NewServer(f.handler())
	t.Cleanup(srv.Close)
	return endpoint(t, srv.URL)
}

func endpoint(t *testing.T, rawURL string) config.Endpoint {
	t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatalf("parse %s: %v", rawURL, err)
	}
	host, port, err := net.SplitHostPort(u.Host)
	if err != nil {
		t.Fatalf("split %s: %v", u.Host, err)
	}
	p, err := strconv.Atoi(port)
	if err != nil {
		t.Fatalf("port %s: %v", port, err)
	}
	return config.Endpoint{Hostname: host, Port: p, TLS: u.Scheme == "https"}
}

func newWorker(t *testing.T, db *sql.DB, targets map[string]config.Target, interval time.Duration, log *slog.Logger) *transmitter.Worker {
	t.Helper()
	if log == nil {
		log = dbtest.Logger(t)
	}
	w, err := transmitter.New(db, sourceName, targets, interval, log)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return w
}

// logBuffer collects log lines for tests that check what was logged.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) count(s string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Count(l.buf.String(), s)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func bufferLogger(t *testing.T) (*slog.Logger, *logBuffer) {
	lb := &logBuffer{}
	h := slog.NewTextHandler(io.MultiWriter(lb, tlogWriter{t}), &slog.HandlerOptions{Level: slog.LevelDebug})
	return slog.New(h), lb
}

// tlogWriter also shows the lines in the test's output; only used while the
// test runs (workers are stopped before it ends).
type tlogWriter struct{ t *testing.T }

func (w tlogWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}

func TestWorker_RunOnce(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newSource(t, "tgt")
	exec(t, s.db, `INSERT INTO t VALUES (1, '{"a" :  1,   "b":[ 1,2 ]}', 'x'), (2, '  [ ]  ', NULL)`)
	exec(t, s.db, `UPDATE t SET note = 'y' WHERE id = 1`)
	exec(t, s.db, `DELETE FROM t WHERE id = 2`)
	exec(t, s.db, `TRUNCATE t`)
	exec(t, s.db, `INSERT INTO t VALUES (3, '"\u00e9 \" \\"', E'\u00e9 "quoted" \\ back\n<&>')`)
	b := s.cut(t, "tgt", 1000)
	want := s.events(t, b)
	if len(want) != 5 {
		t.Fatalf("BatchEvents = %d events, want 5", len(want))
	}

	f := &fakeTarget{t: t, token: "s3cret"}
	w := newWorker(t, s.db, map[string]config.Target{
		"tgt": {TargetExpression: "public.*", Endpoint: serve(t, f), AuthToken: "s3cret"},
	}, time.Hour, nil)
	res, err := w.RunOnce(ctx)
	if err != nil {
		t.Fatalf("RunOnce: %v", err)
	}
	if res.Batches != 1 || res.Chunks != 1 || res.Bytes <= 0 {
		t.Errorf("RunOnce = %+v, want 1 batch in 1 chunk", res)
	}
	got := f.got()
	if len(got) != 1 {
		t.Fatalf("target received %d chunks, want 1", len(got))
	}
	c := got[0]
	if c.Source != sourceName || c.Target != "tgt" || c.Seq != 1 || c.Chunk != 0 || !c.Last || !c.TickTime.Equal(b.TickTime) {
		t.Errorf("chunk = source %q target %q seq %d chunk %d last %v tick_time %v, want %q %q 1 0 true %v",
			c.Source, c.Target, c.Seq, c.Chunk, c.Last, c.TickTime, sourceName, "tgt", b.TickTime)
	}
	if len(c.Events) != len(want) {
		t.Fatalf("chunk has %d events, want %d", len(c.Events), len(want))
	}
	for i, e := range c.Events {
		wa := want[i]
		if e.ID != wa.ID || e.Schema != wa.Schema || e.Table != wa.Table || e.Op != wa.Op || e.Rows != wa.Rows || !bytes.Equal(e.Data, wa.Data) {
			t.Errorf("event %d = %+v (data %s), want %+v (data %s)", i, e, e.Data, wa, wa.Data)
		}
		if i > 0 && e.ID <= c.Events[i-1].ID {
			t.Errorf("event %d has id %d after %d: not in id order", i, e.ID, c.Events[i-1].ID)
		}
	}
	// The json column's text, odd whitespace included, arrives byte for byte.
	var stored string
	if err := s.db.QueryRow(`SELECT data::text FROM teleport.event WHERE id = $1`, c.Events[0].ID).Scan(&stored); err != nil {
		t.Fatalf("read event data: %v", err)
	}
	if string(c.Events[0].Data) != stored || !strings.Contains(stored, `{"a" :  1,   "b":[ 1,2 ]}`) || !strings.Contains(stored, `"doc":  [ ]  ,`) {
		t.Errorf("insert event data = %s, want the stored %s with the json text unchanged", c.Events[0].Data, stored)
	}
	if got := []wire.Op{c.Events[1].Op, c.Events[2].Op, c.Events[3].Op}; got[0] != wire.OpUpdate || got[1] != wire.OpDelete || got[2] != wire.OpTruncate || c.Events[3].Data != nil {
		t.Errorf("ops = %v (truncate data %q), want U D T (no data)", got, c.Events[3].Data)
	}

	if got := s.acked(t, "tgt"); got != 1 {
		t.Errorf("acked_seq = %d, want 1", got)
	}

	res, err = w.RunOnce(ctx)
	if err != nil || res != (transmitter.Result{}) {
		t.Errorf("second RunOnce = %+v, %v, want nothing sent", res, err)
	}
	if n := len(f.got()); n != 1 {
		t.Errorf("after the second pass the target has %d chunks, want 1", n)
	}
}

func TestWorker_RunOnce_ApplySchema(t *testing.T) {
	t.Parallel()
	s := newSource(t, "tgt")
	exec(t, s.db, `INSERT INTO t VALUES (1, NULL, 'x')`)
	exec(t, s.db, `DELETE FROM t`)
	s.cut(t, "tgt", 1000)
	f := &fakeTarget{t: t}
	w := newWorker(t, s.db, map[string]config.Target{
		"tgt": {TargetExpression: "public.*", Endpoint: serve(t, f), ApplySchema: "replica"},
	}, time.Hour, nil)
	if _, err := w.RunOnce(context.Background()); err != nil {
		t.Fatalf("RunOnce: %v", err)
	}
	got := f.got()
	if len(got) != 1 || len(got[0].Events) != 2 {
		t.Fatalf("target received %+v, want 1 chunk of 2 events", got)
	}
	for _, e := range got[0].Events {
		if e.Schema != "replica" || e.Table != "t" {
			t.Errorf("event %d goes to %s.%s, want replica.t", e.ID, e.Schema, e.Table)
		}
	}
}

func TestWorker_RunOnce_Chunks(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newSource(t, "tgt")
	exec(t, s.db, `INSERT INTO t VALUES (1, NULL, 'a')`)
	exec(t, s.db, `INSERT INTO t VALUES (2, NULL, 'b')`)
	exec(t, s.db, `INSERT INTO t VALUES (3, NULL, 'c'), (4, NULL, 'd'), (5, NULL, 'e')`)
	exec(t, s.db, `INSERT INTO t VALUES (6, '[1,  2]', 'f')`)
	b := s.cut(t, "tgt", 2)
	want := s.events(t, b)

	f := &fakeTarget{t: t}
	w := newWorker(t, s.db, map[string]config.Target{
		"tgt": {TargetExpression: "public.*", Endpoint: serve(t, f)},
	}, time.Hour, nil)
	res, err := w.RunOnce(ctx)
	if err != nil {
		t.Fatalf("RunOnce: %v", err)
	}
	// Rows 1+1 reach 2, then 3 alone reaches it, then the last event.
	if res.Batches != 1 || res.Chunks != 3 {
		t.Errorf("RunOnce = %+v, want 1 batch in 3 chunks", res)
	}
	got := f.got()
	wantSizes := []int{2, 1, 1}
	if len(got) != len(wantSizes) {
		t.Fatalf("target received %d chunks, want %d", len(got), len(wantSizes))
	}
	var ids []int64
	for i, c := range got {
		if c.Seq != 1 || c.Chunk != i || c.Last != (i == len(got)-1) || len(c.Events) != wantSizes[i] {
			t.Errorf("chunk %d = seq %d chunk %d last %v with %d events, want seq 1 chunk %d last %v with %d",
				i, c.Seq, c.Chunk, c.Last, len(c.Events), i, i == len(got)-1, wantSizes[i])
		}
		for _, e := range c.Events {
			ids = append(ids, e.ID)
		}
	}
	for i := range want {
		if i >= len(ids) || ids[i] != want[i].ID {
			t.Fatalf("event ids across chunks = %v, want those of %+v in order", ids, want)
		}
	}

	// A resend, once the target lost track of the batch, is byte-identical.
	f.mu.Lock()
	first := f.bodies
	f.bodies, f.chunks, f.received = nil, nil, 0
	f.mu.Unlock()
	exec(t, s.db, `DELETE FROM teleport.ack`)
	if _, err := w.RunOnce(ctx); err != nil {
		t.Fatalf("RunOnce again: %v", err)
	}
	f.mu.Lock()
	second := f.bodies
	f.mu.Unlock()
	if len(second) != len(first) {
		t.Fatalf("resend posted %d chunks, want %d", len(second), len(first))
	}
	for i := range first {
		if !bytes.Equal(first[i], second[i]) {
			t.Errorf("resent chunk %d differs from the first send", i)
		}
	}
}

func TestWorker_RunOnce_Retry(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newSource(t, "tgt")
	exec(t, s.db, `INSERT INTO t VALUES (1, NULL, 'x')`)
	s.cut(t, "tgt", 1000)
	f := &fakeTarget{t: t, fail: []int{http.StatusInternalServerError}}
	ep := serve(t, f)
	w := newWorker(t, s.db, map[string]config.Target{"tgt": {TargetExpression: "public.*", Endpoint: ep}}, time.Hour, nil)

	_, err := w.RunOnce(ctx)
	wantErr := "send batch 1 chunk 0 to tgt (" + ep.URL() + "): 500 Internal Server Error: boom"
	if err == nil || !strings.Contains(err.Error(), wantErr) {
		t.Fatalf("RunOnce = %v, want an error with %q", err, wantErr)
	}
	if got := s.acked(t, "tgt"); got != 0 {
		t.Errorf("acked_seq after a 500 = %d, want 0", got)
	}
	res, err := w.RunOnce(ctx)
	if err != nil || res.Batches != 1 {
		t.Fatalf("RunOnce after the 500 = %+v, %v, want 1 batch sent", res, err)
	}
	if got := s.acked(t, "tgt"); got != 1 {
		t.Errorf("acked_seq = %d, want 1", got)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.gets != 2 {
		t.Errorf("target asked %d times what it has, want 2 (at start and after the error)", f.gets)
	}
}

// TestWorker_RunOnce_AckIsTheTargets: a 200 to a batch's last chunk from a
// target that does not then say it holds the batch (it kept other chunks
// under the same numbers, from another writer) leaves the batch
// unacknowledged, so its events are kept, and says why.
func TestWorker_RunOnce_AckIsTheTargets(t *testing.T) {
	t.Parallel()
	s := newSource(t, "tgt")
	exec(t, s.db, `INSERT INTO t VALUES (1, NULL, 'x')`)
	s.cut(t, "tgt", 1000)
	f := &fakeTarget{t: t, stale: true}
	w := newWorker(t, s.db, map[string]config.Target{"tgt": {TargetExpression: "public.*", Endpoint: serve(t, f)}}, time.Hour, nil)
	_, err := w.RunOnce(context.Background())
	if err == nil || !strings.Contains(err.Error(), "holds the batches up to 0 only") || !strings.Contains(err.Error(), "database.name") {
		t.Fatalf("RunOnce = %v, want an error saying the target does not hold batch 1", err)
	}
	if got := s.acked(t, "tgt"); got != 0 {
		t.Errorf("acked_seq = %d, want 0: the target never said it holds batch 1", got)
	}
}

func TestWorker_RunOnce_Unauthorized(t *testing.T) {
	t.Parallel()
	s := newSource(t, "tgt")
	exec(t, s.db, `INSERT INTO t VALUES (1, NULL, 'x')`)
	s.cut(t, "tgt", 1000)
	f := &fakeTarget{t: t, token: "right"}
	ep := serve(t, f)
	w := newWorker(t, s.db, map[string]config.Target{
		"tgt": {TargetExpression: "public.*", Endpoint: ep, AuthToken: "wrong"},
	}, time.Hour, nil)
	_, err := w.RunOnce(context.Background())
	want := "tgt (" + ep.URL() + ") which batches it has: 401 Unauthorized: missing or wrong bearer token"
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("RunOnce = %v, want an error with %q", err, want)
	}
	if strings.Contains(err.Error(), "wrong\"") || strings.Contains(err.Error(), "Bearer") {
		t.Errorf("error %q shows the token", err)
	}
}

func TestWorker_RunOnce_AsksTarget(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newSource(t, "tgt")
	exec(t, s.db, `INSERT INTO t VALUES (1, NULL, 'x')`)
	s.cut(t, "tgt", 1000)
	exec(t, s.db, `INSERT INTO t VALUES (2, NULL, 'y')`)
	s.cut(t, "tgt", 1000)

	// The target stored batch 1 before we could record its answer.
	f := &fakeTarget{t: t, received: 1}
	ep := serve(t, f)
	targets := map[string]config.Target{"tgt": {TargetExpression: "public.*", Endpoint: ep}}
	res, err := newWorker(t, s.db, targets, time.Hour, nil).RunOnce(ctx)
	if err != nil || res.Batches != 1 {
		t.Fatalf("RunOnce = %+v, %v, want 1 batch sent", res, err)
	}
	if got := f.got(); len(got) != 1 || got[0].Seq != 2 {
		t.Errorf("target received %+v, want batch 2 only", got)
	}
	if got := s.acked(t, "tgt"); got != 2 {
		t.Errorf("acked_seq = %d, want 2", got)
	}

	// Restarted, the source finds a target that lost batches 1 and 2
	// (restored from an older backup): it says so and does not resend them.
	exec(t, s.db, `INSERT INTO t VALUES (3, NULL, 'z')`)
	s.cut(t, "tgt", 1000)
	f.mu.Lock()
	f.received, f.chunks = 0, nil
	f.mu.Unlock()
	log, lb := bufferLogger(t)
	if _, err := newWorker(t, s.db, targets, time.Hour, log).RunOnce(ctx); err != nil {
		t.Fatalf("RunOnce after the target lost batches: %v", err)
	}
	if got := f.got(); len(got) != 1 || got[0].Seq != 3 {
		t.Errorf("target received %+v, want batch 3 only", got)
	}
	if !strings.Contains(lb.String(), `level=ERROR msg="target lost acknowledged batches" worker=transmitter target=tgt received_seq=0 acked_seq=2`) {
		t.Errorf("log = %s, want an error saying the target lost acknowledged batches", lb)
	}
}

func TestWorker_Run_TargetDownThenUp(t *testing.T) {
	t.Parallel()
	s := newSource(t, "tgt")
	exec(t, s.db, `INSERT INTO t VALUES (1, NULL, 'x')`)
	s.cut(t, "tgt", 1000)

	// A port nobody listens on, until the target comes up there.
	port, err := dbtest.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	ep := endpoint(t, "http://"+addr)
	log, lb := bufferLogger(t)
	w := newWorker(t, s.db, map[string]config.Target{"tgt": {TargetExpression: "public.*", Endpoint: ep}}, 10*time.Millisecond, log)
	_, err = w.RunOnce(context.Background())
	want := "tgt (" + ep.URL() + ") which batches it has: target unreachable: "
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("RunOnce with the target down = %v, want an error with %q", err, want)
	}

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	dbtest.WaitFor(t, 10*time.Second, "send failure logged", func() bool { return lb.count(`msg="send failed"`) > 0 })

	ln, err := net.Listen("tcp", addr)
	if err != nil {
		cancel()
		<-done
		t.Fatalf("listen again on %s: %v", addr, err)
	}
	f := &fakeTarget{t: t}
	srv := httptest.NewUnstartedServer(f.handler())
	_ = srv.Listener.Close() // replaced by ours, on the port the worker knows
	srv.Listener = ln
	srv.Start()
	t.Cleanup(srv.Close)

	dbtest.WaitFor(t, 10*time.Second, "batch 1 acknowledged and the recovery logged", func() bool {
		return s.acked(t, "tgt") == 1 && lb.count(`msg="sending resumed"`) > 0
	})
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run = %v, want nil", err)
	}
	if n := lb.count(`msg="send failed"`); n != 1 {
		t.Errorf("logged %d send failures for one repeating error, want 1:\n%s", n, lb)
	}
	if n := lb.count(`msg="sending resumed"`); n != 1 {
		t.Errorf("logged %d recoveries, want 1:\n%s", n, lb)
	}
}

func TestWorker_Run_SlowTargetAndCancel(t *testing.T) {
	t.Parallel()
	s := newSource(t, "fast", "slow")
	exec(t, s.db, `INSERT INTO t VALUES (1, NULL, 'x')`)
	s.cut(t, "fast", 1000)
	s.cut(t, "slow", 1000)
	slow := &fakeTarget{t: t, hang: make(chan struct{})}
	t.Cleanup(func() { close(slow.hang) })
	fast := &fakeTarget{t: t}
	w := newWorker(t, s.db, map[string]config.Target{
		"fast": {TargetExpression: "public.*", Endpoint: serve(t, fast)},
		"slow": {TargetExpression: "public.*", Endpoint: serve(t, slow)},
	}, 10*time.Millisecond, nil)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	dbtest.WaitFor(t, 10*time.Second, "slow target receiving", func() bool {
		slow.mu.Lock()
		defer slow.mu.Unlock()
		return slow.hanging > 0
	})
	dbtest.WaitFor(t, 10*time.Second, "fast target acknowledged", func() bool { return s.acked(t, "fast") == 1 })

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run = %v, want nil", err)
		}
	case <-time.After(time.Second):
		t.Fatalf("Run did not return within 1s of cancel")
	}
	if got := s.acked(t, "slow"); got != 0 {
		t.Errorf("slow acked_seq = %d, want 0", got)
	}
}

func TestWorker_Wake(t *testing.T) {
	t.Parallel()
	s := newSource(t, "tgt")
	exec(t, s.db, `INSERT INTO t VALUES (1, NULL, 'x')`)
	s.cut(t, "tgt", 1000)
	f := &fakeTarget{t: t}
	w := newWorker(t, s.db, map[string]config.Target{"tgt": {TargetExpression: "public.*", Endpoint: serve(t, f)}}, time.Hour, nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run = %v, want nil", err)
		}
	}()
	dbtest.WaitFor(t, 10*time.Second, "batch 1 acknowledged", func() bool { return s.acked(t, "tgt") == 1 })

	// The loop now waits an hour, unless woken.
	exec(t, s.db, `INSERT INTO t VALUES (2, NULL, 'y')`)
	s.cut(t, "tgt", 1000)
	w.Wake()
	dbtest.WaitFor(t, 10*time.Second, "batch 2 acknowledged after Wake", func() bool { return s.acked(t, "tgt") == 2 })
}

func TestWorker_RunOnce_TLS(t *testing.T) {
	t.Parallel()
	s := newSource(t, "tgt")
	exec(t, s.db, `INSERT INTO t VALUES (1, NULL, 'x')`)
	s.cut(t, "tgt", 1000)
	f := &fakeTarget{t: t}
	srv := httptest.NewTLSServer(f.handler())
	t.Cleanup(srv.Close)
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600); err != nil {
		t.Fatalf("write CA: %v", err)
	}
	ep := endpoint(t, srv.URL)
	ep.CAFile = ca
	w := newWorker(t, s.db, map[string]config.Target{"tgt": {TargetExpression: "public.*", Endpoint: ep}}, time.Hour, nil)
	res, err := w.RunOnce(context.Background())
	if err != nil || res.Batches != 1 {
		t.Fatalf("RunOnce over TLS = %+v, %v, want 1 batch", res, err)
	}

	// Without the CA, the certificate is refused.
	ep.CAFile = ""
	exec(t, s.db, `INSERT INTO t VALUES (2, NULL, 'y')`)
	s.cut(t, "tgt", 1000)
	w = newWorker(t, s.db, map[string]config.Target{"tgt": {TargetExpression: "public.*", Endpoint: ep}}, time.Hour, nil)
	if _, err := w.RunOnce(context.Background()); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("RunOnce without the CA = %v, want a certificate error", err)
	}
}

func TestNew_BadCAFile(t *testing.T) {
	t.Parallel()
	missing := filepath.Join(t.TempDir(), "missing.pem")
	_, err := transmitter.New(nil, sourceName, map[string]config.Target{
		"tgt": {Endpoint: config.Endpoint{Hostname: "h", Port: 1, TLS: true, CAFile: missing}},
	}, time.Second, dbtest.Logger(t))
	if err == nil || !strings.Contains(err.Error(), "targets.tgt.endpoint.ca_file") || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("New with a missing ca_file = %v, want an error naming targets.tgt.endpoint.ca_file", err)
	}
	notPEM := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(notPEM, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = transmitter.New(nil, sourceName, map[string]config.Target{
		"tgt": {Endpoint: config.Endpoint{Hostname: "h", Port: 1, TLS: true, CAFile: notPEM}},
	}, time.Second, dbtest.Logger(t))
	if err == nil || !strings.Contains(err.Error(), "no PEM certificate") {
		t.Errorf("New with a ca_file holding no certificate = %v, want an error saying so", err)
	}
}

func TestWorker_RunOnce_ChunkBytes(t *testing.T) {
	t.Parallel()
	s := newSource(t, "tgt")
	// Three events of 5 MiB of JSON each: the first two reach 8 MiB.
	for i := 1; i <= 3; i++ {
		exec(t, s.db, `INSERT INTO t VALUES ($1, NULL, repeat('x', 5 << 20))`, i)
	}
	s.cut(t, "tgt", 1000)
	f := &fakeTarget{t: t}
	w := newWorker(t, s.db, map[string]config.Target{"tgt": {TargetExpression: "public.*", Endpoint: serve(t, f)}}, time.Hour, nil)
	res, err := w.RunOnce(context.Background())
	if err != nil {
		t.Fatalf("RunOnce: %v", err)
	}
	got := f.got()
	if res.Chunks != 2 || len(got) != 2 || len(got[0].Events) != 2 || len(got[1].Events) != 1 || got[0].Last || !got[1].Last {
		t.Errorf("RunOnce = %+v, want 2 chunks of 2 and 1 events, only the second last", res)
	}
}
