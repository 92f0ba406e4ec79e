package replica

import (
	"encoding/binary"
	"math/bits"
)

// ScanJSON checks the JSON value that starts at b[i] (no white space
// before it) and returns the index just past it. It accepts exactly the
// grammar encoding/json accepts (RFC 8259: escapes as JSON defines them, no
// control characters in strings, numbers without leading zeros), and like
// encoding/json's scanner it does not check that the bytes of strings are
// UTF-8. ok is false for anything malformed, and for a value whose arrays
// and objects nest deeper than maxDepth.
//
// It reads each byte once, where encoding/json's scanner calls a function
// per byte: documents are checked on every write.
func ScanJSON(b []byte, i, maxDepth int) (end int, ok bool) {
	s := jsonScanner{b: b, i: i}
	if !s.value(0, maxDepth) {
		return s.i, false
	}
	return s.i, true
}

// jsonMaxNesting is encoding/json's nesting limit, for a scan that should
// refuse only what encoding/json refuses.
const jsonMaxNesting = 10000

type jsonScanner struct {
	b []byte
	i int
}

func (s *jsonScanner) space() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// byte consumes c, after white space.
func (s *jsonScanner) byte(c byte) bool {
	s.space()
	if s.i < len(s.b) && s.b[s.i] == c {
		s.i++
		return true
	}
	return false
}

// value checks a value at s.i inside depth open arrays and objects.
func (s *jsonScanner) value(depth, maxDepth int) bool {
	if s.i >= len(s.b) {
		return false
	}
	switch c := s.b[s.i]; {
	case c == '{':
		if depth >= maxDepth {
			return false
		}
		s.i++
		if s.byte('}') {
			return true
		}
		for {
			s.space()
			if !s.str() || !s.byte(':') {
				return false
			}
			s.space()
			if !s.value(depth+1, maxDepth) {
				return false
			}
			if s.byte('}') {
				return true
			}
			if !s.byte(',') {
				return false
			}
		}
	case c == '[':
		if depth >= maxDepth {
			return false
		}
		s.i++
		if s.byte(']') {
			return true
		}
		for {
			s.space()
			if !s.value(depth+1, maxDepth) {
				return false
			}
			if s.byte(']') {
				return true
			}
			if !s.byte(',') {
				return false
			}
		}
	case c == '"':
		return s.str()
	case c == '-' || c >= '0' && c <= '9':
		return s.number()
	case c == 't':
		return s.literal("true")
	case c == 'f':
		return s.literal("false")
	case c == 'n':
		return s.literal("null")
	}
	return false
}

func (s *jsonScanner) literal(lit string) bool {
	if len(s.b)-s.i < len(lit) || string(s.b[s.i:s.i+len(lit)]) != lit {
		return false
	}
	s.i += len(lit)
	return true
}

// str passes a string.
func (s *jsonScanner) str() bool {
	if s.i >= len(s.b) || s.b[s.i] != '"' {
		return false
	}
	for j := s.i + 1; j < len(s.b); j++ {
		j = plainRun(s.b, j)
		if j >= len(s.b) {
			return false
		}
		switch c := s.b[j]; {
		case c == '"':
			s.i = j + 1
			return true
		case c < 0x20:
			return false
		case c == '\\':
			j++
			if j >= len(s.b) {
				return false
			}
			switch s.b[j] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			case 'u':
				if j+4 >= len(s.b) {
					return false
				}
				for _, h := range s.b[j+1 : j+5] {
					if !(h >= '0' && h <= '9' || h >= 'a' && h <= 'f' || h >= 'A' && h <= 'F') {
						return false
					}
				}
				j += 4
			default:
				return false
			}
		}
	}
	return false
}

// number passes -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func (s *jsonScanner) number() bool {
	b, j := s.b, s.i
	if j < len(b) && b[j] == '-' {
		j++
	}
	switch {
	case j < len(b) && b[j] == '0':
		j++
	case j < len(b) && b[j] >= '1' && b[j] <= '9':
		for j < len(b) && b[j] >= '0' && b[j] <= '9' {
			j++
		}
	default:
		return false
	}
	digits := func() bool {
		k := j
		for j < len(b) && b[j] >= '0' && b[j] <= '9' {
			j++
		}
		return j > k
	}
	if j < len(b) && b[j] == '.' {
		j++
		if !digits() {
			return false
		}
	}
	if j < len(b) && (b[j] == 'e' || b[j] == 'E') {
		j++
		if j < len(b) && (b[j] == '+' || b[j] == '-') {
			j++
		}
		if !digits() {
			return false
		}
	}
	s.i = j
	return true
}

// plainRun returns the index of the first byte at or after j that ends a
// run of plain string content: '"', '\\' or a control character (len(b) if
// none). It tests eight bytes at a time: long strings (descriptions, notes,
// encoded blobs) are most of what a document's scans read.
func plainRun(b []byte, j int) int {
	const (
		ones  = 0x0101010101010101
		highs = 0x8080808080808080
	)
	for ; j+8 <= len(b); j += 8 {
		x := binary.LittleEndian.Uint64(b[j:])
		q := x ^ ('"' * ones)
		e := x ^ ('\\' * ones)
		// A byte below 0x20, or equal to '"' or '\\' (zero after the xor),
		// sets its high bit in m (bytes of 0x80 and above never do: x, q
		// and e share their high bits). A subtraction borrows into the next
		// byte only from a byte that is itself a hit, so the lowest bit set
		// is the first such byte.
		m := ((x - 0x20*ones) | (q - ones) | (e - ones)) &^ x & highs
		if m != 0 {
			return j + bits.TrailingZeros64(m)/8
		}
	}
	for ; j < len(b); j++ {
		if c := b[j]; c == '"' || c == '\\' || c < 0x20 {
			return j
		}
	}
	return j
}
