package store_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"database/sql"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/pagarme/teleport/database"
	"github.com/pagarme/teleport/database/dbtest"
	"github.com/pagarme/teleport/database/store"
	"github.com/pagarme/teleport/server/wire"
)

func gz(t *testing.T, s string) []byte {
	t.Helper()
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	if _, err := zw.Write([]byte(s)); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

var tick = time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)

func chunk(source string, seq int64, n int, last bool) store.StoredChunk {
	return store.StoredChunk{Source: source, Seq: seq, Chunk: n, Last: last, Events: 1, Rows: 2, TickTime: tick.Add(time.Duration(seq) * time.Second), Body: []byte("x")}
}

func storeChunk(t *testing.T, q database.Querier, c store.StoredChunk) bool {
	t.Helper()
	stored, err := store.StoreChunk(context.Background(), q, c)
	if err != nil {
		t.Fatalf("StoreChunk(%s %d/%d): %v", c.Source, c.Seq, c.Chunk, err)
	}
	return stored
}

func ack(t *testing.T, q database.Querier, source string) (int64, int64) {
	t.Helper()
	r, a, err := store.BatchAckFor(context.Background(), q, source)
	if err != nil {
		t.Fatalf("BatchAckFor(%s): %v", source, err)
	}
	return r, a
}

func TestStoreChunk(t *testing.T) {
	t.Parallel()
	db, _ := dbtest.Migrated(t)
	if r, a := ack(t, db, "a"); r != 0 || a != 0 {
		t.Errorf("BatchAckFor(unknown source) = %d, %d; want 0, 0", r, a)
	}
	if !storeChunk(t, db, chunk("a", 1, 0, false)) {
		t.Error("StoreChunk(a 1/0) = false, want true: it is new")
	}
	// A resend is not stored again, even as other bytes (another gzip).
	c := chunk("a", 1, 0, false)
	c.Body = []byte("other")
	if storeChunk(t, db, c) {
		t.Error("StoreChunk(a 1/0) again = true, want false")
	}
	// A chunk that says something else than what is stored of its batch is refused.
	for _, tt := range []struct {
		name string
		edit func(*store.StoredChunk)
		says string
	}{
		{"chunk 0 made last", func(c *store.StoredChunk) { c.Last = true }, "last true, 1 events, 2 rows; the stored chunk 0 has last false"},
		{"chunk 0 with more rows", func(c *store.StoredChunk) { c.Rows = 3 }, "3 rows; the stored chunk 0"},
		{"chunk 0 with another tick time", func(c *store.StoredChunk) { c.TickTime = c.TickTime.Add(time.Microsecond) }, "chunk 0 has"},
		{"chunk 5 with another tick time", func(c *store.StoredChunk) { c.Chunk = 5; c.TickTime = c.TickTime.Add(time.Second) }, "chunk 0 has"},
	} {
		c := chunk("a", 1, 0, false)
		tt.edit(&c)
		_, err := store.StoreChunk(context.Background(), db, c)
		if !errors.Is(err, store.ErrChunkConflict) || !strings.Contains(err.Error(), tt.says) {
			t.Errorf("StoreChunk(%s) = %v, want ErrChunkConflict saying %q", tt.name, err, tt.says)
		}
	}
	if r, _ := ack(t, db, "a"); r != 0 {
		t.Errorf("received_seq with batch 1 half stored = %d, want 0", r)
	}
	storeChunk(t, db, chunk("a", 1, 1, true))
	storeChunk(t, db, chunk("a", 3, 0, true)) // after a gap
	storeChunk(t, db, chunk("a", 4, 1, true)) // chunk 0 missing
	if r, _ := ack(t, db, "a"); r != 1 {
		t.Errorf("received_seq with batches 1, 3 and half of 4 = %d, want 1", r)
	}
	storeChunk(t, db, chunk("a", 2, 0, true))
	if r, _ := ack(t, db, "a"); r != 3 {
		t.Errorf("received_seq with batches 1, 2, 3 and half of 4 = %d, want 3", r)
	}
	storeChunk(t, db, chunk("a", 4, 0, false))
	if r, _ := ack(t, db, "a"); r != 4 {
		t.Errorf("received_seq with batches 1 to 4 = %d, want 4", r)
	}
	if r, _ := ack(t, db, "b"); r != 0 {
		t.Errorf("received_seq of another source = %d, want 0", r)
	}

	var body []byte
	if err := db.QueryRow(`SELECT body FROM teleport.received_chunk WHERE source = 'a' AND seq = 1 AND chunk = 0`).Scan(&body); err != nil || string(body) != "x" {
		t.Errorf("stored body = %q, %v; want the first one, x", body, err)
	}
}

// TestStoreChunk_Instance: a source's chunks come from one instance, the
// first that names itself, also for a source known from before instances
// were sent; another is refused, when storing and when asking.
func TestStoreChunk_Instance(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, _ := dbtest.Migrated(t)
	const one, other = "00000000-0000-4000-8000-000000000001", "00000000-0000-4000-8000-000000000002"
	storeChunk(t, db, chunk("old", 1, 0, true)) // no instance: a source from before
	for _, source := range []string{"new", "old"} {
		c := chunk(source, 2, 0, true)
		if source == "new" {
			c.Seq = 1 // a source is admitted by its first batch
		}
		c.Instance = one
		storeChunk(t, db, c)
		for _, stranger := range []string{other, ""} {
			c.Seq, c.Instance = 3, stranger
			if _, err := store.StoreChunk(ctx, db, c); !errors.Is(err, store.ErrOtherInstance) || !strings.Contains(err.Error(), one) {
				t.Errorf("StoreChunk(%s) from instance %q = %v, want ErrOtherInstance naming the source's", source, stranger, err)
			}
		}
		if err := store.CheckInstance(ctx, db, source, other); !errors.Is(err, store.ErrOtherInstance) {
			t.Errorf("CheckInstance(%s, other) = %v, want ErrOtherInstance", source, err)
		}
		for _, ok := range []string{one, ""} {
			if err := store.CheckInstance(ctx, db, source, ok); err != nil {
				t.Errorf("CheckInstance(%s, %q) = %v, want nil", source, ok, err)
			}
		}
	}
	if err := store.CheckInstance(ctx, db, "unknown", other); err != nil {
		t.Errorf("CheckInstance(unknown source) = %v, want nil", err)
	}
	id, err := store.InstanceID(ctx, db)
	if err != nil || len(id) != 36 {
		t.Errorf("InstanceID = %q, %v, want a uuid", id, err)
	}
}

func TestNextBatch(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, _ := dbtest.Migrated(t)
	storeChunk(t, db, chunk("a", 1, 0, false))
	storeChunk(t, db, chunk("a", 2, 0, true))
	if _, ok, err := store.NextBatch(ctx, db, "a", 0); ok || err != nil {
		t.Errorf("NextBatch(a, after 0) with batch 1 missing = %v, %v; want not ok", ok, err)
	}
	storeChunk(t, db, chunk("a", 1, 2, true))
	if _, ok, err := store.NextBatch(ctx, db, "a", 0); ok || err != nil {
		t.Errorf("NextBatch(a, after 0) with chunk 1 of 3 missing = %v, %v; want not ok", ok, err)
	}
	storeChunk(t, db, chunk("a", 1, 1, false))
	b, ok, err := store.NextBatch(ctx, db, "a", 0)
	want := store.ReceivedBatch{Source: "a", Seq: 1, Chunks: 3, Events: 3, Rows: 6, TickTime: tick.Add(time.Second)}
	if !ok || err != nil || b.Source != want.Source || b.Seq != want.Seq || b.Chunks != want.Chunks ||
		b.Events != want.Events || b.Rows != want.Rows || !b.TickTime.Equal(want.TickTime) {
		t.Errorf("NextBatch(a, after 0) = %+v, %v, %v; want %+v", b, ok, err, want)
	}
}

// TestStoreChunk_BatchIdentity: every chunk of a batch names the same
// batch, a resend has the stored chunk's checksum, and a last chunk brings
// the batch to its event count; a source is admitted by its first batch
// only. Anything else is refused and nothing of it stored.
func TestStoreChunk_BatchIdentity(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, _ := dbtest.Migrated(t)
	id := wire.BatchID{FromTick: 10, ToTick: 12, Events: 3}
	mk := func(n int, last bool, sum byte) store.StoredChunk {
		c := chunk("a", 1, n, last)
		c.Batch, c.Checksum = id, []byte{sum, 1, 2, 3, 4, 5, 6, 7}
		return c
	}
	if _, err := store.StoreChunk(ctx, db, chunk("stranger", 5, 0, true)); !errors.Is(err, store.ErrUnknownSource) {
		t.Errorf("StoreChunk(batch 5 of an unknown source) = %v, want ErrUnknownSource", err)
	}
	storeChunk(t, db, mk(0, false, 0))
	if !storeChunk(t, db, mk(1, false, 1)) || storeChunk(t, db, mk(1, false, 1)) {
		t.Error("StoreChunk(chunk 1), then again: want stored, then not")
	}
	for _, tt := range []struct {
		name string
		c    store.StoredChunk
		says string
	}{
		{"chunk 1 with other content", mk(1, false, 9), "content (SHA-256 09010203"},
		{"chunk 2 of another batch", func() store.StoredChunk { c := mk(2, true, 2); c.Batch.ToTick = 13; return c }(), "batch of ticks 10 to 13, 3 events, chunk 0 is of a batch of ticks 10 to 12, 3 events"},
		{"last chunk short of the count", func() store.StoredChunk { c := mk(2, true, 2); c.Batch.Events = 4; return c }(), "batch of ticks 10 to 12, 4 events"},
		{"last chunk 3 after 0 to 1", func() store.StoredChunk { c := mk(2, true, 2); c.Events = 2; return c }(), "chunks 0 to 2 hold 4 events in all, and the batch has 3"},
	} {
		if _, err := store.StoreChunk(ctx, db, tt.c); !errors.Is(err, store.ErrChunkConflict) || !strings.Contains(err.Error(), tt.says) {
			t.Errorf("StoreChunk(%s) = %v, want ErrChunkConflict saying %q", tt.name, err, tt.says)
		}
	}
	cs, err := store.StoredChunks(ctx, db, "a", 1)
	if err != nil || len(cs) != 2 || cs[1].Chunk != 1 || cs[1].Checksum[0] != 1 {
		t.Errorf("StoredChunks(a, 1) = %+v, %v; want chunks 0 and 1 with their checksums", cs, err)
	}
	if _, ok, _ := store.NextBatch(ctx, db, "a", 0); ok {
		t.Error("NextBatch with 2 of 3 chunks = ok")
	}
	storeChunk(t, db, mk(2, true, 2))
	if b, ok, err := store.NextBatch(ctx, db, "a", 0); !ok || err != nil || b.Events != 3 {
		t.Errorf("NextBatch with its 3 chunks = %+v, %v, %v; want the batch of 3 events", b, ok, err)
	}

	// Chunks that arrived out of order and do not add up are never a batch.
	c := chunk("a", 2, 1, true)
	c.Batch = wire.BatchID{FromTick: 12, ToTick: 14, Events: 5}
	storeChunk(t, db, c)
	c.Chunk, c.Last = 0, false
	storeChunk(t, db, c)
	if r, _ := ack(t, db, "a"); r != 1 {
		t.Errorf("received_seq with batch 2's chunks holding 2 of its 5 events = %d, want 1", r)
	}
}

// TestRemoveSource: removing a source deletes what is stored for it and
// nothing of another's; a second removal finds nothing; a source whose load
// has foreign keys to put back is kept.
func TestRemoveSource(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, _ := dbtest.Migrated(t)
	storeChunk(t, db, chunk("bogus", 1, 0, false))
	storeChunk(t, db, chunk("bogus", 1, 1, false))
	storeChunk(t, db, chunk("kept", 1, 0, true))
	rm, ok, err := store.RemoveSource(ctx, db, "bogus")
	if err != nil || !ok || rm.Chunks != 2 {
		t.Fatalf("RemoveSource(bogus) = %+v, %v, %v; want 2 chunks removed", rm, ok, err)
	}
	var left int
	if err := db.QueryRow(`SELECT count(*) FROM teleport.source WHERE name = 'bogus'`).Scan(&left); err != nil || left != 0 {
		t.Error("the source's row is still there")
	}
	if r, _ := ack(t, db, "kept"); r != 1 {
		t.Errorf("received_seq of the other source = %d, want 1", r)
	}
	if _, ok, err := store.RemoveSource(ctx, db, "bogus"); ok || err != nil {
		t.Errorf("RemoveSource(bogus) again = %v, %v; want not found", ok, err)
	}
	if _, err := db.Exec(`INSERT INTO teleport.load (source, run) VALUES ('kept', 'r1');
		INSERT INTO teleport.load_fk VALUES ('kept', 'public', 't', 't_fk', 'FOREIGN KEY (a) REFERENCES public.u(a)')`); err != nil {
		t.Fatal(err)
	}
	if _, _, err := store.RemoveSource(ctx, db, "kept"); !errors.Is(err, store.ErrLoadFKs) {
		t.Errorf("RemoveSource(a source with foreign keys to put back) = %v, want ErrLoadFKs", err)
	}
}

func TestChunkEvents(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, _ := dbtest.Migrated(t)
	data := `[{"id":1,"j":{ "a" : 1,  "a":2 },"n":1234567890123456789012345678901234567890.5}]`
	body := `{"source":"a","target":"b","seq":1,"chunk":0,"last":true,"events":[` +
		`{"id":7,"schema":"s","table":"t","op":"I","rows":1,"data":` + data + `},` +
		`{"id":8,"schema":"s","table":"t","op":"T","rows":0}]}`
	c := chunk("a", 1, 0, true)
	c.Body = gz(t, body)
	storeChunk(t, db, c)
	evs, err := store.ChunkEvents(ctx, db, "a", 1, 0)
	if err != nil {
		t.Fatalf("ChunkEvents: %v", err)
	}
	if len(evs) != 2 || evs[0].ID != 7 || evs[0].Op != wire.OpInsert || evs[0].Rows != 1 || evs[1].Op != wire.OpTruncate {
		t.Fatalf("ChunkEvents = %+v, want an insert 7 and a truncate", evs)
	}
	if string(evs[0].Data) != data {
		t.Errorf("ChunkEvents data = %s, want the bytes sent: %s", evs[0].Data, data)
	}
	if _, err := store.ChunkEvents(ctx, db, "a", 1, 1); err == nil {
		t.Error("ChunkEvents of a chunk not stored = nil error")
	}
	c = chunk("a", 2, 0, true)
	c.Body = []byte("not gzip")
	storeChunk(t, db, c)
	if _, err := store.ChunkEvents(ctx, db, "a", 2, 0); err == nil || !strings.Contains(err.Error(), "decode chunk 0 of batch 2 from a") {
		t.Errorf("ChunkEvents of a bad body = %v, want an error naming the chunk", err)
	}
}

func sourceState(t *testing.T, db *sql.DB, name string) store.SourceState {
	t.Helper()
	states, err := store.SourceStates(context.Background(), db)
	if err != nil {
		t.Fatalf("SourceStates: %v", err)
	}
	for _, s := range states {
		if s.Name == name {
			return s
		}
	}
	t.Fatalf("SourceStates = %+v, no source %s", states, name)
	return store.SourceState{}
}

func TestMarkBatchApplied(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, _ := dbtest.Migrated(t)
	storeChunk(t, db, chunk("a", 1, 0, true))
	storeChunk(t, db, chunk("a", 2, 0, true))
	storeChunk(t, db, chunk("b", 1, 0, true))

	if err := store.RecordApplyError(ctx, db, "a", 1, "boom"); err != nil {
		t.Fatal(err)
	}
	s := sourceState(t, db, "a")
	if s.Error != "boom" || s.ErrorSeq != 1 || s.ErrorAt.IsZero() || s.ReceivedSeq != 2 || s.AppliedSeq != 0 {
		t.Errorf("SourceStates after RecordApplyError = %+v, want error boom on batch 1, received 2", s)
	}
	since := s.ErrorAt
	if err := store.RecordApplyError(ctx, db, "a", 1, "boom"); err != nil {
		t.Fatal(err)
	}
	if s := sourceState(t, db, "a"); !s.ErrorAt.Equal(since) {
		t.Errorf("error_at after the same error again = %v, want %v: held since then", s.ErrorAt, since)
	}

	if err := store.MarkBatchApplied(ctx, db, "a", 2, tick); err == nil {
		t.Error("MarkBatchApplied(a, 2) before batch 1 = nil, want an error")
	}
	if err := store.MarkBatchApplied(ctx, db, "a", 1, tick); err != nil {
		t.Fatalf("MarkBatchApplied(a, 1): %v", err)
	}
	if err := store.MarkBatchApplied(ctx, db, "a", 1, tick); err == nil {
		t.Error("MarkBatchApplied(a, 1) twice = nil, want an error")
	}
	s = sourceState(t, db, "a")
	if s.AppliedSeq != 1 || !s.TickTime.Equal(tick) || s.AppliedAt.IsZero() || s.Error != "" || s.ErrorSeq != 0 || !s.ErrorAt.IsZero() {
		t.Errorf("SourceStates after MarkBatchApplied = %+v, want applied 1 at tick %v, no error", s, tick)
	}
	if r, a := ack(t, db, "a"); r != 2 || a != 1 {
		t.Errorf("BatchAckFor(a) = %d, %d; want 2, 1", r, a)
	}
	if s := sourceState(t, db, "b"); s.AppliedSeq != 0 || s.ReceivedSeq != 1 {
		t.Errorf("source b = %+v, want untouched", s)
	}

	// A resend of an applied batch is not stored again, even once vacuumed.
	n, err := store.DeleteAppliedChunks(ctx, db, 100)
	if err != nil || n != 1 {
		t.Errorf("DeleteAppliedChunks = %d, %v; want 1 (batch 1 of a)", n, err)
	}
	if storeChunk(t, db, chunk("a", 1, 0, true)) {
		t.Error("StoreChunk of an applied batch = true, want false")
	}
	if r, a := ack(t, db, "a"); r != 2 || a != 1 {
		t.Errorf("BatchAckFor(a) after vacuum = %d, %d; want 2, 1", r, a)
	}
}

func TestSkipBatch(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, _ := dbtest.Migrated(t)
	if err := store.SkipBatch(ctx, db, "nope", 1); !errors.Is(err, store.ErrNotPending) {
		t.Errorf("SkipBatch(unknown source) = %v, want ErrNotPending", err)
	}
	storeChunk(t, db, chunk("a", 1, 0, true))
	if err := store.SkipBatch(ctx, db, "a", 1); err != nil {
		t.Fatalf("SkipBatch(a, 1): %v", err)
	}
	if s := sourceState(t, db, "a"); s.SkipSeq != 1 {
		t.Errorf("skip_seq = %d, want 1", s.SkipSeq)
	}
	if err := store.MarkBatchApplied(ctx, db, "a", 1, tick); err != nil {
		t.Fatal(err)
	}
	if s := sourceState(t, db, "a"); s.SkipSeq != 0 {
		t.Errorf("skip_seq once batch 1 is applied = %d, want none", s.SkipSeq)
	}
	if err := store.SkipBatch(ctx, db, "a", 1); !errors.Is(err, store.ErrNotPending) {
		t.Errorf("SkipBatch(applied batch) = %v, want ErrNotPending", err)
	}
}

func TestLockSource(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, _ := dbtest.Migrated(t)
	storeChunk(t, db, chunk("a", 1, 0, true))
	err := database.InTx(ctx, db, func(tx *sql.Tx) error {
		applied, err := store.LockSource(ctx, tx, "a")
		if err != nil || applied != 0 {
			t.Errorf("LockSource(a) = %d, %v; want 0", applied, err)
		}
		// Another transaction cannot mark a batch while the lock is held.
		lockCtx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
		defer cancel()
		if err := store.MarkBatchApplied(lockCtx, db, "a", 1, tick); err == nil {
			t.Error("MarkBatchApplied while another transaction locks the source = nil, want it to wait")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestDeleteAppliedChunks(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, _ := dbtest.Migrated(t)
	for seq := int64(1); seq <= 3; seq++ {
		for n := range 3 {
			storeChunk(t, db, chunk("a", seq, n, n == 2))
		}
	}
	storeChunk(t, db, chunk("b", 1, 0, true))
	for seq := int64(1); seq <= 2; seq++ {
		if err := store.MarkBatchApplied(ctx, db, "a", seq, tick); err != nil {
			t.Fatal(err)
		}
	}
	var total int64
	for {
		n, err := store.DeleteAppliedChunks(ctx, db, 4)
		if err != nil {
			t.Fatalf("DeleteAppliedChunks: %v", err)
		}
		total += n
		if n < 4 {
			break
		}
	}
	var left int
	if err := db.QueryRow(`SELECT count(*) FROM teleport.received_chunk`).Scan(&left); err != nil {
		t.Fatal(err)
	}
	if total != 6 || left != 4 {
		t.Errorf("DeleteAppliedChunks deleted %d, left %d; want 6 (batches 1, 2 of a), 4", total, left)
	}
}
