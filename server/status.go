package server

import (
	"context"
	"database/sql"
	"net/http"
	"time"

	"github.com/pagarme/teleport/database"
	"github.com/pagarme/teleport/database/schema"
	"github.com/pagarme/teleport/database/store"
	"github.com/pagarme/teleport/server/wire"
)

// statusTimeout bounds the database reads of one GET /status, so a hung
// database answers 503 rather than holding the request.
const statusTimeout = 5 * time.Second

// status answers GET /status: who this instance is, and the replication
// state its database holds, as a source (targets) and as a target (sources).
// A database error is 503 naming what failed.
func (s *Server) status(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), statusTimeout)
	defer cancel()
	st := wire.Status{
		Name:          s.info.Name,
		Version:       s.info.Version,
		Role:          s.info.Role,
		StartedAt:     s.started.UTC(),
		UptimeSeconds: time.Since(s.started).Seconds(),
		Targets:       []wire.TargetStatus{},
		Sources:       []wire.SourceStatus{},
	}
	err := database.InTx(ctx, s.db, func(tx *sql.Tx) error {
		var err error
		if st.Targets, st.Sources, err = replicationStatus(ctx, tx); err != nil {
			return err
		}
		s.capLag(st.Targets)
		s.sendFailures(st.Targets)
		for i := range st.Sources {
			if st.Sources[i].Receiving, err = s.receiving(ctx, tx, st.Sources[i]); err != nil {
				return err
			}
		}
		st.Loads, err = s.loadStatus(ctx, tx)
		return err
	})
	st.Refused = s.transfers.refusals()
	if err != nil {
		s.log.Error("read status", "err", err)
		writeError(w, http.StatusServiceUnavailable, "read replication status: "+err.Error())
		return
	}
	writeJSON(w, http.StatusOK, st)
}

// sendFailures fills in why sends to the failing targets fail.
func (s *Server) sendFailures(targets []wire.TargetStatus) {
	if s.info.Failing == nil {
		return
	}
	failing := s.info.Failing()
	for i := range targets {
		if f, ok := failing[targets[i].Name]; ok {
			targets[i].SendFailure = &f
		}
	}
}

// capLag bounds the lag of the targets that have applied every batch cut
// for them: their lag is then the age of changes written past their last
// tick, counted from that tick, which an idle source takes only when
// something was written. A change the batcher had not found when it last
// looked is younger than that look.
func (s *Server) capLag(targets []wire.TargetStatus) {
	if s.info.Quiet == nil {
		return
	}
	quiet := s.info.Quiet()
	if quiet.IsZero() {
		return
	}
	since := time.Since(quiet).Seconds()
	for i := range targets {
		if t := &targets[i]; t.AppliedSeq == t.LastSeq && t.LagSeconds > since {
			t.LagSeconds = max(since, 0)
		}
	}
}

// ReadStatus reads the replication state db holds as GET /status shows it,
// but for what only a running instance knows (the batch being received,
// copies in flight, refusals) and who the instance is: for -mode status,
// which works while the instance is down.
func ReadStatus(ctx context.Context, db *sql.DB) (wire.Status, error) {
	var s Server
	st := wire.Status{Targets: []wire.TargetStatus{}, Sources: []wire.SourceStatus{}, Loads: []wire.LoadStatus{}, Refused: []wire.RefusedStatus{}}
	err := database.InTx(ctx, db, func(tx *sql.Tx) error {
		var err error
		if st.Targets, st.Sources, err = replicationStatus(ctx, tx); err != nil {
			return err
		}
		st.Loads, err = s.loadStatus(ctx, tx)
		return err
	})
	return st, err
}

// replicationStatus reads both lists; in one transaction, both lags are
// measured at the same database now(). The lists are never nil, so they
// encode as [].
func replicationStatus(ctx context.Context, q database.Querier) ([]wire.TargetStatus, []wire.SourceStatus, error) {
	targets, sources := []wire.TargetStatus{}, []wire.SourceStatus{}
	now, err := store.Now(ctx, q)
	if err != nil {
		return nil, nil, err
	}
	ts, err := store.TargetStatuses(ctx, q)
	if err != nil {
		return nil, nil, err
	}
	skipped, err := schema.SkippedByTarget(ctx, q)
	if err != nil {
		return nil, nil, err
	}
	for _, t := range ts {
		targets = append(targets, wire.TargetStatus{
			SchemaSkipped: skippedObjects(skipped[t.Name]),
			Name:          t.Name,
			LastSeq:       t.LastSeq,
			AckedSeq:      t.AckedSeq,
			AppliedSeq:    t.AppliedSeq,
			UnsentBatches: t.UnsentBatches(),
			PendingEvents: t.PendingEvents,
			LagSeconds:    t.Lag.Seconds(),
			LastTickAt:    t.LastTickAt.UTC(),
		})
	}
	ss, err := store.SourceStates(ctx, q)
	if err != nil {
		return nil, nil, err
	}
	left, err := schema.SkippedBySource(ctx, q)
	if err != nil {
		return nil, nil, err
	}
	for _, src := range ss {
		lag, err := sourceLag(ctx, q, src, now)
		if err != nil {
			return nil, nil, err
		}
		sources = append(sources, wire.SourceStatus{
			Name:          src.Name,
			ReceivedSeq:   src.ReceivedSeq,
			AppliedSeq:    src.AppliedSeq,
			AppliedAt:     timeOrNil(src.AppliedAt),
			Held:          src.Error != "",
			HeldSeq:       src.ErrorSeq,
			Error:         src.Error,
			ErrorSince:    timeOrNil(src.ErrorAt),
			SkipSeq:       src.SkipSeq,
			LagSeconds:    lag.Seconds(),
			SchemaSkipped: skippedObjects(left[src.Name]),
		})
	}
	return targets, sources, nil
}

// receiving is what has arrived of the batch after src's received_seq: its
// chunks stored and the one being read, or nil when nothing of it has.
func (s *Server) receiving(ctx context.Context, q database.Querier, src wire.SourceStatus) (*wire.ReceivingStatus, error) {
	cs, err := store.StoredChunks(ctx, q, src.Name, src.ReceivedSeq+1)
	if err != nil {
		return nil, err
	}
	rs := &wire.ReceivingStatus{Seq: src.ReceivedSeq + 1, ChunksStored: len(cs), Request: s.transfers.current(src.Name)}
	for _, c := range cs {
		rs.BytesStored += c.Bytes
		if rs.Since.IsZero() || c.ReceivedAt.Before(rs.Since) {
			rs.Since = c.ReceivedAt.UTC()
		}
	}
	if rs.Request != nil && rs.Request.Seq != rs.Seq {
		rs.Request = nil // a resend of a batch stored already, or one further on
	}
	if len(cs) == 0 && rs.Request == nil {
		return nil, nil
	}
	if rs.Since.IsZero() {
		rs.Since = rs.Request.StartedAt
	}
	return rs, nil
}

// skippedObjects lists skipped objects for /status; never nil, so it encodes as [].
func skippedObjects(ss []schema.Skipped) []wire.SkippedObject {
	out := []wire.SkippedObject{}
	for _, s := range ss {
		out = append(out, wire.SkippedObject{Object: s.Object, Reason: s.Reason, FirstSeen: s.FirstSeen.UTC(), LastSeen: s.LastSeen.UTC()})
	}
	return out
}

// sourceLag is now minus the source's tick time of the last applied batch
// while a received batch waits, else 0. Before any batch is applied it runs
// from the waiting batch's tick time. now is this database's clock and the
// tick time the source's, so skew between the hosts shows up in it.
func sourceLag(ctx context.Context, q database.Querier, src store.SourceState, now time.Time) (time.Duration, error) {
	if src.ReceivedSeq <= src.AppliedSeq {
		return 0, nil
	}
	from := src.TickTime
	if from.IsZero() {
		tt, ok, err := store.ChunkTickTime(ctx, q, src.Name, src.AppliedSeq+1)
		if err != nil || !ok {
			return 0, err
		}
		from = tt
	}
	return max(0, now.Sub(from)), nil
}

func timeOrNil(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	u := t.UTC()
	return &u
}
