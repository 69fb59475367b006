package wire

import (
	"net/url"
	"strings"
)

// The routes of an instance's HTTP API, as gorilla/mux patterns. {source}
// is a source's database.name; Path fills it in.
const (
	RouteHealthz = "/healthz"
	RouteReadyz  = "/readyz"
	RouteStatus  = "/status"
	RouteMetrics = "/metrics"
	// POST a chunk of a batch: a gzip BatchChunk, answered with a BatchAck.
	RouteBatches = "/batches"
	// GET how far a source's batches are stored and applied: a BatchAck
	// with its Partial; ?instance=ID names the asking instance.
	RouteBatchAck = "/batches/{source}"
	// POST a SkipRequest: give up a held batch.
	RouteSkip = "/sources/{source}/skip"
	// An initial load, each with ?instance=ID: POST a LoadPlan (begin or
	// resume, answered with LoadBegun); PUT one table's rows as COPY text
	// (?run=R&schema=S&table=T&snapshot=X&column=a&column=b..., answered
	// with CopyDone); POST ?run=R to finish.
	RouteLoad       = "/loads/{source}"
	RouteLoadCopy   = "/loads/{source}/copy"
	RouteLoadFinish = "/loads/{source}/finish"
	// On a source instance, for the load command on its host: POST (with
	// ?fresh=true for a load that begins) holds the snapshot of target's
	// load, or returns the one held, as a LoadSnapshot; DELETE lets it go.
	RouteLoadSnapshot = "/load-snapshots/{target}"
	// A verify, each with ?instance=ID: POST a VerifyStop to keep the
	// source's batches after one from being applied for a while (answered
	// with the source's VerifyStopped); POST a VerifyRequest to have the
	// target open a snapshot at exactly one batch and hash tables in it
	// (answered with a VerifyAnswer); POST VerifyRowsRequests for the rows
	// of some buckets in that snapshot (answered with VerifyRows).
	RouteVerifyStop = "/verify/{source}/stop"
	RouteVerify     = "/verify/{source}"
	RouteVerifyRows = "/verify/{source}/rows"
)

// Path returns route with {source} filled in, escaped for a URL path.
func Path(route, source string) string {
	return strings.Replace(route, "{source}", url.PathEscape(source), 1)
}
