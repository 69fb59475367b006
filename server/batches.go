package server

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"regexp"
	"strconv"
	"strings"

	"github.com/gorilla/mux"

	"github.com/pagarme/teleport/config"
	"github.com/pagarme/teleport/database"
	"github.com/pagarme/teleport/database/schema"
	"github.com/pagarme/teleport/database/store"
	"github.com/pagarme/teleport/server/wire"
)

// validInstance is an instance id as PostgreSQL writes a uuid.
var validInstance = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)

// errTooLarge is a body over one of the limits: 413.
var errTooLarge = errors.New("too large")

// receiveBatch stores one chunk of a batch before answering, so an answered
// chunk survives a crash. A chunk already stored is acknowledged without
// effect. A malformed chunk is 400, an oversized one 413, one from a source
// server.sources leaves out 403, one that conflicts with what is stored 409,
// and none of them stores anything; each is counted in /status.
func (s *Server) receiveBatch(w http.ResponseWriter, r *http.Request) {
	name, seq, chunk := r.Header.Get(wire.HeaderSource), int64(0), 0
	if config.CheckName(name) != nil {
		name = "?"
	}
	if v, err := strconv.ParseInt(r.Header.Get(wire.HeaderSeq), 10, 64); err == nil {
		seq = v
	}
	if v, err := strconv.Atoi(r.Header.Get(wire.HeaderChunk)); err == nil {
		chunk = v
	}
	refuse := func(code int, msg string) {
		s.transfers.refuse(name, seq, chunk, code, msg)
		writeError(w, code, msg)
	}
	var rd *reading
	if name != "?" {
		rd = s.transfers.start(name, seq, chunk)
		defer s.transfers.end(name, rd)
	}
	c, err := s.readChunk(w, r, rd)
	if c.Source != "" && config.CheckName(c.Source) == nil {
		name, seq, chunk = c.Source, c.Seq, c.Chunk
	}
	switch {
	case errors.Is(err, errTooLarge):
		refuse(http.StatusRequestEntityTooLarge, err.Error())
		return
	case errors.Is(err, errNotAdmitted):
		refuse(http.StatusForbidden, err.Error())
		return
	case r.Context().Err() != nil:
		s.log.Warn("chunk abandoned: the source went away", "source", name, "seq", seq, "chunk", chunk, "err", err)
		return
	case err != nil:
		refuse(http.StatusBadRequest, err.Error())
		return
	}
	stored, err := store.StoreChunk(r.Context(), s.db, c)
	switch {
	case errors.Is(err, store.ErrOtherInstance):
		s.transfers.refuse(name, seq, chunk, http.StatusConflict, err.Error())
		s.refuseInstance(w, c.Source, err)
		return
	case errors.Is(err, store.ErrUnknownSource):
		s.log.Warn("chunk refused: unknown source", "source", c.Source, "seq", c.Seq, "chunk", c.Chunk, "err", err)
		refuse(http.StatusConflict, err.Error()+". A source is admitted by its batch 1; to start it over here, "+
			"remove this target from its targets, restart it, add the target back and run an initial load")
		return
	case errors.Is(err, store.ErrChunkConflict):
		s.log.Warn("chunk refused: it conflicts with what is stored of its batch", "source", c.Source, "seq", c.Seq, "chunk", c.Chunk, "err", err)
		refuse(http.StatusConflict, err.Error()+": is another instance sending as "+c.Source+
			"? Each source instance needs its own database.name; chunks of a batch not applied yet may be deleted from teleport.received_chunk to receive it again")
		return
	case err != nil:
		s.log.Error("store chunk", "source", c.Source, "seq", c.Seq, "chunk", c.Chunk, "err", err)
		writeError(w, http.StatusInternalServerError, "store chunk: database error")
		return
	}
	if stored {
		s.transfers.received.stored.Add(1)
		s.log.Debug("chunk stored", "source", c.Source, "seq", c.Seq, "chunk", c.Chunk, "events", c.Events, "last", c.Last)
		if c.Last && s.onBatch != nil {
			s.onBatch()
		}
	} else {
		s.transfers.received.duplicate.Add(1)
	}
	s.writeAck(w, r, c.Source, false)
}

// batchAck answers GET /batches/{source}, so a restarted source can ask
// where to resume.
func (s *Server) batchAck(w http.ResponseWriter, r *http.Request) {
	s.writeAck(w, r, mux.Vars(r)["source"], true)
}

// checkInstance answers 409 to a request for a source whose batches come
// from another instance than the one its ?instance=ID names; a request
// without one is let through (a source from before instance ids).
func (s *Server) checkInstance(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		source := mux.Vars(r)["source"]
		instance := r.URL.Query().Get("instance")
		if instance != "" && !validInstance.MatchString(instance) {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("instance: %.40q is not an instance id (a UUID)", instance))
			return
		}
		err := store.CheckInstance(r.Context(), s.db, source, instance)
		switch {
		case errors.Is(err, store.ErrOtherInstance):
			s.refuseInstance(w, source, err)
			return
		case err != nil:
			s.log.Error("read source instance", "source", source, "err", err)
			writeError(w, http.StatusInternalServerError, "read source instance: database error")
			return
		}
		next.ServeHTTP(w, r)
	})
}

// refuseInstance answers 409 to a request from a second instance using a
// source's name, and logs it.
func (s *Server) refuseInstance(w http.ResponseWriter, source string, err error) {
	s.log.Warn("request refused: another instance sends as this source", "source", source, "err", err)
	writeError(w, http.StatusConflict, err.Error()+": two instances use database.name "+source+
		"; give each its own. If the source's database was replaced on purpose, run on this target "+
		"UPDATE teleport.source SET instance = NULL WHERE name = '"+source+"' and reload it")
}

// writeAck answers how far source's batches are stored and applied, and
// with partial what is stored of the next one.
func (s *Server) writeAck(w http.ResponseWriter, r *http.Request, source string, partial bool) {
	received, applied, err := store.BatchAckFor(r.Context(), s.db, source)
	if err != nil {
		s.log.Error("read batch ack", "source", source, "err", err)
		writeError(w, http.StatusInternalServerError, "read batch ack: database error")
		return
	}
	ack := wire.BatchAck{Source: source, ReceivedSeq: received, AppliedSeq: applied}
	if partial {
		cs, err := store.StoredChunks(r.Context(), s.db, source, received+1)
		if err != nil {
			s.log.Error("read stored chunks", "source", source, "err", err)
			writeError(w, http.StatusInternalServerError, "read stored chunks: database error")
			return
		}
		for i, c := range cs {
			if c.Chunk != i {
				break
			}
			if ack.Partial == nil {
				ack.Partial = &wire.PartialBatch{Seq: received + 1}
			}
			ack.Partial.Chunks = append(ack.Partial.Chunks, hex.EncodeToString(c.Checksum))
		}
	}
	writeJSON(w, http.StatusOK, ack)
}

// errNotAdmitted is a chunk from a source server.sources leaves out: 403.
var errNotAdmitted = errors.New("not admitted")

// readChunk reads the gzip body within server.max_chunk_mib, counting its
// bytes into rd when set, and decodes and checks the chunk. The body is
// read off the network first, then decompressed and checked in turn with
// at most maxDecoding others, its size checked as it expands: a bomb is
// refused once it passes the limit, never held in memory whole.
func (s *Server) readChunk(w http.ResponseWriter, r *http.Request, rd *reading) (store.StoredChunk, error) {
	var rc store.StoredChunk
	if enc := r.Header.Get("Content-Encoding"); !strings.EqualFold(enc, "gzip") {
		return rc, fmt.Errorf("header Content-Encoding is %q: the body must be gzip-compressed JSON sent with Content-Encoding: gzip", enc)
	}
	in := s.idleBody(w, r)
	if rd != nil {
		in.n = &rd.bytes
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, io.NopCloser(in), s.maxBody))
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return rc, fmt.Errorf("body over %d bytes compressed (server.max_chunk_mib is %d): %w", s.maxBody, s.maxDecompressed>>20, errTooLarge)
	}
	if err != nil {
		return rc, fmt.Errorf("read body: %w", err)
	}
	var js []byte
	select {
	case js = <-s.decoding:
		defer func() { s.decoding <- js[:0] }()
	case <-r.Context().Done():
		return rc, r.Context().Err()
	}
	zr, err := gzip.NewReader(bytes.NewReader(body))
	if err != nil {
		return rc, fmt.Errorf("decompress body: %w", err)
	}
	h := sha256.New()
	if js, err = readUpTo(io.TeeReader(zr, h), js, s.maxDecompressed); err != nil {
		return rc, fmt.Errorf("decompress body: %w", err)
	}
	if int64(len(js)) > s.maxDecompressed {
		return rc, fmt.Errorf("chunk over %d MiB decompressed, this instance's server.max_chunk_mib: "+
			"a source sends up to 8 MiB and one event; raise server.max_chunk_mib here if its rows are that large: %w",
			s.maxDecompressed>>20, errTooLarge)
	}
	sum := h.Sum(nil)
	if want := r.Header.Get(wire.HeaderChecksum); want != "" && !strings.EqualFold(want, hex.EncodeToString(sum)) {
		return rc, fmt.Errorf("header %s is %.70q, the body's SHA-256 is %x: it changed on the way", wire.HeaderChecksum, want, sum)
	}
	c, err := wire.DecodeChunk(js)
	if err != nil {
		return rc, fmt.Errorf("decode chunk: %w", err)
	}
	if err := s.checkChunk(c); err != nil {
		return rc, err
	}
	if err := s.admitted(c.Source); err != nil {
		return rc, fmt.Errorf("%w: %w", err, errNotAdmitted)
	}
	rc = store.StoredChunk{
		Source:   c.Source,
		Seq:      c.Seq,
		Chunk:    c.Chunk,
		Last:     c.Last,
		Events:   len(c.Events),
		TickTime: c.TickTime,
		Body:     body,
		Instance: c.Instance,
		Batch:    c.Batch,
		Checksum: sum,
	}
	for _, e := range c.Events {
		rc.Rows += int64(e.Rows)
	}
	return rc, nil
}

// readUpTo appends what r holds to buf until EOF or until it holds more
// than limit bytes, growing buf by doubling but never past limit+1 bytes,
// and returns it.
func readUpTo(r io.Reader, buf []byte, limit int64) ([]byte, error) {
	for {
		if len(buf) == cap(buf) {
			if int64(len(buf)) > limit {
				return buf, nil
			}
			grown := make([]byte, len(buf), min(max(2*cap(buf), 64<<10), int(limit)+1))
			copy(grown, buf)
			buf = grown
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if errors.Is(err, io.EOF) {
			return buf, nil
		}
		if err != nil {
			return buf, err
		}
	}
}

func (s *Server) checkChunk(c wire.BatchChunk) error {
	var errs []error
	if c.Source == "" {
		errs = append(errs, errors.New("source: missing"))
	} else if err := config.CheckName(c.Source); err != nil {
		errs = append(errs, fmt.Errorf("source: %w", err))
		c.Source = "?" // the message below must not repeat it
	}
	if c.Target != s.info.Name {
		errs = append(errs, fmt.Errorf("target: %q, but this instance is %q: the key under targets in the source's config must equal this instance's database.name", c.Target, s.info.Name))
	}
	if c.Seq < 1 {
		errs = append(errs, fmt.Errorf("seq: %d, must be >= 1", c.Seq))
	}
	if c.Instance != "" && !validInstance.MatchString(c.Instance) {
		errs = append(errs, fmt.Errorf("instance: %.40q is not an instance id (a UUID)", c.Instance))
	}
	if c.Chunk < 0 || c.Chunk > math.MaxInt32 {
		errs = append(errs, fmt.Errorf("chunk: %d, must be from 0 to %d", c.Chunk, math.MaxInt32))
	}
	if c.TickTime.IsZero() {
		errs = append(errs, errors.New("tick_time: missing"))
	}
	if b := c.Batch; b != (wire.BatchID{}) && (b.FromTick < 0 || b.ToTick < b.FromTick || b.Events < len(c.Events)) {
		errs = append(errs, fmt.Errorf("batch: %s: want 0 <= from_tick <= to_tick and at least this chunk's %d events", b, len(c.Events)))
	}
	if len(c.Events) == 0 {
		errs = append(errs, errors.New("events: none"))
	}
	for i, e := range c.Events {
		if len(errs) >= 10 {
			errs = append(errs, errors.New("..."))
			break
		}
		switch {
		case e.Op == wire.OpSchema:
			if _, err := schema.ReadDDL(e.Data); err != nil {
				errs = append(errs, fmt.Errorf("events[%d]: %w", i, err))
			}
		case e.Op != wire.OpInsert && e.Op != wire.OpUpdate && e.Op != wire.OpDelete && e.Op != wire.OpTruncate:
			errs = append(errs, fmt.Errorf("events[%d]: op %q, want I, U, D, T or S", i, e.Op))
		case e.Schema == "" || e.Table == "":
			errs = append(errs, fmt.Errorf("events[%d]: schema and table must be set", i))
		case database.ReservedSchema(e.Schema):
			errs = append(errs, fmt.Errorf("events[%d]: schema %q is reserved", i, e.Schema))
		case e.Op != wire.OpTruncate && (e.Rows < 1 || len(e.Data) == 0):
			errs = append(errs, fmt.Errorf("events[%d]: %s with %d rows and %d bytes of data, want rows and data", i, e.Op, e.Rows, len(e.Data)))
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("chunk %d of batch %d from %q: %w", c.Chunk, c.Seq, c.Source, errors.Join(errs...))
	}
	return nil
}

// skipBatch answers POST /sources/{source}/skip with a body {"seq": N}: the
// operator's decision to give up batch N, held by a conflict, on this
// target. The applier marks it applied without running it once it is next.
func (s *Server) skipBatch(w http.ResponseWriter, r *http.Request) {
	source := mux.Vars(r)["source"]
	var req wire.SkipRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil || req.Seq < 1 {
		writeError(w, http.StatusBadRequest, `body must be {"seq": N}, N the held batch's sequence number (see /status)`)
		return
	}
	err := store.SkipBatch(r.Context(), s.db, source, req.Seq)
	switch {
	case errors.Is(err, store.ErrNotPending):
		writeError(w, http.StatusConflict, fmt.Sprintf("batch %d from %s is not pending: unknown source, or already applied", req.Seq, source))
		return
	case err != nil:
		s.log.Error("skip batch", "source", source, "seq", req.Seq, "err", err)
		writeError(w, http.StatusInternalServerError, "skip batch: database error")
		return
	}
	s.log.Warn("batch skip requested: its changes will not be applied here", "source", source, "seq", req.Seq)
	if s.onBatch != nil {
		s.onBatch() // the applier skips it now, not at its next try
	}
	writeJSON(w, http.StatusOK, req)
}
