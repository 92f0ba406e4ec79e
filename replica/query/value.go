package query

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"slices"
	"strconv"
	"unicode/utf8"
)

// Values are the JSON values a query works on:
//
//	undefinedT  undefined (a missing property; never written out)
//	nil         null
//	bool, float64, string
//	[]any       an array
//	*Object     an object, its keys in document order
//
// Numbers are IEEE 754 doubles, as in Cosmos DB.
type undefinedT struct{}

var undefined any = undefinedT{}

func isUndefined(v any) bool { _, ok := v.(undefinedT); return ok }

// Object is a JSON object that keeps its keys in document order.
type Object struct {
	Keys []string
	Vals []any
}

// Get returns the value of key, or undefined.
func (o *Object) Get(key string) any {
	for i, k := range o.Keys {
		if k == key {
			return o.Vals[i]
		}
	}
	return undefined
}

// errBadJSON marks a document or parameter value that is not JSON.
var errBadJSON = errors.New("not valid JSON")

// decodeJSON decodes one JSON value (documents are already validated when
// stored; parameters are validated here). Depth is bounded by maxDepth.
func decodeJSON(b []byte) (any, error) {
	d := decoder{b: b}
	v, err := d.value(0)
	if err != nil {
		return nil, err
	}
	d.space()
	if d.i != len(d.b) {
		return nil, errBadJSON
	}
	return v, nil
}

const maxJSONDepth = 256

type decoder struct {
	b []byte
	i int
}

func (d *decoder) space() {
	for d.i < len(d.b) {
		switch d.b[d.i] {
		case ' ', '\t', '\n', '\r':
			d.i++
		default:
			return
		}
	}
}

func (d *decoder) value(depth int) (any, error) {
	if depth > maxJSONDepth {
		return nil, errBadJSON
	}
	d.space()
	if d.i >= len(d.b) {
		return nil, errBadJSON
	}
	switch c := d.b[d.i]; {
	case c == '{':
		d.i++
		o := &Object{}
		d.space()
		if d.i < len(d.b) && d.b[d.i] == '}' {
			d.i++
			return o, nil
		}
		for {
			d.space()
			if d.i >= len(d.b) || d.b[d.i] != '"' {
				return nil, errBadJSON
			}
			k, err := d.str()
			if err != nil {
				return nil, err
			}
			d.space()
			if d.i >= len(d.b) || d.b[d.i] != ':' {
				return nil, errBadJSON
			}
			d.i++
			v, err := d.value(depth + 1)
			if err != nil {
				return nil, err
			}
			o.Keys = append(o.Keys, k)
			o.Vals = append(o.Vals, v)
			d.space()
			if d.i >= len(d.b) {
				return nil, errBadJSON
			}
			if d.b[d.i] == ',' {
				d.i++
				continue
			}
			if d.b[d.i] == '}' {
				d.i++
				return o, nil
			}
			return nil, errBadJSON
		}
	case c == '[':
		d.i++
		a := []any{}
		d.space()
		if d.i < len(d.b) && d.b[d.i] == ']' {
			d.i++
			return a, nil
		}
		for {
			v, err := d.value(depth + 1)
			if err != nil {
				return nil, err
			}
			a = append(a, v)
			d.space()
			if d.i >= len(d.b) {
				return nil, errBadJSON
			}
			if d.b[d.i] == ',' {
				d.i++
				continue
			}
			if d.b[d.i] == ']' {
				d.i++
				return a, nil
			}
			return nil, errBadJSON
		}
	case c == '"':
		return d.str()
	case c == 't':
		return d.lit("true", true)
	case c == 'f':
		return d.lit("false", false)
	case c == 'n':
		return d.lit("null", nil)
	case c == '-' || c >= '0' && c <= '9':
		start := d.i
		d.i++
		for d.i < len(d.b) {
			c := d.b[d.i]
			if c >= '0' && c <= '9' || c == '.' || c == 'e' || c == 'E' || c == '+' || c == '-' {
				d.i++
				continue
			}
			break
		}
		if !validNumber(d.b[start:d.i]) {
			return nil, errBadJSON
		}
		f, err := strconv.ParseFloat(string(d.b[start:d.i]), 64)
		if err != nil && !errors.Is(err, strconv.ErrRange) {
			return nil, errBadJSON
		}
		return f, nil
	}
	return nil, errBadJSON
}

func (d *decoder) lit(s string, v any) (any, error) {
	if !bytes.HasPrefix(d.b[d.i:], []byte(s)) {
		return nil, errBadJSON
	}
	d.i += len(s)
	return v, nil
}

// str decodes a string starting at its opening quote.
func (d *decoder) str() (string, error) {
	start := d.i
	d.i++
	plain := true
	for d.i < len(d.b) {
		switch c := d.b[d.i]; {
		case c == '"':
			d.i++
			if plain {
				s := string(d.b[start+1 : d.i-1])
				if !utf8.ValidString(s) {
					return "", errBadJSON
				}
				return s, nil
			}
			var s string
			if err := json.Unmarshal(d.b[start:d.i], &s); err != nil {
				return "", errBadJSON
			}
			return s, nil
		case c == '\\':
			plain = false
			d.i += 2
		case c < 0x20:
			return "", errBadJSON
		default:
			d.i++
		}
	}
	return "", errBadJSON
}

// appendJSON writes v as JSON. Undefined members of objects and elements of
// arrays are left out; an undefined value at the top writes nothing.
func appendJSON(b []byte, v any) []byte {
	switch v := v.(type) {
	case nil:
		return append(b, "null"...)
	case bool:
		return strconv.AppendBool(b, v)
	case float64:
		return appendNumber(b, v)
	case string:
		return appendString(b, v)
	case []any:
		b = append(b, '[')
		n := 0
		for _, e := range v {
			if isUndefined(e) {
				continue
			}
			if n > 0 {
				b = append(b, ',')
			}
			b = appendJSON(b, e)
			n++
		}
		return append(b, ']')
	case *Object:
		b = append(b, '{')
		n := 0
		for i, k := range v.Keys {
			if isUndefined(v.Vals[i]) {
				continue
			}
			if n > 0 {
				b = append(b, ',')
			}
			b = appendString(b, k)
			b = append(b, ':')
			b = appendJSON(b, v.Vals[i])
			n++
		}
		return append(b, '}')
	}
	return b
}

// appendNumber formats like JavaScript and encoding/json: integers without
// a fraction, exponents only for very large or small magnitudes.
func appendNumber(b []byte, f float64) []byte {
	if math.IsInf(f, 0) || math.IsNaN(f) {
		return append(b, "null"...)
	}
	abs := math.Abs(f)
	format := byte('f')
	if abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	b = strconv.AppendFloat(b, f, format, -1, 64)
	if format == 'e' {
		// clean up e-09 to e-9
		n := len(b)
		if n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b
}

const hexDigits = "0123456789abcdef"

func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				b = append(b, '\\', c)
			case c == '\n':
				b = append(b, '\\', 'n')
			case c == '\r':
				b = append(b, '\\', 'r')
			case c == '\t':
				b = append(b, '\\', 't')
			case c < 0x20:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			default:
				b = append(b, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, `\ufffd`...)
		} else {
			b = append(b, s[i:i+size]...)
		}
		i += size
	}
	return append(b, '"')
}

// Type ranks in Cosmos DB's order for ORDER BY over mixed types:
// undefined < null < booleans < numbers < strings < arrays < objects.
const (
	rankUndefined = iota
	rankNull
	rankBool
	rankNumber
	rankString
	rankArray
	rankObject
)

// encodedKey is an array or object ORDER BY key, encoded once.
type encodedKey struct {
	rank int
	text string
}

func rank(v any) int {
	switch v := v.(type) {
	case encodedKey:
		return v.rank
	case nil:
		return rankNull
	case bool:
		return rankBool
	case float64:
		return rankNumber
	case string:
		return rankString
	case []any:
		return rankArray
	case *Object:
		return rankObject
	}
	return rankUndefined
}

// compareOrder is the total order of ORDER BY, MIN and MAX: by type rank,
// then within the type. Arrays and objects of the same type compare by their
// JSON text (any fixed order will do; Cosmos DB's is by hash).
func compareOrder(a, b any) int {
	ra, rb := rank(a), rank(b)
	if ra != rb {
		return ra - rb
	}
	switch a := a.(type) {
	case bool:
		bb := b.(bool)
		switch {
		case a == bb:
			return 0
		case !a:
			return -1
		}
		return 1
	case float64:
		bf := b.(float64)
		switch {
		case a < bf:
			return -1
		case a > bf:
			return 1
		}
		return 0
	case string:
		return compareStrings(a, b.(string))
	case encodedKey:
		return compareStrings(a.text, b.(encodedKey).text)
	case []any, *Object:
		return bytes.Compare(appendJSON(nil, a), appendJSON(nil, b))
	}
	return 0
}

func compareStrings(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// equal is deep equality of two defined values of the same type.
func equal(a, b any) bool {
	switch a := a.(type) {
	case nil:
		return b == nil
	case bool:
		bb, ok := b.(bool)
		return ok && a == bb
	case float64:
		bf, ok := b.(float64)
		return ok && a == bf
	case string:
		bs, ok := b.(string)
		return ok && a == bs
	case []any:
		ba, ok := b.([]any)
		return ok && slices.EqualFunc(a, ba, equal)
	case *Object:
		bo, ok := b.(*Object)
		if !ok || len(a.Keys) != len(bo.Keys) {
			return false
		}
		for i, k := range a.Keys {
			if !equal(a.Vals[i], bo.Get(k)) {
				return false
			}
		}
		return true
	}
	return false
}

// validNumber reports whether b is a JSON number:
// -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func validNumber(b []byte) bool {
	i := 0
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && b[i] >= '1' && b[i] <= '9':
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
	default:
		return false
	}
	if i < len(b) && b[i] == '.' {
		i++
		if i >= len(b) || b[i] < '0' || b[i] > '9' {
			return false
		}
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if i >= len(b) || b[i] < '0' || b[i] > '9' {
			return false
		}
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
	}
	return i == len(b)
}
