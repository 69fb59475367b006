package wire

// Valid reports whether b is one valid JSON value, as json.Valid does, in
// a fraction of its time: every chunk a target receives is checked whole
// before it is stored, and json.Valid's byte-by-byte state machine was an
// eighth of a target instance's CPU on a backlog of small transactions.
// FuzzValid checks that both agree.
func Valid(b []byte) bool {
	i, ok := validValue(b, skipSpace(b, 0))
	return ok && skipSpace(b, i) == len(b)
}

// maxDepth is encoding/json's limit on nested arrays and objects.
const maxDepth = 10000

// validValue checks the value starting at b[i] and returns its end.
// Containers are kept on a stack of their closing bytes, so depth costs no
// recursion.
func validValue(b []byte, i int) (int, bool) {
	var stack []byte
	for {
		// A value starts at b[i].
		if i >= len(b) {
			return 0, false
		}
		var ok bool
		switch c := b[i]; c {
		case '{', '[':
			if len(stack) >= maxDepth {
				return 0, false
			}
			close := byte('}')
			if c == '[' {
				close = ']'
			}
			i = skipSpace(b, i+1)
			if i < len(b) && b[i] == close {
				i, ok = i+1, true
				break // an empty container is a value: go on after it
			}
			stack = append(stack, close)
			if close == '}' {
				if i, ok = validMemberName(b, i); !ok {
					return 0, false
				}
			}
			continue // its first value
		case '"':
			i, ok = validString(b, i)
		case 't':
			i, ok = literal(b, i, "true")
		case 'f':
			i, ok = literal(b, i, "false")
		case 'n':
			i, ok = literal(b, i, "null")
		default:
			i, ok = validNumber(b, i)
		}
		if !ok {
			return 0, false
		}
		// After a value: the end of containers, or the next value in one.
		for {
			if len(stack) == 0 {
				return i, true
			}
			i = skipSpace(b, i)
			if i >= len(b) {
				return 0, false
			}
			top := stack[len(stack)-1]
			if b[i] == top {
				stack = stack[:len(stack)-1]
				i++
				continue
			}
			if b[i] != ',' {
				return 0, false
			}
			i = skipSpace(b, i+1)
			if top == '}' {
				if i, ok = validMemberName(b, i); !ok {
					return 0, false
				}
			}
			break
		}
	}
}

// validMemberName checks a member's name and its colon at b[i] and returns
// where its value starts.
func validMemberName(b []byte, i int) (int, bool) {
	if i >= len(b) || b[i] != '"' {
		return 0, false
	}
	i, ok := validString(b, i)
	if !ok {
		return 0, false
	}
	i = skipSpace(b, i)
	if i >= len(b) || b[i] != ':' {
		return 0, false
	}
	return skipSpace(b, i+1), true
}

// plain marks the bytes a string holds as they are: not a quote, a
// backslash or a control character.
var plain = func() (t [256]bool) {
	for c := 0x20; c < 256; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// validString checks the string starting at b[i], a quote, and returns its
// end. As encoding/json, it accepts any bytes but control characters; escapes
// must be JSON's.
func validString(b []byte, i int) (int, bool) {
	i++
	for {
		for i < len(b) && plain[b[i]] {
			i++
		}
		if i >= len(b) {
			return 0, false
		}
		switch b[i] {
		case '"':
			return i + 1, true
		case '\\':
			if i+1 >= len(b) {
				return 0, false
			}
			switch b[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				if i+6 > len(b) {
					return 0, false
				}
				for _, h := range b[i+2 : i+6] {
					if !isHex(h) {
						return 0, false
					}
				}
				i += 6
			default:
				return 0, false
			}
		default: // a control character
			return 0, false
		}
	}
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func literal(b []byte, i int, lit string) (int, bool) {
	if len(b)-i < len(lit) || string(b[i:i+len(lit)]) != lit {
		return 0, false
	}
	return i + len(lit), true
}

// validNumber checks the number starting at b[i]:
// -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func validNumber(b []byte, i int) (int, bool) {
	digits := func(i int) int {
		for i < len(b) && '0' <= b[i] && b[i] <= '9' {
			i++
		}
		return i
	}
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i >= len(b):
		return 0, false
	case b[i] == '0':
		i++
	case '1' <= b[i] && b[i] <= '9':
		i = digits(i + 1)
	default:
		return 0, false
	}
	if i < len(b) && b[i] == '.' {
		j := digits(i + 1)
		if j == i+1 {
			return 0, false
		}
		i = j
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		j := digits(i)
		if j == i {
			return 0, false
		}
		i = j
	}
	return i, true
}
