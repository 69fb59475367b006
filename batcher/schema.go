package batcher

import (
	"context"
	"database/sql"

	"github.com/pagarme/teleport/config"
	"github.com/pagarme/teleport/database"
	"github.com/pagarme/teleport/database/schema"
)

// targetSchema is what the batcher needs to diff the schema for a target.
type targetSchema struct {
	scope       schema.Scope
	applySchema string
}

func newTargetSchema(t config.Target) targetSchema {
	expr := t.Expression()
	return targetSchema{
		scope: schema.Scope{
			Schema: expr.MatchSchema,
			Table:  expr.Match,
		},
		applySchema: t.ApplySchema,
	}
}

// sentSchema is the schema a target was last sent, kept between passes: a
// catalog of thousands of tables is megabytes of JSON, too much to read and
// decode every 100 ms for nothing.
type sentSchema struct {
	id   int64 // the snapshot event it came from
	snap *schema.Snapshot
	text string
}

// sentSchema returns the schema target was last sent (nil: none yet),
// reading it only when it is not the one kept from the last pass.
func (w *Worker) sentSchema(ctx context.Context, q database.Querier, target string) (*schema.Snapshot, string, int64, error) {
	id, ok, err := schema.SentSchemaID(ctx, q, target)
	if err != nil || !ok {
		delete(w.sent, target)
		return nil, "", 0, err
	}
	if c := w.sent[target]; c != nil && c.id == id {
		return c.snap, c.text, c.id, nil
	}
	snap, text, id, err := schema.SentSchema(ctx, q, target)
	if err != nil || snap == nil {
		return nil, "", 0, err
	}
	w.sent[target] = &sentSchema{id: id, snap: snap, text: text}
	return snap, text, id, nil
}

// placedDDL is a schema change and the event it goes before.
type placedDDL struct {
	before int64
	ddl    schema.DDL
}

// schemaChanges returns the schema changes target's batch of ticks
// (from, to] carries, in order, and the row events and rows it holds, and
// records what the target has then been sent. A target sent nothing yet
// first gets every object, adoptable (whole is then true: the first change
// is that). Each snapshot event is diffed against the one before. A row
// event naming a table or column the target was not sent yet gets, before
// it, the diff to a snapshot taken now, so no row waits for the
// ddlwatcher's next pass.
func (w *Worker) schemaChanges(ctx context.Context, tx *sql.Tx, target string, from, to int64) (ddls []placedDDL, events int, rows int64, whole bool, err error) {
	ts := w.schemas[target]
	sent, sentText, sentID, err := w.sentSchema(ctx, tx, target)
	if err != nil {
		return nil, 0, 0, false, err
	}
	points, err := schema.SchemaPoints(ctx, tx, target, from, to, sentID)
	if err != nil {
		return nil, 0, 0, false, err
	}
	events, rows = schema.CountEvents(points)
	var out []placedDDL
	changed := false
	var skipped []schema.Unsupported
	emit := func(before int64, next *schema.Snapshot, text string, id int64) {
		ddl, unsupported := schema.Diff(sent, next, ts.scope)
		skipped = append(skipped, unsupported...)
		if ts.applySchema != "" {
			ddl.SearchPath = ts.applySchema
		}
		if len(ddl.Items) > 0 {
			out = append(out, placedDDL{before: before, ddl: ddl})
		}
		sent, sentText, sentID, changed = next, text, id, true
	}
	var fresh *schema.SnapshotEvent
	takeFresh := func() (bool, error) {
		if fresh != nil {
			return false, nil // taken in this pass already: a newer one cannot be had
		}
		se, err := schema.WriteSnapshot(ctx, w.db, w.snapshotSchema)
		if err != nil {
			return false, err
		}
		fresh = &se
		return se.EventID > sentID, nil
	}
	if sent == nil {
		if _, err := takeFresh(); err != nil {
			return nil, 0, 0, false, err
		}
		emit(0, &fresh.Snapshot, fresh.Text, fresh.EventID)
		whole = len(out) > 0
	}
	for _, p := range points {
		switch {
		case p.Snapshot != nil:
			if p.EventID > sentID {
				emit(p.EventID, p.Snapshot, p.SnapText, p.EventID)
			}
		case !sent.Knows(p):
			newer, err := takeFresh()
			if err != nil {
				return nil, 0, 0, false, err
			}
			if newer {
				emit(p.EventID, &fresh.Snapshot, fresh.Text, fresh.EventID)
			}
		}
	}
	if changed {
		if err := schema.SaveSentSchema(ctx, tx, target, sentID, sentText); err != nil {
			return nil, 0, 0, false, err
		}
		// Should the transaction roll back, the next pass reads another id
		// than this one and reads the schema again.
		w.sent[target] = &sentSchema{id: sentID, snap: sent, text: sentText}
		if err := w.reportUnsupported(ctx, tx, target, ts, sent, skipped); err != nil {
			return nil, 0, 0, false, err
		}
	}
	return out, events, rows, whole, nil
}

// reportUnsupported records, for /status, what target's schema leaves out
// now, and why: the objects of the schema sent that cannot be replicated,
// and the changes of this pass that were not (changes); an object that
// replicates now is no longer listed. It logs each once per target.
func (w *Worker) reportUnsupported(ctx context.Context, q database.Querier, target string, ts targetSchema, sent *schema.Snapshot,
	changes []schema.Unsupported) error {
	_, now := schema.Diff(nil, sent, ts.scope)
	seen := map[string]bool{}
	var all []schema.Unsupported
	for _, u := range append(now, changes...) {
		if !seen[u.Object] {
			seen[u.Object] = true
			all = append(all, u)
		}
	}
	if err := schema.SaveSkipped(ctx, q, target, all); err != nil {
		return err
	}
	for _, u := range changes {
		key := target + "\x00" + u.Object + "\x00" + u.Reason
		if !w.unsupported[key] {
			w.unsupported[key] = true
			w.log.Warn("schema change not replicated", "target", target, "object", u.Object, "reason", u.Reason)
		}
	}
	return nil
}
