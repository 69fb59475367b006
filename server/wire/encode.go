package wire

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"hash"
	"io"
	"strconv"
	"sync"
	"time"
)

// gzipLevel is fast: about 300 MB/s of JSON per core, compressed 7:1
// (level 6: 110 MB/s, 8.5:1). A resent chunk is recognised by the SHA-256
// of its JSON, not of its gzip bytes.
const gzipLevel = gzip.BestSpeed

// ChunkHead returns the start of the JSON of every chunk of a batch, up to
// the chunk number. The envelope is a BatchChunk written by hand so that
// each event's data goes out as the bytes PostgreSQL produced: json.Marshal
// would compact it. "last" comes after the events, as it is known only then.
func ChunkHead(source, instance, target string, seq int64, tickTime time.Time, id BatchID) ([]byte, error) {
	tick, err := json.Marshal(tickTime.UTC())
	if err != nil {
		return nil, fmt.Errorf("encode tick_time: %w", err)
	}
	h := []byte(`{"source":`)
	h = appendString(h, source)
	h = append(h, `,"instance":`...)
	h = appendString(h, instance)
	h = append(h, `,"target":`...)
	h = appendString(h, target)
	h = append(h, `,"seq":`...)
	h = strconv.AppendInt(h, seq, 10)
	h = append(h, `,"tick_time":`...)
	h = append(h, tick...)
	h = append(h, `,"batch":{"from_tick":`...)
	h = strconv.AppendInt(h, id.FromTick, 10)
	h = append(h, `,"to_tick":`...)
	h = strconv.AppendInt(h, id.ToTick, 10)
	h = append(h, `,"events":`...)
	h = strconv.AppendInt(h, int64(id.Events), 10)
	h = append(h, `},"chunk":`...)
	return h, nil
}

// Chunk is one chunk being built: the gzip stream of its JSON so far, and
// the SHA-256 of that JSON.
type Chunk struct {
	N      int // chunk number within the batch, from 0
	Events int
	Rows   int64
	Size   int64 // JSON bytes of the events, uncompressed

	buf bytes.Buffer
	zw  *gzip.Writer
	sum hash.Hash
	out io.Writer // zw and sum
}

// gzipWriters keeps the gzip writers of finished chunks: a new one
// allocates its compressor's tables, over a megabyte, and making one per
// chunk was a twentieth of a source instance's CPU on a backlog.
var gzipWriters = sync.Pool{New: func() any {
	// gzipLevel is valid, so NewWriterLevel cannot fail.
	zw, _ := gzip.NewWriterLevel(nil, gzipLevel)
	return zw
}}

// NewChunk starts chunk n of the batch whose ChunkHead is head.
func NewChunk(head []byte, n int) *Chunk {
	c := &Chunk{N: n, sum: sha256.New()}
	c.zw = gzipWriters.Get().(*gzip.Writer)
	c.zw.Reset(&c.buf)
	// Writes to a bytes.Buffer or a hash cannot fail; the error is checked
	// at Finish.
	c.out = io.MultiWriter(c.zw, c.sum)
	_, _ = c.out.Write(head)
	_, _ = c.out.Write(strconv.AppendInt(nil, int64(n), 10))
	_, _ = c.out.Write([]byte(`,"events":[`))
	return c
}

// Add appends one event, encoded by AppendEvent, of rows rows.
func (c *Chunk) Add(event []byte, rows int) error {
	if c.Events > 0 {
		if _, err := c.out.Write([]byte{','}); err != nil {
			return err
		}
		c.Size++
	}
	if _, err := c.out.Write(event); err != nil {
		return err
	}
	c.Events++
	c.Rows += int64(rows)
	c.Size += int64(len(event))
	return nil
}

// Finish closes the JSON and the gzip stream and returns the body to post
// and the SHA-256 of its JSON (HeaderChecksum). The chunk takes nothing
// after it: its gzip writer goes back to the pool.
func (c *Chunk) Finish(last bool) (body, sum []byte, err error) {
	if _, err := c.out.Write([]byte(`],"last":` + strconv.FormatBool(last) + `}`)); err != nil {
		return nil, nil, err
	}
	if err := c.zw.Close(); err != nil {
		return nil, nil, err
	}
	c.zw.Reset(nil)
	gzipWriters.Put(c.zw)
	c.zw, c.out = nil, nil
	return c.buf.Bytes(), c.sum.Sum(nil), nil
}

// AppendEvent appends e as JSON with the keys of Event, its Data verbatim:
// it must be valid JSON, as the text of a json column is (PostgreSQL
// checked it as the row went in; a target checks every chunk it receives).
func AppendEvent(dst []byte, e Event) []byte {
	dst = append(dst, `{"id":`...)
	dst = strconv.AppendInt(dst, e.ID, 10)
	if e.XID != 0 {
		dst = append(dst, `,"xid":`...)
		dst = strconv.AppendUint(dst, e.XID, 10)
	}
	dst = append(dst, `,"schema":`...)
	dst = appendString(dst, e.Schema)
	dst = append(dst, `,"table":`...)
	dst = appendString(dst, e.Table)
	dst = append(dst, `,"op":`...)
	dst = appendString(dst, string(e.Op))
	dst = append(dst, `,"rows":`...)
	dst = strconv.AppendInt(dst, int64(e.Rows), 10)
	if len(e.Data) > 0 {
		dst = append(dst, `,"data":`...)
		dst = append(dst, e.Data...)
	}
	return append(dst, '}')
}

// appendString appends s as a JSON string, as json.Marshal writes it: a
// name of printable ASCII that needs no escape (most of them) is copied
// between quotes, any other goes through json.Marshal, which cannot fail
// on a string.
func appendString(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			b, _ := json.Marshal(s)
			return append(dst, b...)
		}
	}
	dst = append(dst, '"')
	dst = append(dst, s...)
	return append(dst, '"')
}
