// Package jsonscan checks and skips JSON text in one pass over its bytes,
// for the packages that take JSON from clients and peers: replica checks
// documents with it, wire checks the documents inside frames.
package jsonscan

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math/bits"
)

// Value checks the JSON value that starts at b[i] (no white space
// before it) and returns the index just past it. It accepts exactly the
// grammar encoding/json accepts (RFC 8259: escapes as JSON defines them, no
// control characters in strings, numbers without leading zeros), and like
// encoding/json's scanner it does not check that the bytes of strings are
// UTF-8. ok is false for anything malformed, and for a value whose arrays
// and objects nest deeper than maxDepth.
//
// It reads each byte once, where encoding/json's scanner calls a function
// per byte: documents are checked on every write.
func Value(b []byte, i, maxDepth int) (end int, ok bool) {
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
	// keys: refuse an object with two members of the same name, and a
	// member name with a lone UTF-16 surrogate escape; err says which.
	keys bool
	err  error
}

// Document is Value for a document: it also refuses duplicate
// member names at any depth, in objects and inside arrays, and member
// names with a lone surrogate escape (which decoders turn into U+FFFD, so
// that distinct names would collide). err is set when one of those, rather
// than the syntax or the depth, is why ok is false.
func Document(b []byte, maxDepth int) (end int, ok bool, err error) {
	s := jsonScanner{b: b, keys: true}
	if !s.value(0, maxDepth) {
		return s.i, false, s.err
	}
	return s.i, true, nil
}

// keySet holds the member names of one object as a scan meets them: the
// first few in place (most objects are small), all of them in a map past
// that.
type keySet struct {
	small [8][]byte
	n     int
	m     map[string]struct{}
}

// addKey adds the member name raw (a JSON string, quotes included) to ks,
// and refuses a name seen before or one with a lone surrogate escape.
func (s *jsonScanner) addKey(ks *keySet, raw []byte) bool {
	k := raw[1 : len(raw)-1]
	if bytes.IndexByte(k, '\\') >= 0 {
		if LoneSurrogate(k) {
			s.err = fmt.Errorf("property name %s has a lone UTF-16 surrogate escape", raw)
			return false
		}
		var str string
		if err := json.Unmarshal(raw, &str); err != nil {
			s.err = fmt.Errorf("property name %s: %v", raw, err)
			return false
		}
		k = []byte(str)
	}
	if ks.m != nil {
		if _, dup := ks.m[string(k)]; dup {
			s.err = fmt.Errorf("duplicate property %q", k)
			return false
		}
		ks.m[string(k)] = struct{}{}
		return true
	}
	for _, o := range ks.small[:ks.n] {
		if bytes.Equal(o, k) {
			s.err = fmt.Errorf("duplicate property %q", k)
			return false
		}
	}
	if ks.n < len(ks.small) {
		ks.small[ks.n] = k
		ks.n++
		return true
	}
	ks.m = make(map[string]struct{}, 2*len(ks.small))
	for _, o := range ks.small {
		ks.m[string(o)] = struct{}{}
	}
	ks.m[string(k)] = struct{}{}
	return true
}

// LoneSurrogate reports whether JSON text b holds a \u escape of a UTF-16
// surrogate that is not half of a pair (a high one followed at once by a low
// one). encoding/json decodes such an escape as U+FFFD.
func LoneSurrogate(b []byte) bool {
	for i := 0; i < len(b); {
		j := bytes.IndexByte(b[i:], '\\')
		if j < 0 {
			return false
		}
		i += j
		if i+1 >= len(b) {
			return false
		}
		if b[i+1] != 'u' {
			i += 2 // also passes an escaped backslash
			continue
		}
		r, ok := hex4(b, i+2)
		switch {
		case !ok:
			i += 2
		case r >= 0xdc00 && r <= 0xdfff:
			return true
		case r >= 0xd800 && r <= 0xdbff:
			if i+12 > len(b) || b[i+6] != '\\' || b[i+7] != 'u' {
				return true
			}
			if r2, ok := hex4(b, i+8); !ok || r2 < 0xdc00 || r2 > 0xdfff {
				return true
			}
			i += 12
		default:
			i += 6
		}
	}
	return false
}

// hex4 decodes the four hex digits at b[i:].
func hex4(b []byte, i int) (rune, bool) {
	if i+4 > len(b) {
		return 0, false
	}
	var r rune
	for _, c := range b[i : i+4] {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c -= 'a' - 10
		case c >= 'A' && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
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
		var ks keySet
		for {
			s.space()
			start := s.i
			if !s.str() {
				return false
			}
			if s.keys && !s.addKey(&ks, s.b[start:s.i]) {
				return false
			}
			if !s.byte(':') {
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
	end, _, bad := String(s.b, s.i)
	if bad != "" {
		return false
	}
	s.i = end
	return true
}

// number passes -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func (s *jsonScanner) number() bool {
	end, bad := Number(s.b, s.i)
	if bad != "" {
		return false
	}
	s.i = end
	return true
}

// String passes the JSON string that starts at b[i]: end is the index just
// past it, escaped whether it holds an escape. For a malformed string bad
// says what is wrong and end is the index of the byte at fault (len(b) when
// the text ends first).
func String(b []byte, i int) (end int, escaped bool, bad string) {
	if i >= len(b) || b[i] != '"' {
		return i, false, "want a string"
	}
	for j := i + 1; j < len(b); j++ {
		j = plainRun(b, j)
		if j >= len(b) {
			break
		}
		switch c := b[j]; {
		case c == '"':
			return j + 1, escaped, ""
		case c < 0x20:
			return j, false, "control character in a string"
		case c == '\\':
			escaped = true
			if j++; j >= len(b) {
				return j, false, "unterminated string"
			}
			switch b[j] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			case 'u':
				for range 4 {
					if j++; j >= len(b) || !isHex(b[j]) {
						return j, false, "bad \\u escape"
					}
				}
			default:
				return j, false, "bad escape"
			}
		}
	}
	return len(b), false, "unterminated string"
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// Number passes the JSON number that starts at b[i],
// -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?: end is the index just past
// it. For a malformed number bad says what is wrong and end is the index of
// the byte at fault.
func Number(b []byte, i int) (end int, bad string) {
	j := i
	digits := func() bool {
		k := j
		for j < len(b) && b[j] >= '0' && b[j] <= '9' {
			j++
		}
		return j > k
	}
	if j < len(b) && b[j] == '-' {
		j++
	}
	switch {
	case j < len(b) && b[j] == '0':
		j++
	case !digits():
		return j, "want a digit"
	}
	if j < len(b) && b[j] == '.' {
		j++
		if !digits() {
			return j, "want a digit after '.'"
		}
	}
	if j < len(b) && (b[j] == 'e' || b[j] == 'E') {
		j++
		if j < len(b) && (b[j] == '+' || b[j] == '-') {
			j++
		}
		if !digits() {
			return j, "want a digit in the exponent"
		}
	}
	return j, ""
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

// SkipString returns the index just past the JSON string starting at b[i]
// (len(b) if it is not closed).
func SkipString(b []byte, i int) int {
	for i++; i < len(b); i++ {
		if i = plainRun(b, i); i >= len(b) {
			break
		}
		switch b[i] {
		case '\\':
			i++
		case '"':
			return i + 1
		}
	}
	return len(b)
}

// Skip returns the index just past the JSON value starting at b[i], in
// text that Value accepted.
func Skip(b []byte, i int) int {
	if i >= len(b) {
		return i
	}
	switch b[i] {
	case '"':
		return SkipString(b, i)
	case '{', '[':
		depth := 0
		for ; i < len(b); i++ {
			switch b[i] {
			case '"':
				i = SkipString(b, i) - 1
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1
				}
			}
		}
		return len(b)
	default:
		for ; i < len(b); i++ {
			switch b[i] {
			case ',', '}', ']', ' ', '\t', '\n', '\r':
				return i
			}
		}
		return i
	}
}

// MaxDepth returns the deepest nesting of objects and arrays in text that
// Value accepted.
func MaxDepth(b []byte) int {
	depth, max := 0, 0
	for i := 0; i < len(b); i++ {
		switch b[i] {
		case '"':
			i = SkipString(b, i) - 1
		case '{', '[':
			depth++
			if depth > max {
				max = depth
			}
		case '}', ']':
			depth--
		}
	}
	return max
}

// SkipSpace returns the index of the first byte at or after i that is not
// JSON white space.
func SkipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}
