package server

import (
	"context"
	"database/sql"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/pagarme/teleport/database"
	"github.com/pagarme/teleport/server/wire"
)

// metrics answers GET /metrics: the replication state of /status in the
// Prometheus text format (version 0.0.4), one gauge per figure, labelled by
// target or source. teleport_up is 0 when the database could not be read.
func (s *Server) metrics(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), statusTimeout)
	defer cancel()
	var targets []wire.TargetStatus
	var sources []wire.SourceStatus
	err := database.InTx(ctx, s.db, func(tx *sql.Tx) error {
		var err error
		targets, sources, err = replicationStatus(ctx, tx)
		s.capLag(targets)
		s.sendFailures(targets)
		return err
	})
	var b strings.Builder
	gauge := func(name, help string) {
		fmt.Fprintf(&b, "# HELP %s %s\n# TYPE %s gauge\n", name, help, name)
	}
	up := 1.0
	if err != nil {
		s.log.Error("read metrics", "err", err)
		up = 0
	}
	gauge("teleport_up", "1 when the instance could read its replication state from its database.")
	fmt.Fprintf(&b, "teleport_up %s\n", num(up))
	gauge("teleport_uptime_seconds", "Seconds since the instance started.")
	fmt.Fprintf(&b, "teleport_uptime_seconds %s\n", num(time.Since(s.started).Seconds()))

	targetGauges := []struct {
		name, help string
		value      func(wire.TargetStatus) float64
	}{
		{"teleport_target_last_seq", "Last batch cut for the target.", func(t wire.TargetStatus) float64 { return float64(t.LastSeq) }},
		{"teleport_target_acked_seq", "Last batch the target has stored, with every one before it.", func(t wire.TargetStatus) float64 { return float64(t.AckedSeq) }},
		{"teleport_target_applied_seq", "Last batch the target has applied, as it last said.", func(t wire.TargetStatus) float64 { return float64(t.AppliedSeq) }},
		{"teleport_target_unsent_batches", "Batches cut and not yet stored on the target.", func(t wire.TargetStatus) float64 { return float64(t.UnsentBatches) }},
		{"teleport_target_pending_events", "Events in the batches not yet stored on the target.", func(t wire.TargetStatus) float64 { return float64(t.PendingEvents) }},
		{"teleport_target_lag_seconds", "Age, on this source's clock, of the oldest change the target has not applied.", func(t wire.TargetStatus) float64 { return t.LagSeconds }},
		{"teleport_target_schema_skipped", "Objects whose schema changes are not replicated to the target (see /status).", func(t wire.TargetStatus) float64 { return float64(len(t.SchemaSkipped)) }},
		{"teleport_target_send_failing_seconds", "How long sending to the target has been failing (see /status send_failure); 0 while it works.", func(t wire.TargetStatus) float64 {
			if t.SendFailure == nil {
				return 0
			}
			return time.Since(t.SendFailure.Since).Seconds()
		}},
	}
	for _, g := range targetGauges {
		gauge(g.name, g.help)
		for _, t := range targets {
			fmt.Fprintf(&b, "%s{target=%s} %s\n", g.name, label(t.Name), num(g.value(t)))
		}
	}
	sourceGauges := []struct {
		name, help string
		value      func(wire.SourceStatus) float64
	}{
		{"teleport_source_received_seq", "Last batch stored from the source, with every one before it.", func(s wire.SourceStatus) float64 { return float64(s.ReceivedSeq) }},
		{"teleport_source_applied_seq", "Last batch applied from the source.", func(s wire.SourceStatus) float64 { return float64(s.AppliedSeq) }},
		{"teleport_source_held", "1 while a batch from the source is held by an error (see /status).", func(s wire.SourceStatus) float64 { return bool01(s.Held) }},
		{"teleport_source_lag_seconds", "This database's now minus the source tick time of the last applied batch, while batches wait.", func(s wire.SourceStatus) float64 { return s.LagSeconds }},
		{"teleport_source_schema_skipped", "Objects of the source's schema this target's PostgreSQL major cannot take (see /status).", func(s wire.SourceStatus) float64 { return float64(len(s.SchemaSkipped)) }},
	}
	for _, g := range sourceGauges {
		gauge(g.name, g.help)
		for _, src := range sources {
			fmt.Fprintf(&b, "%s{source=%s} %s\n", g.name, label(src.Name), num(g.value(src)))
		}
	}
	const chunks = "teleport_chunks_received_total"
	fmt.Fprintf(&b, "# HELP %s Chunks of batches received since start: stored, already stored (a resend), refused (4xx, see /status).\n# TYPE %s counter\n", chunks, chunks)
	rcv := &s.transfers.received
	for _, c := range []struct {
		result string
		n      int64
	}{{"stored", rcv.stored.Load()}, {"duplicate", rcv.duplicate.Load()}, {"refused", rcv.refused.Load()}} {
		fmt.Fprintf(&b, "%s{result=%q} %d\n", chunks, c.result, c.n)
	}
	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	_, _ = w.Write([]byte(b.String())) // the scraper went away; nothing left to tell it
}

func num(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }

func bool01(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// label quotes a label value as the text format wants: backslash, double
// quote and newline escaped.
func label(v string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`).Replace(v) + `"`
}
