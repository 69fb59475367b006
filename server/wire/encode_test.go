package wire

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"testing"
	"time"
)

// TestAppendString_AgreesWithMarshal: names copied between quotes and
// names that need escapes read back as json.Marshal writes them.
func TestAppendString_AgreesWithMarshal(t *testing.T) {
	for _, s := range []string{"", "public", "pgbench_accounts", "Mixed Case 9", `quo"te`, `back\slash`, "tab\there",
		"new\nline", "<html>&", "é accent", "\u2028", "\xff bad utf-8", "~!@#$%^*()_+-={}[]|:;',.?/"} {
		want, _ := json.Marshal(s)
		if got := appendString([]byte("x"), s); string(got) != "x"+string(want) {
			t.Errorf("appendString(%q) = %s, want x%s", s, got, want)
		}
	}
}

func FuzzAppendString(f *testing.F) {
	f.Add("public")
	f.Add("a\"b<c")
	f.Fuzz(func(t *testing.T, s string) {
		want, _ := json.Marshal(s)
		if got := appendString(nil, s); string(got) != string(want) {
			t.Errorf("appendString(%q) = %s, want %s", s, got, want)
		}
	})
}

// TestAppendEvent_Decodes: an encoded event reads back equal, its data
// verbatim.
func TestAppendEvent_Decodes(t *testing.T) {
	e := Event{ID: 7, XID: 1 << 40, Schema: `we"ird`, Table: "t", Op: OpUpdate, Rows: 2, Data: json.RawMessage(`[[{"id":1},{"id":2}], [{"id":3},{"id":4}]]`)}
	var got Event
	b := AppendEvent(nil, e)
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatalf("%s: %v", b, err)
	}
	if got.ID != e.ID || got.XID != e.XID || got.Schema != e.Schema || got.Table != e.Table || got.Op != e.Op || got.Rows != e.Rows || string(got.Data) != string(e.Data) {
		t.Errorf("AppendEvent then Unmarshal = %+v, want %+v", got, e)
	}
}

// TestChunk_RoundTrip: chunks built one after the other (their gzip writers
// reused) each read back whole, and their checksum is their JSON's.
func TestChunk_RoundTrip(t *testing.T) {
	head, err := ChunkHead("src", "", "dst", 3, time.Date(2026, 12, 6, 0, 0, 0, 0, time.UTC), BatchID{FromTick: 1, ToTick: 2, Events: 5})
	if err != nil {
		t.Fatal(err)
	}
	for n := range 3 {
		c := NewChunk(head, n)
		for i := range n + 1 {
			e := Event{ID: int64(10*n + i), Schema: "public", Table: "t", Op: OpInsert, Rows: 1, Data: json.RawMessage(fmt.Sprintf(`[{"id":%d}]`, i))}
			if err := c.Add(AppendEvent(nil, e), e.Rows); err != nil {
				t.Fatal(err)
			}
		}
		body, sum, err := c.Finish(n == 2)
		if err != nil {
			t.Fatal(err)
		}
		zr, err := gzip.NewReader(bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		js, err := io.ReadAll(zr)
		if err != nil {
			t.Fatalf("chunk %d: %v", n, err)
		}
		if got := sha256.Sum256(js); !bytes.Equal(got[:], sum) {
			t.Errorf("chunk %d: checksum %x, its JSON's %x", n, sum, got)
		}
		got, err := DecodeChunk(js)
		if err != nil {
			t.Fatalf("chunk %d: %s: %v", n, js, err)
		}
		if got.Chunk != n || len(got.Events) != n+1 || got.Last != (n == 2) || got.Events[n].ID != int64(10*n+n) || string(got.Events[n].Data) != fmt.Sprintf(`[{"id":%d}]`, n) {
			t.Errorf("chunk %d read back as %+v", n, got)
		}
	}
}
