package contact

import "iter"

// maxNestingDepth is the deepest nesting of arrays and objects that
// encoding/json accepts (maxNestingDepth in its scanner.go, Go 1.26). The
// scanner has the same limit, so that it accepts exactly the texts that
// json.Valid accepts.
const maxNestingDepth = 10000

// scanner validates JSON text as encoding/json does, following RFC 8259,
// and splits objects and arrays into the spans of their members and
// elements. Like encoding/json it does not check UTF-8 inside strings.
type scanner struct {
	data []byte
	pos  int

	// invalid is set at the first syntax error, after which the scanner
	// stops.
	invalid bool
}

// member is one member of an object, as spans of the scanned text.
type member struct {
	quotedName []byte // the name with its quotes and escape sequences
	value      []byte // the value without surrounding spaces
}

// name returns the decoded member name. A name without escape sequences,
// the common case, is returned as a span of the scanned text, not a copy.
func (m member) name() []byte {
	if content, ok := plainContent(m.quotedName); ok {
		return content
	}
	return []byte(unquote(m.quotedName))
}

// members returns an iterator over the members of the object at the
// scanner's position. depth is the object's nesting depth, 1 at the top
// level. After a loop that was not ended by a break, the scanner is past
// the object or invalid is set.
func (s *scanner) members(depth int) iter.Seq[member] {
	return func(yield func(member) bool) {
		if !s.open('{', depth) || s.consume('}') {
			return
		}
		for {
			s.skipSpace()
			name, ok := s.stringLiteral()
			if !ok {
				return
			}
			s.skipSpace()
			if !s.consume(':') {
				s.invalid = true
				return
			}
			s.skipSpace()
			value, ok := s.value(depth + 1)
			if !ok || !yield(member{quotedName: name, value: value}) {
				return
			}
			if !s.more('}') {
				return
			}
		}
	}
}

// elements returns an iterator over the elements of the array at the
// scanner's position, as members does for an object.
func (s *scanner) elements(depth int) iter.Seq[[]byte] {
	return func(yield func([]byte) bool) {
		if !s.open('[', depth) || s.consume(']') {
			return
		}
		for {
			s.skipSpace()
			element, ok := s.value(depth + 1)
			if !ok || !yield(element) {
				return
			}
			if !s.more(']') {
				return
			}
		}
	}
}

// open skips the opening bracket of an array or object whose nesting depth
// is depth, and the spaces after it.
func (s *scanner) open(bracket byte, depth int) bool {
	if depth > maxNestingDepth || !s.consume(bracket) {
		s.invalid = true
		return false
	}
	s.skipSpace()
	return true
}

// more skips what follows an element or member: it returns true after a
// comma, and false after the closing bracket or at a syntax error.
func (s *scanner) more(closing byte) bool {
	s.skipSpace()
	if s.consume(',') {
		return true
	}
	if !s.consume(closing) {
		s.invalid = true
	}
	return false
}

// finish skips trailing spaces and reports whether the text was one valid
// value with nothing after it.
func (s *scanner) finish() bool {
	s.skipSpace()
	return !s.invalid && s.pos == len(s.data)
}

// value skips the value at the scanner's position and returns its span.
// depth is the nesting depth the value has if it is an array or object.
func (s *scanner) value(depth int) ([]byte, bool) {
	start := s.pos
	if start == len(s.data) {
		s.invalid = true
		return nil, false
	}

	switch c := s.data[start]; {
	case c == '{':
		for range s.members(depth) {
		}
	case c == '[':
		for range s.elements(depth) {
		}
	case c == '"':
		s.stringLiteral()
	case c == '-' || '0' <= c && c <= '9':
		s.number()
	default:
		s.literal()
	}

	if s.invalid {
		return nil, false
	}
	return s.data[start:s.pos], true
}

// stringLiteral skips a string literal and returns it, quotes included.
func (s *scanner) stringLiteral() ([]byte, bool) {
	start := s.pos
	if !s.consume('"') {
		s.invalid = true
		return nil, false
	}

	for s.pos < len(s.data) {
		switch c := s.data[s.pos]; {
		case c == '"':
			s.pos++
			return s.data[start:s.pos], true
		case c == '\\':
			if !s.escape() {
				s.invalid = true
				return nil, false
			}
		case c < 0x20:
			// RFC 8259 requires control characters to be escaped.
			s.invalid = true
			return nil, false
		default:
			s.pos++
		}
	}
	s.invalid = true
	return nil, false
}

// escape skips an escape sequence: a backslash and one of "\/bfnrt, or a
// backslash, u and four hexadecimal digits.
func (s *scanner) escape() bool {
	sequence := s.data[s.pos:]
	if len(sequence) < 2 {
		return false
	}

	switch sequence[1] {
	case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
		s.pos += 2
		return true
	case 'u':
		if len(sequence) < 6 {
			return false
		}
		for _, c := range sequence[2:6] {
			if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
				return false
			}
		}
		s.pos += 6
		return true
	}
	return false
}

// number skips a number: an optional minus sign, an integer part without
// leading zeros, an optional fraction and an optional exponent.
func (s *scanner) number() {
	s.consume('-')
	if !s.consume('0') && s.digits() == 0 {
		s.invalid = true
		return
	}

	if s.consume('.') && s.digits() == 0 {
		s.invalid = true
		return
	}

	if s.consume('e') || s.consume('E') {
		if !s.consume('+') {
			s.consume('-')
		}
		if s.digits() == 0 {
			s.invalid = true
		}
	}
}

// digits skips decimal digits and returns how many it skipped.
func (s *scanner) digits() int {
	start := s.pos
	for s.pos < len(s.data) && '0' <= s.data[s.pos] && s.data[s.pos] <= '9' {
		s.pos++
	}
	return s.pos - start
}

// literal skips true, false or null.
func (s *scanner) literal() {
	rest := s.data[s.pos:]
	for _, word := range [...]string{"true", "false", "null"} {
		if len(rest) >= len(word) && string(rest[:len(word)]) == word {
			s.pos += len(word)
			return
		}
	}
	s.invalid = true
}

// consume skips the next byte if it is c, and reports whether it did.
func (s *scanner) consume(c byte) bool {
	if s.pos < len(s.data) && s.data[s.pos] == c {
		s.pos++
		return true
	}
	return false
}

func (s *scanner) skipSpace() {
	for s.pos < len(s.data) {
		switch s.data[s.pos] {
		case ' ', '\t', '\n', '\r':
			s.pos++
		default:
			return
		}
	}
}
