package wire

import (
	"fmt"
	"time"
)

// Status is the body of GET /status. Targets and Sources are always
// present, empty when this instance has none. It never holds a password or
// token.
type Status struct {
	Name          string         `json:"name"`
	Version       string         `json:"version"`
	Role          string         `json:"role"`
	StartedAt     time.Time      `json:"started_at"`
	UptimeSeconds float64        `json:"uptime_seconds"`
	Targets       []TargetStatus `json:"targets"` // this instance as a source: each target it sends to
	Sources       []SourceStatus `json:"sources"` // this instance as a target: each source that sent here
	Loads         []LoadStatus   `json:"loads"`   // this instance as a target: initial loads, under way or finished
	// Refused lists, per source name, the chunks this instance refused
	// since it started (4xx), the latest first; never null.
	Refused []RefusedStatus `json:"refused"`
}

// RefusedStatus is what was refused under one source name.
type RefusedStatus struct {
	Source string    `json:"source"` // as the request named it; "?" when it named none that is valid
	Count  int64     `json:"count"`
	LastAt time.Time `json:"last_at"`
	Seq    int64     `json:"seq"`   // of the last one refused, when it said
	Chunk  int       `json:"chunk"` // of the last one refused, when it said
	Status int       `json:"status"`
	Reason string    `json:"reason"`
}

// ReceivingStatus is the batch after received_seq as far as it is here.
type ReceivingStatus struct {
	Seq          int64          `json:"seq"`
	ChunksStored int            `json:"chunks_stored"`
	BytesStored  int64          `json:"bytes_stored"` // compressed, as received
	Since        time.Time      `json:"since"`        // when its first stored chunk arrived
	Request      *RequestStatus `json:"request"`      // the chunk being read now; null when none
}

// RequestStatus is a chunk being read.
type RequestStatus struct {
	Seq       int64     `json:"seq"`
	Chunk     int       `json:"chunk"`
	Bytes     int64     `json:"bytes"` // read so far, compressed
	StartedAt time.Time `json:"started_at"`
}

// LoadStatus is one initial load into this instance.
type LoadStatus struct {
	Source string `json:"source"`
	State  string `json:"state"` // "loading" or "finished"
	// Resync is true when the load copied some of the source's tables again
	// (initial-load -tables): Tables are those, and the others keep an
	// earlier load.
	Resync     bool       `json:"resync"`
	StartedAt  time.Time  `json:"started_at"`
	ResumedAt  *time.Time `json:"resumed_at"`
	FinishedAt *time.Time `json:"finished_at"`
	TablesDone int        `json:"tables_done"`
	Rows       int64      `json:"rows"`     // copied so far, tables in flight included
	Bytes      int64      `json:"bytes"`    // of COPY text
	EstRows    int64      `json:"est_rows"` // the source's estimate of the total
	// SecondsLeft is the time left at the rate of the copies in flight, from
	// the estimate of the rows left; null when it cannot be told.
	SecondsLeft *float64          `json:"seconds_left"`
	Tables      []LoadTableStatus `json:"tables"`
}

// LoadTableStatus is one table of a load.
type LoadTableStatus struct {
	Table         string     `json:"table"` // schema.table, quoted as needed, as on this database
	State         string     `json:"state"` // "waiting", "copying" or "done"
	Rows          int64      `json:"rows"`
	Bytes         int64      `json:"bytes"`
	EstRows       int64      `json:"est_rows"`
	RowsPerSecond float64    `json:"rows_per_second"` // while copying
	DoneAt        *time.Time `json:"done_at"`
	// Chunks and ChunksDone, for a table copied in chunks while it is:
	// how many its run cut it into (once one is done) and are done.
	Chunks     int `json:"chunks,omitempty"`
	ChunksDone int `json:"chunks_done,omitempty"`
}

// TargetStatus is one target of this instance, as its source sees it.
// Sequence numbers count batches from 1; 0 means none.
type TargetStatus struct {
	Name          string `json:"name"`
	LastSeq       int64  `json:"last_seq"`       // the last batch cut
	AckedSeq      int64  `json:"acked_seq"`      // the target has stored every batch up to this one
	AppliedSeq    int64  `json:"applied_seq"`    // the target has applied every batch up to this one, as it last said
	UnsentBatches int64  `json:"unsent_batches"` // last_seq - acked_seq: batches cut and not yet stored on the target
	PendingEvents int64  `json:"pending_events"` // events in those batches
	// LagSeconds is now minus the tick time of the oldest batch not yet
	// applied, both on this source's clock; 0 when every batch is applied
	// and the target takes no change written since the last tick (if it
	// does, the lag runs from that tick).
	LagSeconds float64   `json:"lag_seconds"`
	LastTickAt time.Time `json:"last_tick_at"` // the tick the target was last cut up to: an idle source takes none
	// SchemaSkipped lists the objects whose schema changes are not
	// replicated to this target, and why; never null.
	SchemaSkipped []SkippedObject `json:"schema_skipped"`
	// SendFailure says why this instance's sends to the target fail, while
	// they do; null when the last pass went through, or when the state
	// is read from the database with the instance down.
	SendFailure *SendFailure `json:"send_failure"`
}

// SendFailure is why a source's passes to a target fail.
type SendFailure struct {
	Error    string    `json:"error"`    // the last pass's error
	Since    time.Time `json:"since"`    // when the first of these failed passes began
	Failures int       `json:"failures"` // failed passes in a row
}

// SkippedObject is an object schema replication leaves out.
type SkippedObject struct {
	Object    string    `json:"object"`
	Reason    string    `json:"reason"`
	FirstSeen time.Time `json:"first_seen"`
	LastSeen  time.Time `json:"last_seen"`
}

// SourceStatus is one source that sent batches to this instance.
// Sequence numbers count batches from 1; 0 means none.
type SourceStatus struct {
	Name        string     `json:"name"`
	ReceivedSeq int64      `json:"received_seq"` // every batch up to this one is stored in full
	AppliedSeq  int64      `json:"applied_seq"`  // every batch up to this one is applied
	AppliedAt   *time.Time `json:"applied_at"`   // when the last batch was applied, this database's clock; null before the first
	Held        bool       `json:"held"`         // batch held_seq failed to apply and is retried, see error
	HeldSeq     int64      `json:"held_seq"`
	Error       string     `json:"error"`       // why held_seq is held; "" when nothing is
	ErrorSince  *time.Time `json:"error_since"` // since when held_seq is held with this error; null when not held
	SkipSeq     int64      `json:"skip_seq"`    // the batch an operator asked to skip
	// LagSeconds is, while received_seq > applied_seq, this database's now
	// minus the source's tick time of the last applied batch (of the next
	// batch before any is applied), else 0. The two times come from two
	// hosts' clocks, so clock skew between them adds to or takes from it
	// (never below 0); the source's own view of this lag, in its targets,
	// has no skew.
	LagSeconds float64 `json:"lag_seconds"`
	// SchemaSkipped lists what this source's schema changes asked for that
	// this target's PostgreSQL major cannot take, and what it does without
	// (a target older than its source); never null.
	SchemaSkipped []SkippedObject `json:"schema_skipped"`
	// Receiving is the batch after received_seq while it arrives: its
	// chunks stored so far and the one being read; null when nothing of it
	// is here.
	Receiving *ReceivingStatus `json:"receiving"`
}

// ErrorResponse is the body of every 4xx and 5xx answer.
type ErrorResponse struct {
	Error string `json:"error"`
}

// BatchChunk is the body of POST /batches, sent gzip-compressed
// (Content-Encoding: gzip) with the headers HeaderSource, HeaderSeq,
// HeaderChunk and HeaderChecksum. A batch travels as chunks 0..n, in order,
// the last one with Last set; the target stores each chunk, keyed by
// (Source, Seq, Chunk), before it answers, and a chunk it already has is
// acknowledged without effect when it is the same (409 when it is not).
// Events must be encoded without touching Data (see database.Event).
type BatchChunk struct {
	Source   string    `json:"source"`    // the sending instance's database.name
	Instance string    `json:"instance"`  // the sending instance's id (its database's teleport.instance); may be absent
	Target   string    `json:"target"`    // must equal the receiving instance's database.name
	Seq      int64     `json:"seq"`       // batch sequence number per (source, target), from 1
	Chunk    int       `json:"chunk"`     // chunk number within the batch, from 0
	Last     bool      `json:"last"`      // this chunk completes the batch
	TickTime time.Time `json:"tick_time"` // when the batch's closing tick was taken, source clock
	Batch    BatchID   `json:"batch"`     // the same in every chunk of the batch; may be absent
	Events   []Event   `json:"events"`
}

// BatchAck is the answer to POST /batches and to GET /batches/{source}: how
// far the target has stored and applied batches from that source.
type BatchAck struct {
	Source      string `json:"source"`
	ReceivedSeq int64  `json:"received_seq"` // every batch up to this one is stored in full
	AppliedSeq  int64  `json:"applied_seq"`  // every batch up to this one is applied
	// Partial is what is stored of batch received_seq + 1, so a source
	// resumes it after the chunks it need not send again; only in the
	// answer to GET, absent when nothing of that batch is stored.
	Partial *PartialBatch `json:"partial,omitempty"`
}

// PartialBatch is a batch stored in part: the SHA-256, in hex, of each of
// its chunks stored without a gap from chunk 0 ("" for a chunk stored
// without one).
type PartialBatch struct {
	Seq    int64    `json:"seq"`
	Chunks []string `json:"chunks"`
}

// PartialChunks returns the checksums of Partial's chunks, nil without one.
func (a BatchAck) PartialChunks() []string {
	if a.Partial == nil {
		return nil
	}
	return a.Partial.Chunks
}

// SkipRequest is the body of POST /sources/{source}/skip.
type SkipRequest struct {
	Seq int64 `json:"seq"` // the held batch to give up
}

// Request headers a source sends with each chunk. Source, seq and chunk
// repeat the body's, so a transfer can be shown in /status while it is
// read; the checksum is the SHA-256 of the decompressed body, in hex.
const (
	HeaderSource   = "Teleport-Source"
	HeaderSeq      = "Teleport-Seq"
	HeaderChunk    = "Teleport-Chunk"
	HeaderChecksum = "Teleport-Chunk-Sha256"
)

// BatchID is what identifies a batch, the same in each of its chunks: the
// ticks it spans and its events in all.
type BatchID struct {
	FromTick int64 `json:"from_tick"`
	ToTick   int64 `json:"to_tick"`
	Events   int   `json:"events"`
}

func (b BatchID) String() string {
	return fmt.Sprintf("ticks %d to %d, %d events", b.FromTick, b.ToTick, b.Events)
}

// CopyDone is the answer to a table's PUT: what went in.
type CopyDone struct {
	Rows  int64 `json:"rows"`
	Bytes int64 `json:"bytes"`
}

// LoadTable is one table of a load, named as on the target.
type LoadTable struct {
	Schema   string `json:"schema"`
	Table    string `json:"table"`
	EstRows  int64  `json:"est_rows"`  // the source's estimate, for progress
	EstBytes int64  `json:"est_bytes"` // the source's on-disk size
	// Partitions are a partitioned table's partitions, every level, as
	// [schema, table]: loaded with it, their events are judged by its
	// snapshot.
	Partitions [][2]string `json:"partitions,omitempty"`
	// Snapshot is, in LoadBegun.Done, the source snapshot the table was
	// copied in (pg_snapshot text); never set in a plan.
	Snapshot string `json:"snapshot,omitempty"`
}

// LoadChunk is a chunk of a table that a load has copied: chunk Chunk of
// Chunks, the keys from Lo on and below Hi (nil: open), read in Snapshot.
type LoadChunk struct {
	Schema   string `json:"schema"`
	Table    string `json:"table"`
	Chunk    int    `json:"chunk"`
	Chunks   int    `json:"chunks"`
	Lo       *int64 `json:"lo"`
	Hi       *int64 `json:"hi"`
	Snapshot string `json:"snapshot"`
}

// LoadSnapshot is the snapshot a source instance holds for a target's load.
type LoadSnapshot struct {
	ID       string    `json:"id"`       // for SET TRANSACTION SNAPSHOT
	Snapshot string    `json:"snapshot"` // pg_snapshot text
	Since    time.Time `json:"since"`
	Reused   bool      `json:"reused"` // held from an earlier run of the load
}

// LoadPlan is what a source asks a target to load.
type LoadPlan struct {
	Source    string `json:"source"`
	Run       string `json:"run"` // identifies one run of the load command
	Overwrite bool   `json:"overwrite"`
	// Resync copies only Tables again: the source's other tables keep
	// their load and their stream goes on meanwhile.
	Resync bool        `json:"resync,omitempty"`
	Tables []LoadTable `json:"tables"`
}

// LoadKind names a load in logs and messages: a resync, or an initial load.
func LoadKind(resync bool) string {
	if resync {
		return "resync"
	}
	return "initial load"
}

// LoadBegun is the target's answer to a plan: a fresh load, or the one under
// way resumed, with the tables it already has.
type LoadBegun struct {
	Resumed bool        `json:"resumed"`
	Done    []LoadTable `json:"done"`
	// Chunks is true when the target takes a table in chunks (the chunk
	// parameters of RouteLoadCopy); a source copies whole tables to a
	// target without it.
	Chunks bool `json:"chunks"`
	// DoneChunks are, of a resumed load, the chunks done of the tables not
	// done: a run that reads in the same snapshot need not copy them again.
	DoneChunks []LoadChunk `json:"done_chunks,omitempty"`
}

// VerifyStop asks a target to apply no batch of the source after Seq for
// at most Millis milliseconds.
type VerifyStop struct {
	Seq    int64 `json:"seq"`
	Millis int64 `json:"millis"`
}

// VerifyStopped is the answer to a VerifyStop: the source's applied_seq.
type VerifyStopped struct {
	AppliedSeq int64 `json:"applied_seq"`
}

// VerifyTable is a table to hash, named as on the target: the columns to
// hash, in the source's order, and its key's columns (none: compared as a
// multiset of rows).
type VerifyTable struct {
	Schema  string   `json:"schema"`
	Table   string   `json:"table"`
	Columns []string `json:"columns"`
	Key     []string `json:"key"`
}

// VerifyRequest asks a target to apply the source's batches up to Seq and
// no further, open a snapshot there, and hash Tables in it.
type VerifyRequest struct {
	Seq    int64         `json:"seq"`
	Tables []VerifyTable `json:"tables"`
}

// VerifyAnswer is what the target found at batch Seq, table by table in
// the request's order. Session names the snapshot, kept open a while for
// VerifyRowsRequests.
type VerifyAnswer struct {
	Seq     int64       `json:"seq"`
	Session string      `json:"session"`
	Tables  []TableHash `json:"tables"`
}

// TableHash is a table's rows and the sum of a 32-bit hash of each; Error
// says why it could not be hashed (the table does not exist, say).
type TableHash struct {
	Rows  int64  `json:"rows"`
	Sum   string `json:"sum"`
	Error string `json:"error,omitempty"`
}

// BucketHash is one bucket of a table's rows: its rows and the sum of a
// 64-bit hash of each.
type BucketHash struct {
	Bucket int    `json:"b"`
	Rows   int64  `json:"n"`
	Sum    string `json:"s"`
}

// VerifyRowsRequest asks, in Session's snapshot, for table Table (an index
// into the VerifyRequest's) split into Split buckets by the low bits of
// each row's hash, either its buckets' hashes (Sums) or the rows of some
// buckets, at most Limit; Done closes the session instead.
type VerifyRowsRequest struct {
	Session string `json:"session"`
	Table   int    `json:"table"`
	Split   int    `json:"split,omitempty"`
	Sums    bool   `json:"sums,omitempty"`
	Buckets []int  `json:"buckets,omitempty"`
	Limit   int    `json:"limit,omitempty"`
	Done    bool   `json:"done,omitempty"`
}

// VerifyRows is the answer to a VerifyRowsRequest: each row's key as text
// (a table without a key: the row itself) and hash, and how many rows have
// both (only a table without a key has more than one).
type VerifyRows struct {
	Rows    []KeyHash    `json:"rows"`
	Buckets []BucketHash `json:"buckets,omitempty"` // for Sums: the buckets that hold rows
}

// KeyHash is a row found by a VerifyRowsRequest.
type KeyHash struct {
	Key  string `json:"k"`
	Hash string `json:"h"`
	N    int64  `json:"n"`
}
