package resolver

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"sync/atomic"
	"unsafe"
)

// A small JSON scanner: the SDK finds members and skips values without
// building values or going through reflection, which in a wasm guest is
// most of the cost of a call. Strings are unescaped only when they contain
// a backslash.

const maxDepth = 128

var errSyntax = errors.New("invalid JSON")

func syntaxErr(b []byte, i int, what string) error {
	return fmt.Errorf("%w: %s at offset %d", errSyntax, what, i)
}

func skipSpace(b []byte, i int) int {
	// The hub's input is compact: one comparison on the common path (every
	// branch is costly in Go's wasm code).
	if i >= len(b) || b[i] > ' ' {
		return i
	}
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// skipValue returns the offset just after the JSON value that starts at i
// (no leading space).
func skipValue(b []byte, i, depth int) (int, error) {
	if i >= len(b) {
		return i, syntaxErr(b, i, "unexpected end")
	}
	switch c := b[i]; {
	case c == '"':
		end, _, err := scanString(b, i)
		return end, err
	case c == '{' || c == '[':
		if depth >= maxDepth {
			return i, syntaxErr(b, i, "nesting too deep")
		}
		closer := byte('}')
		if c == '[' {
			closer = ']'
		}
		i = skipSpace(b, i+1)
		if i < len(b) && b[i] == closer {
			return i + 1, nil
		}
		for {
			var err error
			if c == '{' {
				if i >= len(b) || b[i] != '"' {
					return i, syntaxErr(b, i, "expected a key")
				}
				if i, _, err = scanString(b, i); err != nil {
					return i, err
				}
				i = skipSpace(b, i)
				if i >= len(b) || b[i] != ':' {
					return i, syntaxErr(b, i, "expected ':'")
				}
				i = skipSpace(b, i+1)
			}
			if i, err = skipValue(b, i, depth+1); err != nil {
				return i, err
			}
			i = skipSpace(b, i)
			if i >= len(b) {
				return i, syntaxErr(b, i, "unexpected end")
			}
			if b[i] == closer {
				return i + 1, nil
			}
			if b[i] != ',' {
				return i, syntaxErr(b, i, "expected ',' or a closing bracket")
			}
			i = skipSpace(b, i+1)
		}
	case c == '-' || c >= '0' && c <= '9':
		j := i + 1
		for j < len(b) && (b[j] >= '0' && b[j] <= '9' || b[j] == '.' || b[j] == 'e' || b[j] == 'E' || b[j] == '+' || b[j] == '-') {
			j++
		}
		return j, nil
	case c == 't':
		return literal(b, i, "true")
	case c == 'f':
		return literal(b, i, "false")
	case c == 'n':
		return literal(b, i, "null")
	}
	return i, syntaxErr(b, i, "unexpected character")
}

func literal(b []byte, i int, lit string) (int, error) {
	if len(b)-i >= len(lit) && string(b[i:i+len(lit)]) == lit {
		return i + len(lit), nil
	}
	return i, syntaxErr(b, i, "bad literal")
}

// shortString is how far scanString looks byte by byte before it jumps
// with IndexByte.
const shortString = 32

// scanString returns the end of the string starting at i and whether it
// has escapes. It jumps from quote to quote with bytes.IndexByte, which is
// hand-written wasm in the Go runtime and much faster than a loop here.
func scanString(b []byte, i int) (int, bool, error) {
	// Short strings (most keys and values) in one loop that stops at the
	// closing quote or a backslash: cheaper than two IndexByte calls.
	for j, n := i+1, min(len(b), i+1+shortString); j < n; j++ {
		if c := b[j]; c == '"' {
			return j + 1, false, nil
		} else if c == '\\' {
			break
		}
	}
	for j := i + 1; ; {
		k := bytes.IndexByte(b[j:], '"')
		if k < 0 {
			return len(b), false, syntaxErr(b, i, "unterminated string")
		}
		q := j + k
		n := 0 // backslashes right before the quote
		for p := q - 1; p > i && b[p] == '\\'; p-- {
			n++
		}
		if n%2 == 0 {
			return q + 1, bytes.IndexByte(b[i+1:q], '\\') >= 0, nil
		}
		j = q + 1
	}
}

// stringValue decodes the JSON string at b[i:end].
func stringValue(b []byte, i, end int, escaped bool) (string, error) {
	if !escaped {
		return string(b[i+1 : end-1]), nil
	}
	var s string
	err := json.Unmarshal(b[i:end], &s)
	return s, err
}

// EachMember calls fn for every member of the JSON object doc, in order,
// with the raw value (a subslice of doc); fn returns false to stop. It checks
// the structure (brackets, strings, nesting up to 128, nothing after the
// object), not numbers or UTF-8.
func EachMember(doc []byte, fn func(key string, value []byte) bool) error {
	return eachMember(doc, func(key, value []byte) bool { return fn(string(key), value) })
}

// DecodeString decodes a raw JSON string value.
func DecodeString(raw []byte) (string, error) {
	if len(raw) == 0 || raw[0] != '"' {
		return "", errors.New("not a JSON string")
	}
	end, esc, err := scanString(raw, 0)
	if err != nil {
		return "", err
	}
	if end != len(raw) {
		return "", syntaxErr(raw, end, "data after the string")
	}
	return stringValue(raw, 0, end, esc)
}

func eachMember(doc []byte, fn func(key, value []byte) bool) error {
	i := skipSpace(doc, 0)
	end, err := scanObject(doc, i, fn)
	if err != nil || end < 0 {
		return err
	}
	return trailing(doc, end)
}

// scanObject reads the object that starts at b[i], calling fn for each
// member with its raw value, and returns the offset after the object (-1 if
// fn stopped early).
func scanObject(b []byte, i int, fn func(key, value []byte) bool) (int, error) {
	return scanMembers(b, i, func(key []byte, at int) (int, bool, error) {
		end, err := skipValue(b, at, 1)
		if err != nil {
			return end, false, err
		}
		return end, fn(key, b[at:end]), nil
	})
}

// scanMembers reads the object that starts at b[i]; for each member, value
// reads the value that starts at b[at] and returns its end and whether to
// go on. It returns the offset after the object (-1 if stopped early).
func scanMembers(b []byte, i int, value func(key []byte, at int) (int, bool, error)) (int, error) {
	if i >= len(b) || b[i] != '{' {
		return i, errNotObject
	}
	i = skipSpace(b, i+1)
	if i < len(b) && b[i] == '}' {
		return i + 1, nil
	}
	for {
		if i >= len(b) || b[i] != '"' {
			return i, syntaxErr(b, i, "expected a key")
		}
		kend, esc, err := scanString(b, i)
		if err != nil {
			return i, err
		}
		key := b[i+1 : kend-1] // no allocation: keys are compared as bytes
		if esc {
			k, err := stringValue(b, i, kend, esc)
			if err != nil {
				return i, err
			}
			key = []byte(k)
		}
		i = skipSpace(b, kend)
		if i >= len(b) || b[i] != ':' {
			return i, syntaxErr(b, i, "expected ':'")
		}
		i = skipSpace(b, i+1)
		vend, goOn, err := value(key, i)
		if err != nil {
			return i, err
		}
		if !goOn {
			return -1, nil
		}
		i = skipSpace(b, vend)
		if i >= len(b) {
			return i, syntaxErr(b, i, "unexpected end")
		}
		if b[i] == '}' {
			return i + 1, nil
		}
		if b[i] != ',' {
			return i, syntaxErr(b, i, "expected ',' or '}'")
		}
		i = skipSpace(b, i+1)
	}
}

func trailing(doc []byte, i int) error {
	if skipSpace(doc, i) != len(doc) {
		return syntaxErr(doc, i, "data after the value")
	}
	return nil
}

// Elements returns the elements of the JSON array arr as raw subslices.
func Elements(arr json.RawMessage) ([]json.RawMessage, error) {
	i := skipSpace(arr, 0)
	if i >= len(arr) || arr[i] != '[' {
		return nil, errors.New("not a JSON array")
	}
	out := make([]json.RawMessage, 0, 8)
	i = skipSpace(arr, i+1)
	if i < len(arr) && arr[i] == ']' {
		return out, trailing(arr, i+1)
	}
	for {
		end, err := skipValue(arr, i, 1)
		if err != nil {
			return nil, err
		}
		out = append(out, arr[i:end])
		i = skipSpace(arr, end)
		if i >= len(arr) {
			return nil, syntaxErr(arr, i, "unexpected end")
		}
		if arr[i] == ']' {
			return out, trailing(arr, i+1)
		}
		if arr[i] != ',' {
			return nil, syntaxErr(arr, i, "expected ',' or ']'")
		}
		i = skipSpace(arr, i+1)
	}
}

// member is one member of an indexed document.
type member struct {
	key   []byte
	value []byte
}

// docIndex is the members of one document of the current input, found
// while the input was decoded, so that Member and With need not scan it
// again (scanning is most of a call's cost in a wasm guest).
type docIndex struct {
	ptr     *byte
	n       int
	members []member
}

// index reads the object that starts at b[i] into d and returns the offset
// after it: scanMembers without its closures, which cost an indirect call
// per member in a wasm guest.
func (d *docIndex) index(b []byte, i int) (int, error) {
	if d.members == nil {
		d.members = make([]member, 0, 8)
	}
	if i >= len(b) || b[i] != '{' {
		return i, errNotObject
	}
	i = skipSpace(b, i+1)
	if i < len(b) && b[i] == '}' {
		return i + 1, nil
	}
	for {
		if i >= len(b) || b[i] != '"' {
			return i, syntaxErr(b, i, "expected a key")
		}
		kend, esc, err := scanString(b, i)
		if err != nil {
			return i, err
		}
		key := b[i+1 : kend-1]
		if esc {
			k, err := stringValue(b, i, kend, esc)
			if err != nil {
				return i, err
			}
			key = []byte(k)
		}
		i = skipSpace(b, kend)
		if i >= len(b) || b[i] != ':' {
			return i, syntaxErr(b, i, "expected ':'")
		}
		i = skipSpace(b, i+1)
		vend, err := skipValue(b, i, 1)
		if err != nil {
			return vend, err
		}
		d.members = append(d.members, member{key, b[i:vend]})
		i = skipSpace(b, vend)
		if i >= len(b) {
			return i, syntaxErr(b, i, "unexpected end")
		}
		if b[i] == '}' {
			return i + 1, nil
		}
		if b[i] != ',' {
			return i, syntaxErr(b, i, "expected ',' or '}'")
		}
		i = skipSpace(b, i+1)
	}
}

// inputIndex indexes the documents of the input being resolved. The wasm
// build keeps one and reuses its memory on every call.
type inputIndex struct{ docs [3]docIndex }

// reset forgets the documents of the previous input, keeping the memory.
func (idx *inputIndex) reset() {
	for i := range idx.docs {
		d := &idx.docs[i]
		clear(d.members) // no stale pointers into the previous input
		*d = docIndex{members: d.members[:0]}
	}
}

var current atomic.Pointer[inputIndex]

// lookup returns the members of doc if it is one of the current input's
// documents (the same bytes, not just equal ones).
func lookup(doc []byte) ([]member, bool) {
	idx := current.Load()
	if idx == nil || len(doc) == 0 {
		return nil, false
	}
	for i := range idx.docs {
		if d := &idx.docs[i]; d.ptr == unsafe.SliceData(doc) && d.n == len(doc) {
			return d.members, true
		}
	}
	return nil, false
}

// decodeInput fills in from the input object without reflection, indexing
// the members of incoming, existing and base in idx on the way.
func decodeInput(b []byte, in *Input, idx *inputIndex) error {
	current.Store(nil)
	idx.reset()
	end, err := scanMembers(b, skipSpace(b, 0), func(key []byte, at int) (int, bool, error) {
		slot := 0
		switch string(key) { // no allocation: the compiler compares in place
		case "incoming":
		case "existing":
			slot = 1
		case "base":
			slot = 2
		default:
			end, err := skipValue(b, at, 1)
			if err != nil {
				return end, false, err
			}
			return end, true, in.set(key, b[at:end])
		}
		if at < len(b) && b[at] != '{' { // null (a delete or no base)
			end, err := skipValue(b, at, 1)
			if err != nil {
				return end, false, err
			}
			return end, true, in.set(key, b[at:end])
		}
		d := &idx.docs[slot]
		end, err := d.index(b, at)
		if err != nil {
			return end, false, err
		}
		d.ptr, d.n = &b[at], end-at
		return end, true, in.set(key, b[at:end])
	})
	if err == nil {
		err = trailing(b, end)
	}
	if err != nil {
		return err
	}
	current.Store(idx)
	return nil
}

// set stores one member of the input.
func (in *Input) set(key []byte, v []byte) error {
	switch string(key) {
	case "kind", "container", "id":
		s, err := DecodeString(v)
		if err != nil {
			return fmt.Errorf("input %s: %v", key, err)
		}
		switch string(key) {
		case "kind":
			in.Kind = s
		case "container":
			in.Container = s
		default:
			in.ID = s
		}
	case "incoming":
		in.Incoming = v
	case "existing":
		in.Existing = v
	case "base":
		in.Base = v
	case "isTombstone":
		in.IsTombstone = string(v) == "true"
	case "conflicting":
		if string(v) == "null" {
			return nil
		}
		var err error
		in.Conflicting, err = Elements(v)
		return err
	}
	return nil
}
