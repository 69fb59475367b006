package wire

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
)

// The apply path reads only the outline of an event's rows: the elements of
// its arrays, the names of a row's columns and the text of its key values.
// encoding/json validates and copies every value to get there, and on an
// OLTP backlog that cost as much CPU as applying the rows. These functions
// walk the text without decoding it. The values themselves are parsed by
// PostgreSQL when the rows are applied, which rejects malformed JSON; here
// malformed input gives an error, never a panic.

var errJSONEnd = errors.New("unexpected end of JSON")

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// skipString returns the end of the string starting at b[i], a quote: the
// first quote after it not escaped by an odd run of backslashes. Quotes are
// found with bytes.IndexByte, which on long text values (a char(n) column's
// padding, say) is several times faster than a loop over every byte.
func skipString(b []byte, i int) (int, error) {
	for j := i + 1; ; {
		k := bytes.IndexByte(b[j:], '"')
		if k < 0 {
			return 0, errJSONEnd
		}
		q := j + k
		escapes := 0
		for p := q - 1; p > i && b[p] == '\\'; p-- {
			escapes++
		}
		if escapes%2 == 0 {
			return q + 1, nil
		}
		j = q + 1
	}
}

// skipValue returns the end of the value starting at b[i].
func skipValue(b []byte, i int) (int, error) {
	if i >= len(b) {
		return 0, errJSONEnd
	}
	switch b[i] {
	case '"':
		return skipString(b, i)
	case '{', '[':
		depth := 0
		for i < len(b) {
			switch b[i] {
			case '"':
				j, err := skipString(b, i)
				if err != nil {
					return 0, err
				}
				i = j
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1, nil
				}
			}
			i++
		}
		return 0, errJSONEnd
	case ',', ':', '}', ']':
		return 0, fmt.Errorf("JSON: found %q where a value was expected", b[i])
	default: // number, true, false, null
		j := i
	scan:
		for ; j < len(b); j++ {
			switch b[j] {
			case ',', '}', ']', ' ', '\t', '\n', '\r':
				break scan
			}
		}
		return j, nil
	}
}

// ArrayElems calls fn with the text of each element of the array b, in
// order, until fn returns false.
func ArrayElems(b []byte, fn func(elem []byte) bool) error {
	i := skipSpace(b, 0)
	if i >= len(b) || b[i] != '[' {
		return errors.New("JSON: not an array")
	}
	i = skipSpace(b, i+1)
	if i < len(b) && b[i] == ']' {
		return nil
	}
	for {
		j, err := skipValue(b, i)
		if err != nil {
			return err
		}
		if !fn(b[i:j]) {
			return nil
		}
		var done bool
		if i, done, err = afterItem(b, j, ']', "an array element"); done || err != nil {
			return err
		}
	}
}

// FirstElem returns the text of the first element of the array b.
func FirstElem(b []byte) ([]byte, error) {
	var first []byte
	if err := ArrayElems(b, func(e []byte) bool { first = e; return false }); err != nil {
		return nil, err
	}
	if first == nil {
		return nil, errors.New("JSON: empty array")
	}
	return first, nil
}

// ObjectMembers calls fn with the name, unescaped, and the value's text of
// each member of the object b, in order.
func ObjectMembers(b []byte, fn func(name, value []byte)) error {
	i := skipSpace(b, 0)
	if i >= len(b) || b[i] != '{' {
		return errors.New("JSON: not an object")
	}
	i = skipSpace(b, i+1)
	if i < len(b) && b[i] == '}' {
		return nil
	}
	for {
		if i >= len(b) || b[i] != '"' {
			return errors.New("JSON: expected a member name")
		}
		j, err := skipString(b, i)
		if err != nil {
			return err
		}
		name := b[i+1 : j-1]
		if bytes.IndexByte(name, '\\') >= 0 {
			var s string
			if err := json.Unmarshal(b[i:j], &s); err != nil {
				return fmt.Errorf("JSON: member name: %w", err)
			}
			name = []byte(s)
		}
		i = skipSpace(b, j)
		if i >= len(b) || b[i] != ':' {
			return errors.New("JSON: expected ':' after a member name")
		}
		i = skipSpace(b, i+1)
		j, err = skipValue(b, i)
		if err != nil {
			return err
		}
		fn(name, b[i:j])
		var done bool
		if i, done, err = afterItem(b, j, '}', "an object member"); done || err != nil {
			return err
		}
	}
}

// afterItem reads what follows an array element or object member ending at
// b[j]: a comma, after which it returns the start of the next item, or the
// container's closing byte, after which it reports done.
func afterItem(b []byte, j int, closing byte, item string) (next int, done bool, err error) {
	i := skipSpace(b, j)
	switch {
	case i >= len(b):
		return 0, false, errJSONEnd
	case b[i] == ',':
		return skipSpace(b, i+1), false, nil
	case b[i] == closing:
		return i, true, nil
	}
	return 0, false, fmt.Errorf("JSON: found %q after %s", b[i], item)
}

// UpdatePair splits an update's [old, new] pair.
func UpdatePair(b []byte) (old, new []byte, err error) {
	n := 0
	err = ArrayElems(b, func(e []byte) bool {
		switch n {
		case 0:
			old = e
		case 1:
			new = e
		}
		n++
		return n <= 2
	})
	if err == nil && n != 2 {
		err = errors.New("JSON: an update's row is not an [old, new] pair")
	}
	return old, new, err
}

// ChunkEvents reads the events of a chunk's JSON, which must be valid
// (json.Valid; a stored chunk was checked by DecodeChunk when it arrived).
func ChunkEvents(js []byte) ([]Event, error) {
	return decodeEvents(js, func(string, []byte) error { return nil })
}

// decodeEvents reads a batch chunk's JSON, which must be valid (json.Valid):
// the events of its "events" member, with the fields encoding/json would
// fill in Event (names matched exactly), and every other top-level member
// passed to head. A chunk holds thousands of events, and reading them this
// way costs a fraction of encoding/json's reflection.
func decodeEvents(js []byte, head func(name string, value []byte) error) ([]Event, error) {
	var events []Event
	var errs []error
	err := ObjectMembers(js, func(name, value []byte) {
		if string(name) != "events" {
			if err := head(string(name), value); err != nil {
				errs = append(errs, err)
			}
			return
		}
		events = []Event{}
		err := ArrayElems(value, func(ev []byte) bool {
			e, err := decodeEvent(ev)
			if err != nil {
				errs = append(errs, fmt.Errorf("events[%d]: %w", len(events), err))
				return false
			}
			events = append(events, e)
			return true
		})
		if err != nil {
			errs = append(errs, fmt.Errorf("events: %w", err))
		}
	})
	if err = errors.Join(append(errs, err)...); err != nil {
		return nil, err
	}
	return events, nil
}

func decodeEvent(b []byte) (Event, error) {
	var e Event
	var errs []error
	// Integers read as json.Unmarshal reads them into these fields: null
	// leaves the field as it is, anything but a whole number in range fails.
	num := func(name string, v []byte, parse func(string) error) {
		if string(v) == "null" {
			return
		}
		if err := parse(string(v)); err != nil {
			errs = append(errs, fmt.Errorf("%s: %s is not a whole number in range", name, v))
		}
	}
	str := func(v []byte) string {
		if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' && bytes.IndexByte(v, '\\') < 0 {
			return string(v[1 : len(v)-1])
		}
		var s string
		if err := json.Unmarshal(v, &s); err != nil {
			errs = append(errs, err)
		}
		return s
	}
	err := ObjectMembers(b, func(name, v []byte) {
		switch string(name) {
		case "id":
			num("id", v, func(s string) (err error) { e.ID, err = strconv.ParseInt(s, 10, 64); return err })
		case "xid":
			num("xid", v, func(s string) (err error) { e.XID, err = strconv.ParseUint(s, 10, 64); return err })
		case "schema":
			e.Schema = str(v)
		case "table":
			e.Table = str(v)
		case "op":
			e.Op = Op(str(v))
		case "rows":
			num("rows", v, func(s string) (err error) { e.Rows, err = strconv.Atoi(s); return err })
		case "data":
			e.Data = v
		}
	})
	if err = errors.Join(append(errs, err)...); err != nil {
		return Event{}, fmt.Errorf("event: %w", err)
	}
	return e, nil
}
