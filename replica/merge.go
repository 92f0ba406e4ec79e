package replica

import (
	"bytes"
	"encoding/json"
	"fmt"
	"hash/maphash"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/edgesync/edgesync/replica/internal/jsonscan"
)

// MergeJSON merges two concurrent versions of a JSON object against their
// common ancestor (docs/architecture.md, Conflicts, policy "merge"): a change that only one side made
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
// (nested at most 10000 deep, as encoding/json allows) with no duplicate keys
// in any object at any depth. The time taken is linear in the inputs' size.
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
		name, nh := ed.name(ec), ed.nodes[ec].nameHash
		bc := bd.get(b, name, nh)
		ic := id.get(i, name, nh)
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
		name, nh := id.name(ic), id.nodes[ic].nameHash
		if ed.get(e, name, nh) >= 0 {
			continue
		}
		// Added by incoming, or removed by existing: kept if incoming
		// changed it and won the clash.
		if bc := bd.get(b, name, nh); bc < 0 || incomingWins && !mergeEqual(bd, bc, id, ic) {
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

// mergeNode is one value of a mergeDoc: offsets into its text, links to its
// children in order (-1 links to nothing), and a hash of its meaning.
type mergeNode struct {
	hash             uint64 // equal values have equal hashes; see mergeEqual
	nameHash         uint64 // an object member's: maphash of its decoded name
	start, end       int32  // the value's text
	keyStart, keyEnd int32  // an object member's name as written, quotes included
	first, next      int32  // first child, next sibling
	n                int32  // number of children
	escaped          bool   // the member's name has escapes: see mergeDoc.names
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

// get returns the member of object obj named name, or -1; nameHash is the
// maphash of name. A nil d or a negative obj is the empty object.
func (d *mergeDoc) get(obj int32, name []byte, nameHash uint64) int32 {
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
		if d.nodes[c].nameHash == nameHash && bytes.Equal(d.name(c), name) {
			return c
		}
	}
	return -1
}

// mergeEqual reports whether value a of ad and value b of bd are semantically
// equal JSON values (see MergeJSON).
//
// Every node carries a hash of its meaning, so unequal values are told apart
// at once, and mergeObjects, which asks about each level of a changed path,
// stays linear in the documents' size. Equal hashes are confirmed exactly:
// identical texts, or else a walk of both trees.
func mergeEqual(ad *mergeDoc, a int32, bd *mergeDoc, b int32) bool {
	if ad.nodes[a].hash != bd.nodes[b].hash {
		return false
	}
	return bytes.Equal(ad.raw(a), bd.raw(b)) || mergeSame(ad, a, bd, b)
}

// mergeSame is mergeEqual without the shortcuts for whole texts: comparing
// the texts of containers again at every level of a walk would be quadratic
// in the nesting depth.
func mergeSame(ad *mergeDoc, a int32, bd *mergeDoc, b int32) bool {
	an, bn := &ad.nodes[a], &bd.nodes[b]
	if an.hash != bn.hash {
		return false
	}
	ar, br := ad.raw(a), bd.raw(b)
	switch ca, cb := ar[0], br[0]; {
	case ca == '{' && cb == '{':
		if an.n != bn.n {
			return false
		}
		// Same count and no duplicates: every member of a found in b with
		// an equal value means the names are the same too.
		for c := an.first; c >= 0; c = ad.nodes[c].next {
			o := bd.get(b, ad.name(c), ad.nodes[c].nameHash)
			if o < 0 || !mergeSame(ad, c, bd, o) {
				return false
			}
		}
		return true
	case ca == '[' && cb == '[':
		if an.n != bn.n {
			return false
		}
		for x, y := an.first, bn.first; x >= 0 && y >= 0; x, y = ad.nodes[x].next, bd.nodes[y].next {
			if !mergeSame(ad, x, bd, y) {
				return false
			}
		}
		return true
	case bytes.Equal(ar, br):
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

// mergeSeed seeds the hashes of values. The hashes only ever decide that two
// values differ, never what a merge writes, so a seed per process is fine;
// being secret, it keeps inputs from being crafted to collide.
var mergeSeed = maphash.MakeSeed()

// mergeSeed64 starts the hashes of numbers, which mix their digits in
// directly.
var mergeSeed64 = maphash.String(mergeSeed, "edgesync/replica.MergeJSON")

// Tags of the kinds of values, mixed into their hashes.
const (
	mergeTagObject = iota + 1
	mergeTagArray
	mergeTagString
	mergeTagNumber
	mergeTagLiteral
)

// mergeMix is the 64-bit finaliser of MurmurHash3.
func mergeMix(h uint64) uint64 {
	h ^= h >> 33
	h *= 0xff51afd7ed558ccd
	h ^= h >> 33
	h *= 0xc4ceb9fe1a85ec53
	h ^= h >> 33
	return h
}

// mergeMemberHash is the hash of one object member; an object's hash is
// their sum, which does not depend on their order.
func mergeMemberHash(nameHash, value uint64) uint64 {
	return mergeMix(nameHash ^ mergeMix(value+0x9e3779b97f4a7c15))
}

// mergeLeafHash is the hash of a string, number or literal: that of its
// decoded text, of its exact decimal value, or of its text.
func mergeLeafHash(raw []byte) uint64 {
	switch c := raw[0]; {
	case c == '"':
		if bytes.IndexByte(raw, '\\') >= 0 {
			s, _ := decodeMergeString(raw)
			return mergeMix(maphash.String(mergeSeed, s) + mergeTagString)
		}
		return mergeMix(maphash.Bytes(mergeSeed, raw[1:len(raw)-1]) + mergeTagString)
	case isMergeNumber(c):
		d, ok := parseMergeDecimal(raw)
		if !ok {
			return mergeMix(maphash.Bytes(mergeSeed, raw) + mergeTagNumber)
		}
		// The digits eight at a time, then sign and exponent, each mixed in
		// after the secret seed.
		h, w, n := mergeSeed64+mergeTagNumber, uint64(0), 0
		for _, c := range d.mant {
			if c == '.' {
				continue
			}
			w = w<<8 | uint64(c)
			if n++; n%8 == 0 {
				h, w = mergeMix(h^w), 0
			}
		}
		h = mergeMix(h ^ w ^ uint64(n)<<32)
		if d.neg {
			h = mergeMix(h ^ 1)
		}
		if d.bigExp != nil {
			return mergeMix(h ^ maphash.Bytes(mergeSeed, d.bigExp) ^ uint64(d.exp))
		}
		return mergeMix(h ^ uint64(d.exp))
	}
	return mergeMix(maphash.Bytes(mergeSeed, raw) + mergeTagLiteral)
}

// mergeDecimal is a JSON number as sign × mant × 10^exp: mant is its
// significant digits, without leading or trailing zeros but perhaps with the
// decimal point among them (which does not count); empty for zero, which
// then ignores sign and exponent. When the exponent does not fit in an
// int64, bigExp holds its decimal digits and exp its sign, -1 or 1; each
// value has one form.
type mergeDecimal struct {
	neg    bool
	mant   []byte
	exp    int64
	bigExp []byte
}

// mergeNumbersEqual reports whether two JSON number texts denote the same
// decimal value, exactly.
func mergeNumbersEqual(a, b []byte) bool {
	x, okx := parseMergeDecimal(a)
	y, oky := parseMergeDecimal(b)
	if !okx || !oky || x.neg != y.neg || !mergeDigitsEqual(x.mant, y.mant) {
		return false
	}
	return x.exp == y.exp && bytes.Equal(x.bigExp, y.bigExp)
}

// mergeDigitsEqual compares two digit strings, ignoring decimal points.
func mergeDigitsEqual(a, b []byte) bool {
	i, j := 0, 0
	for {
		for i < len(a) && a[i] == '.' {
			i++
		}
		for j < len(b) && b[j] == '.' {
			j++
		}
		if i == len(a) || j == len(b) {
			return i == len(a) && j == len(b)
		}
		if a[i] != b[j] {
			return false
		}
		i++
		j++
	}
}

// parseMergeDecimal parses the text of a valid JSON number, without
// allocating unless its exponent does not fit in an int64.
func parseMergeDecimal(s []byte) (mergeDecimal, bool) {
	var d mergeDecimal
	i := 0
	if i < len(s) && s[i] == '-' {
		d.neg = true
		i++
	}
	ms, frac, point := i, 0, false
	for ; i < len(s); i++ {
		c := s[i]
		if c == '.' && !point {
			point = true
			continue
		}
		if c < '0' || c > '9' {
			break
		}
		if point {
			frac++
		}
	}
	mant := s[ms:i]
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
	for len(mant) > 0 && (mant[0] == '0' || mant[0] == '.') {
		mant = mant[1:]
	}
	trailing := 0
	for len(mant) > 0 && (mant[len(mant)-1] == '0' || mant[len(mant)-1] == '.') {
		if mant[len(mant)-1] == '0' {
			trailing++
		}
		mant = mant[:len(mant)-1]
	}
	if len(mant) == 0 {
		return mergeDecimal{}, true // zero, whatever the sign and exponent
	}
	d.mant = mant
	shift := int64(trailing - frac) // |shift| ≤ len(s) < 2^31
	if len(expText) <= 18 {
		var x int64
		for _, c := range expText {
			x = x*10 + int64(c-'0')
		}
		if expNeg {
			x = -x
		}
		d.exp = x + shift // |x| < 1e18: no overflow
		return d, true
	}
	// A huge exponent: |x| ≥ 1e18 > |shift|, so x + shift has the sign of
	// x and its magnitude is |x| ± |shift|, done on the digits (big.Int's
	// parsing of a long exponent would take time quadratic in its length).
	delta := shift
	if expNeg {
		delta = -delta
	}
	mag := mergeAddSmall(expText, delta)
	sign := int64(1)
	if expNeg {
		sign = -1
	}
	if len(mag) <= 19 {
		if v, err := strconv.ParseInt(string(mag), 10, 64); err == nil {
			d.exp = sign * v
			return d, true
		}
	}
	d.exp, d.bigExp = sign, mag
	return d, true
}

// mergeAddSmall returns the decimal digits of x + delta, where x is decimal
// digits without leading zeros and x + delta > 0.
func mergeAddSmall(x []byte, delta int64) []byte {
	out := make([]byte, len(x)+1)
	copy(out[1:], x)
	out[0] = '0'
	carry := delta // added into the last digit onwards; |carry| stays small
	for i := len(out) - 1; i >= 0 && carry != 0; i-- {
		v := int64(out[i]-'0') + carry
		carry = v / 10
		if v %= 10; v < 0 {
			v += 10
			carry--
		}
		out[i] = byte('0' + v)
	}
	return bytes.TrimLeft(out, "0")
}

// parseMergeInput validates and parses one input of MergeJSON, which must be
// a JSON object.
func parseMergeInput(name string, b []byte) (*mergeDoc, error) {
	switch {
	case len(bytes.Trim(b, " \t\r\n")) == 0:
		return nil, fmt.Errorf("%w: merge: %s is empty, want a JSON object", ErrInvalid, name)
	case len(b) > math.MaxInt32:
		return nil, fmt.Errorf("%w: merge: %s is %d bytes, limit %d", ErrInvalid, name, len(b), math.MaxInt32)
	case !utf8.Valid(b):
		return nil, fmt.Errorf("%w: merge: %s is not valid UTF-8", ErrInvalid, name)
	}
	// One allocation for the nodes, rather than a slice growing and copying.
	p := mergeParser{d: &mergeDoc{b: b, nodes: make([]mergeNode, 0, mergeCountValues(b))}}
	_, err := p.value()
	if err == nil {
		if p.space(); p.i != len(b) {
			err = p.syntaxError("data after the top-level value")
		}
	}
	switch err.(type) {
	case nil:
	case *mergeSyntaxError:
		return nil, fmt.Errorf("%w: merge: %s is malformed JSON: %v", ErrInvalid, name, err)
	default:
		return nil, fmt.Errorf("%w: merge: %s: %v", ErrInvalid, name, err)
	}
	if c := b[p.d.nodes[0].start]; c != '{' {
		return nil, fmt.Errorf("%w: merge: %s is a JSON %s, want an object", ErrInvalid, name, mergeKind(c))
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

// mergeMaxNesting is the deepest nesting the parser accepts, the same as
// encoding/json's.
const mergeMaxNesting = 10000

// mergeParser parses and validates JSON (RFC 8259, as strictly as
// json.Valid) into a mergeDoc, rejecting duplicate names.
type mergeParser struct {
	d     *mergeDoc
	i     int
	depth int
}

// mergeSyntaxError is malformed JSON at a byte offset.
type mergeSyntaxError struct {
	msg string
	off int
}

func (e *mergeSyntaxError) Error() string { return e.msg + " at byte " + strconv.Itoa(e.off) }

func (p *mergeParser) syntaxError(msg string) error { return &mergeSyntaxError{msg: msg, off: p.i} }

// mergeDuplicateError is a duplicate name; the JSON pointer to it is built
// innermost first as the error travels up.
type mergeDuplicateError struct {
	name string
	rev  []string // path segments, innermost first
}

func (e *mergeDuplicateError) Error() string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "duplicate property %q at ", e.name)
	esc := strings.NewReplacer("~", "~0", "/", "~1")
	for i := len(e.rev) - 1; i >= 0; i-- {
		sb.WriteByte('/')
		sb.WriteString(esc.Replace(e.rev[i]))
	}
	return sb.String()
}

// mergeWithin adds the path segment seg to a duplicate error from inside it.
func mergeWithin(err error, seg string) error {
	if de, ok := err.(*mergeDuplicateError); ok {
		de.rev = append(de.rev, seg)
	}
	return err
}

func (p *mergeParser) space() {
	b := p.d.b
	for p.i < len(b) && (b[p.i] == ' ' || b[p.i] == '\t' || b[p.i] == '\n' || b[p.i] == '\r') {
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

// str skips the string at p.i, reporting whether it has escapes.
func (p *mergeParser) str() (escaped bool, err error) {
	end, escaped, bad := jsonscan.String(p.d.b, p.i)
	p.i = end
	if bad != "" {
		return false, p.syntaxError(bad)
	}
	return escaped, nil
}

// number skips the number at p.i.
func (p *mergeParser) number() error {
	end, bad := jsonscan.Number(p.d.b, p.i)
	p.i = end
	if bad != "" {
		return p.syntaxError(bad)
	}
	return nil
}

// value parses the value at p.i into a new node and returns its index.
func (p *mergeParser) value() (int32, error) {
	d := p.d
	p.space()
	if p.i >= len(d.b) {
		return -1, p.syntaxError("unexpected end")
	}
	start := p.i
	v := int32(len(d.nodes))
	d.nodes = append(d.nodes, mergeNode{start: int32(start), first: -1, next: -1})
	switch c := d.b[p.i]; {
	case c == '{':
		if err := p.object(v); err != nil {
			return -1, err
		}
	case c == '[':
		if err := p.array(v); err != nil {
			return -1, err
		}
	case c == '"':
		if _, err := p.str(); err != nil {
			return -1, err
		}
	case c == '-' || '0' <= c && c <= '9':
		if err := p.number(); err != nil {
			return -1, err
		}
	default:
		lit := "null"
		switch c {
		case 't':
			lit = "true"
		case 'f':
			lit = "false"
		}
		if !bytes.HasPrefix(d.b[p.i:], []byte(lit)) {
			return -1, p.syntaxError("want a value")
		}
		p.i += len(lit)
	}
	d.nodes[v].end = int32(p.i)
	if c := d.b[start]; c != '{' && c != '[' {
		d.nodes[v].hash = mergeLeafHash(d.b[start:p.i])
	}
	return v, nil
}

func (p *mergeParser) enter() error {
	if p.depth++; p.depth > mergeMaxNesting {
		return p.syntaxError("nesting deeper than " + strconv.Itoa(mergeMaxNesting))
	}
	return nil
}

// object parses the members of the object v at p.i.
func (p *mergeParser) object(v int32) error {
	d := p.d
	if err := p.enter(); err != nil {
		return err
	}
	defer func() { p.depth-- }()
	p.i++ // '{'
	if p.consume('}') {
		d.nodes[v].hash = mergeMix(mergeTagObject)
		return nil
	}
	last := int32(-1)
	for {
		p.space()
		ks := p.i
		escaped, err := p.str()
		if err != nil {
			return err
		}
		keyRaw := d.b[ks:p.i]
		name := keyRaw[1 : len(keyRaw)-1]
		if escaped {
			s, ok := decodeMergeString(keyRaw)
			if !ok {
				return &mergeSyntaxError{msg: "bad property name", off: ks}
			}
			name = []byte(s)
		}
		nh := maphash.Bytes(mergeSeed, name)
		if d.get(v, name, nh) >= 0 {
			return &mergeDuplicateError{name: string(name), rev: []string{string(name)}}
		}
		if !p.consume(':') {
			return p.syntaxError("want ':'")
		}
		c, err := p.value()
		if err != nil {
			return mergeWithin(err, string(name))
		}
		d.nodes[c].keyStart, d.nodes[c].keyEnd = int32(ks), int32(ks+len(keyRaw))
		d.nodes[c].nameHash = nh
		if escaped {
			if d.names == nil {
				d.names = make(map[int32][]byte)
			}
			d.nodes[c].escaped = true
			d.names[c] = name
		}
		last = p.link(v, last, c)
		d.nodes[v].hash += mergeMemberHash(nh, d.nodes[c].hash)
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
			d.nodes[v].hash = mergeMix(d.nodes[v].hash + mergeTagObject)
			return nil
		}
		return p.syntaxError("want ',' or '}'")
	}
}

// array parses the elements of the array v at p.i.
func (p *mergeParser) array(v int32) error {
	d := p.d
	if err := p.enter(); err != nil {
		return err
	}
	defer func() { p.depth-- }()
	p.i++ // '['
	h := uint64(mergeTagArray)
	if p.consume(']') {
		d.nodes[v].hash = mergeMix(h)
		return nil
	}
	last := int32(-1)
	for {
		c, err := p.value()
		if err != nil {
			return mergeWithin(err, strconv.Itoa(int(d.nodes[v].n)))
		}
		last = p.link(v, last, c)
		h = mergeMix(h^d.nodes[c].hash) * 0x9e3779b97f4a7c15
		if p.consume(',') {
			continue
		}
		if p.consume(']') {
			d.nodes[v].hash = mergeMix(h)
			return nil
		}
		return p.syntaxError("want ',' or ']'")
	}
}

// link appends node c to the children of node v, whose last child so far
// is last (-1: none), and returns c.
func (p *mergeParser) link(v, last, c int32) int32 {
	nodes := p.d.nodes
	if last >= 0 {
		nodes[last].next = c
	} else {
		nodes[v].first = c
	}
	nodes[v].n++
	return c
}

// mergeCountValues returns a bound on the number of values in b if it is
// valid JSON: every value but the top-level one follows a ':', a ',' or a
// '[', and no more than half of the bytes can start one.
func mergeCountValues(b []byte) int {
	n, limit := 1, len(b)/2+1
	for i := 0; i < len(b); i++ {
		switch b[i] {
		case '"':
			i = jsonscan.SkipString(b, i) - 1
		case ':', ',', '[':
			n++
		}
	}
	return min(n, limit)
}
