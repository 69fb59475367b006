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

// errStop ends a walk early, without error.
var errStop = errors.New("stop")

// ArrayElems calls fn with the text of each element of the array b, in
// order, until fn returns false.
func ArrayElems(b []byte, fn func(elem []byte) bool) error {
	_, err := arrayAt(b, 0, func(i int) (int, error) {
		j, err := skipValue(b, i)
		if err != nil {
			return 0, err
		}
		if !fn(b[i:j]) {
			return 0, errStop
		}
		return j, nil
	})
	if err == errStop {
		return nil
	}
	return err
}

// arrayAt reads the array starting at b[i] (after any space): elem is
// called with the start of each element, reads it and returns its end.
// arrayAt returns the end of the array. Reading a value where it starts,
// rather than skipping it first and reading it after, walks nested values
// once: a chunk's events, and their rows, were walked once per level.
func arrayAt(b []byte, i int, elem func(i int) (int, error)) (int, error) {
	i = skipSpace(b, i)
	if i >= len(b) || b[i] != '[' {
		return 0, errors.New("JSON: not an array")
	}
	i = skipSpace(b, i+1)
	if i < len(b) && b[i] == ']' {
		return i + 1, nil
	}
	for {
		j, err := elem(i)
		if err != nil {
			return 0, err
		}
		var done bool
		if i, done, err = afterItem(b, j, ']', "an array element"); err != nil {
			return 0, err
		} else if done {
			return i + 1, nil
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
	_, err := objectAt(b, 0, func(name []byte, i int) (int, error) {
		j, err := skipValue(b, i)
		if err == nil {
			fn(name, b[i:j])
		}
		return j, err
	})
	return err
}

// objectAt reads the object starting at b[i] (after any space), as arrayAt
// reads an array: member is called with each member's name, unescaped,
// and the start of its value, reads the value and returns its end.
func objectAt(b []byte, i int, member func(name []byte, i int) (int, error)) (int, error) {
	i = skipSpace(b, i)
	if i >= len(b) || b[i] != '{' {
		return 0, errors.New("JSON: not an object")
	}
	i = skipSpace(b, i+1)
	if i < len(b) && b[i] == '}' {
		return i + 1, nil
	}
	for {
		if i >= len(b) || b[i] != '"' {
			return 0, errors.New("JSON: expected a member name")
		}
		j, err := skipString(b, i)
		if err != nil {
			return 0, err
		}
		name := b[i+1 : j-1]
		if bytes.IndexByte(name, '\\') >= 0 {
			var s string
			if err := json.Unmarshal(b[i:j], &s); err != nil {
				return 0, fmt.Errorf("JSON: member name: %w", err)
			}
			name = []byte(s)
		}
		i = skipSpace(b, j)
		if i >= len(b) || b[i] != ':' {
			return 0, errors.New("JSON: expected ':' after a member name")
		}
		if j, err = member(name, skipSpace(b, i+1)); err != nil {
			return 0, err
		}
		var done bool
		if i, done, err = afterItem(b, j, '}', "an object member"); err != nil {
			return 0, err
		} else if done {
			return i + 1, nil
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

// UpdatePairs calls fn with the old and the new row of each [old, new]
// pair of an update's data, in order, until fn returns false. The data is
// walked once.
func UpdatePairs(data []byte, fn func(old, new []byte) bool) error {
	_, err := arrayAt(data, 0, func(i int) (int, error) {
		var rows [2][]byte
		n := 0
		end, err := arrayAt(data, i, func(i int) (int, error) {
			j, err := skipValue(data, i)
			if err == nil && n < 2 {
				rows[n] = data[i:j]
			}
			n++
			return j, err
		})
		if err != nil {
			return 0, err
		}
		if n != 2 {
			return 0, errors.New("JSON: an update's row is not an [old, new] pair")
		}
		if !fn(rows[0], rows[1]) {
			return 0, errStop
		}
		return end, nil
	})
	if err == errStop {
		return nil
	}
	return err
}

// ChunkEvents reads the events of a chunk's JSON, which must be valid
// (Valid; a stored chunk was checked by DecodeChunk when it arrived).
func ChunkEvents(js []byte) ([]Event, error) {
	return decodeEvents(js, func(string, []byte) error { return nil })
}

// decodeEvents reads a batch chunk's JSON, which must be valid (Valid):
// the events of its "events" member, with the fields encoding/json would
// fill in Event (names matched exactly), and every other top-level member
// passed to head. A chunk holds thousands of events, and reading them this
// way costs a fraction of encoding/json's reflection. Reading stops at the
// first event whose fields are wrong.
func decodeEvents(js []byte, head func(name string, value []byte) error) ([]Event, error) {
	var events []Event
	var errs []error
	_, err := objectAt(js, 0, func(name []byte, i int) (int, error) {
		if string(name) != "events" {
			j, err := skipValue(js, i)
			if err == nil {
				if err := head(string(name), js[i:j]); err != nil {
					errs = append(errs, err)
				}
			}
			return j, err
		}
		events = []Event{}
		bad := false
		j, err := arrayAt(js, i, func(i int) (int, error) {
			if bad {
				return skipValue(js, i)
			}
			e, j, err := decodeEvent(js, i)
			switch {
			case err != nil && j == 0:
				return 0, fmt.Errorf("events[%d]: %w", len(events), err)
			case err != nil:
				errs = append(errs, fmt.Errorf("events[%d]: %w", len(events), err))
				bad = true
			default:
				events = append(events, e)
			}
			return j, nil
		})
		if err != nil {
			return 0, fmt.Errorf("events: %w", err)
		}
		return j, nil
	})
	if err = errors.Join(append(errs, err)...); err != nil {
		return nil, err
	}
	return events, nil
}

// decodeEvent reads the event starting at b[i] and returns its end. An
// error with an end is a field's wrong value in an event well formed
// otherwise; one without, malformed JSON.
func decodeEvent(b []byte, i int) (Event, int, error) {
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
	end, err := objectAt(b, i, func(name []byte, i int) (int, error) {
		j, err := skipValue(b, i)
		if err != nil {
			return 0, err
		}
		v := b[i:j]
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
		return j, nil
	})
	if err != nil {
		return Event{}, 0, fmt.Errorf("event: %w", err)
	}
	if err := errors.Join(errs...); err != nil {
		return Event{}, end, fmt.Errorf("event: %w", err)
	}
	return e, end, nil
}
