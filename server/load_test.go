package server_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/pagarme/teleport/database/load"
	"github.com/pagarme/teleport/server"
	"github.com/pagarme/teleport/server/wire"
)

// loadRequest sends an initial-load request from a loopback client.
func loadRequest(h http.Handler, method, path string, q url.Values, body string) *httptest.ResponseRecorder {
	if q != nil {
		path += "?" + q.Encode()
	}
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	req.RemoteAddr = "127.0.0.1:5000"
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func planBody(t *testing.T, run string, overwrite bool, tables ...string) string {
	t.Helper()
	return marshalPlan(t, wire.LoadPlan{Source: "src", Run: run, Overwrite: overwrite}, tables...)
}

// resyncBody is the plan of a resync of tables.
func resyncBody(t *testing.T, run string, tables ...string) string {
	t.Helper()
	return marshalPlan(t, wire.LoadPlan{Source: "src", Run: run, Resync: true}, tables...)
}

func marshalPlan(t *testing.T, p wire.LoadPlan, tables ...string) string {
	t.Helper()
	for _, tb := range tables {
		p.Tables = append(p.Tables, wire.LoadTable{Schema: "public", Table: tb, EstRows: 2})
	}
	b, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func copyParams(run, table, snapshot string) url.Values {
	return url.Values{"run": {run}, "schema": {"public"}, "table": {table}, "snapshot": {snapshot}, "column": {"id", "v"}}
}

func wantAnswer(t *testing.T, rec *httptest.ResponseRecorder, code int, words ...string) {
	t.Helper()
	if rec.Code != code {
		t.Fatalf("status %d, want %d: %s", rec.Code, code, rec.Body)
	}
	for _, w := range words {
		if !strings.Contains(rec.Body.String(), w) {
			t.Errorf("answer %s lacks %q", rec.Body, w)
		}
	}
}

func TestLoadRoutes(t *testing.T) {
	srv, db := newTarget(t, "")
	h := srv.Handler()

	// Malformed requests store nothing.
	wantAnswer(t, loadRequest(h, "POST", "/loads/src", nil, `{"source": "src", "run": "r", "tables": [], "bogus": 1}`), 400, "bogus")
	wantAnswer(t, loadRequest(h, "POST", "/loads/other", nil, planBody(t, "r1", false, "a")), 400, "src", "other")
	wantAnswer(t, loadRequest(h, "POST", "/loads/src", nil, `{"source": "src", "run": "r", "tables": []}`), 400, "no table")
	wantAnswer(t, loadRequest(h, "PUT", "/loads/src/copy", url.Values{"run": {"r1"}}, ""), 400, "column")
	wantAnswer(t, loadRequest(h, "PUT", "/loads/src/copy", copyParams("r1", "a", "12:x:"), ""), 400, "snapshot")
	wantAnswer(t, loadRequest(h, "PUT", "/loads/src/copy", copyParams("r1", "a", "10:12:"), "1\tx\n"), 409, "no load from src")

	// The tables come through replication: until they are there, wait.
	rec := loadRequest(h, "POST", "/loads/src", nil, planBody(t, "r1", false, "a", "b"))
	wantAnswer(t, rec, 503, `\"public\".\"a\"`, "not on this database yet")
	if rec.Header().Get("Retry-After") == "" {
		t.Error("503 without Retry-After")
	}
	// A batch this database holds may be what brings them: the answer says
	// which and why.
	if _, err := db.Exec(`INSERT INTO teleport.source (name, error, error_seq, error_at) VALUES ('src', 'permission denied for schema public', 1, now())`); err != nil {
		t.Fatal(err)
	}
	wantAnswer(t, loadRequest(h, "POST", "/loads/src", nil, planBody(t, "r1", false, "a", "b")), 503,
		"not on this database yet", "batch 1 of src", "permission denied for schema public")
	if _, err := db.Exec(`DELETE FROM teleport.source`); err != nil {
		t.Fatal(err)
	}
	for _, tb := range []string{"a", "b"} {
		if _, err := db.Exec(`CREATE TABLE public.` + tb + ` (id int PRIMARY KEY, v text)`); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := db.Exec(`CREATE TABLE public.c (a_id int REFERENCES public.a); INSERT INTO public.b VALUES (9, 'was here')`); err != nil {
		t.Fatal(err)
	}
	wantAnswer(t, loadRequest(h, "POST", "/loads/src", nil, planBody(t, "r1", false, "a", "b")), 409, `\"public\".\"b\"`, "-overwrite")
	wantAnswer(t, loadRequest(h, "POST", "/loads/src", nil, planBody(t, "r1", true, "a", "b")), 200, `"resumed":false`)
	var fks int
	if err := db.QueryRow(`SELECT count(*) FROM pg_constraint WHERE contype = 'f' AND conrelid = 'public.c'::regclass`).Scan(&fks); err != nil || fks != 0 {
		t.Errorf("foreign keys on c during the load = %d (%v), want 0", fks, err)
	}

	wantAnswer(t, loadRequest(h, "PUT", "/loads/src/copy", copyParams("r0", "a", "10:12:"), "1\tx\n"), 409, "another initial-load")
	wantAnswer(t, loadRequest(h, "PUT", "/loads/src/copy", copyParams("r1", "c", "10:12:"), "1\n"), 409, "not a table of the load")
	wantAnswer(t, loadRequest(h, "PUT", "/loads/src/copy", copyParams("r1", "a", "10:12:"), "1\tx\n2\t"), 500, "unfinished row")
	wantAnswer(t, loadRequest(h, "PUT", "/loads/src/copy", copyParams("r1", "a", "10:12:11"), "1\tx\n2\t\\N\n3\ttab\\there\n"), 200, `"rows":3`)
	wantAnswer(t, loadRequest(h, "POST", "/loads/src/finish", url.Values{"run": {"r1"}}, ""), 409, `\"public\".\"b\" not copied yet`)

	var st wire.Status
	rec = loadRequest(h, "GET", "/status", nil, "")
	if err := json.Unmarshal(rec.Body.Bytes(), &st); err != nil || len(st.Loads) != 1 {
		t.Fatalf("status loads: %s (%v)", rec.Body, err)
	}
	if l := st.Loads[0]; l.State != "loading" || l.TablesDone != 1 || l.Rows != 3 || len(l.Tables) != 2 || l.Tables[1].State != "waiting" {
		t.Errorf("status load = %+v, want loading with a done (3 rows) and b waiting", l)
	} else if l.Tables[0].EstRows != 3 || l.EstRows != 5 {
		t.Errorf("status load estimates: table a %d, load %d; want 3 (a's rows, over the estimate of 2) and 5", l.Tables[0].EstRows, l.EstRows)
	}

	// A resumed load keeps what is done; the run that resumed it owns it.
	wantAnswer(t, loadRequest(h, "POST", "/loads/src", nil, planBody(t, "r2", false, "a", "b")), 200, `"resumed":true`, `"table":"a"`)
	wantAnswer(t, loadRequest(h, "PUT", "/loads/src/copy", copyParams("r1", "b", "10:12:"), "1\tx\n"), 409, "now run r2")
	wantAnswer(t, loadRequest(h, "PUT", "/loads/src/copy", copyParams("r2", "b", "10:12:"), ""), 200, `"rows":0`)
	wantAnswer(t, loadRequest(h, "POST", "/loads/src/finish", url.Values{"run": {"r2"}}, ""), 200)
	if err := db.QueryRow(`SELECT count(*) FROM pg_constraint WHERE contype = 'f' AND conrelid = 'public.c'::regclass`).Scan(&fks); err != nil || fks != 1 {
		t.Errorf("foreign keys on c after the load = %d (%v), want 1", fks, err)
	}
	var got string
	if err := db.QueryRow(`SELECT string_agg(id || '=' || coalesce(v, 'NULL'), ' ' ORDER BY id) FROM public.a`).Scan(&got); err != nil || got != "1=x 2=NULL 3=tab\there" {
		t.Errorf("rows of a = %q (%v)", got, err)
	}
	if err := db.QueryRow(`SELECT count(*) FROM public.b`).Scan(&fks); err != nil || fks != 0 {
		t.Errorf("b after an empty copy has %d rows (%v), want 0", fks, err)
	}
	wantAnswer(t, loadRequest(h, "POST", "/loads/src", nil, planBody(t, "r3", false, "a", "b")), 409, "already holds a load", "-overwrite")

	// A resync copies some tables again, with no -overwrite; the others
	// keep their copy. Another resync or a load of the same source may
	// only take it over to finish it.
	wantAnswer(t, loadRequest(h, "POST", "/loads/src", nil, resyncBody(t, "r4", "a")), 200, `"resumed":false`)
	if err := db.QueryRow(`SELECT count(*) FROM pg_constraint WHERE contype = 'f' AND conrelid = 'public.c'::regclass`).Scan(&fks); err != nil || fks != 0 {
		t.Errorf("foreign keys on c during the resync of a = %d (%v), want 0", fks, err)
	}
	wantAnswer(t, loadRequest(h, "POST", "/loads/src", nil, resyncBody(t, "r5", "b")), 409, `load of 1 tables from src is under way here (\"public\".\"a\")`)
	wantAnswer(t, loadRequest(h, "PUT", "/loads/src/copy", copyParams("r4", "b", "20:22:"), "1\tx\n"), 409, "not a table of the load")
	rec = loadRequest(h, "GET", "/status", nil, "")
	if err := json.Unmarshal(rec.Body.Bytes(), &st); err != nil || len(st.Loads) != 1 {
		t.Fatalf("status loads: %s (%v)", rec.Body, err)
	}
	if l := st.Loads[0]; !l.Resync || l.State != "loading" || len(l.Tables) != 1 || l.Tables[0].State != "waiting" {
		t.Errorf("status of the resync = %+v, want loading a alone, waiting", l)
	}
	wantAnswer(t, loadRequest(h, "POST", "/loads/src", nil, resyncBody(t, "r6", "a")), 200, `"resumed":true`)
	wantAnswer(t, loadRequest(h, "PUT", "/loads/src/copy", copyParams("r6", "a", "20:22:"), "7\tagain\n"), 200, `"rows":1`)
	wantAnswer(t, loadRequest(h, "POST", "/loads/src/finish", url.Values{"run": {"r6"}}, ""), 200)
	var snaps string
	if err := db.QueryRow(`SELECT string_agg(table_name || ' ' || snapshot::text || ' ' || in_run, ', ' ORDER BY table_name)
		FROM teleport.load_table WHERE source = 'src'`).Scan(&snaps); err != nil || snaps != "a 20:22: true, b 10:12: false" {
		t.Errorf("load tables after the resync of a = %q (%v), want a with the resync's snapshot, b with the load's", snaps, err)
	}
	if err := db.QueryRow(`SELECT string_agg(id || '=' || v, ' ') FROM public.a`).Scan(&got); err != nil || got != "7=again" {
		t.Errorf("rows of a after its resync = %q (%v)", got, err)
	}
	if err := db.QueryRow(`SELECT count(*) FROM pg_constraint WHERE contype = 'f' AND conrelid = 'public.c'::regclass`).Scan(&fks); err != nil || fks != 1 {
		t.Errorf("foreign keys on c after the resync = %d (%v), want 1", fks, err)
	}
}

// chunkParams are the parameters of chunk no of of a copy of table big,
// in ranges of id; lo and hi are "" when open.
func chunkParams(run, snapshot string, no, of int, lo, hi string) url.Values {
	q := copyParams(run, "big", snapshot)
	q.Set("chunk", strconv.Itoa(no))
	q.Set("chunks", strconv.Itoa(of))
	q.Set("key", "id")
	if lo != "" {
		q.Set("lo", lo)
	}
	if hi != "" {
		q.Set("hi", hi)
	}
	return q
}

// TestLoadRoutes_Chunks: a table copied in chunks empties and fills one
// range of its key per chunk, is done only once every chunk of the run is,
// answers a chunk sent again without copying it twice, and is not done
// while a later run copies it again.
func TestLoadRoutes_Chunks(t *testing.T) {
	srv, db := newTarget(t, "")
	h := srv.Handler()
	if _, err := db.Exec(`CREATE TABLE public.big (id bigint PRIMARY KEY, v text);
		INSERT INTO public.big VALUES (5, 'old'), (15, 'old'), (25, 'old')`); err != nil {
		t.Fatal(err)
	}
	rows := func() string {
		t.Helper()
		var got string
		if err := db.QueryRow(`SELECT coalesce(string_agg(id || '=' || v, ' ' ORDER BY id), '') FROM public.big`).Scan(&got); err != nil {
			t.Fatal(err)
		}
		return got
	}
	tableState := func() string {
		t.Helper()
		var got string
		if err := db.QueryRow(`SELECT coalesce(snapshot::text, 'none') || ' ' || coalesce(nrows, -1) || ' ' || (done_at IS NOT NULL)
			FROM teleport.load_table WHERE source = 'src' AND table_name = 'big'`).Scan(&got); err != nil {
			t.Fatal(err)
		}
		return got
	}
	wantAnswer(t, loadRequest(h, "POST", "/loads/src", nil, planBody(t, "r1", true, "big")), 200, `"chunks":true`)

	for _, bad := range []struct {
		q    url.Values
		word string
	}{
		{chunkParams("r1", "10:12:", 3, 3, "", ""), `chunk \"3\" of chunks \"3\"`},
		{chunkParams("r1", "10:12:", -1, 3, "", ""), `chunk \"-1\" of chunks \"3\"`},
		{chunkParams("r1", "10:12:", 1, 3, "20", "10"), "lo 20 is not below hi 10"},
		{chunkParams("r1", "10:12:", 1, 3, "x", ""), `lo \"x\"`},
		{func() url.Values { q := chunkParams("r1", "10:12:", 1, 3, "", ""); q.Del("key"); return q }(), "no key column"},
	} {
		wantAnswer(t, loadRequest(h, "PUT", "/loads/src/copy", bad.q, "1\tx\n"), 400, bad.word)
	}
	if got := rows(); got != "5=old 15=old 25=old" {
		t.Fatalf("rows after refused chunks = %q", got)
	}

	// Chunks 1 and 3 of 3: their ranges are emptied and filled, the
	// table is not done.
	wantAnswer(t, loadRequest(h, "PUT", "/loads/src/copy", chunkParams("r1", "10:12:", 0, 3, "", "10"), "1\tnew\n9\tnew\n"), 200, `"rows":2`)
	wantAnswer(t, loadRequest(h, "PUT", "/loads/src/copy", chunkParams("r1", "10:12:", 2, 3, "20", ""), "20\tnew\n"), 200, `"rows":1`)
	if got, want := rows(), "1=new 9=new 15=old 20=new"; got != want {
		t.Errorf("rows after chunks 1 and 3 = %q, want %q", got, want)
	}
	if got := tableState(); got != "none -1 false" {
		t.Errorf("table after 2 of 3 chunks = %q, want not done", got)
	}
	wantAnswer(t, loadRequest(h, "POST", "/loads/src/finish", url.Values{"run": {"r1"}}, ""), 409, "not copied yet")
	var st wire.Status
	rec := loadRequest(h, "GET", "/status", nil, "")
	if err := json.Unmarshal(rec.Body.Bytes(), &st); err != nil || len(st.Loads) != 1 || len(st.Loads[0].Tables) != 1 {
		t.Fatalf("status loads: %s (%v)", rec.Body, err)
	}
	if ts := st.Loads[0].Tables[0]; ts.State != "waiting" || ts.Chunks != 3 || ts.ChunksDone != 2 || ts.Rows != 3 {
		t.Errorf("status of big = %+v, want waiting, 2 of 3 chunks done, 3 rows", ts)
	}

	// A run that resumes the load learns which chunks are done, in which
	// snapshot; chunk 1 sent again (its answer lost, say) in the same
	// snapshot is answered, not copied.
	wantAnswer(t, loadRequest(h, "POST", "/loads/src", nil, planBody(t, "r1b", false, "big")), 200, `"resumed":true`,
		`"done_chunks":[{"schema":"public","table":"big","chunk":0,"chunks":3,"lo":null,"hi":10,"snapshot":"10:12:"},`+
			`{"schema":"public","table":"big","chunk":2,"chunks":3,"lo":20,"hi":null,"snapshot":"10:12:"}]`)
	wantAnswer(t, loadRequest(h, "PUT", "/loads/src/copy", chunkParams("r1b", "10:12:", 0, 3, "", "10"), "2\tagain\n"), 200, `"rows":2`)
	if got, want := rows(), "1=new 9=new 15=old 20=new"; got != want {
		t.Errorf("rows after chunk 1 sent again = %q, want %q", got, want)
	}
	// A chunk read in another snapshot than the others does not make the
	// table done: the same chunk in their snapshot does.
	wantAnswer(t, loadRequest(h, "PUT", "/loads/src/copy", chunkParams("r1b", "10:13:", 1, 3, "10", "20"), "12\tother\n"), 200, `"rows":1`)
	if got := tableState(); got != "none -1 false" {
		t.Errorf("table after its last chunk in another snapshot = %q, want not done", got)
	}
	wantAnswer(t, loadRequest(h, "PUT", "/loads/src/copy", chunkParams("r1b", "10:12:", 1, 3, "10", "20"), "12\tnew\n"), 200, `"rows":1`)
	if got, want := rows(), "1=new 9=new 12=new 20=new"; got != want {
		t.Errorf("rows after every chunk = %q, want %q", got, want)
	}
	if got := tableState(); got != "10:12: 4 true" {
		t.Errorf("table after every chunk = %q, want done in 10:12: with 4 rows", got)
	}
	wantAnswer(t, loadRequest(h, "POST", "/loads/src/finish", url.Values{"run": {"r1b"}}, ""), 200)

	// A resync copies it again in 2 chunks: not done after the first, even
	// though the load's run had it done; the earlier run's chunks are
	// forgotten once it is done again.
	wantAnswer(t, loadRequest(h, "POST", "/loads/src", nil, resyncBody(t, "r2", "big")), 200)
	wantAnswer(t, loadRequest(h, "PUT", "/loads/src/copy", chunkParams("r2", "20:22:", 0, 2, "", "15"), "3\tre\n"), 200, `"rows":1`)
	if got := tableState(); got != "none -1 false" {
		t.Errorf("table after 1 of 2 chunks of the resync = %q, want not done", got)
	}
	wantAnswer(t, loadRequest(h, "PUT", "/loads/src/copy", chunkParams("r2", "20:22:", 1, 2, "15", ""), "30\tre\n"), 200, `"rows":1`)
	if got, want := rows(), "3=re 30=re"; got != want {
		t.Errorf("rows after the resync = %q, want %q", got, want)
	}
	var chunks string
	if err := db.QueryRow(`SELECT string_agg(chunk || '/' || chunks || ' ' || run, ', ' ORDER BY chunk) FROM teleport.load_chunk`).Scan(&chunks); err != nil || chunks != "0/2 r2, 1/2 r2" {
		t.Errorf("chunks recorded after the resync = %q (%v), want the resync's two", chunks, err)
	}
	wantAnswer(t, loadRequest(h, "POST", "/loads/src/finish", url.Values{"run": {"r2"}}, ""), 200)
}

// TestLoadJustFinished: a verify waits for a batch held by an initial load
// only once that load has finished; any other hold, or a load under way,
// is refused at once.
func TestLoadJustFinished(t *testing.T) {
	srv, db := newTarget(t, "")
	ctx := context.Background()
	waiting := "apply batch 98: " + load.ErrLoadUnderway.Error() + ` of "public"."a" to finish`
	if _, err := db.Exec(`INSERT INTO teleport.load (source, run) VALUES ('src', 'r1')`); err != nil {
		t.Fatal(err)
	}
	if server.LoadJustFinished(srv, ctx, "src", waiting) {
		t.Error("a batch held by a load under way counts as released")
	}
	if _, err := db.Exec(`UPDATE teleport.load SET finished_at = now() WHERE source = 'src'`); err != nil {
		t.Fatal(err)
	}
	if !server.LoadJustFinished(srv, ctx, "src", waiting) {
		t.Error("a batch held by a load finished since is refused")
	}
	if server.LoadJustFinished(srv, ctx, "src", `apply batch 98: update "public"."a": 1 of 1 rows not found`) {
		t.Error("a batch held by a conflict counts as released")
	}
}
