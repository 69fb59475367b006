package main

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/pagarme/teleport/database/dbtest"
)

// TestE2E_ForgedNextBatchRefused: chunks posted for the source's next batch
// by someone else than the source's instance (a forged request, with or
// without last, or naming another instance) are refused with 409 before
// anything is stored, and the real batch then arrives intact. Before, such
// a chunk was stored, the real one acknowledged without being stored, and
// the source deleted its events.
func TestE2E_ForgedNextBatchRefused(t *testing.T) {
	t.Parallel()
	p := newPair(t, "", `CREATE TABLE kv (k int PRIMARY KEY, v text)`)
	execSQL(t, p.srcDB, `INSERT INTO public.kv VALUES (1, 'first')`)
	p.waitSame(t, 30*time.Second, "kv")
	if err := p.stopSrc(); err != nil {
		t.Fatal(err)
	}
	var next int64
	execSQLScan(t, p.dstDB, `SELECT applied_seq + 1 FROM teleport.source WHERE name = 'src'`, &next)

	header := http.Header{"Content-Type": {"application/json"}, "Content-Encoding": {"gzip"}}
	for _, forged := range []struct{ instance, last string }{{"", "false"}, {"", "true"}, {`,"instance":"00000000-0000-4000-8000-000000000009"`, "true"}} {
		body := fmt.Sprintf(`{"source":"src"%s,"target":"dst","seq":%d,"chunk":0,"last":%s,"tick_time":%q,
			"events":[{"id":1,"schema":"public","table":"kv","op":"I","rows":1,"data":[{"k":999,"v":"forged"}]}]}`,
			forged.instance, next, forged.last, time.Now().UTC().Format(time.RFC3339Nano))
		code, answer := crashPost(t, p.dstPort, header, crashGzip(t, []byte(body)))
		if code != http.StatusConflict || !strings.Contains(string(answer), "the source's batches come from instance") {
			t.Errorf("POST of a forged chunk 0 of batch %d (last %s, instance %q) = %d %s, want 409 naming the source's instance",
				next, forged.last, forged.instance, code, answer)
		}
	}
	var stored int
	execSQLScan(t, p.dstDB, fmt.Sprintf(`SELECT count(*) FROM teleport.received_chunk WHERE seq >= %d`, next), &stored)
	if stored != 0 {
		t.Errorf("the target stored %d forged chunks", stored)
	}

	execSQL(t, p.srcDB, `INSERT INTO public.kv SELECT i, 'real' FROM generate_series(2, 6) i`)
	p.startSrc(t)
	p.waitSame(t, 30*time.Second, "kv")
	var rows string
	execSQLScan(t, p.dstDB, `SELECT string_agg(k || ':' || v, ',' ORDER BY k) FROM public.kv`, &rows)
	if want := "1:first,2:real,3:real,4:real,5:real,6:real"; rows != want {
		t.Errorf("target kv = %s, want %s", rows, want)
	}
}

// TestE2E_SecondSourceSameNameRefused: a second source instance started
// with the database.name another source already sends under (a copied
// config) is refused by the target, which says so, and the source it would
// have overwritten goes on replicating as before.
func TestE2E_SecondSourceSameNameRefused(t *testing.T) {
	t.Parallel()
	p := newPair(t, "", `CREATE TABLE kv (k int PRIMARY KEY, v text)`)
	execSQL(t, p.srcDB, `INSERT INTO public.kv VALUES (1, 'first source')`)
	p.waitSame(t, 30*time.Second, "kv")

	// Another database, same schema, same database.name "src", same target.
	twinDB, twinName := p.src.NewDB(t)
	execSQL(t, twinDB, `CREATE TABLE public.kv (k int PRIMARY KEY, v text); INSERT INTO public.kv VALUES (100, 'twin')`)
	twinPort := freePort(t)
	target := fmt.Sprintf("  dst:\n    target_expression: \"public.*\"\n    endpoint:\n      hostname: \"127.0.0.1\"\n      port: %d\n", p.dstPort)
	log := &syncWriter{w: &bytes.Buffer{}}
	twin := spawnInstanceLog(t, writeConfig(t, instance{name: "src", c: p.src, dbname: twinName, port: twinPort, targets: target}),
		io.MultiWriter(testWriter{t}, log))
	twin.waitUp(t, twinPort, "")
	execSQL(t, twinDB, `INSERT INTO public.kv VALUES (101, 'twin')`)
	dbtest.WaitFor(t, 30*time.Second, "the twin to log the target's refusal", func() bool {
		return strings.Contains(log.String(), "409 Conflict") && strings.Contains(log.String(), "two instances use database.name src")
	})

	execSQL(t, p.srcDB, `INSERT INTO public.kv VALUES (2, 'first source')`)
	p.waitSame(t, 30*time.Second, "kv")
	var twins int
	execSQLScan(t, p.dstDB, `SELECT count(*) FROM public.kv WHERE v = 'twin'`, &twins)
	if twins != 0 {
		t.Errorf("the target holds %d rows of the second instance", twins)
	}
}
