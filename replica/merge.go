package replica

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/big"
	"strconv"
	"strings"
	"unicode/utf8"
)

// MergeJSON merges two concurrent versions of a JSON object against their
// common ancestor (DESIGN §6 policy "merge"): a change that only one side made
// survives; where both sides changed the same field differently (a clash), the
// value of the side that wins last-writer-wins survives — incomingWins says
// which side that is. Nested objects are merged field by field, recursively;
// arrays, strings, numbers, booleans and null are single values. A field
// removed on one side and left unchanged on the other is removed; removed on
// one side and changed on the other is a clash. base may be nil (the ancestor
// is unknown): then it counts as the empty object, so keys present on only
// one side are kept and keys present on both with different values clash.
// The result is deterministic for the same inputs (every hub must compute the
// same bytes): keys keep existing's order, followed by keys that only incoming
// has, in incoming's order. Values that survive unchanged are copied as their
// original bytes (numbers keep their exact text; no float rounding).
// existing and incoming must be JSON objects; an error wraps ErrInvalid.
//
// Where both sides changed a field to objects, the merge recurses into them
// against base's value of the field if that is an object, and against the
// empty object otherwise. A value that only one side changed is taken whole
// from that side, bytes and key order included; where both sides hold equal
// values, existing's bytes are kept. Keys are written as existing spells them
// (incoming's spelling for keys only incoming has), and the output adds no
// whitespace.
//
// Equality is semantic, not textual: objects are equal when they have the
// same keys with equal values in any order and with any whitespace; strings
// when they decode to the same text ("\u00e9" equals "é"); numbers when they
// denote the same decimal value, compared exactly from their text with no
// float conversion: 1, 1.0, 1e0, 10e-1 and 0.1e1 are equal, and so are 0 and
// -0, but 12345678901234567890 and 12345678901234567891 differ, and so do 0.1
// and 0.10000000000000000001 although both round to the same float64. So a
// client that re-serialises an untouched number (1.50 as 1.5) has not changed
// it and cannot win a clash against a real change on the other side.
//
// A nil or empty base, or the JSON null, means the ancestor is unknown; any
// other base must be a JSON object too. All three must be valid UTF-8 JSON
// with no duplicate keys in any object at any depth.
func MergeJSON(base, existing, incoming []byte, incomingWins bool) ([]byte, error) {
	e, err := parseMergeInput("existing", existing)
	if err != nil {
		return nil, err
	}
	in, err := parseMergeInput("incoming", incoming)
	if err != nil {
		return nil, err
	}
	var b *mergeValue
	if t := bytes.Trim(base, " \t\r\n"); len(t) > 0 && string(t) != "null" {
		if b, err = parseMergeInput("base", base); err != nil {
			return nil, err
		}
	}
	out := make([]byte, 0, len(existing)+len(incoming)/2+2)
	return mergeObjects(out, b, e, in, incomingWins), nil
}

// mergeObjects appends the merge of the objects existing and incoming against
// base (nil: the empty object) to dst.
func mergeObjects(dst []byte, base, existing, incoming *mergeValue, incomingWins bool) []byte {
	dst = append(dst, '{')
	for k := range existing.members {
		em := &existing.members[k]
		ev := &em.value
		bv := base.get(em.key)
		iv := incoming.get(em.key)
		var keep *mergeValue
		switch {
		case iv == nil:
			// Added by existing, or removed by incoming: removed if existing
			// left it unchanged or lost the clash.
			if bv == nil || !incomingWins && !mergeEqual(bv, ev) {
				keep = ev
			}
		case mergeEqual(ev, iv):
			keep = ev
		case bv != nil && mergeEqual(bv, ev):
			keep = iv // only incoming changed it
		case bv != nil && mergeEqual(bv, iv):
			keep = ev // only existing changed it
		case ev.isObject() && iv.isObject():
			var nb *mergeValue
			if bv != nil && bv.isObject() {
				nb = bv
			}
			dst = appendMergeKey(dst, em.keyRaw)
			dst = mergeObjects(dst, nb, ev, iv, incomingWins)
			continue
		case incomingWins:
			keep = iv
		default:
			keep = ev
		}
		if keep != nil {
			dst = appendMergeKey(dst, em.keyRaw)
			dst = append(dst, keep.raw...)
		}
	}
	for k := range incoming.members {
		im := &incoming.members[k]
		if existing.get(im.key) != nil {
			continue
		}
		// Added by incoming, or removed by existing: kept if incoming
		// changed it and won the clash.
		if bv := base.get(im.key); bv == nil || incomingWins && !mergeEqual(bv, &im.value) {
			dst = appendMergeKey(dst, im.keyRaw)
			dst = append(dst, im.value.raw...)
		}
	}
	return append(dst, '}')
}

// appendMergeKey appends `"key":` to an object being written into dst,
// preceded by a comma unless it is the first member (a JSON value never ends
// in '{', so the last byte tells).
func appendMergeKey(dst, keyRaw []byte) []byte {
	if dst[len(dst)-1] != '{' {
		dst = append(dst, ',')
	}
	dst = append(dst, keyRaw...)
	return append(dst, ':')
}

// mergeValue is a parsed JSON value: its text, and for objects and arrays
// their parts.
type mergeValue struct {
	raw     []byte
	members []mergeMember  // objects, in order
	index   map[string]int // objects with more than mergeSmallObject members
	elems   []mergeValue   // arrays
}

type mergeMember struct {
	key    string // decoded
	keyRaw []byte // as written, quotes included
	value  mergeValue
}

// mergeSmallObject is the member count up to which lookups scan.
const mergeSmallObject = 16

func (v *mergeValue) isObject() bool { return len(v.raw) > 0 && v.raw[0] == '{' }

// get returns the value of key in the object v, or nil. A nil v is the empty
// object.
func (v *mergeValue) get(key string) *mergeValue {
	if v == nil {
		return nil
	}
	if v.index != nil {
		if i, ok := v.index[key]; ok {
			return &v.members[i].value
		}
		return nil
	}
	for i := range v.members {
		if v.members[i].key == key {
			return &v.members[i].value
		}
	}
	return nil
}

// mergeEqual reports whether a and b are semantically equal JSON values (see
// MergeJSON).
func mergeEqual(a, b *mergeValue) bool {
	if bytes.Equal(a.raw, b.raw) {
		return true // valid, duplicate-free and identical
	}
	if len(a.raw) == 0 || len(b.raw) == 0 {
		return false
	}
	ca, cb := a.raw[0], b.raw[0]
	switch {
	case ca == '{' && cb == '{':
		if len(a.members) != len(b.members) {
			return false
		}
		// Same count and no duplicates: every key of a found in b with an
		// equal value means the key sets are equal too.
		for i := range a.members {
			bv := b.get(a.members[i].key)
			if bv == nil || !mergeEqual(&a.members[i].value, bv) {
				return false
			}
		}
		return true
	case ca == '[' && cb == '[':
		if len(a.elems) != len(b.elems) {
			return false
		}
		for i := range a.elems {
			if !mergeEqual(&a.elems[i], &b.elems[i]) {
				return false
			}
		}
		return true
	case ca == '"' && cb == '"':
		if bytes.IndexByte(a.raw, '\\') < 0 && bytes.IndexByte(b.raw, '\\') < 0 {
			return false // no escapes: the texts are the strings
		}
		sa, oka := decodeMergeString(a.raw)
		sb, okb := decodeMergeString(b.raw)
		return oka && okb && sa == sb
	case isMergeNumber(ca) && isMergeNumber(cb):
		return mergeNumbersEqual(a.raw, b.raw)
	}
	return false // different kinds, or different literals
}

func isMergeNumber(c byte) bool { return c == '-' || '0' <= c && c <= '9' }

func decodeMergeString(raw []byte) (string, bool) {
	if len(raw) >= 2 && bytes.IndexByte(raw, '\\') < 0 {
		return string(raw[1 : len(raw)-1]), true
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", false
	}
	return s, true
}

// mergeDecimal is a JSON number as sign × digits × 10^exp, digits without
// leading or trailing zeros (empty for zero, which then ignores sign and
// exponent). bigExp replaces exp when the exponent's text is too long for an
// int64.
type mergeDecimal struct {
	neg    bool
	digits []byte
	exp    int64
	bigExp *big.Int
}

// mergeNumbersEqual reports whether two JSON number texts denote the same
// decimal value, exactly.
func mergeNumbersEqual(a, b []byte) bool {
	x, okx := parseMergeDecimal(a)
	y, oky := parseMergeDecimal(b)
	if !okx || !oky || x.neg != y.neg || !bytes.Equal(x.digits, y.digits) {
		return false
	}
	if x.bigExp == nil && y.bigExp == nil {
		return x.exp == y.exp
	}
	return x.bigExponent().Cmp(y.bigExponent()) == 0
}

func (d mergeDecimal) bigExponent() *big.Int {
	if d.bigExp != nil {
		return d.bigExp
	}
	return big.NewInt(d.exp)
}

// parseMergeDecimal parses the text of a JSON number that json.Valid accepted.
func parseMergeDecimal(s []byte) (mergeDecimal, bool) {
	var d mergeDecimal
	i := 0
	if i < len(s) && s[i] == '-' {
		d.neg = true
		i++
	}
	digits := make([]byte, 0, len(s))
	for ; i < len(s) && '0' <= s[i] && s[i] <= '9'; i++ {
		digits = append(digits, s[i])
	}
	frac := 0
	if i < len(s) && s[i] == '.' {
		for i++; i < len(s) && '0' <= s[i] && s[i] <= '9'; i++ {
			digits = append(digits, s[i])
			frac++
		}
	}
	expNeg := false
	var expText []byte
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			expNeg = s[i] == '-'
			i++
		}
		expText = bytes.TrimLeft(s[i:], "0")
		for _, c := range expText {
			if c < '0' || c > '9' {
				return d, false
			}
		}
	} else if i != len(s) {
		return d, false
	}
	digits = bytes.TrimLeft(digits, "0")
	n := len(digits)
	digits = bytes.TrimRight(digits, "0")
	if len(digits) == 0 {
		return mergeDecimal{}, true // zero, whatever the sign and exponent
	}
	d.digits = digits
	shift := int64(n - len(digits) - frac)
	if len(expText) <= 18 {
		var x int64
		for _, c := range expText {
			x = x*10 + int64(c-'0')
		}
		if expNeg {
			x = -x
		}
		d.exp = x + shift // |x| < 1e18 and |shift| ≤ the text's length: no overflow
		return d, true
	}
	e, ok := new(big.Int).SetString(string(expText), 10)
	if !ok {
		return d, false
	}
	if expNeg {
		e.Neg(e)
	}
	d.bigExp = e.Add(e, big.NewInt(shift))
	return d, true
}

// parseMergeInput validates and parses one input of MergeJSON, which must be
// a JSON object.
func parseMergeInput(name string, b []byte) (*mergeValue, error) {
	t := bytes.Trim(b, " \t\r\n")
	switch {
	case len(t) == 0:
		return nil, fmt.Errorf("%w: merge: %s is empty, want a JSON object", ErrInvalid, name)
	case !utf8.Valid(t):
		return nil, fmt.Errorf("%w: merge: %s is not valid UTF-8", ErrInvalid, name)
	case !json.Valid(t):
		return nil, fmt.Errorf("%w: merge: %s is malformed JSON", ErrInvalid, name)
	case t[0] != '{':
		return nil, fmt.Errorf("%w: merge: %s is a JSON %s, want an object", ErrInvalid, name, mergeKind(t[0]))
	}
	p := mergeParser{b: t}
	v, err := p.value()
	if err == nil && p.i != len(t) {
		err = &mergeParseError{msg: "data after the top-level value"}
	}
	if err != nil {
		return nil, fmt.Errorf("%w: merge: %s: %v", ErrInvalid, name, err)
	}
	return &v, nil
}

func mergeKind(c byte) string {
	switch {
	case c == '{':
		return "object"
	case c == '[':
		return "array"
	case c == '"':
		return "string"
	case c == 't' || c == 'f':
		return "boolean"
	case c == 'n':
		return "null"
	}
	return "number"
}

// mergeParser parses JSON that json.Valid accepted into mergeValues, checking
// for duplicate keys. It still checks every step, so that it cannot panic.
type mergeParser struct {
	b []byte
	i int
}

// mergeParseError is an error at a JSON pointer; the path is built innermost
// first as the error travels up.
type mergeParseError struct {
	msg string
	rev []string // path segments, innermost first
}

func (e *mergeParseError) Error() string {
	if len(e.rev) == 0 {
		return e.msg
	}
	var sb strings.Builder
	sb.WriteString(e.msg)
	sb.WriteString(" at ")
	for i := len(e.rev) - 1; i >= 0; i-- {
		sb.WriteByte('/')
		sb.WriteString(strings.NewReplacer("~", "~0", "/", "~1").Replace(e.rev[i]))
	}
	return sb.String()
}

func (p *mergeParser) errorf(format string, args ...any) error {
	return &mergeParseError{msg: fmt.Sprintf(format, args...) + " at byte " + strconv.Itoa(p.i)}
}

func mergeWithin(err error, seg string) error {
	if pe, ok := err.(*mergeParseError); ok {
		pe.rev = append(pe.rev, seg)
	}
	return err
}

func (p *mergeParser) space() {
	for p.i < len(p.b) && (p.b[p.i] == ' ' || p.b[p.i] == '\t' || p.b[p.i] == '\n' || p.b[p.i] == '\r') {
		p.i++
	}
}

// consume skips space and then c, reporting whether c was there.
func (p *mergeParser) consume(c byte) bool {
	p.space()
	if p.i < len(p.b) && p.b[p.i] == c {
		p.i++
		return true
	}
	return false
}

// str skips the string at p.i.
func (p *mergeParser) str() bool {
	if p.i >= len(p.b) || p.b[p.i] != '"' {
		return false
	}
	for j := p.i + 1; j < len(p.b); j++ {
		switch p.b[j] {
		case '\\':
			j++
		case '"':
			p.i = j + 1
			return true
		}
	}
	return false
}

func (p *mergeParser) value() (mergeValue, error) {
	var v mergeValue
	p.space()
	if p.i >= len(p.b) {
		return v, p.errorf("unexpected end")
	}
	start := p.i
	switch p.b[p.i] {
	case '{':
		p.i++
		if p.consume('}') {
			break
		}
		for {
			p.space()
			ks := p.i
			if !p.str() {
				return v, p.errorf("want a property name")
			}
			keyRaw := p.b[ks:p.i]
			key, ok := decodeMergeString(keyRaw)
			if !ok {
				return v, p.errorf("bad property name")
			}
			if v.get(key) != nil {
				return v, &mergeParseError{msg: fmt.Sprintf("duplicate property %q", key), rev: []string{key}}
			}
			if !p.consume(':') {
				return v, p.errorf("want ':'")
			}
			mv, err := p.value()
			if err != nil {
				return v, mergeWithin(err, key)
			}
			v.members = append(v.members, mergeMember{key: key, keyRaw: keyRaw, value: mv})
			switch n := len(v.members); {
			case v.index != nil:
				v.index[key] = n - 1
			case n > mergeSmallObject:
				v.index = make(map[string]int, 2*n)
				for i := range v.members {
					v.index[v.members[i].key] = i
				}
			}
			if p.consume(',') {
				continue
			}
			if p.consume('}') {
				break
			}
			return v, p.errorf("want ',' or '}'")
		}
	case '[':
		p.i++
		if p.consume(']') {
			break
		}
		for {
			ev, err := p.value()
			if err != nil {
				return v, mergeWithin(err, strconv.Itoa(len(v.elems)))
			}
			v.elems = append(v.elems, ev)
			if p.consume(',') {
				continue
			}
			if p.consume(']') {
				break
			}
			return v, p.errorf("want ',' or ']'")
		}
	case '"':
		if !p.str() {
			return v, p.errorf("unterminated string")
		}
	default:
		for p.i < len(p.b) {
			c := p.b[p.i]
			if c == ',' || c == '}' || c == ']' || c == ':' || c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '"' || c == '{' || c == '[' {
				break
			}
			p.i++
		}
		if p.i == start {
			return v, p.errorf("want a value")
		}
	}
	v.raw = p.b[start:p.i]
	return v, nil
}
