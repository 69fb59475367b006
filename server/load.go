package server

import (
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/mux"

	"github.com/pagarme/teleport/database"
	"github.com/pagarme/teleport/database/load"
	"github.com/pagarme/teleport/server/wire"
)

// The routes of an initial load are wire.RouteLoad, RouteLoadCopy and
// RouteLoadFinish. A request the load's state does not allow is 409 with
// what to do.

// maxPlan bounds a LoadPlan body.
const maxPlan = 16 << 20

// loadProgress counts a table's rows as they arrive, for /status.
type loadProgress struct {
	rows, bytes atomic.Int64
	started     time.Time
}

// copyKey names a copy in flight: a table of a source's load, and its
// chunk (0 for a table copied whole).
type copyKey struct {
	source, schema, table string
	chunk                 int
}

// copies tracks the copies in flight.
type copies struct {
	mu sync.Mutex
	m  map[copyKey]*loadProgress
}

func (c *copies) start(key copyKey) *loadProgress {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[copyKey]*loadProgress{}
	}
	p := &loadProgress{started: time.Now()}
	c.m[key] = p
	return p
}

func (c *copies) end(key copyKey, p *loadProgress) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m[key] == p {
		delete(c.m, key)
	}
}

// table sums the copies in flight of one table of a source's load: their
// rows and bytes so far, and when the first began; ok is false when none is
// in flight.
func (c *copies) table(source, schema, table string) (rows, bytes int64, started time.Time, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for k, p := range c.m {
		if k.source != source || k.schema != schema || k.table != table {
			continue
		}
		rows += p.rows.Load()
		bytes += p.bytes.Load()
		if !ok || p.started.Before(started) {
			started = p.started
		}
		ok = true
	}
	return rows, bytes, started, ok
}

func (s *Server) beginLoad(w http.ResponseWriter, r *http.Request) {
	source := mux.Vars(r)["source"]
	var plan wire.LoadPlan
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxPlan))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&plan); err != nil {
		writeError(w, http.StatusBadRequest, "decode load plan: "+err.Error())
		return
	}
	switch {
	case plan.Source != source:
		writeError(w, http.StatusBadRequest, fmt.Sprintf("load plan of source %q sent to /loads/%s", plan.Source, source))
		return
	case plan.Run == "":
		writeError(w, http.StatusBadRequest, "load plan has no run")
		return
	case len(plan.Tables) == 0:
		writeError(w, http.StatusBadRequest, "load plan has no table")
		return
	}
	begun, err := load.BeginLoad(r.Context(), s.db, plan)
	if s.loadError(w, "begin load", source, err) {
		return
	}
	if begun.Done == nil {
		begun.Done = []wire.LoadTable{}
	}
	begun.Chunks = true
	s.log.Info(wire.LoadKind(plan.Resync)+" begun", "source", source, "run", plan.Run, "tables", len(plan.Tables),
		"resumed", begun.Resumed, "tables_done", len(begun.Done))
	writeJSON(w, http.StatusOK, begun)
}

func (s *Server) copyTable(w http.ResponseWriter, r *http.Request) {
	v, q := mux.Vars(r), r.URL.Query()
	spec := load.CopySpec{
		Source:   v["source"],
		Run:      q.Get("run"),
		Schema:   q.Get("schema"),
		Table:    q.Get("table"),
		Columns:  q["column"],
		Snapshot: q.Get("snapshot"),
	}
	if spec.Run == "" || spec.Schema == "" || spec.Table == "" || len(spec.Columns) == 0 {
		writeError(w, http.StatusBadRequest, "a table's copy needs run, schema, table and column parameters")
		return
	}
	if _, err := load.ParseTxSnapshot(spec.Snapshot); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if q.Has("chunk") {
		c, err := parseChunk(q)
		if err != nil {
			writeError(w, http.StatusBadRequest, "chunk: "+err.Error())
			return
		}
		spec.Chunk = c
	}
	var body io.Reader = s.idleBody(w, r)
	if r.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(body)
		if err != nil {
			writeError(w, http.StatusBadRequest, "decompress: "+err.Error())
			return
		}
		body = zr
	}
	key := copyKey{spec.Source, spec.Schema, spec.Table, 0}
	if spec.Chunk != nil {
		key.chunk = spec.Chunk.No
	}
	p := s.copies.start(key)
	defer s.copies.end(key, p)
	rows, n, err := load.CopyIn(r.Context(), s.db, spec, body, func(rows, n int64) {
		p.rows.Store(rows)
		p.bytes.Store(n)
	})
	if s.loadError(w, "copy table", spec.Source, err) {
		return
	}
	if c := spec.Chunk; c != nil {
		s.log.Info("chunk loaded", "source", spec.Source, "table", database.QuoteQualified(spec.Schema, spec.Table),
			"chunk", c.No, "of", c.Of, "rows", rows, "bytes", n, "took", time.Since(p.started).Round(time.Millisecond))
	} else {
		s.log.Info("table loaded", "source", spec.Source, "table", database.QuoteQualified(spec.Schema, spec.Table),
			"rows", rows, "bytes", n, "took", time.Since(p.started).Round(time.Millisecond))
	}
	writeJSON(w, http.StatusOK, wire.CopyDone{Rows: rows, Bytes: n})
}

// parseChunk reads a chunk's parameters: chunk (from 0) of chunks, the key
// column and the range's lo and hi, each absent when open.
func parseChunk(q url.Values) (*load.ChunkSpec, error) {
	var c load.ChunkSpec
	var err error
	if c.No, err = strconv.Atoi(q.Get("chunk")); err != nil {
		return nil, fmt.Errorf("chunk %q: want a number", q.Get("chunk"))
	}
	if c.Of, err = strconv.Atoi(q.Get("chunks")); err != nil || c.Of < 1 || c.No < 0 || c.No >= c.Of {
		return nil, fmt.Errorf("chunk %q of chunks %q: want 0 <= chunk < chunks", q.Get("chunk"), q.Get("chunks"))
	}
	if c.Key = q.Get("key"); c.Key == "" {
		return nil, errors.New("no key column")
	}
	for _, b := range []struct {
		name string
		dst  **int64
	}{{"lo", &c.Range.Lo}, {"hi", &c.Range.Hi}} {
		if !q.Has(b.name) {
			continue
		}
		v, err := strconv.ParseInt(q.Get(b.name), 10, 64)
		if err != nil {
			return nil, fmt.Errorf("%s %q: want an integer", b.name, q.Get(b.name))
		}
		*b.dst = &v
	}
	if c.Range.Lo != nil && c.Range.Hi != nil && *c.Range.Lo >= *c.Range.Hi {
		return nil, fmt.Errorf("lo %d is not below hi %d", *c.Range.Lo, *c.Range.Hi)
	}
	return &c, nil
}

// HoldLoadSnapshots makes this instance, a source, hold the snapshots of
// its targets' loads between runs of the load command. Call it before Run.
func (s *Server) HoldLoadSnapshots(h *load.Holder) { s.holder = h }

func (s *Server) holdSnapshot(w http.ResponseWriter, r *http.Request) {
	target := mux.Vars(r)["target"]
	if s.holder == nil {
		writeError(w, http.StatusNotFound, "this instance is not a source: it has no targets")
		return
	}
	id, text, since, reused, err := s.holder.Hold(r.Context(), target, r.URL.Query().Get("fresh") == "true")
	switch {
	case errors.Is(err, load.ErrNoSuchTarget):
		writeError(w, http.StatusNotFound, err.Error())
		return
	case err != nil:
		s.log.Error("hold a load's snapshot", "target", target, "err", err)
		writeError(w, http.StatusInternalServerError, "hold a load's snapshot: "+err.Error())
		return
	}
	writeJSON(w, http.StatusOK, wire.LoadSnapshot{ID: id, Snapshot: text, Since: since.UTC(), Reused: reused})
}

func (s *Server) releaseSnapshot(w http.ResponseWriter, r *http.Request) {
	if s.holder == nil {
		writeError(w, http.StatusNotFound, "this instance is not a source: it has no targets")
		return
	}
	writeJSON(w, http.StatusOK, map[string]bool{"released": s.holder.Release(mux.Vars(r)["target"])})
}

func (s *Server) finishLoad(w http.ResponseWriter, r *http.Request) {
	source := mux.Vars(r)["source"]
	err := load.FinishLoad(r.Context(), s.db, source, r.URL.Query().Get("run"))
	if s.loadError(w, "finish load", source, err) {
		return
	}
	s.log.Info("initial load finished", "source", source)
	if s.onBatch != nil {
		s.onBatch() // the batches that waited can go
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "finished"})
}

// loadError answers err, if any, and reports whether it did: a refusal is
// 409 with its reason, a client gone is logged only.
func (s *Server) loadError(w http.ResponseWriter, what, source string, err error) bool {
	switch {
	case err == nil:
		return false
	case errors.Is(err, load.ErrLoadRefused):
		writeError(w, http.StatusConflict, err.Error())
	case errors.Is(err, load.ErrLoadNotReady):
		w.Header().Set("Retry-After", "2")
		writeError(w, http.StatusServiceUnavailable, err.Error())
	case errors.Is(err, context.Canceled):
		s.log.Warn(what+": the source went away", "source", source, "err", err)
	default:
		s.log.Error(what, "source", source, "err", err)
		writeError(w, http.StatusInternalServerError, what+": "+err.Error())
	}
	return true
}

// loadStatus reads the loads on this database and adds the progress of the
// copies in flight. The list is never nil.
func (s *Server) loadStatus(ctx context.Context, q database.Querier) ([]wire.LoadStatus, error) {
	loads, err := load.LoadStates(ctx, q)
	if err != nil {
		return nil, err
	}
	out := []wire.LoadStatus{}
	for _, l := range loads {
		ls := wire.LoadStatus{Source: l.Source, State: "loading", StartedAt: l.StartedAt.UTC(),
			ResumedAt: timeOrNil(l.ResumedAt), FinishedAt: timeOrNil(l.FinishedAt), Tables: []wire.LoadTableStatus{}}
		if !l.FinishedAt.IsZero() {
			ls.State = "finished"
		}
		var rate float64
		for _, t := range l.Tables {
			if !t.InRun {
				ls.Resync = true
				continue
			}
			ts := wire.LoadTableStatus{Table: t.String(), State: "waiting", EstRows: t.EstRows, DoneAt: timeOrNil(t.DoneAt)}
			rows, bytes, started, inFlight := s.copies.table(l.Source, t.Schema, t.Table)
			switch {
			case inFlight:
				// For a table copied in chunks, with the chunks the run
				// has done.
				ts.State, ts.Rows, ts.Bytes = "copying", t.ChunkRows+rows, t.ChunkBytes+bytes
				ts.Chunks, ts.ChunksDone = t.Chunks, t.ChunksDone
				if secs := time.Since(started).Seconds(); secs > 0 {
					ts.RowsPerSecond = float64(rows) / secs
				}
				rate += ts.RowsPerSecond
			case t.DoneAt.IsZero() && t.ChunksDone > 0:
				// Chunks done, none in flight: between two, or the run
				// was stopped.
				ts.Rows, ts.Bytes, ts.Chunks, ts.ChunksDone = t.ChunkRows, t.ChunkBytes, t.Chunks, t.ChunksDone
			case !t.DoneAt.IsZero():
				ts.State, ts.Rows, ts.Bytes = "done", t.Rows, t.Bytes
				ls.TablesDone++
			}
			// The source's estimate is 0 for a table never analyzed: a
			// table's rows so far are the least it holds.
			ts.EstRows = max(ts.EstRows, ts.Rows)
			ls.Rows += ts.Rows
			ls.Bytes += ts.Bytes
			ls.EstRows += ts.EstRows
			ls.Tables = append(ls.Tables, ts)
		}
		if ls.State == "loading" && rate > 0 {
			left := float64(ls.EstRows-ls.Rows) / rate
			ls.SecondsLeft = &left
		}
		out = append(out, ls)
	}
	return out, nil
}
