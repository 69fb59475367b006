package server_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/pagarme/teleport/config"
	"github.com/pagarme/teleport/database/dbtest"
	"github.com/pagarme/teleport/database/migrate"
	"github.com/pagarme/teleport/database/store"
	"github.com/pagarme/teleport/server"
	"github.com/pagarme/teleport/server/wire"
)

// newTarget returns a server named "tgt" on a migrated database.
func newTarget(t *testing.T, token string) (*server.Server, *sql.DB) {
	t.Helper()
	db, _ := dbtest.Shared(t).NewDB(t)
	if _, err := migrate.Migrate(context.Background(), db); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	cfg := config.Default().Server
	cfg.AuthToken = token
	return server.New(cfg, db, server.Info{Name: "tgt", Role: "target"}, dbtest.Logger(t)), db
}

func gzipBytes(t *testing.T, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func validChunk(seq int64, chunk int, last bool) wire.BatchChunk {
	return wire.BatchChunk{
		Source: "src", Target: "tgt", Seq: seq, Chunk: chunk, Last: last,
		TickTime: time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC),
		Events: []wire.Event{
			{ID: 1, Schema: "public", Table: "t", Op: wire.OpInsert, Rows: 2, Data: json.RawMessage(`[{"id":1},{"id":2}]`)},
			{ID: 2, Schema: "public", Table: "t", Op: wire.OpTruncate},
		},
	}
}

func chunkBody(t *testing.T, c wire.BatchChunk) []byte {
	t.Helper()
	b, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	return gzipBytes(t, b)
}

func postRaw(h http.Handler, body []byte, auth string, gzipped bool) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodPost, "/batches", bytes.NewReader(body))
	req.RemoteAddr = "127.0.0.1:4000"
	if gzipped {
		req.Header.Set("Content-Encoding", "gzip")
	}
	if auth != "" {
		req.Header.Set("Authorization", "Bearer "+auth)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func decodeAck(t *testing.T, rec *httptest.ResponseRecorder) wire.BatchAck {
	t.Helper()
	if rec.Code != http.StatusOK {
		t.Fatalf("answer = %d %s, want 200", rec.Code, rec.Body)
	}
	var a wire.BatchAck
	if err := json.Unmarshal(rec.Body.Bytes(), &a); err != nil {
		t.Fatalf("answer %q: %v", rec.Body, err)
	}
	return a
}

func countRows(t *testing.T, db *sql.DB) (chunks, sources int) {
	t.Helper()
	if err := db.QueryRow(`SELECT (SELECT count(*) FROM teleport.received_chunk), (SELECT count(*) FROM teleport.source)`).Scan(&chunks, &sources); err != nil {
		t.Fatal(err)
	}
	return chunks, sources
}

func TestBatches_Store(t *testing.T) {
	t.Parallel()
	s, db := newTarget(t, "tok")
	completed := 0
	s.OnBatchStored(func() { completed++ })
	h := s.Handler()

	first := chunkBody(t, validChunk(1, 0, false))
	if a := decodeAck(t, postRaw(h, first, "tok", true)); a != (wire.BatchAck{Source: "src", ReceivedSeq: 0, AppliedSeq: 0}) {
		t.Errorf("POST chunk 0 of batch 1 = %+v, want received 0: the batch is not complete", a)
	}
	if completed != 0 {
		t.Errorf("OnBatchStored called %d times after a first chunk, want 0", completed)
	}
	if a := decodeAck(t, postRaw(h, chunkBody(t, validChunk(1, 1, true)), "tok", true)); a.ReceivedSeq != 1 || a.AppliedSeq != 0 {
		t.Errorf("POST last chunk of batch 1 = %+v, want received 1, applied 0", a)
	}
	if completed != 1 {
		t.Errorf("OnBatchStored called %d times after the last chunk, want 1", completed)
	}
	// A replayed request changes nothing; a chunk that says something else
	// than what is stored of its batch (other contents under a stored
	// number, another tick time) is refused with the difference.
	if a := decodeAck(t, postRaw(h, first, "tok", true)); a.ReceivedSeq != 1 {
		t.Errorf("POST chunk 0 of batch 1 again = %+v, want received 1", a)
	}
	dup := validChunk(1, 0, true)
	dup.Events = dup.Events[:1]
	otherTick := validChunk(1, 2, true)
	otherTick.TickTime = otherTick.TickTime.Add(time.Microsecond)
	for _, tt := range []struct {
		name string
		c    wire.BatchChunk
		says string
	}{
		{"chunk 0 with other contents", dup, "last true, 1 events, 2 rows; the stored chunk 0 has last false, 2 events, 2 rows"},
		{"chunk 2 with another tick time", otherTick, "chunk 0 has"},
	} {
		rec := postRaw(h, chunkBody(t, tt.c), "tok", true)
		if rec.Code != http.StatusConflict || !strings.Contains(rec.Body.String(), tt.says) || !strings.Contains(rec.Body.String(), "database.name") {
			t.Errorf("POST %s = %d %s, want 409 saying %q and what to do", tt.name, rec.Code, rec.Body, tt.says)
		}
	}
	if c, src := countRows(t, db); c != 2 || src != 1 {
		t.Errorf("after 5 posts of 2 chunks: %d chunks, %d sources stored; want 2, 1", c, src)
	}
	var body []byte
	var events int
	var nrows int64
	if err := db.QueryRow(`SELECT body, events, nrows FROM teleport.received_chunk WHERE seq = 1 AND chunk = 0`).Scan(&body, &events, &nrows); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(body, first) || events != 2 || nrows != 2 {
		t.Errorf("stored chunk 0: %d events, %d rows, body equal to the first sent: %v; want 2, 2, true", events, nrows, bytes.Equal(body, first))
	}
	evs, err := store.ChunkEvents(context.Background(), db, "src", 1, 0)
	if err != nil || len(evs) != 2 || string(evs[0].Data) != `[{"id":1},{"id":2}]` {
		t.Errorf("ChunkEvents of the stored chunk = %+v, %v", evs, err)
	}

	get := func(path string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(http.MethodGet, path, nil)
		req.Header.Set("Authorization", "Bearer tok")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec
	}
	if a := decodeAck(t, get("/batches/src")); a != (wire.BatchAck{Source: "src", ReceivedSeq: 1}) {
		t.Errorf("GET /batches/src = %+v, want received 1", a)
	}
	if a := decodeAck(t, get("/batches/other")); a != (wire.BatchAck{Source: "other"}) {
		t.Errorf("GET /batches/other = %+v, want zeros", a)
	}
	req := httptest.NewRequest(http.MethodGet, "/batches/src", nil)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusUnauthorized {
		t.Errorf("GET /batches/src without the token = %d, want 401", rec.Code)
	}
	// A name no instance can have is refused before the database sees it.
	for _, path := range []string{"/batches/a%00b", "/batches/" + strings.Repeat("n", 64), "/batches/x%27%3B%20--"} {
		if rec := get(path); rec.Code != http.StatusBadRequest || !strings.Contains(rec.Body.String(), "not a valid instance name") {
			t.Errorf("GET %s = %d %s, want 400 naming the rule", path, rec.Code, rec.Body)
		}
	}
}

func TestBatches_Rejected(t *testing.T) {
	t.Parallel()
	s, db := newTarget(t, "tok")
	server.SetBodyLimits(s, 4<<10, 64<<10)
	h := s.Handler()
	with := func(f func(c *wire.BatchChunk)) []byte {
		c := validChunk(1, 0, true)
		f(&c)
		return chunkBody(t, c)
	}
	valid := chunkBody(t, validChunk(1, 0, true))
	big := validChunk(1, 0, true)
	big.Events[0].Data = json.RawMessage(`["` + strings.Repeat("x", 100<<10) + `"]`)
	random := make([]byte, 8<<10) // incompressible
	rnd := rand.New(rand.NewPCG(1, 2))
	for i := range random {
		random[i] = byte(rnd.Uint32())
	}
	tests := []struct {
		name    string
		body    []byte
		auth    string
		gzipped bool
		code    int
		says    string
	}{
		{"bad token", valid, "nope", true, http.StatusUnauthorized, "token"},
		{"no token", valid, "", true, http.StatusUnauthorized, "token"},
		{"not gzip", []byte(`{"source":"src"}`), "tok", true, http.StatusBadRequest, "decompress"},
		{"no Content-Encoding", valid, "tok", false, http.StatusBadRequest, "Content-Encoding"},
		{"truncated gzip", valid[:len(valid)-6], "tok", true, http.StatusBadRequest, "decompress"},
		{"malformed JSON", gzipBytes(t, []byte(`{"source":"src",`)), "tok", true, http.StatusBadRequest, "decode"},
		{"trailing garbage", gzipBytes(t, append(append([]byte{}, `{"source":"src"}`...), " x"...)), "tok", true, http.StatusBadRequest, "decode"},
		{"wrong target", with(func(c *wire.BatchChunk) { c.Target = "elsewhere" }), "tok", true, http.StatusBadRequest, `"elsewhere", but this instance is "tgt"`},
		{"no source", with(func(c *wire.BatchChunk) { c.Source = "" }), "tok", true, http.StatusBadRequest, "source: missing"},
		{"seq 0", with(func(c *wire.BatchChunk) { c.Seq = 0 }), "tok", true, http.StatusBadRequest, "seq"},
		{"negative chunk", with(func(c *wire.BatchChunk) { c.Chunk = -1 }), "tok", true, http.StatusBadRequest, "chunk"},
		{"chunk 2^31", with(func(c *wire.BatchChunk) { c.Chunk = 1 << 31 }), "tok", true, http.StatusBadRequest, "chunk: 2147483648"},
		{"chunk 2^40", with(func(c *wire.BatchChunk) { c.Chunk = 1 << 40 }), "tok", true, http.StatusBadRequest, "chunk: 1099511627776"},
		{"NUL in source", with(func(c *wire.BatchChunk) { c.Source = "src\x00" }), "tok", true, http.StatusBadRequest, "not a valid instance name"},
		{"SQL in source", with(func(c *wire.BatchChunk) { c.Source = `x'); DROP TABLE t; --` }), "tok", true, http.StatusBadRequest, "not a valid instance name"},
		{"long source", with(func(c *wire.BatchChunk) { c.Source = strings.Repeat("s", 10000) }), "tok", true, http.StatusBadRequest, "10000 bytes"},
		{"no tick time", with(func(c *wire.BatchChunk) { c.TickTime = time.Time{} }), "tok", true, http.StatusBadRequest, "tick_time"},
		{"no events", with(func(c *wire.BatchChunk) { c.Events = nil }), "tok", true, http.StatusBadRequest, "events"},
		{"bad op", with(func(c *wire.BatchChunk) { c.Events[1].Op = "X" }), "tok", true, http.StatusBadRequest, `op "X"`},
		{"no table", with(func(c *wire.BatchChunk) { c.Events[0].Table = "" }), "tok", true, http.StatusBadRequest, "schema and table"},
		{"teleport schema", with(func(c *wire.BatchChunk) { c.Events[0].Schema = "teleport" }), "tok", true, http.StatusBadRequest, "reserved"},
		{"insert without data", with(func(c *wire.BatchChunk) { c.Events[0].Data = nil }), "tok", true, http.StatusBadRequest, "data"},
		{"too large compressed", gzipBytes(t, random), "tok", true, http.StatusRequestEntityTooLarge, "compressed"},
		{"too large decompressed", chunkBody(t, big), "tok", true, http.StatusRequestEntityTooLarge, "decompressed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := postRaw(h, tt.body, tt.auth, tt.gzipped)
			var e wire.ErrorResponse
			if err := json.Unmarshal(rec.Body.Bytes(), &e); rec.Code != tt.code || err != nil || !strings.Contains(e.Error, tt.says) {
				t.Errorf("POST /batches = %d %s, want %d saying %q", rec.Code, rec.Body, tt.code, tt.says)
			}
		})
	}
	if c, src := countRows(t, db); c != 0 || src != 0 {
		t.Errorf("after only rejected posts: %d chunks, %d sources stored; want none", c, src)
	}
	if rec := postRaw(h, valid, "tok", true); rec.Code != http.StatusOK {
		t.Errorf("POST of a valid chunk under the test limits = %d %s, want 200", rec.Code, rec.Body)
	}
}

// TestBatches_Transport: the checks of a chunk's transport: its checksum,
// its batch identity, its source's admission; what GET /batches answers of
// a batch stored in part; and the refusals in /status and /metrics.
func TestBatches_Transport(t *testing.T) {
	t.Parallel()
	s, _ := newTarget(t, "")
	h := s.Handler()
	post := func(c wire.BatchChunk, sum string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(http.MethodPost, "/batches", bytes.NewReader(chunkBody(t, c)))
		req.RemoteAddr = "127.0.0.1:4000"
		req.Header.Set("Content-Encoding", "gzip")
		req.Header.Set(wire.HeaderSource, c.Source)
		if sum != "" {
			req.Header.Set(wire.HeaderChecksum, sum)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec
	}
	sumOf := func(c wire.BatchChunk) string {
		b, err := json.Marshal(c)
		if err != nil {
			t.Fatal(err)
		}
		h := sha256.Sum256(b)
		return hex.EncodeToString(h[:])
	}
	first := validChunk(1, 0, false)
	first.Batch = wire.BatchID{FromTick: 1, ToTick: 3, Events: 4}
	for _, tt := range []struct {
		name string
		c    wire.BatchChunk
		sum  string
		code int
		says string
	}{
		{"changed on the way", first, strings.Repeat("0", 64), http.StatusBadRequest, "it changed on the way"},
		{"ticks backwards", func() wire.BatchChunk { c := first; c.Batch.ToTick = 0; return c }(), "", http.StatusBadRequest, "batch: ticks 1 to 0, 4 events"},
		{"unknown source, batch 3", validChunk(3, 0, true), "", http.StatusConflict, "this chunk is of batch 3, not its first"},
	} {
		if rec := post(tt.c, tt.sum); rec.Code != tt.code || !strings.Contains(rec.Body.String(), tt.says) {
			t.Errorf("POST (%s) = %d %s, want %d saying %q", tt.name, rec.Code, rec.Body, tt.code, tt.says)
		}
	}
	if rec := post(first, sumOf(first)); rec.Code != http.StatusOK {
		t.Fatalf("POST of chunk 0 of batch 1 = %d %s, want 200", rec.Code, rec.Body)
	}
	rec := do(h, http.MethodGet, "/batches/src", "127.0.0.1:1", "")
	if ack := decodeAck(t, rec); ack.ReceivedSeq != 0 || ack.Partial == nil || ack.Partial.Seq != 1 ||
		len(ack.Partial.Chunks) != 1 || ack.Partial.Chunks[0] != sumOf(first) {
		t.Errorf("GET /batches/src = %+v, want batch 1 in part: chunk 0 with its checksum", ack)
	}
	other := first
	other.Chunk, other.Batch.Events = 1, 5
	if rec := post(other, ""); rec.Code != http.StatusConflict || !strings.Contains(rec.Body.String(), "chunk 0 is of a batch of ticks 1 to 3, 4 events") {
		t.Errorf("POST of a chunk of another batch 1 = %d %s, want 409 naming both", rec.Code, rec.Body)
	}

	rec = do(h, http.MethodGet, "/status", "127.0.0.1:1", "")
	var st wire.Status
	if err := json.Unmarshal(rec.Body.Bytes(), &st); err != nil {
		t.Fatal(err)
	}
	if len(st.Refused) != 1 || st.Refused[0].Source != "src" || st.Refused[0].Count != 4 || st.Refused[0].Status != http.StatusConflict {
		t.Errorf("/status refused = %+v, want src's 4 refusals, the last a 409", st.Refused)
	}
	if len(st.Sources) != 1 || st.Sources[0].Receiving == nil || st.Sources[0].Receiving.ChunksStored != 1 {
		t.Errorf("/status sources = %+v, want src receiving batch 1, 1 chunk stored", st.Sources)
	}
	rec = do(h, http.MethodGet, "/metrics", "127.0.0.1:1", "")
	for _, want := range []string{`teleport_chunks_received_total{result="stored"} 1`, `teleport_chunks_received_total{result="refused"} 4`} {
		if !strings.Contains(rec.Body.String(), want+"\n") {
			t.Errorf("/metrics lacks %q", want)
		}
	}

	// With server.sources, another source is refused before anything is read.
	db, _ := dbtest.Shared(t).NewDB(t)
	if _, err := migrate.Migrate(context.Background(), db); err != nil {
		t.Fatal(err)
	}
	cfg := config.Default().Server
	cfg.Sources = []string{"finops-db"}
	h = server.New(cfg, db, server.Info{Name: "tgt", Role: "target"}, dbtest.Logger(t)).Handler()
	if rec := post(first, ""); rec.Code != http.StatusForbidden || !strings.Contains(rec.Body.String(), "source src is not in this instance's server.sources") {
		t.Errorf("POST from a source server.sources leaves out = %d %s, want 403", rec.Code, rec.Body)
	}
	if rec := do(h, http.MethodGet, "/batches/src", "127.0.0.1:1", ""); rec.Code != http.StatusForbidden {
		t.Errorf("GET /batches/src with server.sources leaving it out = %d, want 403", rec.Code)
	}
}
