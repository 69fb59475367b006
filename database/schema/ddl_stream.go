package schema

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/lib/pq"

	"github.com/pagarme/teleport/database"
	"github.com/pagarme/teleport/database/store"
	"github.com/pagarme/teleport/server/wire"
)

// ddlLockKey serialises snapshots, so a snapshot event with a higher id
// never holds an older catalog than one with a lower id.
const ddlLockKey int64 = 0x74656c65706f7264

// Fingerprint tells, cheaply, whether the catalog or the captured rows
// changed since another was taken (see catalog_fingerprint.sql).
type Fingerprint struct {
	Catalog   string // equal: no schema change, no new table
	LastEvent int64  // equal too: no row captured either, sequences included
}

// TakeFingerprint reads the catalog's fingerprint: a few milliseconds where
// a snapshot of thousands of tables takes a second of CPU.
func TakeFingerprint(ctx context.Context, q database.Querier) (Fingerprint, error) {
	var f Fingerprint
	if err := q.QueryRowContext(ctx, query("catalog_fingerprint")).Scan(&f.Catalog, &f.LastEvent); err != nil {
		return Fingerprint{}, fmt.Errorf("read the catalog's fingerprint: %w", err)
	}
	return f, nil
}

// SnapshotEvent is a catalog snapshot and the 'S' event that carries it.
type SnapshotEvent struct {
	EventID  int64
	Snapshot Snapshot
	Text     string // the snapshot's JSON
	Written  bool   // the catalog had changed: a new event was written
}

// WriteSnapshot snapshots the catalog (names relative to searchPath) and,
// when it differs from the last snapshot written, writes it into the stream
// as an 'S' event. Either way it returns the snapshot and the id of the
// event that holds it.
func WriteSnapshot(ctx context.Context, db *sql.DB, searchPath string) (SnapshotEvent, error) {
	var se SnapshotEvent
	err := database.InTx(ctx, db, func(tx *sql.Tx) error {
		se = SnapshotEvent{}
		if _, err := tx.ExecContext(ctx, `SELECT pg_catalog.pg_advisory_xact_lock($1)`, ddlLockKey); err != nil {
			return err
		}
		// A DDL transaction holding a lock the snapshot needs may itself be
		// waiting for the advisory lock (use_event_triggers): give way to it
		// rather than deadlock, and try again on the next pass.
		if _, err := tx.ExecContext(ctx, `SET LOCAL lock_timeout = '500ms'`); err != nil {
			return err
		}
		snap, text, hash, err := TakeSnapshot(ctx, tx, searchPath)
		if err != nil {
			return err
		}
		se.Snapshot, se.Text = snap, text
		var last string
		err = tx.QueryRowContext(ctx, query("ddl_state_read")).Scan(&se.EventID, &last)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		if err == nil && last == hash {
			return nil
		}
		se.Written = true
		return tx.QueryRowContext(ctx, query("ddl_snapshot_insert"), text, hash).Scan(&se.EventID)
	})
	if err != nil {
		return SnapshotEvent{}, fmt.Errorf("write catalog snapshot: %w", err)
	}
	return se, nil
}

// SentSchemaID returns the id of the snapshot event target was last sent
// DDL against; ok is false when it was sent none yet.
func SentSchemaID(ctx context.Context, q database.Querier, target string) (id int64, ok bool, err error) {
	err = q.QueryRowContext(ctx, query("target_schema_id"), target).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("read the schema sent to %s: %w", target, err)
	}
	return id, true, nil
}

// SentSchema returns the snapshot target was last sent DDL against, and the
// event it came from; nil when it was sent none yet.
func SentSchema(ctx context.Context, q database.Querier, target string) (*Snapshot, string, int64, error) {
	var id int64
	var text string
	err := q.QueryRowContext(ctx, query("target_schema_read"), target).Scan(&id, &text)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, "", 0, nil
	}
	if err != nil {
		return nil, "", 0, fmt.Errorf("read the schema sent to %s: %w", target, err)
	}
	var s Snapshot
	if err := json.Unmarshal([]byte(text), &s); err != nil {
		return nil, "", 0, fmt.Errorf("read the schema sent to %s: %w", target, err)
	}
	return &s, text, id, nil
}

// SaveSentSchema records snapshot text, from event id, as what target has
// been sent.
func SaveSentSchema(ctx context.Context, q database.Querier, target string, id int64, text string) error {
	if _, err := q.ExecContext(ctx, query("target_schema_save"), target, id, text); err != nil {
		return fmt.Errorf("record the schema sent to %s: %w", target, err)
	}
	return nil
}

// SchemaPoint is what the batcher checks a batch's schema against: a
// snapshot event (Snapshot set), or a table and its column names as the
// batch's row events first show them.
type SchemaPoint struct {
	EventID  int64
	Snapshot *Snapshot
	SnapText string
	RelID    OID
	Schema   string
	Table    string
	Columns  []string // nil for a truncate
	Events   int      // row events showing this table and columns
	Rows     int64    // their rows
}

// SchemaPoints returns, in event order, the snapshot events after event
// after and the distinct table shapes of the row events that target takes
// from the ticks (from, to], with how many row events and rows they hold.
func SchemaPoints(ctx context.Context, q database.Querier, target string, from, to, after int64) ([]SchemaPoint, error) {
	rows, err := q.QueryContext(ctx, query("batch_schema_points"), target, from, to, after)
	if err != nil {
		return nil, fmt.Errorf("read schema points of %s in ticks %d..%d: %w", target, from, to, err)
	}
	defer rows.Close()
	var ps []SchemaPoint
	for rows.Next() {
		var p SchemaPoint
		var isSnap bool
		var data sql.NullString
		var cols pq.StringArray
		if err := rows.Scan(&p.EventID, &isSnap, &p.RelID, &p.Schema, &p.Table, &cols, &data, &p.Events, &p.Rows); err != nil {
			return nil, fmt.Errorf("read schema points of %s: %w", target, err)
		}
		if isSnap {
			var s Snapshot
			if err := json.Unmarshal([]byte(data.String), &s); err != nil {
				return nil, fmt.Errorf("read snapshot event %d: %w", p.EventID, err)
			}
			p.Snapshot, p.SnapText = &s, data.String
		} else {
			p.Columns = cols
		}
		ps = append(ps, p)
	}
	return ps, rows.Err()
}

// CountEvents returns the row events and rows points show.
func CountEvents(points []SchemaPoint) (events int, rows int64) {
	for _, p := range points {
		events += p.Events
		rows += p.Rows
	}
	return events, rows
}

// Knows reports whether s has the table p names, under that name and with
// exactly the columns p shows, as a table Diff sends (see differ.tables).
func (s *Snapshot) Knows(p SchemaPoint) bool {
	for i := range s.Tables {
		t := &s.Tables[i]
		if t.OID != p.RelID {
			continue
		}
		if t.Schema != p.Schema || t.Name != p.Table || !t.Owned || inherits(t) {
			return false // renamed, or never sent: Diff leaves such a table out
		}
		if p.Columns == nil {
			return true
		}
		if len(t.Columns) != len(p.Columns) {
			return false
		}
		have := make(map[string]bool, len(t.Columns))
		for _, c := range t.Columns {
			have[c.Name] = true
		}
		for _, c := range p.Columns {
			if !have[c] {
				return false
			}
		}
		return true
	}
	return false
}

// InsertBatchDDL records the pos-th schema change of batch (target, seq),
// applied before its first event with an id of at least before.
func InsertBatchDDL(ctx context.Context, q database.Querier, target string, seq int64, pos int, before int64, d DDL) error {
	b, err := json.Marshal(d)
	if err != nil {
		return err
	}
	if _, err := q.ExecContext(ctx, query("batch_ddl_insert"), target, seq, pos, before, string(b)); err != nil {
		return fmt.Errorf("record schema change %d of batch %d for %s: %w", pos, seq, target, err)
	}
	return nil
}

// batchDDL is a schema change of a batch, as BatchEvents sends it.
type batchDDL struct {
	before int64
	event  wire.Event
}

func batchDDLs(ctx context.Context, q database.Querier, b store.Batch) ([]batchDDL, error) {
	rows, err := q.QueryContext(ctx, query("batch_ddl_list"), b.Target, b.Seq)
	if err != nil {
		return nil, fmt.Errorf("read schema changes of batch %d for %s: %w", b.Seq, b.Target, err)
	}
	defer rows.Close()
	var out []batchDDL
	for rows.Next() {
		var bd batchDDL
		var text string
		if err := rows.Scan(&bd.before, &text); err != nil {
			return nil, fmt.Errorf("read schema changes of batch %d for %s: %w", b.Seq, b.Target, err)
		}
		var d DDL
		if err := json.Unmarshal([]byte(text), &d); err != nil {
			return nil, fmt.Errorf("read schema changes of batch %d for %s: %w", b.Seq, b.Target, err)
		}
		bd.event = wire.Event{ID: bd.before, Schema: d.SearchPath, Op: wire.OpSchema, Rows: len(d.Items), Data: json.RawMessage(text)}
		out = append(out, bd)
	}
	return out, rows.Err()
}

// SaveSkipped records, for /status, that target's schema diff leaves out
// us now: what it left out before and no longer does is forgotten.
func SaveSkipped(ctx context.Context, q database.Querier, target string, us []Unsupported) error {
	objects, reasons := make([]string, len(us)), make([]string, len(us))
	for i, u := range us {
		objects[i], reasons[i] = u.Object, u.Reason
	}
	if _, err := q.ExecContext(ctx, query("schema_skipped_save"), target, pq.Array(objects), pq.Array(reasons)); err != nil {
		return fmt.Errorf("record what is not replicated to %s: %w", target, err)
	}
	return nil
}

// Skipped is an object left out of a target's schema.
type Skipped struct {
	Unsupported
	FirstSeen time.Time // first reported with this reason
	LastSeen  time.Time // last reported
}

// SkippedByTarget returns, per target, the objects left out of its schema.
func SkippedByTarget(ctx context.Context, q database.Querier) (map[string][]Skipped, error) {
	return readSkipped(ctx, q, "schema_skipped_list")
}

// SaveSourceSkipped records, for /status, that this target left out u of
// source's schema.
func SaveSourceSkipped(ctx context.Context, q database.Querier, source string, u Unsupported) error {
	if _, err := q.ExecContext(ctx, query("source_schema_skipped_save"), source, u.Object, u.Reason); err != nil {
		return fmt.Errorf("record %s of source %s as left out: %w", u.Object, source, err)
	}
	return nil
}

// SkippedBySource returns, per source, the objects of its schema this
// target left out.
func SkippedBySource(ctx context.Context, q database.Querier) (map[string][]Skipped, error) {
	return readSkipped(ctx, q, "source_schema_skipped_list")
}

// readSkipped runs a query listing (peer, object, reason, first seen, last
// seen) and groups the rows by peer.
func readSkipped(ctx context.Context, q database.Querier, name string) (map[string][]Skipped, error) {
	rows, err := q.QueryContext(ctx, query(name))
	if err != nil {
		return nil, fmt.Errorf("read objects not replicated: %w", err)
	}
	defer rows.Close()
	out := map[string][]Skipped{}
	for rows.Next() {
		var peer string
		var s Skipped
		if err := rows.Scan(&peer, &s.Object, &s.Reason, &s.FirstSeen, &s.LastSeen); err != nil {
			return nil, fmt.Errorf("read objects not replicated: %w", err)
		}
		out[peer] = append(out[peer], s)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read objects not replicated: %w", err)
	}
	return out, nil
}

// BatchEvents calls fn for each event of b, in id order, reading them as a
// stream so a batch of any size holds one event in memory at a time. The
// batch's schema changes come as OpSchema events, each before the first
// event its place in the stream precedes. The events are the same, in the
// same order, every time it is called for b.
func BatchEvents(ctx context.Context, q database.Querier, b store.Batch, fn func(wire.Event) error) error {
	ddls, err := batchDDLs(ctx, q, b)
	if err != nil {
		return err
	}
	rows, err := q.QueryContext(ctx, query("batch_events"), b.Target, b.Seq)
	if err != nil {
		return fmt.Errorf("read events of batch %d for %s: %w", b.Seq, b.Target, err)
	}
	defer rows.Close()
	for rows.Next() {
		var e wire.Event
		var data []byte
		var xid int64
		if err := rows.Scan(&e.ID, &xid, &e.Schema, &e.Table, &e.Op, &e.Rows, &data); err != nil {
			return fmt.Errorf("read events of batch %d for %s: %w", b.Seq, b.Target, err)
		}
		for len(ddls) > 0 && ddls[0].before <= e.ID {
			if err := fn(ddls[0].event); err != nil {
				return err
			}
			ddls = ddls[1:]
		}
		e.XID, e.Data = uint64(xid), data
		if err := fn(e); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read events of batch %d for %s: %w", b.Seq, b.Target, err)
	}
	for _, d := range ddls {
		if err := fn(d.event); err != nil {
			return err
		}
	}
	return nil
}
