package wire

import (
	"encoding/json"
	"strconv"
	"unicode/utf8"

	"github.com/edgesync/edgesync/replica/internal/jsonscan"
)

// decodeFast decodes, in one pass, frames in the plain form every peer of
// this package writes: members named exactly as Frame, Version, Outcome and
// Change name them (only those that push, outcomes, changes and ack frames
// carry), each once, strings without escapes, integers without fraction or
// exponent, no nulls outside documents. It reports ok=false for anything
// else, and Decode then takes encoding/json's path, which decodes the rest
// of the language and words the errors. What decodeFast accepts it decodes
// exactly as that path would (FuzzDecodeFast holds it to that), except that
// documents share b's memory instead of being copied.
//
// encoding/json reads a frame of changes twice, byte by byte through its
// scanner, and copies every document; this reads it once. Documents are
// still checked to be well-formed JSON: the hub parses pushed ones again, an
// edge stores the hub's as they are.
//
// An array of more than MaxFrameArray elements is an error (err), as on
// encoding/json's path.
func decodeFast(b []byte) (f *Frame, ok bool, err error) {
	d := fastDecoder{b: b}
	f = new(Frame)
	if !d.frame(f) {
		return nil, false, d.err
	}
	d.space()
	return f, d.i == len(d.b), nil
}

type fastDecoder struct {
	b   []byte
	i   int
	err error // why decoding stopped, when the frame is refused outright
}

// maxFastDepth bounds the nesting of a document decodeFast takes (far above
// the limit of documents, replica.MaxDepth, and far below encoding/json's):
// deeper ones are left to encoding/json, which refuses them or not.
const maxFastDepth = 512

func (d *fastDecoder) space() {
	for d.i < len(d.b) {
		switch d.b[d.i] {
		case ' ', '\t', '\n', '\r':
			d.i++
		default:
			return
		}
	}
}

// byte consumes c, after white space.
func (d *fastDecoder) byte(c byte) bool {
	d.space()
	if d.i < len(d.b) && d.b[d.i] == c {
		d.i++
		return true
	}
	return false
}

// object calls member for each member name of an object, positioned at its
// value, and fails on a name seen twice (member numbers them, at most 64).
func (d *fastDecoder) object(member func(name []byte) (bit uint64, ok bool)) bool {
	if !d.byte('{') {
		return false
	}
	if d.byte('}') {
		return true
	}
	var seen uint64
	for {
		d.space()
		name, ok := d.plainString()
		if !ok || !d.byte(':') {
			return false
		}
		d.space()
		bit, ok := member(name)
		if !ok || seen&bit != 0 {
			return false
		}
		seen |= bit
		if d.byte('}') {
			return true
		}
		if !d.byte(',') {
			return false
		}
	}
}

// array calls elem for each element of an array and reports whether it
// was empty.
func (d *fastDecoder) array(elem func() bool) (empty, ok bool) {
	if !d.byte('[') {
		return false, false
	}
	if d.byte(']') {
		return true, true
	}
	for n := 1; ; n++ {
		if n > MaxFrameArray {
			d.err = errArrayTooLong
			return false, false
		}
		d.space()
		if !elem() {
			return false, false
		}
		if d.byte(']') {
			return false, true
		}
		if !d.byte(',') {
			return false, false
		}
	}
}

// plainString returns the contents of a string without escapes or control
// characters whose bytes are valid UTF-8 (what encoding/json would decode
// to the same bytes).
func (d *fastDecoder) plainString() ([]byte, bool) {
	if d.i >= len(d.b) || d.b[d.i] != '"' {
		return nil, false
	}
	start := d.i + 1
	ascii := true
	for j := start; j < len(d.b); j++ {
		c := d.b[j]
		switch {
		case c == '"':
			s := d.b[start:j]
			if !ascii && !utf8.Valid(s) {
				return nil, false
			}
			d.i = j + 1
			return s, true
		case c == '\\' || c < 0x20:
			return nil, false
		case c >= 0x80:
			ascii = false
		}
	}
	return nil, false
}

func (d *fastDecoder) str(dst *string) bool {
	s, ok := d.plainString()
	*dst = string(s)
	return ok
}

// int decodes an integer as encoding/json decodes one into an int64: no
// fraction, no exponent, within range.
func (d *fastDecoder) int(dst *int64) bool {
	start := d.i
	j := start
	if j < len(d.b) && d.b[j] == '-' {
		j++
	}
	digits := j
	for j < len(d.b) && d.b[j] >= '0' && d.b[j] <= '9' {
		j++
	}
	if j == digits || j-digits > 1 && d.b[digits] == '0' {
		return false
	}
	if j < len(d.b) {
		switch d.b[j] {
		case '.', 'e', 'E':
			return false
		}
	}
	n, err := strconv.ParseInt(string(d.b[start:j]), 10, 64)
	if err != nil {
		return false
	}
	*dst, d.i = n, j
	return true
}

// raw checks that a well-formed JSON value starts here and returns its
// bytes (a document: anything encoding/json's scanner accepts, invalid
// UTF-8 in strings included, as it does).
func (d *fastDecoder) raw(dst *json.RawMessage) bool {
	end, ok := jsonscan.Value(d.b, d.i, maxFastDepth)
	if !ok {
		return false
	}
	*dst, d.i = d.b[d.i:end:end], end
	return true
}

func (d *fastDecoder) frame(f *Frame) bool {
	return d.object(func(name []byte) (uint64, bool) {
		switch string(name) {
		case "type":
			return 1 << 0, d.str(&f.Type)
		case "batch":
			return 1 << 1, d.int(&f.Batch)
		case "lsn":
			return 1 << 2, d.int(&f.LSN)
		case "headLsn":
			return 1 << 3, d.int(&f.HeadLSN)
		case "pending":
			return 1 << 7, d.int(&f.Pending)
		case "versions":
			empty, ok := d.array(func() bool {
				f.Versions = append(f.Versions, Version{})
				return d.version(&f.Versions[len(f.Versions)-1])
			})
			if empty {
				f.Versions = []Version{}
			}
			return 1 << 4, ok
		case "outcomes":
			empty, ok := d.array(func() bool {
				f.Outcomes = append(f.Outcomes, Outcome{})
				return d.outcome(&f.Outcomes[len(f.Outcomes)-1])
			})
			if empty {
				f.Outcomes = []Outcome{}
			}
			return 1 << 5, ok
		case "changes":
			empty, ok := d.array(func() bool {
				f.Changes = append(f.Changes, Change{})
				return d.change(&f.Changes[len(f.Changes)-1])
			})
			if empty {
				f.Changes = []Change{}
			}
			return 1 << 6, ok
		}
		return 0, false
	})
}

func (d *fastDecoder) version(v *Version) bool {
	return d.object(func(name []byte) (uint64, bool) {
		switch string(name) {
		case "container":
			return 1 << 0, d.str(&v.Container)
		case "id":
			return 1 << 1, d.str(&v.ID)
		case "op":
			return 1 << 2, d.str(&v.Op)
		case "version":
			return 1 << 3, d.str(&v.Version)
		case "base":
			return 1 << 4, d.str(&v.Base)
		case "ts":
			return 1 << 5, d.int(&v.TS)
		case "body":
			return 1 << 6, d.raw(&v.Body)
		}
		return 0, false
	})
}

func (d *fastDecoder) outcome(o *Outcome) bool {
	return d.object(func(name []byte) (uint64, bool) {
		switch string(name) {
		case "version":
			return 1 << 0, d.str(&o.Version)
		case "container":
			return 1 << 1, d.str(&o.Container)
		case "id":
			return 1 << 2, d.str(&o.ID)
		case "outcome":
			return 1 << 3, d.str(&o.Outcome)
		case "lsn":
			return 1 << 4, d.int(&o.LSN)
		case "crts":
			return 1 << 5, d.int(&o.CRTS)
		case "reason":
			return 1 << 6, d.str(&o.Reason)
		case "conflictId":
			return 1 << 7, d.int(&o.ConflictID)
		}
		return 0, false
	})
}

func (d *fastDecoder) change(c *Change) bool {
	return d.object(func(name []byte) (uint64, bool) {
		switch string(name) {
		case "lsn":
			return 1 << 0, d.int(&c.LSN)
		case "crts":
			return 1 << 1, d.int(&c.CRTS)
		case "container":
			return 1 << 2, d.str(&c.Container)
		case "op":
			return 1 << 3, d.str(&c.Op)
		case "id":
			return 1 << 4, d.str(&c.ID)
		case "pk":
			return 1 << 5, d.str(&c.PK)
		case "version":
			return 1 << 6, d.str(&c.Version)
		case "base":
			return 1 << 7, d.str(&c.Base)
		case "origin":
			return 1 << 8, d.str(&c.Origin)
		case "ts":
			return 1 << 9, d.int(&c.TS)
		case "policy":
			return 1 << 10, d.str(&c.Policy)
		case "resolver":
			return 1 << 11, d.str(&c.Resolver)
		case "resolves":
			return 1 << 12, d.str(&c.Resolves)
		case "body":
			return 1 << 13, d.raw(&c.Body)
		}
		return 0, false
	})
}
