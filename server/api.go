package server

import (
	"time"

	"github.com/pagarme/teleport/database"
)

// Status is the body of GET /status.
type Status struct {
	Name          string    `json:"name"`
	Version       string    `json:"version"`
	Role          string    `json:"role"`
	StartedAt     time.Time `json:"started_at"`
	UptimeSeconds float64   `json:"uptime_seconds"`
}

// ErrorResponse is the body of every 4xx and 5xx answer.
type ErrorResponse struct {
	Error string `json:"error"`
}

// BatchChunk is the body of POST /batches, sent gzip-compressed
// (Content-Encoding: gzip). A batch travels as chunks 0..n, in order, the
// last one with Last set; the target stores each chunk, keyed by (Source,
// Seq, Chunk), before it answers, and a chunk it already has is acknowledged
// without effect. Events must be encoded without touching Data (see
// database.Event).
type BatchChunk struct {
	Source   string           `json:"source"`    // the sending instance's database.name
	Target   string           `json:"target"`    // must equal the receiving instance's database.name
	Seq      int64            `json:"seq"`       // batch sequence number per (source, target), from 1
	Chunk    int              `json:"chunk"`     // chunk number within the batch, from 0
	Last     bool             `json:"last"`      // this chunk completes the batch
	TickTime time.Time        `json:"tick_time"` // when the batch's closing tick was taken, source clock
	Events   []database.Event `json:"events"`
}

// BatchAck is the answer to POST /batches and to GET /batches/{source}: how
// far the target has stored and applied batches from that source.
type BatchAck struct {
	Source      string `json:"source"`
	ReceivedSeq int64  `json:"received_seq"` // every batch up to this one is stored in full
	AppliedSeq  int64  `json:"applied_seq"`  // every batch up to this one is applied
}
