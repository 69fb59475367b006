package transmitter

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/pagarme/teleport/server/wire"
)

// StopTarget asks target to apply none of this source's batches after seq
// for at most d, and returns the batch it has applied up to.
func (w *Worker) StopTarget(ctx context.Context, target string, seq int64, d time.Duration) (int64, error) {
	var ans wire.VerifyStopped
	err := w.postVerify(ctx, target, wire.RouteVerifyStop, wire.VerifyStop{Seq: seq, Millis: d.Milliseconds()}, &ans)
	return ans.AppliedSeq, err
}

// VerifyTarget asks target to hash req's tables at exactly batch req.Seq.
func (w *Worker) VerifyTarget(ctx context.Context, target string, req wire.VerifyRequest) (wire.VerifyAnswer, error) {
	var ans wire.VerifyAnswer
	err := w.postVerify(ctx, target, wire.RouteVerify, req, &ans)
	return ans, err
}

// VerifyRows asks target for the bucket hashes of a table, or the rows of
// some of its buckets, in the snapshot of the verify session req names, or
// to close it (req.Done).
func (w *Worker) VerifyRows(ctx context.Context, target string, req wire.VerifyRowsRequest) (wire.VerifyRows, error) {
	var ans wire.VerifyRows
	err := w.postVerify(ctx, target, wire.RouteVerifyRows, req, &ans)
	return ans, err
}

// maxVerifyAnswer bounds a verify answer: a table's buckets are about 15
// bytes per 1,000 rows, and 100,000 rows of keys some megabytes.
const maxVerifyAnswer = 512 << 20

// postVerify posts v to target's route, naming this instance, and decodes
// the answer into out. The answer may come after minutes of hashing.
func (w *Worker) postVerify(ctx context.Context, target, route string, v, out any) error {
	t := w.target(target)
	if t == nil {
		return fmt.Errorf("no target %s in the configuration", target)
	}
	instance, err := w.instanceID(ctx)
	if err != nil {
		return err
	}
	body, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode verify request: %w", err)
	}
	u := t.peer.url + wire.Path(route, w.source) + "?instance=" + url.QueryEscape(instance)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("verify on %s (%s): %w", target, t.peer.url, err)
	}
	req.Header.Set("Content-Type", "application/json")
	if err := t.peer.doJSONUpTo(t.peer.slow, req, out, maxVerifyAnswer); err != nil {
		return fmt.Errorf("verify on %s (%s): %w", target, t.peer.url, err)
	}
	return nil
}

// target returns the configured target named name, or nil.
func (w *Worker) target(name string) *target {
	for _, t := range w.targets {
		if t.name == name {
			return t
		}
	}
	return nil
}
