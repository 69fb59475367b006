package store

import (
	"bytes"
	"compress/gzip"
	"context"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/lib/pq"

	"github.com/pagarme/teleport/database"
	"github.com/pagarme/teleport/server/wire"
)

// StoredChunk is one chunk of a batch as the target stores it in
// teleport.received_chunk.
type StoredChunk struct {
	Source   string
	Seq      int64
	Chunk    int
	Last     bool
	Events   int
	Rows     int64
	TickTime time.Time
	Body     []byte // the request body as received: gzip of the JSON chunk, which holds "events"
	// Instance is the sending instance's identity (see InstanceID); ""
	// from a source that does not send one.
	Instance string
	// Batch identifies the batch as its source cut it; zero from a source
	// that does not send it.
	Batch wire.BatchID
	// Checksum is the SHA-256 of the chunk's JSON; nil when the source sent
	// none.
	Checksum []byte
}

// ErrChunkConflict is a chunk that disagrees with what is stored of its
// batch: the same number with other contents, or another tick time.
var ErrChunkConflict = errors.New("chunk conflicts with what is stored of its batch")

// ErrUnknownSource is a chunk from a source this database has never heard
// of that is not the source's first batch: a source is admitted by its
// batch 1 (or an initial load), so a stray or forged request cannot create
// one, and a source whose earlier batches are not here is told so rather
// than held at the gap forever.
var ErrUnknownSource = errors.New("unknown source")

// ErrOtherInstance is a request from another instance than the one a
// source's chunks come from: two instances use one database.name.
var ErrOtherInstance = errors.New("another instance sends as this source")

// InstanceID returns this database's identity as a source.
func InstanceID(ctx context.Context, q database.Querier) (string, error) {
	var id string
	if err := q.QueryRowContext(ctx, query("instance_id")).Scan(&id); err != nil {
		return "", fmt.Errorf("read this instance's id: %w", err)
	}
	return id, nil
}

// CheckInstance returns an error wrapping ErrOtherInstance when source's
// chunks come from another instance than instance ("" checks nothing: a
// source that does not name itself may still ask where it stands).
func CheckInstance(ctx context.Context, q database.Querier, source, instance string) error {
	if instance == "" {
		return nil
	}
	var have sql.NullString
	err := q.QueryRowContext(ctx, query("source_instance"), source).Scan(&have)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("read the instance of source %s: %w", source, err)
	}
	return otherInstance(source, have, instance)
}

// otherInstance is the error for a request from instance ("" for none) to a
// source whose chunks come from have, or nil when they agree or the source
// has no instance yet.
func otherInstance(source string, have sql.NullString, instance string) error {
	if !have.Valid || have.String == instance {
		return nil
	}
	from := "instance " + instance
	if instance == "" {
		from = "no instance"
	}
	return fmt.Errorf("source %s: this request names %s, and the source's batches come from instance %s: %w",
		source, from, have.String, ErrOtherInstance)
}

// StoreChunk stores a received chunk and creates its source's row if this is
// the source's first. It reports whether the chunk was new: a chunk already
// stored, or one of a batch already applied, is left as it is, so a resend
// changes nothing. A chunk that disagrees with what is stored of its batch
// (see checkPeers) is not stored: the error wraps ErrChunkConflict.
func StoreChunk(ctx context.Context, q database.Querier, c StoredChunk) (bool, error) {
	if err := checkPeers(ctx, q, c); err != nil {
		return false, err
	}
	var instance sql.NullString
	if c.Instance != "" {
		instance = sql.NullString{String: c.Instance, Valid: true}
	}
	var from, to, events sql.NullInt64
	if c.Batch != (wire.BatchID{}) {
		from = sql.NullInt64{Int64: c.Batch.FromTick, Valid: true}
		to = sql.NullInt64{Int64: c.Batch.ToTick, Valid: true}
		events = sql.NullInt64{Int64: int64(c.Batch.Events), Valid: true}
	}
	res, err := q.ExecContext(ctx, query("received_chunk_insert"),
		c.Source, c.Seq, c.Chunk, c.Last, c.Events, c.Rows, c.TickTime, c.Body, instance,
		from, to, events, c.Checksum)
	if err != nil {
		return false, fmt.Errorf("store chunk %d of batch %d from %s: %w", c.Chunk, c.Seq, c.Source, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("store chunk %d of batch %d from %s: %w", c.Chunk, c.Seq, c.Source, err)
	}
	return n == 1, nil
}

// checkPeers compares c with what is stored of its source and batch. The
// source must be known, or c be of its first batch; c must come from the
// source's instance, once it has one (see CheckInstance); a resend of a
// stored chunk must say what the stored one says (last, events, rows,
// checksum); every chunk carries the tick time and batch identity of chunk
// 0; and a last chunk must bring the events of the chunks before it to the
// batch's count. A source resends a chunk identically, so a difference
// means another writer (a second instance with the same database.name, a
// forged request) or a changed chunking: keeping either chunk could apply
// events twice or not at all.
func checkPeers(ctx context.Context, q database.Querier, c StoredChunk) error {
	wrap := func(err error) error {
		return fmt.Errorf("store chunk %d of batch %d from %s: %w", c.Chunk, c.Seq, c.Source, err)
	}
	rows, err := q.QueryContext(ctx, query("received_chunk_peers"), c.Source, c.Seq, c.Chunk)
	if err != nil {
		return wrap(err)
	}
	defer rows.Close()
	var diffs []string
	var known bool
	var have sql.NullString // the source's instance
	for rows.Next() {
		var o struct {
			Chunk           sql.NullInt64
			Last            sql.NullBool
			Events          sql.NullInt64
			Rows            sql.NullInt64
			TickTime        sql.NullTime
			From, To, Batch sql.NullInt64
			Checksum        []byte
		}
		if err := rows.Scan(&known, &have, &o.Chunk, &o.Last, &o.Events, &o.Rows, &o.TickTime,
			&o.From, &o.To, &o.Batch, &o.Checksum); err != nil {
			return wrap(err)
		}
		if !o.Chunk.Valid {
			continue // nothing stored of the batch
		}
		if !o.TickTime.Time.Equal(c.TickTime) {
			diffs = append(diffs, fmt.Sprintf("tick_time %s, chunk %d has %s", c.TickTime.UTC().Format(time.RFC3339Nano), o.Chunk.Int64, o.TickTime.Time.UTC().Format(time.RFC3339Nano)))
		}
		stored := wire.BatchID{FromTick: o.From.Int64, ToTick: o.To.Int64, Events: int(o.Batch.Int64)}
		if o.From.Valid && c.Batch != (wire.BatchID{}) && stored != c.Batch {
			diffs = append(diffs, fmt.Sprintf("batch of %s, chunk %d is of a batch of %s", c.Batch, o.Chunk.Int64, stored))
		}
		if int(o.Chunk.Int64) != c.Chunk {
			continue
		}
		if o.Last.Bool != c.Last || int(o.Events.Int64) != c.Events || o.Rows.Int64 != c.Rows {
			diffs = append(diffs, fmt.Sprintf("last %t, %d events, %d rows; the stored chunk %d has last %t, %d events, %d rows",
				c.Last, c.Events, c.Rows, o.Chunk.Int64, o.Last.Bool, o.Events.Int64, o.Rows.Int64))
		} else if o.Checksum != nil && c.Checksum != nil && !bytes.Equal(o.Checksum, c.Checksum) {
			diffs = append(diffs, fmt.Sprintf("content (SHA-256 %x) differs from the stored chunk %d's (%x)", c.Checksum[:8], o.Chunk.Int64, o.Checksum[:8]))
		}
	}
	if err := rows.Err(); err != nil {
		return wrap(err)
	}
	if !known && c.Seq != 1 {
		return fmt.Errorf("source %s: this database has no batch from it, and this chunk is of batch %d, not its first: "+
			"its earlier batches are not here to apply before it (was this target's teleport state reset, or the source removed here?): %w",
			c.Source, c.Seq, ErrUnknownSource)
	}
	if err := otherInstance(c.Source, have, c.Instance); err != nil {
		return err
	}
	if c.Instance != "" && !have.Valid && known {
		// A source known from before instances were sent: it is this one now.
		if _, err := q.ExecContext(ctx, query("source_instance_set"), c.Source, c.Instance); err != nil {
			return fmt.Errorf("record the instance of source %s: %w", c.Source, err)
		}
	}
	if c.Last && c.Batch != (wire.BatchID{}) && len(diffs) == 0 {
		var n, events int64
		if err := q.QueryRowContext(ctx, query("received_chunk_sum"), c.Source, c.Seq, c.Chunk).Scan(&n, &events); err != nil {
			return wrap(err)
		}
		if n == int64(c.Chunk) && events+int64(c.Events) != int64(c.Batch.Events) {
			diffs = append(diffs, fmt.Sprintf("last chunk, but chunks 0 to %d hold %d events in all, and the batch has %d",
				c.Chunk, events+int64(c.Events), c.Batch.Events))
		}
	}
	if len(diffs) > 0 {
		return fmt.Errorf("chunk %d of batch %d from %s: %s: %w", c.Chunk, c.Seq, c.Source, strings.Join(slices.Compact(diffs), "; "), ErrChunkConflict)
	}
	return nil
}

// BatchAckFor reports how far batches from source are stored and applied:
// every batch up to received is stored in full (received >= applied), every
// batch up to applied is applied. An unknown source has 0, 0.
func BatchAckFor(ctx context.Context, q database.Querier, source string) (received, applied int64, err error) {
	if err := q.QueryRowContext(ctx, query("received_chunk_ack"), source).Scan(&received, &applied); err != nil {
		return 0, 0, fmt.Errorf("read batch ack for %s: %w", source, err)
	}
	return received, applied, nil
}

// ReceivedBatch is a batch stored in full on the target, ready to apply.
type ReceivedBatch struct {
	Source   string
	Seq      int64
	Chunks   int // numbered 0..Chunks-1
	Events   int
	Rows     int64
	TickTime time.Time // when the source took the batch's closing tick, source clock
}

// NextBatch returns batch after+1 of source when all its chunks are stored;
// ok is false when it is missing or incomplete, so a gap waits.
func NextBatch(ctx context.Context, q database.Querier, source string, after int64) (b ReceivedBatch, ok bool, err error) {
	b = ReceivedBatch{Source: source, Seq: after + 1}
	err = q.QueryRowContext(ctx, query("received_chunk_batch"), source, b.Seq).Scan(&b.Chunks, &b.Events, &b.Rows, &b.TickTime)
	if errors.Is(err, sql.ErrNoRows) {
		return ReceivedBatch{}, false, nil
	}
	if err != nil {
		return ReceivedBatch{}, false, fmt.Errorf("look up batch %d from %s: %w", b.Seq, source, err)
	}
	return b, true, nil
}

// ChunkEvents loads and decodes the events of one stored chunk. Each event's
// Data is the bytes the source sent, unchanged. The applier loads one chunk
// at a time, so memory stays bounded however large the batch.
func ChunkEvents(ctx context.Context, q database.Querier, source string, seq int64, chunk int) ([]wire.Event, error) {
	var body []byte
	err := q.QueryRowContext(ctx, query("received_chunk_body"), source, seq, chunk).Scan(&body)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("load chunk %d of batch %d from %s: not stored", chunk, seq, source)
	}
	if err != nil {
		return nil, fmt.Errorf("load chunk %d of batch %d from %s: %w", chunk, seq, source, err)
	}
	zr, err := gzip.NewReader(bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("decode chunk %d of batch %d from %s: %w", chunk, seq, source, err)
	}
	// gzip's trailer ends with the text's size (modulo 4 GiB): read into
	// a buffer of that size, a chunk is not copied again and again as
	// io.ReadAll grows its buffer (growing was 7 % of the target
	// instance's CPU profile on a backlog of small transactions).
	var buf bytes.Buffer
	if n := len(body); n >= 4 {
		buf.Grow(min(int(binary.LittleEndian.Uint32(body[n-4:])), 64<<20) + bytes.MinRead)
	}
	if _, err := buf.ReadFrom(zr); err != nil {
		return nil, fmt.Errorf("decode chunk %d of batch %d from %s: %w", chunk, seq, source, err)
	}
	js := buf.Bytes()
	evs, err := wire.ChunkEvents(js)
	if err != nil {
		return nil, fmt.Errorf("decode chunk %d of batch %d from %s: %w", chunk, seq, source, err)
	}
	return evs, nil
}

// LockSource locks source's row until the transaction ends, so two appliers
// on one database take turns, and returns its applied_seq.
func LockSource(ctx context.Context, tx *sql.Tx, source string) (int64, error) {
	var applied int64
	if err := tx.QueryRowContext(ctx, query("source_lock"), source).Scan(&applied); err != nil {
		return 0, fmt.Errorf("lock source %s: %w", source, err)
	}
	return applied, nil
}

// A BatchPart says how far a batch applied in several transactions has
// got: a schema change too big for one transaction is applied in parts,
// each committed with the place the next one starts from.
type BatchPart struct {
	DDL      int   // rank in the batch of the schema change applied in parts: every event before it is applied
	Item     int   // its items before Item are applied, but for Deferred
	Deferred []int // items that wait for an object a later item makes
}

// LockSourceFor is LockSource for the transaction that applies batch seq:
// it also returns how far that batch has got, if it is applied in parts.
func LockSourceFor(ctx context.Context, tx *sql.Tx, source string, seq int64) (applied int64, p BatchPart, inParts bool, err error) {
	var ddl, item sql.NullInt64
	var deferred pq.Int64Array
	if err := tx.QueryRowContext(ctx, query("source_lock_part"), source, seq).Scan(&applied, &ddl, &item, &deferred); err != nil {
		return 0, p, false, fmt.Errorf("lock source %s: %w", source, err)
	}
	if !ddl.Valid {
		return applied, p, false, nil
	}
	p.DDL, p.Item = int(ddl.Int64), int(item.Int64)
	for _, d := range deferred {
		p.Deferred = append(p.Deferred, int(d))
	}
	return applied, p, true, nil
}

// SaveBatchPart records, in the transaction of the part it ends, where the
// next part of batch seq of source starts. MarkBatchApplied clears it.
func SaveBatchPart(ctx context.Context, tx *sql.Tx, source string, seq int64, p BatchPart) error {
	deferred := make(pq.Int64Array, len(p.Deferred))
	for i, d := range p.Deferred {
		deferred[i] = int64(d)
	}
	if _, err := tx.ExecContext(ctx, query("source_part_save"), source, seq, p.DDL, p.Item, deferred); err != nil {
		return fmt.Errorf("record how far batch %d from %s has got: %w", seq, source, err)
	}
	return nil
}

// MarkBatchApplied records, in the apply transaction, that batch seq of
// source is applied: applied_seq, tick_time and applied_at move on, the held
// error and a skip request up to seq are cleared. It fails unless seq is the
// batch right after applied_seq, so no batch is applied twice or skipped.
func MarkBatchApplied(ctx context.Context, q database.Querier, source string, seq int64, tickTime time.Time) error {
	res, err := q.ExecContext(ctx, query("source_mark_applied"), source, seq, tickTime)
	if err != nil {
		return fmt.Errorf("mark batch %d from %s applied: %w", seq, source, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("mark batch %d from %s applied: %w", seq, source, err)
	}
	if n != 1 {
		return fmt.Errorf("mark batch %d from %s applied: the source is not at batch %d", seq, source, seq-1)
	}
	return nil
}

// RecordApplyError records why batch seq of source is held. Call it after
// the failed apply transaction rolled back.
func RecordApplyError(ctx context.Context, q database.Querier, source string, seq int64, msg string) error {
	if _, err := q.ExecContext(ctx, query("source_record_error"), source, seq, msg); err != nil {
		return fmt.Errorf("record error of batch %d from %s: %w", seq, source, err)
	}
	return nil
}

// ErrNotPending means a batch cannot be skipped: its source is unknown or
// has applied it already.
var ErrNotPending = errors.New("not pending")

// SkipBatch asks the applier to mark batch seq of source applied without
// running it, once it is the next batch and stored in full. Its changes are
// lost on this target: it is an operator's decision.
func SkipBatch(ctx context.Context, q database.Querier, source string, seq int64) error {
	res, err := q.ExecContext(ctx, query("source_skip"), source, seq)
	if err != nil {
		return fmt.Errorf("skip batch %d from %s: %w", seq, source, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("skip batch %d from %s: %w", seq, source, err)
	}
	if n != 1 {
		return fmt.Errorf("skip batch %d from %s: %w", seq, source, ErrNotPending)
	}
	return nil
}

// SourceState is where one source stands on this target, for /status and
// the applier. Zero times and sequence numbers mean none.
type SourceState struct {
	Name        string
	ReceivedSeq int64 // every batch up to this one is stored in full
	AppliedSeq  int64
	AppliedAt   time.Time // when the last batch was applied, this database's clock
	TickTime    time.Time // when the source took the last applied batch's closing tick, source clock
	Error       string    // why batch ErrorSeq is held; "" when none is
	ErrorSeq    int64
	ErrorAt     time.Time // since when batch ErrorSeq is held with Error
	SkipSeq     int64     // the batch an operator asked to skip
}

// SourceStates returns every source that has sent batches here, by name.
func SourceStates(ctx context.Context, q database.Querier) ([]SourceState, error) {
	rows, err := q.QueryContext(ctx, query("source_states"))
	if err != nil {
		return nil, fmt.Errorf("read source states: %w", err)
	}
	defer rows.Close()
	var out []SourceState
	for rows.Next() {
		var (
			s                            SourceState
			appliedAt, tickTime, errorAt sql.NullTime
			errMsg                       sql.NullString
			errorSeq, skipSeq            sql.NullInt64
		)
		if err := rows.Scan(&s.Name, &s.ReceivedSeq, &s.AppliedSeq, &appliedAt, &tickTime,
			&errMsg, &errorSeq, &errorAt, &skipSeq); err != nil {
			return nil, fmt.Errorf("read source states: %w", err)
		}
		s.AppliedAt, s.TickTime, s.ErrorAt = appliedAt.Time, tickTime.Time, errorAt.Time
		s.Error, s.ErrorSeq, s.SkipSeq = errMsg.String, errorSeq.Int64, skipSeq.Int64
		out = append(out, s)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read source states: %w", err)
	}
	return out, nil
}

// DeleteAppliedChunks deletes up to limit stored chunks of batches already
// applied and returns how many it deleted.
func DeleteAppliedChunks(ctx context.Context, q database.Querier, limit int) (int64, error) {
	res, err := q.ExecContext(ctx, query("received_chunk_delete_applied"), limit)
	if err != nil {
		return 0, fmt.Errorf("delete applied chunks: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("delete applied chunks: %w", err)
	}
	return n, nil
}

// ChunkSummary is one chunk stored of a batch not complete yet.
type ChunkSummary struct {
	Chunk      int
	Checksum   []byte // nil when its source sent none
	Bytes      int64  // as received, compressed
	ReceivedAt time.Time
}

// StoredChunks lists the chunks of batch seq of source stored so far, in
// chunk order: what a source resuming the batch need not send again, and
// what /status shows of a batch being received.
func StoredChunks(ctx context.Context, q database.Querier, source string, seq int64) ([]ChunkSummary, error) {
	rows, err := q.QueryContext(ctx, query("received_chunk_stored"), source, seq)
	if err != nil {
		return nil, fmt.Errorf("list stored chunks of batch %d from %s: %w", seq, source, err)
	}
	defer rows.Close()
	var out []ChunkSummary
	for rows.Next() {
		var c ChunkSummary
		if err := rows.Scan(&c.Chunk, &c.Checksum, &c.Bytes, &c.ReceivedAt); err != nil {
			return nil, fmt.Errorf("list stored chunks of batch %d from %s: %w", seq, source, err)
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list stored chunks of batch %d from %s: %w", seq, source, err)
	}
	return out, nil
}

// ErrLoadFKs refuses to remove a source whose unfinished initial load
// dropped foreign keys it has not put back yet.
var ErrLoadFKs = errors.New("its initial load has foreign keys to put back")

// Removed is what RemoveSource deleted.
type Removed struct {
	Chunks     int64 // stored chunks
	AppliedSeq int64 // the batches it had applied
}

// RemoveSource deletes source and everything stored for it here, in one
// transaction, waiting for an apply of it under way. ok is false when no
// such source is known. Rows its batches applied stay as they are.
func RemoveSource(ctx context.Context, db *sql.DB, source string) (rm Removed, ok bool, err error) {
	err = database.InTx(ctx, db, func(tx *sql.Tx) error {
		var fks int
		err := tx.QueryRowContext(ctx, query("source_remove_check"), source).Scan(&fks)
		if errors.Is(err, sql.ErrNoRows) {
			return nil
		}
		if err != nil {
			return err
		}
		if fks > 0 {
			return fmt.Errorf("%d foreign keys dropped by the load from %s are recorded in teleport.load_fk: "+
				"finish the load (run -mode initial-load again on the source) first: %w", fks, source, ErrLoadFKs)
		}
		if err := tx.QueryRowContext(ctx, query("source_remove"), source).Scan(&rm.Chunks, &rm.AppliedSeq); err != nil {
			return err
		}
		ok = true
		return nil
	})
	if err != nil {
		return Removed{}, false, fmt.Errorf("remove source %s: %w", source, err)
	}
	return rm, ok, nil
}
