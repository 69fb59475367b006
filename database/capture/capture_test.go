package capture_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/pagarme/teleport/database"
	"github.com/pagarme/teleport/database/capture"
	"github.com/pagarme/teleport/database/dbtest"
)

// captured returns op, nrows and the ids in data of every event, in id order.
func captured(t *testing.T, q database.Querier) (ops []string, nrows []int, ids [][]int) {
	t.Helper()
	rows, err := q.QueryContext(context.Background(), `SELECT op, nrows, coalesce(data::text, 'null') FROM teleport.event ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var op, data string
		var n int
		if err := rows.Scan(&op, &n, &data); err != nil {
			t.Fatal(err)
		}
		var raw []json.RawMessage
		if err := json.Unmarshal([]byte(data), &raw); err != nil {
			t.Fatalf("event data %.100s: %v", data, err)
		}
		var got []int
		for _, r := range raw {
			var row struct{ ID int }
			if op == "U" {
				var pair []json.RawMessage
				if err := json.Unmarshal(r, &pair); err != nil || len(pair) != 2 {
					t.Fatalf("update pair %s: %v", r, err)
				}
				r = pair[1]
			}
			if err := json.Unmarshal(r, &row); err != nil {
				t.Fatal(err)
			}
			got = append(got, row.ID)
		}
		ops, nrows, ids = append(ops, op), append(nrows, n), append(ids, got)
	}
	return ops, nrows, ids
}

func TestInstallCapture_Chunks(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, _ := dbtest.Migrated(t)
	dbtest.Exec(t, db, `CREATE TABLE public.t (id int PRIMARY KEY, pad text)`)
	res, err := capture.InstallCapture(ctx, db, func(s, _ string) bool { return s == "public" }, false)
	if err != nil || len(res.Installed) != 1 {
		t.Fatalf("InstallCapture = %+v, %v; want public.t installed", res, err)
	}

	dbtest.Exec(t, db, `INSERT INTO public.t SELECT i, 'x' FROM generate_series(1, 2500) i ORDER BY i`)
	ops, nrows, ids := captured(t, db)
	if len(ops) != 3 || nrows[0] != 1000 || nrows[1] != 1000 || nrows[2] != 500 {
		t.Fatalf("a 2500-row INSERT made events %v of %v rows, want 1000, 1000, 500", ops, nrows)
	}
	next := 1
	for _, chunk := range ids {
		for _, id := range chunk {
			if id != next {
				t.Fatalf("rows across events are not in statement order: got %d, want %d", id, next)
			}
			next++
		}
	}

	dbtest.Exec(t, db, `TRUNCATE teleport.event`)
	// 3 MB per row: a chunk closes at about 4 MB, so each holds one or two rows.
	dbtest.Exec(t, db, `UPDATE public.t SET pad = repeat(md5(id::text), 100000) WHERE id <= 4`)
	ops, nrows, _ = captured(t, db)
	total := 0
	for i, n := range nrows {
		if ops[i] != "U" || n > 2 {
			t.Errorf("event %d of an update of 4 rows of 3 MB: op %s, %d rows; want U with at most 2 rows", i, ops[i], n)
		}
		total += n
	}
	if total != 4 || len(nrows) < 2 {
		t.Errorf("update of 4 large rows made events of %v rows, want 4 rows in several events", nrows)
	}

	dbtest.Exec(t, db, `TRUNCATE teleport.event`)
	dbtest.Exec(t, db, `UPDATE public.t SET id = id + 10000 WHERE id <= 3`)
	dbtest.Exec(t, db, `DELETE FROM public.t WHERE id > 10000`)
	// One-row statements take the capture's short path.
	dbtest.Exec(t, db, `INSERT INTO public.t VALUES (20000, 'one')`)
	dbtest.Exec(t, db, `UPDATE public.t SET id = 20001 WHERE id = 20000`)
	dbtest.Exec(t, db, `DELETE FROM public.t WHERE id = 20001`)
	dbtest.Exec(t, db, `TRUNCATE public.t`)
	ops, nrows, ids = captured(t, db)
	if strings.Join(ops, "") != "UDIUDT" || nrows[0] != 3 || nrows[1] != 3 || nrows[2] != 1 || nrows[3] != 1 || nrows[4] != 1 || nrows[5] != 0 {
		t.Fatalf("statements made events %v of %v rows, want U D I U D T of 3, 3, 1, 1, 1, 0", ops, nrows)
	}
	if ids[2][0] != 20000 || ids[3][0] != 20001 || ids[4][0] != 20001 {
		t.Errorf("one-row events carry ids %v, %v, %v; want 20000, 20001 (new row of the update), 20001", ids[2], ids[3], ids[4])
	}
	if len(ids) > 0 && (len(ids[0]) != 3 || ids[0][0] <= 10000) {
		t.Errorf("update event's new rows have ids %v, want the changed keys", ids[0])
	}
}

// TestCapture_SearchPathCannotHijack: the capture functions run as the
// teleport role with the writer's search_path (they do not pin one: see
// migration 0009). A writer whose search_path puts its own schema, holding
// look-alikes of the functions, operators and aggregates the capture
// bodies call, before pg_catalog still records its changes with the real
// ones, on every path (one row, many rows, insert, update, delete), and
// none of its objects ever runs as the teleport role.
func TestCapture_SearchPathCannotHijack(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	c := dbtest.Shared(t)
	db, name := dbtest.Migrated(t)
	dbtest.Exec(t, db, `CREATE TABLE public.t (id int PRIMARY KEY)`)
	if _, err := capture.InstallCapture(ctx, db, func(string, string) bool { return true }, false); err != nil {
		t.Fatal(err)
	}
	c.CreateRole(t, "tp_writer", "pw", "NOSUPERUSER")
	c.AdminExec(t, name, `CREATE SCHEMA evil AUTHORIZATION tp_writer; GRANT INSERT, UPDATE, DELETE, SELECT ON public.t TO tp_writer`)
	writer := dbtest.Open(t, c.DSN("tp_writer", "pw", name))
	writer.SetMaxOpenConns(1) // one session: the temporary tables below stay the writer's
	if _, err := writer.Exec(`
		GRANT USAGE ON SCHEMA evil TO PUBLIC;
		CREATE TABLE evil.ran (what text, who text);
		GRANT INSERT ON evil.ran TO PUBLIC;
		CREATE FUNCTION evil.op(bigint, integer) RETURNS bigint LANGUAGE sql AS $$ INSERT INTO evil.ran VALUES ('op', current_user) RETURNING 0::bigint $$;
		CREATE OPERATOR evil.- (LEFTARG = bigint, RIGHTARG = integer, FUNCTION = evil.op);
		CREATE OPERATOR evil./ (LEFTARG = bigint, RIGHTARG = integer, FUNCTION = evil.op);
		CREATE FUNCTION evil.eq(bigint, integer) RETURNS boolean LANGUAGE sql AS $$ INSERT INTO evil.ran VALUES ('=', current_user) RETURNING true $$;
		CREATE OPERATOR evil.= (LEFTARG = bigint, RIGHTARG = integer, FUNCTION = evil.eq);
		CREATE FUNCTION evil.plus(bigint, bigint) RETURNS bigint LANGUAGE sql AS $$ INSERT INTO evil.ran VALUES ('+', current_user) RETURNING 0::bigint $$;
		CREATE OPERATOR evil.+ (LEFTARG = bigint, RIGHTARG = bigint, FUNCTION = evil.plus);
		CREATE FUNCTION evil.left(text, integer) RETURNS text LANGUAGE sql AS $$ INSERT INTO evil.ran VALUES ('left', current_user) RETURNING 'I' $$;
		CREATE FUNCTION evil.current_setting(text, boolean) RETURNS text LANGUAGE sql AS $$ INSERT INTO evil.ran VALUES ('current_setting', current_user) RETURNING 'x' $$;
		CREATE FUNCTION evil.row_to_json(record) RETURNS json LANGUAGE plpgsql AS $$ BEGIN INSERT INTO evil.ran VALUES ('row_to_json', current_user); RETURN '{}'; END $$;
		CREATE FUNCTION evil.json_build_array(json) RETURNS json LANGUAGE sql AS $$ INSERT INTO evil.ran VALUES ('json_build_array', current_user) RETURNING '[]'::json $$;
		CREATE FUNCTION evil.json_build_array(json, json) RETURNS json LANGUAGE sql AS $$ INSERT INTO evil.ran VALUES ('json_build_array', current_user) RETURNING '[]'::json $$;
		CREATE FUNCTION evil.step(bigint) RETURNS bigint LANGUAGE sql AS $$ INSERT INTO evil.ran VALUES ('count', current_user) RETURNING 0::bigint $$;
		CREATE AGGREGATE evil.count(*) (SFUNC = evil.step, STYPE = bigint, INITCOND = '0');
		CREATE FUNCTION evil.jstep(json, json) RETURNS json LANGUAGE sql AS $$ INSERT INTO evil.ran VALUES ('json_agg', current_user) RETURNING '[]'::json $$;
		CREATE AGGREGATE evil.json_agg(json) (SFUNC = evil.jstep, STYPE = json);
		CREATE TEMP TABLE changed_rows (id int);
		CREATE TEMP TABLE new_rows (id int)`); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		`INSERT INTO public.t VALUES (1), (2)`,
		`INSERT INTO public.t VALUES (3)`,
		`UPDATE public.t SET id = id + 10 WHERE id < 3`,
		`UPDATE public.t SET id = 30 WHERE id = 3`,
		`DELETE FROM public.t WHERE id = 30`,
		`DELETE FROM public.t`,
	} {
		if _, err := writer.Exec(`SET search_path = evil, pg_temp, pg_catalog, public; ` + q); err != nil {
			t.Fatalf("%s as the writer: %v", q, err)
		}
	}
	var ran []string
	rows, err := writer.Query(`SELECT what || ' as ' || who FROM evil.ran`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var r string
		if err := rows.Scan(&r); err != nil {
			t.Fatal(err)
		}
		ran = append(ran, r)
	}
	if len(ran) != 0 {
		t.Errorf("the writer's objects ran inside the capture trigger: %v", ran)
	}
	ops, nrows, ids := captured(t, db)
	want := []string{"I [1 2]", "I [3]", "U [11 12]", "U [30]", "D [30]", "D [11 12]"}
	var got []string
	for i := range ops {
		got = append(got, fmt.Sprintf("%s %v", ops[i], ids[i]))
		if nrows[i] != len(ids[i]) {
			t.Errorf("event %d: nrows %d for %d rows", i, nrows[i], len(ids[i]))
		}
	}
	if !slices.Equal(got, want) {
		t.Errorf("captured %q, want %q", got, want)
	}
}
