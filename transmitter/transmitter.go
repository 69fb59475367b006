// Package transmitter sends each target's batches to its teleport instance over HTTP, in order, until acknowledged.
//
// A batch travels as chunks built from its events when it is sent, the same
// way every time: a chunk closes when its events' rows reach the batch's
// chunk_rows or its JSON reaches 8 MiB, and each event's data goes out as the
// bytes PostgreSQL produced. Nothing is kept in memory between passes: what
// the target has not acknowledged is read again from the database, so a
// target down for any length of time loses nothing.
package transmitter

import (
	"context"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/pagarme/teleport/config"
	"github.com/pagarme/teleport/database/schema"
	"github.com/pagarme/teleport/database/store"
	"github.com/pagarme/teleport/server/wire"
)

const (
	// batchesPerQuery is how many unacknowledged batches are listed at a time.
	batchesPerQuery = 16
	// maxChunkJSON closes a chunk once its events' JSON reaches this size
	// (uncompressed), whatever its rows.
	maxChunkJSON = 8 << 20
	// maxBackoff caps the wait between retries to a failing target (unless
	// the interval itself is longer): one request every few seconds costs a
	// down target nothing, and a target back up waits no longer than this.
	maxBackoff = 5 * time.Second
	// repeatLogEvery is how often an error that keeps repeating is logged again.
	repeatLogEvery = time.Minute
)

// Result is what one pass sent.
type Result struct {
	Batches int   // batches sent in full and acknowledged
	Chunks  int   // chunks posted, including those of batches that then failed
	Bytes   int64 // request bodies posted, compressed
	Resumed int   // chunks not sent again: the target held them from an interrupted pass
	// Idle: nothing was left to send, and the target had applied every
	// batch it acknowledged.
	Idle bool
}

func (r *Result) add(o Result) {
	r.Batches += o.Batches
	r.Chunks += o.Chunks
	r.Bytes += o.Bytes
	r.Resumed += o.Resumed
}

// Worker sends the batches of every configured target.
type Worker struct {
	db       *sql.DB
	source   string
	interval time.Duration
	log      *slog.Logger
	targets  []*target // sorted by name

	instanceMu sync.Mutex
	instance   string // this database's id as a source, read once (instanceID)
}

// instanceID returns this database's id as a source, reading it on first use.
func (w *Worker) instanceID(ctx context.Context) (string, error) {
	w.instanceMu.Lock()
	defer w.instanceMu.Unlock()
	if w.instance == "" {
		id, err := store.InstanceID(ctx, w.db)
		if err != nil {
			return "", err
		}
		w.instance = id
	}
	return w.instance, nil
}

// target is one target's client and what the worker knows of it.
type target struct {
	name        string
	applySchema string
	peer        *peer
	wake        chan struct{} // buffered 1: Wake never blocks

	mu     sync.Mutex // one pass at a time per target, whoever calls it
	synced bool       // asked the target what it has since start or the last error
	// partial is what the target said it holds of the batch after the
	// last it holds whole, at the last sync: its chunks are not sent again.
	partial *wire.PartialBatch

	failMu  sync.Mutex
	failing *wire.SendFailure // why passes to it fail, while they do
}

// New builds the transmitter of source (this instance's database.name) for
// targets. It fails when a target's ca_file cannot be read.
func New(db *sql.DB, source string, targets map[string]config.Target, interval time.Duration, log *slog.Logger) (*Worker, error) {
	if interval <= 0 {
		return nil, fmt.Errorf("transmitter interval must be > 0, got %s", interval)
	}
	w := &Worker{db: db, source: source, interval: interval, log: log.With("worker", "transmitter")}
	for _, name := range slices.Sorted(maps.Keys(targets)) {
		p, err := newPeer(name, targets[name])
		if err != nil {
			return nil, err
		}
		w.targets = append(w.targets, &target{
			name:        name,
			applySchema: targets[name].ApplySchema,
			peer:        p,
			wake:        make(chan struct{}, 1),
		})
	}
	return w, nil
}

// AskTargets asks every target how far it has stored and applied this
// source's batches and records it, as a pass would after sending: for a
// command that must know (-mode uninstall) while the instance may be down.
// It returns the targets' errors joined; a target that does not answer
// keeps what it last said.
func (w *Worker) AskTargets(ctx context.Context) error {
	var errs []error
	for _, t := range w.targets {
		ack, err := w.askTarget(ctx, t)
		if err == nil {
			err = store.AckBatches(ctx, w.db, t.name, ack.ReceivedSeq, ack.AppliedSeq)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("target %s: %w", t.name, err))
		}
	}
	return errors.Join(errs...)
}

// Wake makes every target's loop in Run start a pass now instead of at the
// next interval (a target being retried after an error keeps its backoff).
// It never blocks.
func (w *Worker) Wake() {
	for _, t := range w.targets {
		select {
		case t.wake <- struct{}{}:
		default:
		}
	}
}

// Run runs one loop per target, so a slow or unreachable target never delays
// the others. Each loop sends at once and then every interval, or sooner on
// Wake (after idleRecheck when the target has nothing to send and has
// applied everything, so an idle source costs no query); after a failure it retries with a backoff that starts at the
// interval and doubles up to 30 s, and resets on success. Run returns nil
// once ctx is done.
func (w *Worker) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	for _, t := range w.targets {
		wg.Go(func() { w.loop(ctx, t) })
	}
	wg.Wait()
	<-ctx.Done() // with no targets there is no loop to wait for
	return nil
}

func (w *Worker) loop(ctx context.Context, t *target) {
	var f failures
	for {
		start := time.Now()
		res, err := w.sendTarget(ctx, t)
		wait, wake := w.interval, t.wake
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			if res.Batches > 0 {
				f.wait = 0 // the pass made progress: retry at the interval, not after a growing backoff
			}
			wait = f.fail(w.log, t.name, err, w.interval)
			t.setFailing(&wire.SendFailure{Error: err.Error(), Since: f.since.UTC(), Failures: f.count})
			wake = nil // new batches do not make a failing target come back sooner
		default:
			f.recover(w.log, t.name)
			t.setFailing(nil)
			if res.Idle {
				// Nothing to send until the batcher cuts a batch and
				// wakes this loop; look again after idleRecheck all the
				// same (a batch cut by another process, say).
				wait = max(idleRecheck, w.interval)
			}
			if res.Batches > 0 {
				w.log.Debug("batches sent", "target", t.name, "batches", res.Batches, "chunks", res.Chunks,
					"bytes", res.Bytes, "took", time.Since(start).Round(time.Millisecond))
			}
		}
		timer := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			timer.Stop()
			return
		case <-timer.C:
		case <-wake:
			timer.Stop()
		}
	}
}

func (t *target) setFailing(f *wire.SendFailure) {
	t.failMu.Lock()
	t.failing = f
	t.failMu.Unlock()
}

// Failing returns, by target name, why sending to each target that fails
// now fails: for /status, since only the running instance knows it.
func (w *Worker) Failing() map[string]wire.SendFailure {
	out := map[string]wire.SendFailure{}
	for _, t := range w.targets {
		t.failMu.Lock()
		if t.failing != nil {
			out[t.name] = *t.failing
		}
		t.failMu.Unlock()
	}
	return out
}

// idleRecheck is how long a target with nothing to send waits for a wake.
const idleRecheck = 10 * time.Second

// failures tracks one target's consecutive failed passes, for the backoff
// and so that an error repeating every pass is logged once a minute.
type failures struct {
	count    int // consecutive failed passes
	since    time.Time
	lastMsg  string
	loggedAt time.Time
	unlogged int // failures since the last line logged
	wait     time.Duration
}

// fail logs err when it is new or its last line is a minute old, and
// returns how long to wait before the next try.
func (f *failures) fail(log *slog.Logger, target string, err error, interval time.Duration) time.Duration {
	now := time.Now()
	if f.count == 0 {
		f.since = now
	}
	f.count++
	msg := err.Error()
	switch {
	case f.count == 1 || msg != f.lastMsg:
		log.Error("send failed", "target", target, "err", err)
		f.lastMsg, f.loggedAt, f.unlogged = msg, now, 0
	case now.Sub(f.loggedAt) >= repeatLogEvery:
		log.Error("send still failing", "target", target, "err", err, "repeats", f.unlogged+1,
			"failing_for", now.Sub(f.since).Round(time.Second))
		f.loggedAt, f.unlogged = now, 0
	default:
		f.unlogged++
	}
	if f.wait == 0 {
		f.wait = interval
	} else {
		f.wait = min(2*f.wait, max(maxBackoff, interval))
	}
	return f.wait
}

// recover logs one line when a failing target works again.
func (f *failures) recover(log *slog.Logger, target string) {
	if f.count == 0 {
		return
	}
	log.Info("sending resumed", "target", target, "failures", f.count,
		"failing_for", time.Since(f.since).Round(time.Millisecond))
	*f = failures{}
}

// RunOnce sends every target's unacknowledged batches, the targets in
// parallel, and returns when each is done or has failed. It returns the
// targets' errors joined; a failed target is asked what it has before its
// next batch.
func (w *Worker) RunOnce(ctx context.Context) (Result, error) {
	results := make([]Result, len(w.targets))
	errs := make([]error, len(w.targets))
	var wg sync.WaitGroup
	for i, t := range w.targets {
		wg.Go(func() { results[i], errs[i] = w.sendTarget(ctx, t) })
	}
	wg.Wait()
	var res Result
	for _, r := range results {
		res.add(r)
	}
	return res, errors.Join(errs...)
}

// sendTarget sends t's unacknowledged batches in sequence order until none
// is left or one fails.
func (w *Worker) sendTarget(ctx context.Context, t *target) (res Result, err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	defer func() {
		if err != nil {
			t.synced = false // the target may have changed while we could not reach it
		}
	}()
	for {
		bs, err := store.UnackedBatches(ctx, w.db, t.name, batchesPerQuery)
		if err != nil {
			return res, err
		}
		if len(bs) == 0 {
			caughtUp, err := w.refreshApplied(ctx, t)
			res.Idle = caughtUp && res.Batches == 0
			return res, err
		}
		if !t.synced {
			if err := w.sync(ctx, t); err != nil {
				return res, err
			}
			t.synced = true
			continue // the target may hold some of them already
		}
		acked := int64(0)
		for _, b := range bs {
			if b.Seq <= acked {
				continue // the last answer says the target has it
			}
			ack, err := w.sendBatch(ctx, t, b, &res)
			if err != nil {
				return res, err
			}
			res.Batches++
			acked = ack
		}
		if len(bs) < batchesPerQuery || ctx.Err() != nil {
			return res, ctx.Err()
		}
	}
}

// refreshApplied asks the target how far it has applied when it has stored
// batches it had not applied at the last answer, so the source's view of the
// target (its lag in /status, what vacuum may delete) does not wait for the
// next batch. It reports whether the target has applied every batch it
// acknowledged.
func (w *Worker) refreshApplied(ctx context.Context, t *target) (bool, error) {
	st, err := store.GetTargetState(ctx, w.db, t.name)
	if err != nil || st.AppliedSeq >= st.AckedSeq {
		return err == nil, err
	}
	ack, err := w.askTarget(ctx, t)
	if err != nil {
		return false, err
	}
	return ack.AppliedSeq >= st.AckedSeq, store.AckBatches(ctx, w.db, t.name, ack.ReceivedSeq, ack.AppliedSeq)
}

// askTarget asks t how far it has stored and applied this source's batches,
// naming this instance.
func (w *Worker) askTarget(ctx context.Context, t *target) (wire.BatchAck, error) {
	instance, err := w.instanceID(ctx)
	if err != nil {
		return wire.BatchAck{}, err
	}
	return t.peer.getAck(ctx, w.source, instance)
}

// sync asks the target which batches it has and records that, so a restarted
// source does not resend what the target stored before it could answer.
func (w *Worker) sync(ctx context.Context, t *target) error {
	ack, err := w.askTarget(ctx, t)
	if err != nil {
		return err
	}
	st, err := store.GetTargetState(ctx, w.db, t.name)
	if err != nil {
		return err
	}
	if ack.ReceivedSeq < st.AckedSeq {
		w.log.Error("target lost acknowledged batches", "target", t.name,
			"received_seq", ack.ReceivedSeq, "acked_seq", st.AckedSeq,
			"hint", "the target acknowledged batches it no longer has (its database restored from an older backup?); "+
				"they are not resent, their events may be gone: its applier will wait at the gap until the target is reloaded")
	}
	if ack.ReceivedSeq >= st.NextSeq {
		w.log.Error("target has batches this source never cut", "target", t.name,
			"received_seq", ack.ReceivedSeq, "next_seq", st.NextSeq,
			"hint", "another source uses this database.name, or this source's database was restored from an older backup; "+
				"the target ignores batches with sequence numbers it already has")
	}
	if err := store.AckBatches(ctx, w.db, t.name, ack.ReceivedSeq, ack.AppliedSeq); err != nil {
		return err
	}
	t.partial = ack.Partial
	w.log.Debug("target asked", "target", t.name, "received_seq", ack.ReceivedSeq, "applied_seq", ack.AppliedSeq,
		"partial_chunks", len(ack.PartialChunks()))
	return nil
}

// sendBatch streams b's events into chunks and posts them in order, holding
// at most one finished chunk back until it knows whether another follows,
// so memory stays bounded by about two chunks. A chunk the target said it
// holds already, with the same checksum, is not sent again: an interrupted
// batch resumes at the first chunk the target lacks. It records the answer
// to the last chunk and returns the received_seq it recorded.
func (w *Worker) sendBatch(ctx context.Context, t *target, b store.Batch, res *Result) (int64, error) {
	start, resumed := time.Now(), res.Resumed
	instance, err := w.instanceID(ctx)
	if err != nil {
		return 0, err
	}
	head, err := wire.ChunkHead(w.source, instance, t.name, b.Seq, b.TickTime, wire.BatchID{FromTick: b.FromTick, ToTick: b.ToTick, Events: b.Events})
	if err != nil {
		return 0, fmt.Errorf("send batch %d to %s: %w", b.Seq, t.name, err)
	}
	var held []string // checksums of the chunks the target holds
	if t.partial != nil && t.partial.Seq == b.Seq {
		held = t.partial.Chunks
	}
	post := func(c *wire.Chunk, last bool) (wire.BatchAck, error) {
		body, sum, err := c.Finish(last)
		if err != nil {
			return wire.BatchAck{}, fmt.Errorf("send batch %d chunk %d to %s: %w", b.Seq, c.N, t.name, err)
		}
		if !last && c.N < len(held) && held[c.N] == hex.EncodeToString(sum) {
			res.Resumed++
			return wire.BatchAck{}, nil
		}
		ack, err := t.peer.postChunk(ctx, w.source, b.Seq, c.N, body, sum)
		res.Chunks++
		res.Bytes += int64(len(body))
		return ack, err
	}
	var (
		cur, full *wire.Chunk // the chunk being built, and the one built before it
		chunks    int
		events    int
		buf       []byte
	)
	err = schema.BatchEvents(ctx, w.db, b, func(e wire.Event) error {
		events++
		if full != nil {
			if _, err := post(full, false); err != nil {
				return err
			}
			full = nil
		}
		if cur == nil {
			cur = wire.NewChunk(head, chunks)
			chunks++
		}
		if t.applySchema != "" {
			e.Schema = t.applySchema
		}
		buf = wire.AppendEvent(buf[:0], e)
		if err := cur.Add(buf, e.Rows); err != nil {
			return fmt.Errorf("send batch %d to %s: compress event %d: %w", b.Seq, t.name, e.ID, err)
		}
		if cur.Rows >= int64(b.ChunkRows) || cur.Size >= maxChunkJSON {
			full, cur = cur, nil
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	// Never complete a batch that differs from the one cut: the target would
	// apply it as whole.
	if events != b.Events {
		return 0, fmt.Errorf("send batch %d to %s: read %d events, the batch was cut with %d "+
			"(were its events deleted, or the target's target_expression changed before it was sent?)",
			b.Seq, t.name, events, b.Events)
	}
	last := cur
	if full != nil {
		last = full
	}
	if last == nil {
		return 0, fmt.Errorf("send batch %d to %s: it has no events", b.Seq, t.name)
	}
	ack, err := post(last, true)
	if err != nil {
		return 0, err
	}
	// The target's word, not the 200, says whether it holds all of b: a
	// chunk it had already, from another writer, is acknowledged without
	// being stored.
	received := ack.ReceivedSeq
	if received < b.Seq {
		return 0, fmt.Errorf("send batch %d to %s: after its last chunk the target holds the batches up to %d only: "+
			"it has chunks of batch %d that this source did not send (another instance with database.name %q?)",
			b.Seq, t.name, received, b.Seq, w.source)
	}
	if err := store.AckBatches(ctx, w.db, t.name, received, ack.AppliedSeq); err != nil {
		return 0, err
	}
	t.partial = nil
	if n := res.Resumed - resumed; n > 0 {
		w.log.Info("batch resumed: the target held part of it from an interrupted transfer", "target", t.name, "seq", b.Seq,
			"chunks_not_resent", n, "chunks", chunks)
	}
	w.log.Debug("batch sent", "target", t.name, "seq", b.Seq, "chunks", chunks, "events", events,
		"received_seq", ack.ReceivedSeq, "applied_seq", ack.AppliedSeq, "took", time.Since(start).Round(time.Millisecond))
	return received, nil
}
