package wire

import (
	"encoding/json"
	"testing"
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
