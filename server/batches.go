package server

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"regexp"
	"strings"

	"github.com/gorilla/mux"

	"github.com/pagarme/teleport/config"
	"github.com/pagarme/teleport/database"
)

// Limits on a POST /batches body. A chunk holds at most a few MiB of JSON
// (see BatchChunk), so these only stop a broken or hostile client.
const (
	defaultMaxBody         = 64 << 20  // compressed, as sent
	defaultMaxDecompressed = 512 << 20 // the JSON once decompressed
)

// validInstance is an instance id as PostgreSQL writes a uuid.
var validInstance = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)

// errTooLarge is a body over one of the limits: 413.
var errTooLarge = errors.New("too large")

// receiveBatch stores one chunk of a batch before answering, so an answered
// chunk survives a crash. A chunk already stored is acknowledged without
// effect. A malformed chunk is 400 and an oversized one 413, and neither
// stores anything.
func (s *Server) receiveBatch(w http.ResponseWriter, r *http.Request) {
	body, c, err := s.readChunk(w, r)
	switch {
	case errors.Is(err, errTooLarge):
		writeError(w, http.StatusRequestEntityTooLarge, err.Error())
		return
	case err != nil:
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	sc := database.StoredChunk{
		Source:   c.Source,
		Seq:      c.Seq,
		Chunk:    c.Chunk,
		Last:     c.Last,
		Events:   len(c.Events),
		TickTime: c.TickTime,
		Body:     body,
		Instance: c.Instance,
	}
	for _, e := range c.Events {
		sc.Rows += int64(e.Rows)
	}
	stored, err := database.StoreChunk(r.Context(), s.db, sc)
	if errors.Is(err, database.ErrOtherInstance) {
		s.refuseInstance(w, c.Source, err)
		return
	}
	if errors.Is(err, database.ErrChunkConflict) {
		s.log.Warn("chunk refused: it conflicts with what is stored of its batch", "source", c.Source, "seq", c.Seq, "chunk", c.Chunk, "err", err)
		writeError(w, http.StatusConflict, err.Error()+": is another instance sending as "+c.Source+
			"? Each source instance needs its own database.name; chunks of a batch not applied yet may be deleted from teleport.received_chunk to receive it again")
		return
	}
	if err != nil {
		s.log.Error("store chunk", "source", c.Source, "seq", c.Seq, "chunk", c.Chunk, "err", err)
		writeError(w, http.StatusInternalServerError, "store chunk: database error")
		return
	}
	if stored {
		s.log.Debug("chunk stored", "source", c.Source, "seq", c.Seq, "chunk", c.Chunk, "events", sc.Events, "last", c.Last)
		if c.Last && s.onBatch != nil {
			s.onBatch()
		}
	}
	s.writeAck(w, r, c.Source)
}

// batchAck answers GET /batches/{source}, so a restarted source can ask
// where to resume. With ?instance=ID, a source whose batches come from
// another instance is 409.
func (s *Server) batchAck(w http.ResponseWriter, r *http.Request) {
	source := mux.Vars(r)["source"]
	instance := r.URL.Query().Get("instance")
	if instance != "" && !validInstance.MatchString(instance) {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("instance: %.40q is not an instance id (a UUID)", instance))
		return
	}
	err := database.CheckInstance(r.Context(), s.db, source, instance)
	switch {
	case errors.Is(err, database.ErrOtherInstance):
		s.refuseInstance(w, source, err)
		return
	case err != nil:
		s.log.Error("read source instance", "source", source, "err", err)
		writeError(w, http.StatusInternalServerError, "read source instance: database error")
		return
	}
	s.writeAck(w, r, source)
}

// refuseInstance answers 409 to a request from a second instance using a
// source's name, and logs it.
func (s *Server) refuseInstance(w http.ResponseWriter, source string, err error) {
	s.log.Warn("request refused: another instance sends as this source", "source", source, "err", err)
	writeError(w, http.StatusConflict, err.Error()+": two instances use database.name "+source+
		"; give each its own. If the source's database was replaced on purpose, run on this target "+
		"UPDATE teleport.source SET instance = NULL WHERE name = '"+source+"' and reload it")
}

func (s *Server) writeAck(w http.ResponseWriter, r *http.Request, source string) {
	received, applied, err := database.BatchAckFor(r.Context(), s.db, source)
	if err != nil {
		s.log.Error("read batch ack", "source", source, "err", err)
		writeError(w, http.StatusInternalServerError, "read batch ack: database error")
		return
	}
	writeJSON(w, http.StatusOK, BatchAck{Source: source, ReceivedSeq: received, AppliedSeq: applied})
}

// readChunk reads the gzip body within the limits and decodes and checks the
// chunk. It returns the body as received, to be stored as is.
func (s *Server) readChunk(w http.ResponseWriter, r *http.Request) ([]byte, BatchChunk, error) {
	var c BatchChunk
	if enc := r.Header.Get("Content-Encoding"); !strings.EqualFold(enc, "gzip") {
		return nil, c, fmt.Errorf("header Content-Encoding is %q: the body must be gzip-compressed JSON sent with Content-Encoding: gzip", enc)
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.maxBody))
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return nil, c, fmt.Errorf("body over %d bytes compressed: %w", s.maxBody, errTooLarge)
	}
	if err != nil {
		return nil, c, fmt.Errorf("read body: %w", err)
	}
	zr, err := gzip.NewReader(bytes.NewReader(body))
	if err != nil {
		return nil, c, fmt.Errorf("decompress body: %w", err)
	}
	js, err := io.ReadAll(io.LimitReader(zr, s.maxDecompressed+1))
	if err != nil {
		return nil, c, fmt.Errorf("decompress body: %w", err)
	}
	if int64(len(js)) > s.maxDecompressed {
		return nil, c, fmt.Errorf("body over %d bytes decompressed: %w", s.maxDecompressed, errTooLarge)
	}
	if c, err = decodeChunk(js); err != nil {
		return nil, c, fmt.Errorf("decode chunk: %w", err)
	}
	if err := s.checkChunk(c); err != nil {
		return nil, c, err
	}
	return body, c, nil
}

// decodeChunk reads a chunk's JSON into c as json.Unmarshal would, each
// event's data kept as the bytes sent. The body is checked valid as a whole
// first; the events are then read by database.DecodeChunk, several times
// faster than encoding/json on a chunk of thousands of small events.
func decodeChunk(js []byte) (BatchChunk, error) {
	var c BatchChunk
	if !json.Valid(js) {
		return c, json.Unmarshal(js, &c) // its error says what and where
	}
	var err error
	c.Events, err = database.DecodeChunk(js, func(name string, v []byte) error {
		var dst any
		switch name {
		case "source":
			dst = &c.Source
		case "instance":
			dst = &c.Instance
		case "target":
			dst = &c.Target
		case "seq":
			dst = &c.Seq
		case "chunk":
			dst = &c.Chunk
		case "last":
			dst = &c.Last
		case "tick_time":
			dst = &c.TickTime
		default:
			return nil // unknown members are ignored, as json.Unmarshal does
		}
		if err := json.Unmarshal(v, dst); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		return nil
	})
	return c, err
}

func (s *Server) checkChunk(c BatchChunk) error {
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
	if len(c.Events) == 0 {
		errs = append(errs, errors.New("events: none"))
	}
	for i, e := range c.Events {
		if len(errs) >= 10 {
			errs = append(errs, errors.New("..."))
			break
		}
		switch {
		case e.Op == database.OpSchema:
			if _, err := database.ReadDDL(e.Data); err != nil {
				errs = append(errs, fmt.Errorf("events[%d]: %w", i, err))
			}
		case e.Op != database.OpInsert && e.Op != database.OpUpdate && e.Op != database.OpDelete && e.Op != database.OpTruncate:
			errs = append(errs, fmt.Errorf("events[%d]: op %q, want I, U, D, T or S", i, e.Op))
		case e.Schema == "" || e.Table == "":
			errs = append(errs, fmt.Errorf("events[%d]: schema and table must be set", i))
		case database.ReservedSchema(e.Schema):
			errs = append(errs, fmt.Errorf("events[%d]: schema %q is reserved", i, e.Schema))
		case e.Op != database.OpTruncate && (e.Rows < 1 || len(e.Data) == 0):
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
	var req SkipRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil || req.Seq < 1 {
		writeError(w, http.StatusBadRequest, `body must be {"seq": N}, N the held batch's sequence number (see /status)`)
		return
	}
	err := database.SkipBatch(r.Context(), s.db, source, req.Seq)
	switch {
	case errors.Is(err, database.ErrNotPending):
		writeError(w, http.StatusConflict, fmt.Sprintf("batch %d from %s is not pending: unknown source, or already applied", req.Seq, source))
		return
	case err != nil:
		s.log.Error("skip batch", "source", source, "seq", req.Seq, "err", err)
		writeError(w, http.StatusInternalServerError, "skip batch: database error")
		return
	}
	s.log.Warn("batch skip requested: its changes will not be applied here", "source", source, "seq", req.Seq)
	writeJSON(w, http.StatusOK, req)
}
