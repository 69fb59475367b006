package server

import (
	"cmp"
	"io"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pagarme/teleport/server/wire"
)

// idleBody returns r's body with the connection's deadlines pushed forward
// before each read, so a body may take hours on a slow link as long as
// bytes keep coming, and one that stops is dropped after the idle time.
func (s *Server) idleBody(w http.ResponseWriter, r *http.Request) *idleReader {
	return &idleReader{r: r.Body, rc: http.NewResponseController(w), idle: s.idle}
}

// idleReader moves the deadlines before each read and counts the bytes read.
type idleReader struct {
	r    io.Reader
	rc   *http.ResponseController
	idle time.Duration
	n    *atomic.Int64 // bytes read so far; nil: not counted
}

func (i *idleReader) Read(p []byte) (int, error) {
	_ = i.rc.SetReadDeadline(time.Now().Add(i.idle)) // not every writer supports deadlines (httptest's); nothing to move then
	_ = i.rc.SetWriteDeadline(time.Now().Add(i.idle))
	n, err := i.r.Read(p)
	if i.n != nil {
		i.n.Add(int64(n))
	}
	return n, err
}

// idleDeadline gives every request the idle time to send its headers' worth
// of body before the first read moves it on (see idleReader).
func (s *Server) idleDeadline(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(s.idle))
		next.ServeHTTP(w, r)
	})
}

// maxRefused bounds the sources whose refused chunks are remembered.
const maxRefused = 32

// transfers is what this instance knows of the chunks coming in, beyond
// its database: the ones being read, and the ones refused.
type transfers struct {
	mu       sync.Mutex
	reading  map[string]*reading // by the source the request names
	refused  map[string]*wire.RefusedStatus
	received struct{ stored, duplicate, refused atomic.Int64 }
}

// reading is one chunk being read.
type reading struct {
	seq     int64
	chunk   int
	started time.Time
	bytes   atomic.Int64
}

// start records that a chunk of source is being read and returns its
// counter; end(source, it) when done.
func (t *transfers) start(source string, seq int64, chunk int) *reading {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.reading == nil {
		t.reading = map[string]*reading{}
	}
	rd := &reading{seq: seq, chunk: chunk, started: time.Now()}
	t.reading[source] = rd
	return rd
}

func (t *transfers) end(source string, rd *reading) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.reading[source] == rd {
		delete(t.reading, source)
	}
}

// current returns the chunk of source being read, if any.
func (t *transfers) current(source string) *wire.RequestStatus {
	t.mu.Lock()
	defer t.mu.Unlock()
	rd := t.reading[source]
	if rd == nil {
		return nil
	}
	return &wire.RequestStatus{Seq: rd.seq, Chunk: rd.chunk, Bytes: rd.bytes.Load(), StartedAt: rd.started.UTC()}
}

// refuse records a chunk refused with code and reason under source's name.
// When maxRefused names are remembered, the one refused longest ago makes
// room.
func (t *transfers) refuse(source string, seq int64, chunk, code int, reason string) {
	t.received.refused.Add(1)
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.refused == nil {
		t.refused = map[string]*wire.RefusedStatus{}
	}
	r := t.refused[source]
	if r == nil {
		if len(t.refused) >= maxRefused {
			oldest := ""
			for name, o := range t.refused {
				if oldest == "" || o.LastAt.Before(t.refused[oldest].LastAt) {
					oldest = name
				}
			}
			delete(t.refused, oldest)
		}
		r = &wire.RefusedStatus{Source: source}
		t.refused[source] = r
	}
	r.Count++
	r.LastAt, r.Seq, r.Chunk, r.Status = time.Now().UTC(), seq, chunk, code
	const maxReason = 1000
	if len(reason) > maxReason {
		reason = reason[:maxReason] + "..."
	}
	r.Reason = reason
}

// refusals lists the refused chunks, the latest first; never nil.
func (t *transfers) refusals() []wire.RefusedStatus {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := []wire.RefusedStatus{}
	for _, r := range t.refused {
		out = append(out, *r)
	}
	slices.SortFunc(out, func(a, b wire.RefusedStatus) int {
		return cmp.Or(b.LastAt.Compare(a.LastAt), cmp.Compare(a.Source, b.Source))
	})
	return out
}
