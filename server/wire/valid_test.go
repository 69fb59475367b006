package wire

import (
	"encoding/json"
	"strings"
	"testing"
)

var validSeeds = []string{
	`{}`, `[]`, `""`, `0`, `-0`, `1.5e+10`, `-12.25E-3`, `true`, `false`, `null`, ` [ 1 , "a" , { "b" : [ ] } ] `,
	`{"a":{"b":{"c":[1,[2,[3,{}]]]}},"d":"\"\\\/\b\f\n\r\t\u00e9\uD83D\uDE00"}`,
	"\"\xff\xfe invalid UTF-8 is accepted as json.Valid accepts it\"",
	// and invalid ones
	``, ` `, `{`, `}`, `[1,]`, `[,1]`, `{"a"}`, `{"a":}`, `{"a":1,}`, `{a:1}`, `{"a" 1}`, `[1 2]`, `01`, `1.`, `.5`, `1e`, `1e+`, `-`, `+1`,
	`tru`, `nul`, `truex`, `"a`, `"\x"`, `"\u12"`, `"\u12g4"`, "\"tab\there\"", `[1]]`, `{"a":1}}`, `1 2`, `"a" "b"`, `[`, `["a",`, `{"a":1,"b"`,
	`NaN`, `Infinity`, `[-]`, `{"":0}`, `[[[]]]`,
}

func TestValid_AgreesWithEncodingJSON(t *testing.T) {
	t.Parallel()
	for _, s := range validSeeds {
		if got, want := Valid([]byte(s)), json.Valid([]byte(s)); got != want {
			t.Errorf("Valid(%q) = %v, json.Valid %v", s, got, want)
		}
	}
	// encoding/json's depth limit.
	for _, depth := range []int{maxDepth, maxDepth + 1} {
		s := strings.Repeat("[", depth) + strings.Repeat("]", depth)
		if got, want := Valid([]byte(s)), json.Valid([]byte(s)); got != want || got != (depth <= maxDepth) {
			t.Errorf("Valid of %d nested arrays = %v, json.Valid %v", depth, got, want)
		}
	}
}

func FuzzValid(f *testing.F) {
	for _, s := range validSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if got, want := Valid(b), json.Valid(b); got != want {
			t.Fatalf("Valid(%q) = %v, json.Valid %v", b, got, want)
		}
	})
}
