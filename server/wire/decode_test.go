package wire

import (
	"encoding/json"
	"reflect"
	"regexp"
	"testing"
)

// DecodeChunk reads chunks with a scanner; it must read what json.Unmarshal
// reads, and refuse what it refuses.
func TestDecodeChunk_AgreesWithUnmarshal(t *testing.T) {
	t.Parallel()
	for _, body := range []string{
		`{"source":"src","target":"dst","seq":7,"chunk":2,"last":true,"tick_time":"2026-11-24T01:02:03.456789Z","unknown":{"x":[1]},
		  "events":[{"id":1,"xid":9,"schema":"p\"q","table":"t\\u","op":"I","rows":1,"data":[{"a":"\u00e9\n"}]},
		            {"id":2,"schema":"s","table":"t","op":"T","rows":0}]}`,
		`{"source":"a","source":"b","events":[]}`,
	} {
		var want BatchChunk
		if err := json.Unmarshal([]byte(body), &want); err != nil {
			t.Fatal(err)
		}
		got, err := DecodeChunk([]byte(body))
		if err != nil {
			t.Fatalf("%s: %v", body, err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s:\n got %+v\nwant %+v", body, got, want)
		}
	}
	for _, body := range []string{`{"source":`, `{"seq":"x","events":[]}`, `{"events":[{"rows":"1"}]}`, `[]`, `{"a":1} x`} {
		if _, err := DecodeChunk([]byte(body)); err == nil {
			t.Errorf("%s: no error", body)
		}
	}
}

// upperKey finds a member name json.Unmarshal might match to a field
// case-insensitively, where DecodeChunk matches names exactly.
var upperKey = regexp.MustCompile(`"[^"]*[A-Z][^"]*"\s*:|\\u`)

// FuzzDecodeChunk: no input makes DecodeChunk panic, and what it reads
// json.Unmarshal reads the same (names differing only by case aside).
func FuzzDecodeChunk(f *testing.F) {
	f.Add([]byte(`{"source":"src","target":"dst","seq":7,"chunk":2,"last":true,"tick_time":"2026-11-24T01:02:03.456789Z",
		"events":[{"id":1,"xid":9,"schema":"p\"q","table":"t","op":"I","rows":1,"data":[{"a":"x"}]},{"id":2,"op":"U","data":[[{"a":1},{"a":2}]],"rows":1}]}`))
	f.Add([]byte(`{"events":[{"id":1,"rows":2,"data":[1,[2,{"]":"["}]]},{"xid":null}],"seq":1}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := DecodeChunk(b)
		if err != nil || upperKey.Match(b) {
			return
		}
		var want BatchChunk
		if err := json.Unmarshal(b, &want); err != nil {
			t.Fatalf("%q: DecodeChunk read it, json.Unmarshal: %v", b, err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("%q:\n got %+v\nwant %+v", b, got, want)
		}
	})
}
