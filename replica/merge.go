package replica

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
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
	var b *mergeDoc // nil: the empty object
	if t := bytes.Trim(base, " \t\r\n"); len(t) > 0 && string(t) != "null" {
		if b, err = parseMergeInput("base", base); err != nil {
			return nil, err
		}
	}
	out := make([]byte, 0, len(existing)+len(incoming)/2+2)
	return mergeObjects(out, b, 0, e, 0, in, 0, incomingWins), nil
}

// mergeObjects appends to dst the merge of the objects existing node e and
// incoming node i against base node b (a nil base or b < 0: the empty object).
func mergeObjects(dst []byte, bd *mergeDoc, b int32, ed *mergeDoc, e int32, id *mergeDoc, i int32, incomingWins bool) []byte {
	dst = append(dst, '{')
	for ec := ed.nodes[e].first; ec >= 0; ec = ed.nodes[ec].next {
		name := ed.name(ec)
		bc := bd.get(b, name)
		ic := id.get(i, name)
		keep, kc := ed, ec // the value written, unless kc < 0
		switch {
		case ic < 0:
			// Added by existing, or removed by incoming: removed if existing
			// left it unchanged or lost the clash.
			if bc >= 0 && (incomingWins || mergeEqual(bd, bc, ed, ec)) {
				kc = -1
			}
		case mergeEqual(ed, ec, id, ic):
		case bc >= 0 && mergeEqual(bd, bc, ed, ec):
			keep, kc = id, ic // only incoming changed it
		case bc >= 0 && mergeEqual(bd, bc, id, ic):
			// only existing changed it
		case ed.isObject(ec) && id.isObject(ic):
			if bc >= 0 && !bd.isObject(bc) {
				bc = -1
			}
			dst = appendMergeKey(dst, ed.keyRaw(ec))
			dst = mergeObjects(dst, bd, bc, ed, ec, id, ic, incomingWins)
			continue
		case incomingWins:
			keep, kc = id, ic
		}
		if kc >= 0 {
			dst = appendMergeKey(dst, ed.keyRaw(ec))
			dst = append(dst, keep.raw(kc)...)
		}
	}
	for ic := id.nodes[i].first; ic >= 0; ic = id.nodes[ic].next {
		name := id.name(ic)
		if ed.get(e, name) >= 0 {
			continue
		}
		// Added by incoming, or removed by existing: kept if incoming
		// changed it and won the clash.
		if bc := bd.get(b, name); bc < 0 || incomingWins && !mergeEqual(bd, bc, id, ic) {
			dst = appendMergeKey(dst, id.keyRaw(ic))
			dst = append(dst, id.raw(ic)...)
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

// mergeDoc is a parsed input of MergeJSON: its text and a flat tree of its
// values in one slice (node 0 is the top-level value), so that parsing costs
// a few allocations, not one per value.
type mergeDoc struct {
	b     []byte
	nodes []mergeNode
	names map[int32][]byte           // decoded names of members whose names have escapes
	index map[int32]map[string]int32 // member lookup of objects with more than mergeSmallObject members
}

// mergeNode is one value of a mergeDoc: offsets into its text, and links to
// its children in order. -1 links to nothing.
type mergeNode struct {
	start, end        int32 // the value's text
	keyStart, keyEnd  int32 // an object member's name as written, quotes included
	first, last, next int32 // first and last child, next sibling
	n                 int32 // number of children
	escaped           bool  // the member's name has escapes: see mergeDoc.names
}

// mergeSmallObject is the member count up to which lookups scan.
const mergeSmallObject = 16

func (d *mergeDoc) raw(i int32) []byte { return d.b[d.nodes[i].start:d.nodes[i].end] }

func (d *mergeDoc) keyRaw(i int32) []byte { return d.b[d.nodes[i].keyStart:d.nodes[i].keyEnd] }

func (d *mergeDoc) isObject(i int32) bool { return d.b[d.nodes[i].start] == '{' }

// name is the decoded name of member i.
func (d *mergeDoc) name(i int32) []byte {
	if d.nodes[i].escaped {
		return d.names[i]
	}
	return d.b[d.nodes[i].keyStart+1 : d.nodes[i].keyEnd-1]
}

// get returns the member of object obj named name, or -1. A nil d or a
// negative obj is the empty object.
func (d *mergeDoc) get(obj int32, name []byte) int32 {
	if d == nil || obj < 0 {
		return -1
	}
	if m := d.index[obj]; m != nil {
		if c, ok := m[string(name)]; ok {
			return c
		}
		return -1
	}
	for c := d.nodes[obj].first; c >= 0; c = d.nodes[c].next {
		if bytes.Equal(d.name(c), name) {
			return c
		}
	}
	return -1
}

// mergeEqual reports whether value a of ad and value b of bd are semantically
// equal JSON values (see MergeJSON).
func mergeEqual(ad *mergeDoc, a int32, bd *mergeDoc, b int32) bool {
	ar, br := ad.raw(a), bd.raw(b)
	if bytes.Equal(ar, br) {
		return true // valid, duplicate-free and identical
	}
	ca, cb := ar[0], br[0]
	switch {
	case ca == '{' && cb == '{':
		if ad.nodes[a].n != bd.nodes[b].n {
			return false
		}
		// Same count and no duplicates: every member of a found in b with
		// an equal value means the names are the same too.
		for c := ad.nodes[a].first; c >= 0; c = ad.nodes[c].next {
			o := bd.get(b, ad.name(c))
			if o < 0 || !mergeEqual(ad, c, bd, o) {
				return false
			}
		}
		return true
	case ca == '[' && cb == '[':
		if ad.nodes[a].n != bd.nodes[b].n {
			return false
		}
		for x, y := ad.nodes[a].first, bd.nodes[b].first; x >= 0 && y >= 0; x, y = ad.nodes[x].next, bd.nodes[y].next {
			if !mergeEqual(ad, x, bd, y) {
				return false
			}
		}
		return true
	case ca == '"' && cb == '"':
		if bytes.IndexByte(ar, '\\') < 0 && bytes.IndexByte(br, '\\') < 0 {
			return false // no escapes: the texts are the strings
		}
		sa, oka := decodeMergeString(ar)
		sb, okb := decodeMergeString(br)
		return oka && okb && sa == sb
	case isMergeNumber(ca) && isMergeNumber(cb):
		return mergeNumbersEqual(ar, br)
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
func parseMergeInput(name string, b []byte) (*mergeDoc, error) {
	t := bytes.Trim(b, " \t\r\n")
	switch {
	case len(t) == 0:
		return nil, fmt.Errorf("%w: merge: %s is empty, want a JSON object", ErrInvalid, name)
	case len(t) > math.MaxInt32:
		return nil, fmt.Errorf("%w: merge: %s is %d bytes, limit %d", ErrInvalid, name, len(t), math.MaxInt32)
	case !utf8.Valid(t):
		return nil, fmt.Errorf("%w: merge: %s is not valid UTF-8", ErrInvalid, name)
	case !json.Valid(t):
		return nil, fmt.Errorf("%w: merge: %s is malformed JSON", ErrInvalid, name)
	case t[0] != '{':
		return nil, fmt.Errorf("%w: merge: %s is a JSON %s, want an object", ErrInvalid, name, mergeKind(t[0]))
	}
	// About one value per 8 bytes in typical documents.
	p := mergeParser{d: &mergeDoc{b: t, nodes: make([]mergeNode, 0, len(t)/8+1)}}
	_, err := p.value()
	if err == nil && p.i != len(t) {
		err = &mergeParseError{msg: "data after the top-level value"}
	}
	if err != nil {
		return nil, fmt.Errorf("%w: merge: %s: %v", ErrInvalid, name, err)
	}
	return p.d, nil
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

// mergeParser parses JSON that json.Valid accepted into a mergeDoc, checking
// for duplicate names. It still checks every step, so that it cannot panic.
type mergeParser struct {
	d *mergeDoc
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
	for p.i < len(p.d.b) && (p.d.b[p.i] == ' ' || p.d.b[p.i] == '\t' || p.d.b[p.i] == '\n' || p.d.b[p.i] == '\r') {
		p.i++
	}
}

// consume skips space and then c, reporting whether c was there.
func (p *mergeParser) consume(c byte) bool {
	p.space()
	if p.i < len(p.d.b) && p.d.b[p.i] == c {
		p.i++
		return true
	}
	return false
}

// str skips the string at p.i.
func (p *mergeParser) str() bool {
	if p.i >= len(p.d.b) || p.d.b[p.i] != '"' {
		return false
	}
	for j := p.i + 1; j < len(p.d.b); j++ {
		switch p.d.b[j] {
		case '\\':
			j++
		case '"':
			p.i = j + 1
			return true
		}
	}
	return false
}

// value parses the value at p.i into a new node and returns its index.
func (p *mergeParser) value() (int32, error) {
	d := p.d
	p.space()
	if p.i >= len(d.b) {
		return -1, p.errorf("unexpected end")
	}
	start := p.i
	v := int32(len(d.nodes))
	d.nodes = append(d.nodes, mergeNode{start: int32(start), first: -1, last: -1, next: -1})
	switch d.b[p.i] {
	case '{':
		p.i++
		if p.consume('}') {
			break
		}
		for {
			p.space()
			ks := p.i
			if !p.str() {
				return -1, p.errorf("want a property name")
			}
			keyRaw := d.b[ks:p.i]
			name := keyRaw[1 : len(keyRaw)-1]
			escaped := bytes.IndexByte(name, '\\') >= 0
			if escaped {
				s, ok := decodeMergeString(keyRaw)
				if !ok {
					return -1, p.errorf("bad property name")
				}
				name = []byte(s)
			}
			if d.get(v, name) >= 0 {
				return -1, &mergeParseError{msg: fmt.Sprintf("duplicate property %q", name), rev: []string{string(name)}}
			}
			if !p.consume(':') {
				return -1, p.errorf("want ':'")
			}
			c, err := p.value()
			if err != nil {
				return -1, mergeWithin(err, string(name))
			}
			d.nodes[c].keyStart, d.nodes[c].keyEnd = int32(ks), int32(ks+len(keyRaw))
			if escaped {
				if d.names == nil {
					d.names = make(map[int32][]byte)
				}
				d.nodes[c].escaped = true
				d.names[c] = name
			}
			p.link(v, c)
			switch n := d.nodes[v].n; {
			case n == mergeSmallObject+1:
				if d.index == nil {
					d.index = make(map[int32]map[string]int32)
				}
				m := make(map[string]int32, 2*n)
				for c := d.nodes[v].first; c >= 0; c = d.nodes[c].next {
					m[string(d.name(c))] = c
				}
				d.index[v] = m
			case n > mergeSmallObject+1:
				d.index[v][string(name)] = c
			}
			if p.consume(',') {
				continue
			}
			if p.consume('}') {
				break
			}
			return -1, p.errorf("want ',' or '}'")
		}
	case '[':
		p.i++
		if p.consume(']') {
			break
		}
		for {
			c, err := p.value()
			if err != nil {
				return -1, mergeWithin(err, strconv.Itoa(int(d.nodes[v].n)))
			}
			p.link(v, c)
			if p.consume(',') {
				continue
			}
			if p.consume(']') {
				break
			}
			return -1, p.errorf("want ',' or ']'")
		}
	case '"':
		if !p.str() {
			return -1, p.errorf("unterminated string")
		}
	default:
		for p.i < len(d.b) {
			c := d.b[p.i]
			if c == ',' || c == '}' || c == ']' || c == ':' || c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '"' || c == '{' || c == '[' {
				break
			}
			p.i++
		}
		if p.i == start {
			return -1, p.errorf("want a value")
		}
	}
	d.nodes[v].end = int32(p.i)
	return v, nil
}

// link appends node c to the children of node v.
func (p *mergeParser) link(v, c int32) {
	nodes := p.d.nodes
	if last := nodes[v].last; last >= 0 {
		nodes[last].next = c
	} else {
		nodes[v].first = c
	}
	nodes[v].last = c
	nodes[v].n++
}
