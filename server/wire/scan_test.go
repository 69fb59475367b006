package wire

import (
	"bytes"
	"encoding/json"
	"maps"
	"slices"
	"testing"
)

// decodeMembers reads an object's members in order with encoding/json, the
// reference the scanner must agree with.
func decodeMembers(t *testing.T, b []byte) (names []string, values []string) {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(b))
	if _, err := dec.Token(); err != nil {
		t.Fatal(err)
	}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			t.Fatal(err)
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			t.Fatal(err)
		}
		names = append(names, tok.(string))
		values = append(values, string(v))
	}
	return names, values
}

var scanSeeds = []string{
	`[[{"a":1},{"a":2}],[ "x" , [1,{"b":"]"}] ]]`,
	`{}`,
	`[]`,
	`[1, 2.5e-3, -0, true, false, null]`,
	`{"a":1,"b":"x"}`,
	` { "a" : [1, {"b": [2, "]"]}] , "c\"d" : "}\\" , "e\u00e9": {"": null} } `,
	`[{"id":1,"t":"tab\tnew\nline \\N \"q\""},{"id":2,"t":null}]`,
	`[[{"id":1,"v":"a"},{"id":1,"v":"b"}],[{"id":2,"v":[1,[2]]},{"id":3,"v":{}}]]`,
	`{"ünï":"çødé 😀","n":12345678901234567890123}`,
	`["\\", "\\\"", "a\\\"b\\\\", "\"\"", {"\\":"\\\\\""}]`, // runs of backslashes before quotes
}

func TestScan_AgreesWithEncodingJSON(t *testing.T) {
	for _, in := range scanSeeds {
		b := []byte(in)
		switch bytes.TrimSpace(b)[0] {
		case '[':
			var want []json.RawMessage
			if err := json.Unmarshal(b, &want); err != nil {
				t.Fatal(err)
			}
			var got []json.RawMessage
			if err := ArrayElems(b, func(e []byte) bool { got = append(got, e); return true }); err != nil {
				t.Fatalf("%s: %v", in, err)
			}
			if len(got) != len(want) {
				t.Fatalf("%s: %d elements, want %d", in, len(got), len(want))
			}
			for i := range got {
				if !bytes.Equal(got[i], bytes.TrimSpace(want[i])) {
					t.Errorf("%s: element %d = %s, want %s", in, i, got[i], want[i])
				}
			}
		case '{':
			wantNames, wantValues := decodeMembers(t, b)
			var names, values []string
			if err := ObjectMembers(b, func(n, v []byte) { names = append(names, string(n)); values = append(values, string(v)) }); err != nil {
				t.Fatalf("%s: %v", in, err)
			}
			if !slices.Equal(names, wantNames) || !slices.Equal(values, wantValues) {
				t.Errorf("%s: members %q = %q, want %q = %q", in, names, values, wantNames, wantValues)
			}
		}
	}
}

func TestScan_MalformedIsAnError(t *testing.T) {
	for _, in := range []string{``, `[`, `[1,`, `[1 2]`, `["a]`, `{`, `{"a"}`, `{"a":}`, `{"a":1,}`, `{"a":1 "b":2}`, `{1:2}`, `[{"a":[1,2}]`, `"x"`, `[,]`} {
		errA := ArrayElems([]byte(in), func([]byte) bool { return true })
		errO := ObjectMembers([]byte(in), func(_, _ []byte) {})
		if errA == nil && errO == nil {
			t.Errorf("%q: no error from either scan", in)
		}
	}
	for _, in := range []string{`[[{"a":1}]]`, `[[{"a":1},{"a":2},{"a":3}]]`, `[[{"a":1},{"a":2}],[]]`, `[{"a":1}]`, `[[{"a":1},{"a":2}]`} {
		if err := UpdatePairs([]byte(in), func(_, _ []byte) bool { return true }); err == nil {
			t.Errorf("%s: no error, want one (not [old, new] pairs)", in)
		}
	}
}

func TestUpdatePairs(t *testing.T) {
	var got []string
	err := UpdatePairs([]byte(` [ [{"a":1},{"a":2}] , [ {"a":"]"} , {"a":[3]} ] ] `), func(old, new []byte) bool {
		got = append(got, string(old)+" -> "+string(new))
		return true
	})
	if want := []string{`{"a":1} -> {"a":2}`, `{"a":"]"} -> {"a":[3]}`}; err != nil || !slices.Equal(got, want) {
		t.Errorf("UpdatePairs = %q, %v; want %q", got, err, want)
	}
	got = nil
	err = UpdatePairs([]byte(`[[1,2],[3,4],[5,6]]`), func(old, new []byte) bool {
		got = append(got, string(old)+string(new))
		return len(got) < 2
	})
	if want := []string{"12", "34"}; err != nil || !slices.Equal(got, want) {
		t.Errorf("UpdatePairs stopped after the second pair = %q, %v; want %q", got, err, want)
	}
}

// FuzzScan checks that no input makes the scanner panic, and that on valid
// JSON it finds what encoding/json finds.
func FuzzScan(f *testing.F) {
	for _, s := range scanSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var got []json.RawMessage
		errA := ArrayElems(b, func(e []byte) bool { got = append(got, e); return true })
		var want []json.RawMessage
		if json.Unmarshal(b, &want) == nil && want != nil { // null decodes to a nil slice
			if errA != nil || len(got) != len(want) {
				t.Fatalf("%q: scanned %d elements (%v), encoding/json %d", b, len(got), errA, len(want))
			}
		}
		var pairs [][2][]byte
		errP := UpdatePairs(b, func(old, new []byte) bool { pairs = append(pairs, [2][]byte{old, new}); return true })
		var wantPairs [][]json.RawMessage
		if json.Unmarshal(b, &wantPairs) == nil && wantPairs != nil && !slices.ContainsFunc(wantPairs, func(p []json.RawMessage) bool { return len(p) != 2 }) {
			if errP != nil || len(pairs) != len(wantPairs) {
				t.Fatalf("%q: scanned %d pairs (%v), encoding/json %d", b, len(pairs), errP, len(wantPairs))
			}
			for i, p := range pairs {
				if !bytes.Equal(p[0], wantPairs[i][0]) || !bytes.Equal(p[1], wantPairs[i][1]) {
					t.Fatalf("%q: pair %d = %s, %s; encoding/json %s, %s", b, i, p[0], p[1], wantPairs[i][0], wantPairs[i][1])
				}
			}
		}
		n := 0
		errO := ObjectMembers(b, func(_, _ []byte) { n++ })
		var m map[string]json.RawMessage
		if json.Unmarshal(b, &m) == nil && m != nil && errO != nil {
			t.Fatalf("%q: valid object, scan error %v", b, errO)
		}
	})
}

func TestDecodeEvents_AgreesWithEncodingJSON(t *testing.T) {
	body := []byte(`{"source":"s","seq":3,"events":[
		{"id":1,"xid":77,"schema":"public","table":"t","op":"I","rows":2,"data":[{"a":1},{"a":"x\"y"}]},
		{"id":2,"schema":"we\"ird\\schema","table":"t\u00e9","op":"T","rows":0,"xid":null},
		{"id":3,"xid":18446744073709551615,"schema":"s","table":"u","op":"U","rows":1,"data":[[{"k":1},{"k":2}]],"extra":{"x":[1]}}
	],"tick_time":"2026-11-24T00:00:00Z"}`)
	var want struct {
		Events []Event `json:"events"`
	}
	if err := json.Unmarshal(body, &want); err != nil {
		t.Fatal(err)
	}
	head := map[string]string{}
	got, err := decodeEvents(body, func(name string, v []byte) error { head[name] = string(v); return nil })
	if err != nil {
		t.Fatal(err)
	}
	if want := map[string]string{"source": `"s"`, "seq": "3", "tick_time": `"2026-11-24T00:00:00Z"`}; !maps.Equal(head, want) {
		t.Errorf("head members = %v, want %v", head, want)
	}
	if len(got) != len(want.Events) {
		t.Fatalf("%d events, want %d", len(got), len(want.Events))
	}
	for i := range got {
		g, w := got[i], want.Events[i]
		if g.ID != w.ID || g.XID != w.XID || g.Schema != w.Schema || g.Table != w.Table || g.Op != w.Op || g.Rows != w.Rows || !bytes.Equal(g.Data, w.Data) {
			t.Errorf("event %d = %+v (data %s), want %+v (data %s)", i, g, g.Data, w, w.Data)
		}
	}
	for _, bad := range []string{`[]`, `{"events":[{"id":"x"}]}`, `{"events":[{"id":1,"schema":5}]}`, `{"events":[1]}`, `{"events":{}}`, `{"events":[{"rows":1.5}]}`, `{"events":[{"xid":-1}]}`, `{"events":[{"id":1e3}]}`, `{"events":[{"rows":99999999999999999999}]}`} {
		if _, err := decodeEvents([]byte(bad), func(string, []byte) error { return nil }); err == nil {
			t.Errorf("%s: no error", bad)
		}
	}
}
