package main

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestE2E_ForgedNextBatchRefused: a client that posts a chunk for the
// source's next batch before the source does (a second instance with the
// same database.name, or anyone who may post) no longer makes the source
// take its real batch for acknowledged and delete its events. The real
// chunk is refused with 409 naming the difference, the source keeps the
// batch and says why, and once the stray chunk is deleted on the target,
// as the answer says, the real batch arrives intact.
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

	forged := fmt.Sprintf(`{"source":"src","target":"dst","seq":%d,"chunk":0,"last":false,"tick_time":%q,
		"events":[{"id":1,"schema":"public","table":"kv","op":"I","rows":1,"data":[{"k":999,"v":"forged"}]}]}`,
		next, time.Now().UTC().Format(time.RFC3339Nano))
	header := http.Header{"Content-Type": {"application/json"}, "Content-Encoding": {"gzip"}}
	if code, answer := crashPost(t, p.dstPort, header, crashGzip(t, []byte(forged))); code != http.StatusOK {
		t.Fatalf("POST of the first chunk of batch %d = %d %s, want 200: nothing tells it from a real one yet", next, code, answer)
	}

	execSQL(t, p.srcDB, `INSERT INTO public.kv SELECT i, 'real' FROM generate_series(2, 6) i`)
	p.startSrc(t)
	// The source keeps sending batch next and is refused each time.
	time.Sleep(2 * time.Second)
	st, _, err := getStatus(p.srcPort, "")
	if err != nil || len(st.Targets) != 1 {
		t.Fatalf("source /status: %+v, %v", st, err)
	}
	if st.Targets[0].AckedSeq >= next {
		t.Fatalf("source counts batch %d acknowledged (acked_seq %d) though the target holds another chunk 0 for it", next, st.Targets[0].AckedSeq)
	}
	var stray int
	execSQLScan(t, p.dstDB, `SELECT count(*) FROM public.kv WHERE k = 999`, &stray)
	if stray != 0 {
		t.Fatal("the stray chunk's row was applied")
	}

	// The operator removes the stray chunk, as the 409 says; the real batch follows.
	execSQL(t, p.dstDB, `DELETE FROM teleport.received_chunk WHERE source = 'src' AND seq = $1`, next)
	p.waitSame(t, 30*time.Second, "kv")
	var rows string
	execSQLScan(t, p.dstDB, `SELECT string_agg(k || ':' || v, ',' ORDER BY k) FROM public.kv`, &rows)
	if want := "1:first,2:real,3:real,4:real,5:real,6:real"; rows != want {
		t.Errorf("target kv = %s, want %s", rows, want)
	}
	if strings.Contains(rows, "forged") {
		t.Error("the stray chunk's row reached the target")
	}
}
