package apply_test

import (
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/pagarme/teleport/database"
	"github.com/pagarme/teleport/database/apply"
	"github.com/pagarme/teleport/database/capture"
	"github.com/pagarme/teleport/database/dbtest"
	"github.com/pagarme/teleport/server/wire"
)

// TestApplyEventsGrouped_SameResult: a random workload of small statements
// on two tables (repeated updates of the same rows, key changes, deletes and
// re-inserts), captured for real, ends the same applied grouped as applied
// in order.
func TestApplyEventsGrouped_SameResult(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, _ := dbtest.Migrated(t)
	for _, schema := range []string{"src", "grouped", "ordered"} {
		dbtest.Exec(t, db, fmt.Sprintf(`CREATE SCHEMA %[1]s;
			CREATE TABLE %[1]s.a (id int PRIMARY KEY, n int NOT NULL, note text);
			CREATE TABLE %[1]s.b (k text PRIMARY KEY, a_id int, v numeric)`, schema))
	}
	if _, err := capture.InstallCapture(ctx, db, func(s, _ string) bool { return s == "src" }, false); err != nil {
		t.Fatal(err)
	}
	seed := rand.Uint64()
	t.Logf("seed %d", seed)
	r := rand.New(rand.NewPCG(seed, 1))
	for i := 0; i < 600; i++ {
		id, k := r.IntN(40), fmt.Sprintf("k%d", r.IntN(30))
		var q string
		switch r.IntN(7) {
		case 0, 1:
			q = fmt.Sprintf(`INSERT INTO src.a VALUES (%d, %d, 'n') ON CONFLICT (id) DO UPDATE SET n = src.a.n + 1`, id, i)
		case 2:
			q = fmt.Sprintf(`UPDATE src.a SET n = n + %d, note = note || 'x' WHERE id = %d`, i, id)
		case 3:
			q = fmt.Sprintf(`UPDATE src.a SET id = id + 100 WHERE id = %d AND NOT EXISTS (SELECT 1 FROM src.a WHERE id = %d)`, id, id+100)
		case 4:
			q = fmt.Sprintf(`DELETE FROM src.a WHERE id IN (%d, %d)`, id, id+100)
		case 5:
			q = fmt.Sprintf(`INSERT INTO src.b VALUES ('%s', %d, %d.5) ON CONFLICT (k) DO UPDATE SET v = src.b.v * 2`, k, id, i)
		default:
			q = fmt.Sprintf(`DELETE FROM src.b WHERE k = '%s'`, k)
		}
		dbtest.Exec(t, db, q)
	}
	var events []wire.Event
	rows, err := db.Query(`SELECT id, table_name, op, nrows, data::text FROM teleport.event ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var e wire.Event
		var data string
		if err := rows.Scan(&e.ID, &e.Table, &e.Op, &e.Rows, &data); err != nil {
			t.Fatal(err)
		}
		e.Data = []byte(data)
		events = append(events, e)
	}
	rows.Close()
	applyTo := func(schema string, fn func(context.Context, *sql.Tx, *apply.TableCache, []wire.Event) error) {
		t.Helper()
		evs := make([]wire.Event, len(events))
		for i, e := range events {
			e.Schema = schema
			evs[i] = e
		}
		if err := database.InTx(ctx, db, func(tx *sql.Tx) error { return fn(ctx, tx, apply.NewTableCache(false), evs) }); err != nil {
			t.Fatalf("apply to %s: %v", schema, err)
		}
	}
	applyTo("grouped", apply.ApplyEventsGrouped)
	applyTo("ordered", apply.ApplyEvents)
	for _, table := range []string{"a", "b"} {
		var src, grouped, ordered string
		q := `SELECT coalesce(string_agg(x::text, ';' ORDER BY x::text), '') FROM %s.` + table + ` x`
		for schema, dst := range map[string]*string{"src": &src, "grouped": &grouped, "ordered": &ordered} {
			if err := db.QueryRow(fmt.Sprintf(q, schema)).Scan(dst); err != nil {
				t.Fatal(err)
			}
		}
		if grouped != src || ordered != src {
			t.Errorf("table %s: grouped apply %s equal, ordered apply %s equal to the source", table, eq(grouped == src), eq(ordered == src))
		}
	}
	t.Logf("%d events applied", len(events))
}

func eq(b bool) string {
	if b {
		return "is"
	}
	return "is not"
}
