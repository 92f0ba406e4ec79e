// Package csdk_test runs the native tests of the C SDK (edgesync.c) and of
// the C example resolvers: the C test drivers are compiled with gcc (with
// AddressSanitizer and UndefinedBehaviorSanitizer when gcc has them, so that
// a read outside the input fails the test) and run; then the SDK's JSON
// scanner, compaction and string decoding are checked against encoding/json
// on generated inputs, and every output of the resolvers on generated
// conflicts is checked to be a decision the hub accepts.
package csdk_test

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"
)

// maxDepth is ES_MAX_DEPTH: the C SDK refuses deeper nesting, where
// encoding/json allows 10000 levels.
const maxDepth = 128

// drivers are the C test programs: name, then sources (relative to this
// directory) compiled with edgesync.c.
var drivers = []struct {
	name string
	srcs []string
}{
	{"sdk", []string{"sdk_test.c"}},
	{"counter", []string{"../../examples/counter/c/counter.c", "../../examples/counter/c/counter_test.c"}},
	{"cart", []string{"../../examples/cart-merge/c/cart.c", "../../examples/cart-merge/c/cart_test.c"}},
}

func TestCSDK(t *testing.T) {
	gcc, err := exec.LookPath("gcc")
	if err != nil {
		t.Skip("gcc is not installed: the C SDK's native tests need it (apt-get install gcc)")
	}
	dir := t.TempDir()
	flags := []string{"-std=c11", "-O1", "-g", "-Wall", "-Wextra", "-Werror", "-I", "."}
	env := os.Environ()
	if san := sanitizers(t, gcc, dir); san != nil {
		flags = append(flags, san...)
		env = append(env, "ASAN_OPTIONS=detect_leaks=1:abort_on_error=0", "UBSAN_OPTIONS=print_stacktrace=1")
	} else {
		t.Log("gcc cannot build with -fsanitize=address,undefined here: testing without sanitizers")
	}
	bins := map[string]string{}
	for _, d := range drivers {
		bin := filepath.Join(dir, d.name)
		args := append(append(append([]string{}, flags...), "edgesync.c"), d.srcs...)
		args = append(args, "-o", bin)
		if out, err := exec.Command(gcc, args...).CombinedOutput(); err != nil {
			t.Fatalf("gcc %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		bins[d.name] = bin
	}

	for _, d := range drivers {
		t.Run("unit/"+d.name, func(t *testing.T) {
			cmd := exec.Command(bins[d.name])
			cmd.Env = env
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("%s: %v\n%s", d.name, err, out)
			}
			t.Logf("%s", bytes.TrimSpace(out))
		})
	}
	t.Run("valid=encoding/json", func(t *testing.T) { testValid(t, bins["sdk"], env) })
	t.Run("compact=json.Compact", func(t *testing.T) { testCompact(t, bins["sdk"], env) })
	t.Run("decode=json.Unmarshal", func(t *testing.T) { testDecode(t, bins["sdk"], env) })
	t.Run("outputs/sdk", func(t *testing.T) { testOutputs(t, bins["sdk"], env, sdkWant) })
	t.Run("outputs/counter", func(t *testing.T) { testOutputs(t, bins["counter"], env, counterWant) })
	t.Run("outputs/cart", func(t *testing.T) { testOutputs(t, bins["cart"], env, cartWant) })
}

// sanitizers returns the sanitizer flags if gcc can build and run with them.
func sanitizers(t *testing.T, gcc, dir string) []string {
	flags := []string{"-fsanitize=address,undefined", "-fno-sanitize-recover=all", "-fno-omit-frame-pointer"}
	src := filepath.Join(dir, "probe.c")
	bin := filepath.Join(dir, "probe")
	if err := os.WriteFile(src, []byte("#include <stdlib.h>\nint main(void){free(malloc(1));return 0;}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := exec.Command(gcc, append(flags, src, "-o", bin)...).Run(); err != nil {
		return nil
	}
	if err := exec.Command(bin).Run(); err != nil {
		return nil
	}
	return flags
}

// records runs bin in mode with the records on stdin (4-byte little-endian
// length, then the bytes) and returns its stdout.
func records(t *testing.T, bin, mode string, env []string, in [][]byte) []byte {
	t.Helper()
	var stdin bytes.Buffer
	for _, r := range in {
		stdin.Write(binary.LittleEndian.AppendUint32(nil, uint32(len(r))))
		stdin.Write(r)
	}
	cmd := exec.Command(bin, mode)
	cmd.Env = env
	cmd.Stdin = &stdin
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", filepath.Base(bin), mode, err, stderr.Bytes())
	}
	return out
}

// splitRecords splits length-prefixed records; a length of 0xffffffff is
// returned as nil ("invalid").
func splitRecords(t *testing.T, b []byte, n int) [][]byte {
	t.Helper()
	var out [][]byte
	for len(b) > 0 {
		if len(b) < 4 {
			t.Fatal("truncated record header")
		}
		l := binary.LittleEndian.Uint32(b)
		b = b[4:]
		if l == 0xffffffff {
			out = append(out, nil)
			continue
		}
		if uint32(len(b)) < l {
			t.Fatal("truncated record")
		}
		out = append(out, append([]byte{}, b[:l]...))
		b = b[l:]
	}
	if len(out) != n {
		t.Fatalf("got %d records, want %d", len(out), n)
	}
	return out
}

// ------------------------------------------------------------ generation

// gen generates JSON text, deterministically.
type gen struct{ r *rand.Rand }

func newGen(seed uint64) *gen { return &gen{rand.New(rand.NewPCG(seed, 0x5eed))} }

func (g *gen) pick(s ...string) string { return s[g.r.IntN(len(s))] }

func (g *gen) ws() string {
	if g.r.IntN(3) != 0 {
		return ""
	}
	return g.pick(" ", "\n", "\t", "\r\n  ", "  ")
}

func (g *gen) number() string {
	var b strings.Builder
	if g.r.IntN(3) == 0 {
		b.WriteByte('-')
	}
	switch g.r.IntN(4) {
	case 0:
		b.WriteByte('0')
	case 1:
		fmt.Fprint(&b, g.r.IntN(10))
	default:
		fmt.Fprint(&b, 1+g.r.Uint64N(1<<63-1)>>g.r.IntN(64))
	}
	if g.r.IntN(4) == 0 {
		fmt.Fprintf(&b, ".%d", g.r.IntN(1000))
	}
	if g.r.IntN(5) == 0 {
		fmt.Fprintf(&b, "%s%s%d", g.pick("e", "E"), g.pick("", "+", "-"), g.r.IntN(400))
	}
	return b.String()
}

func (g *gen) str() string {
	var b strings.Builder
	b.WriteByte('"')
	for range g.r.IntN(8) {
		switch g.r.IntN(10) {
		case 0:
			b.WriteString(g.pick(`\"`, `\\`, `\/`, `\b`, `\f`, `\n`, `\r`, `\t`))
		case 1:
			fmt.Fprintf(&b, `\u%04x`, g.r.IntN(0x10000))
		case 2:
			fmt.Fprintf(&b, `\u%04X\u%04x`, 0xD800+g.r.IntN(0x400), 0xDC00+g.r.IntN(0x400))
		case 3:
			b.WriteString(g.pick("é", "€", "😀", "ß", "\u2028"))
		case 4:
			if g.r.IntN(4) == 0 {
				b.WriteByte(0x80 + byte(g.r.IntN(0x80))) // invalid UTF-8 is valid JSON to encoding/json
			} else {
				b.WriteString("ok")
			}
		default: // printable ASCII but the quote and the backslash
			c := byte(' ' + g.r.IntN(95))
			if c == '"' || c == '\\' {
				c = 'x'
			}
			b.WriteByte(c)
		}
	}
	b.WriteByte('"')
	return b.String()
}

func (g *gen) value(depth int) string {
	k := g.r.IntN(10)
	if depth >= 5 {
		k = g.r.IntN(6)
	}
	switch k {
	case 0:
		return g.pick("null", "true", "false")
	case 1, 2:
		return g.number()
	case 3, 4, 5:
		return g.str()
	case 6, 7:
		n := g.r.IntN(5)
		parts := make([]string, n)
		for i := range parts {
			parts[i] = g.ws() + g.value(depth+1) + g.ws()
		}
		return "[" + g.ws() + strings.Join(parts, ",") + "]"
	default:
		return g.object(depth, g.r.IntN(5), nil)
	}
}

// object generates an object with n random members plus the given ones
// (key: raw value), keys distinct.
func (g *gen) object(depth, n int, fixed map[string]string) string {
	seen := map[string]bool{}
	var parts []string
	add := func(k, v string) {
		parts = append(parts, g.ws()+k+g.ws()+":"+g.ws()+v+g.ws())
	}
	for k, v := range sortedMap(fixed) {
		seen[k] = true
		add(`"`+k+`"`, v)
	}
	for range n {
		k := g.str()
		var dk string
		if json.Unmarshal([]byte(k), &dk) != nil || seen[dk] || !utf8.ValidString(dk) {
			continue
		}
		seen[dk] = true
		add(k, g.value(depth+1))
	}
	g.r.Shuffle(len(parts), func(i, j int) { parts[i], parts[j] = parts[j], parts[i] })
	return "{" + g.ws() + strings.Join(parts, ",") + "}"
}

// sortedMap iterates m in key order (for determinism).
func sortedMap(m map[string]string) func(func(string, string) bool) {
	return func(yield func(string, string) bool) {
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		for i := range keys {
			for j := i + 1; j < len(keys); j++ {
				if keys[j] < keys[i] {
					keys[i], keys[j] = keys[j], keys[i]
				}
			}
		}
		for _, k := range keys {
			if !yield(k, m[k]) {
				return
			}
		}
	}
}

// mutate damages b a little: a byte deleted, inserted, replaced, or the
// text cut short.
func (g *gen) mutate(b []byte) []byte {
	b = append([]byte{}, b...)
	const alphabet = "{}[],:\"\\ \n0123456789-+.eEtrufalsn\x00\x01\x7f\xc3\xff"
	for range 1 + g.r.IntN(3) {
		i := 0
		if len(b) > 0 {
			i = g.r.IntN(len(b) + 1)
		}
		c := alphabet[g.r.IntN(len(alphabet))]
		switch g.r.IntN(4) {
		case 0:
			if i < len(b) {
				b = append(b[:i], b[i+1:]...)
			}
		case 1:
			b = append(b[:i], append([]byte{c}, b[i:]...)...)
		case 2:
			if i < len(b) {
				b[i] = c
			}
		default:
			b = b[:i]
		}
	}
	return b
}

// depth is the nesting depth of b, counting brackets outside strings.
func depth(b []byte) int {
	d, m, in, esc := 0, 0, false, false
	for _, c := range b {
		switch {
		case in && esc:
			esc = false
		case in && c == '\\':
			esc = true
		case in && c == '"':
			in = false
		case in:
		case c == '"':
			in = true
		case c == '[' || c == '{':
			d++
			m = max(m, d)
		case c == ']' || c == '}':
			d--
		}
	}
	return m
}

// corpus is generated values, damaged copies of them, and fixed edge cases.
func corpus(seed uint64, n int) [][]byte {
	g := newGen(seed)
	out := [][]byte{
		nil, []byte(" "), []byte("0"), []byte("-0"), []byte("1e5"), []byte(`"\ud800"`), []byte(`"\udc00\ud800x"`),
		[]byte(strings.Repeat("[", maxDepth) + strings.Repeat("]", maxDepth)),
		[]byte(strings.Repeat("[", maxDepth+1) + strings.Repeat("]", maxDepth+1)),
		[]byte(strings.Repeat(`{"a":`, maxDepth) + "1" + strings.Repeat("}", maxDepth)),
		[]byte(strings.Repeat(`{"a":`, maxDepth+1) + "1" + strings.Repeat("}", maxDepth+1)),
		[]byte("\xef\xbb\xbf{}"), []byte("{}\x00"), []byte(`"a` + "\x00" + `"`),
	}
	for range n {
		v := []byte(g.ws() + g.value(0) + g.ws())
		out = append(out, v, g.mutate(v))
	}
	return out
}

// ------------------------------------------------------------- the checks

func testValid(t *testing.T, bin string, env []string) {
	in := corpus(1, 10000)
	out := records(t, bin, "valid", env, in)
	if len(out) != len(in) {
		t.Fatalf("got %d verdicts for %d inputs", len(out), len(in))
	}
	valid, deep := 0, 0
	for i, b := range in {
		got, want := out[i] == '1', json.Valid(b)
		if want && depth(b) > maxDepth {
			want = false // the SDK's documented limit
			deep++
		}
		if got != want {
			t.Errorf("valid(%q) = %v, encoding/json says %v", b, got, want)
		}
		if got {
			valid++
		}
	}
	if deep < 2 || valid < len(in)/3 || valid > len(in)*9/10 {
		t.Fatalf("a poor corpus: %d of %d valid, %d too deep", valid, len(in), deep)
	}
}

func testCompact(t *testing.T, bin string, env []string) {
	in := corpus(2, 5000)
	out := splitRecords(t, records(t, bin, "compact", env, in), len(in))
	for i, b := range in {
		var want bytes.Buffer
		err := json.Compact(&want, b)
		if err != nil || depth(b) > maxDepth {
			if out[i] != nil {
				t.Errorf("compact(%q) = %q, want invalid", b, out[i])
			}
			continue
		}
		if !bytes.Equal(out[i], want.Bytes()) {
			t.Errorf("compact(%q) = %q, json.Compact says %q", b, out[i], want.Bytes())
		}
	}
}

func testDecode(t *testing.T, bin string, env []string) {
	g := newGen(3)
	var in [][]byte
	for range 5000 {
		s := []byte(g.str())
		in = append(in, s, g.mutate(s))
	}
	out := splitRecords(t, records(t, bin, "decode", env, in), len(in))
	for i, b := range in {
		var want string
		err := json.Unmarshal(b, &want)
		switch {
		case err != nil:
			if out[i] != nil {
				t.Errorf("decode(%q) = %q, want invalid (%v)", b, out[i], err)
			}
		case !utf8.Valid(b):
			// encoding/json replaces invalid UTF-8 with U+FFFD; the SDK
			// keeps the bytes (documented). Only validity must agree.
			if out[i] == nil {
				t.Errorf("decode(%q) = invalid, want valid", b)
			}
		case string(out[i]) != want:
			t.Errorf("decode(%q) = %q, encoding/json says %q", b, out[i], want)
		}
	}
}

// decision is a resolver's output as the hub reads it (resolvers/ABI.md).
type decision struct {
	Action   string          `json:"action"`
	Document json.RawMessage `json:"document"`
	Reason   *string         `json:"reason"`
}

// parseDecision checks out as strictly as the hub does.
func parseDecision(out []byte) (decision, error) {
	var d decision
	if !json.Valid(out) {
		return d, errors.New("not JSON")
	}
	dec := json.NewDecoder(bytes.NewReader(out))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&d); err != nil {
		return d, err
	}
	if dec.More() {
		return d, errors.New("data after the decision")
	}
	switch d.Action {
	case "incoming", "existing", "delete", "defer":
		if d.Document != nil {
			return d, errors.New("a document without merge")
		}
	case "merge":
		if len(d.Document) == 0 || d.Document[0] != '{' {
			return d, errors.New("merge without an object document")
		}
	default:
		return d, fmt.Errorf("unknown action %q", d.Action)
	}
	if d.Reason != nil && (len(*d.Reason) > 1024 || !utf8.ValidString(*d.Reason)) {
		return d, errors.New("reason too long or not UTF-8")
	}
	if d.Reason != nil {
		// The raw reason must be valid UTF-8 too (encoding/json would
		// have replaced bad bytes silently).
		var raw struct{ Reason json.RawMessage }
		_ = json.Unmarshal(out, &raw)
		if !utf8.Valid(raw.Reason) {
			return d, errors.New("reason bytes are not UTF-8")
		}
	}
	return d, nil
}

// conflict is a generated resolver input and its documents.
type conflict struct {
	input                    []byte
	base, existing, incoming string // "" for null
	damaged                  bool   // input was mutated: the documents may not be in it
}

// conflicts generates inputs for the example resolvers: documents with a
// "count" and "items" (mostly well-formed, sometimes not), deletes, missing
// bases, and some inputs that are not valid at all.
func conflicts(seed uint64, n int) []conflict {
	g := newGen(seed)
	pool := []string{`"a"`, `"b"`, `"c"`, `1`, `"1"`, `{"sku":1}`, `{ "sku" : 1 }`, `[1,[2]]`, `null`, `true`, `"é"`}
	items := func() string {
		switch g.r.IntN(12) {
		case 0:
			return g.value(2)
		case 1:
			return "null"
		}
		var parts []string
		for range g.r.IntN(6) {
			parts = append(parts, g.ws()+pool[g.r.IntN(len(pool))]+g.ws())
		}
		return "[" + strings.Join(parts, ",") + "]"
	}
	count := func() string {
		switch g.r.IntN(12) {
		case 0:
			return g.value(2)
		case 1:
			return g.pick("9223372036854775807", "-9223372036854775808", "1.5", "1e3", "null")
		}
		return fmt.Sprint(g.r.IntN(200) - 50)
	}
	doc := func() string {
		switch g.r.IntN(20) {
		case 0:
			return ""
		case 1:
			if v := g.value(1); v != "null" {
				return v
			}
			return ""
		}
		fixed := map[string]string{"id": `"x"`}
		if g.r.IntN(8) != 0 {
			fixed["count"] = count()
		}
		if g.r.IntN(8) != 0 {
			fixed["items"] = items()
		}
		return g.object(1, g.r.IntN(3), fixed)
	}
	null := func(s string) string {
		if s == "" {
			return "null"
		}
		return s
	}
	var out []conflict
	for range n {
		c := conflict{base: doc(), existing: doc(), incoming: doc()}
		kind := g.pick("insert", "replace", "delete")
		if kind == "insert" {
			c.base = ""
		}
		c.input = fmt.Appendf(nil, `{"kind":%q,"container":"c","id":"x","incoming":%s,"existing":%s,"base":%s,"isTombstone":%v,"conflicting":[%s]}`,
			kind, null(c.incoming), null(c.existing), null(c.base), c.incoming == "" || c.existing == "", g.value(3))
		if g.r.IntN(25) == 0 {
			c.input, c.damaged = g.mutate(c.input), true
		}
		out = append(out, c)
	}
	return out
}

// testOutputs runs bin on generated conflicts: every output must be a
// valid decision; want (if not nil) gives the expected decision of
// conflicts it can judge.
func testOutputs(t *testing.T, bin string, env []string, want func(c conflict) (decision, bool)) {
	cs := conflicts(4, 3000)
	in := make([][]byte, len(cs))
	for i, c := range cs {
		in[i] = c.input
	}
	outs := splitRecords(t, records(t, bin, "run", env, in), len(in))
	actions := map[string]int{}
	for i, out := range outs {
		d, err := parseDecision(out)
		if err != nil {
			t.Fatalf("input %s\noutput %s\nis not a valid decision: %v", in[i], out, err)
		}
		actions[d.Action]++
		if !json.Valid(in[i]) {
			if d.Action != "defer" {
				t.Errorf("input %q is not JSON, output %s: want a defer", in[i], out)
			}
			continue
		}
		if want == nil || cs[i].damaged {
			continue
		}
		w, ok := want(cs[i])
		if !ok {
			continue
		}
		if d.Action != w.Action || !jsonEqual(d.Document, w.Document) {
			t.Errorf("input %s\noutput %s\nwant action %s document %s", in[i], out, w.Action, w.Document)
		}
	}
	t.Logf("actions: %v", actions)
	if want != nil && (actions["merge"] < len(cs)/4 || actions["defer"] == 0) {
		t.Fatalf("a poor corpus: %v", actions)
	}
}

func jsonEqual(a, b []byte) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	var va, vb any
	decode := func(b []byte, v *any) error {
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.UseNumber() // numbers as written: 9e+399 is valid JSON
		return dec.Decode(v)
	}
	if decode(a, &va) != nil || decode(b, &vb) != nil {
		return false
	}
	ea, _ := json.Marshal(va)
	eb, _ := json.Marshal(vb)
	return bytes.Equal(ea, eb)
}

// member returns the raw value of key in the object doc (nil if absent).
func member(doc string, key string) (json.RawMessage, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal([]byte(doc), &m); err != nil {
		return nil, err
	}
	if m == nil {
		return nil, errors.New("not an object")
	}
	return m[key], nil
}

// with returns doc with key set to value, as a generic value.
func with(doc, key string, value []byte) json.RawMessage {
	var m map[string]json.RawMessage
	_ = json.Unmarshal([]byte(doc), &m)
	m[key] = value
	b, _ := json.Marshal(m)
	return b
}

// sdkWant is what sdk_test.c's resolver does: existing with "seen": true
// and "walk": existing again, walked with the SDK's iterators.
func sdkWant(c conflict) (decision, bool) {
	if _, err := member(c.existing, "id"); c.existing == "" || err != nil {
		return decision{Action: "defer"}, true
	}
	doc := with(string(with(c.existing, "seen", []byte("true"))), "walk", []byte(c.existing))
	return decision{Action: "merge", Document: doc}, true
}

// counterWant is the counter's rule, after the Go build of the example.
func counterWant(c conflict) (decision, bool) {
	switch {
	case c.incoming == "":
		return decision{Action: "incoming"}, true
	case c.existing == "":
		return decision{Action: "existing"}, true
	}
	count := func(doc string) (*big.Int, bool) {
		v, err := member(doc, "count")
		if err != nil {
			return nil, false
		}
		var n int64
		if v != nil && json.Unmarshal(v, &n) != nil {
			return nil, false
		}
		return big.NewInt(n), true
	}
	inc, ok1 := count(c.incoming)
	ex, ok2 := count(c.existing)
	base, ok3 := big.NewInt(0), true
	if c.base != "" {
		base, ok3 = count(c.base)
	}
	if !ok1 || !ok2 || !ok3 {
		return decision{Action: "defer"}, true
	}
	total := new(big.Int).Sub(new(big.Int).Add(inc, ex), base)
	if !total.IsInt64() {
		return decision{Action: "defer"}, true
	}
	return decision{Action: "merge", Document: with(c.existing, "count", []byte(total.String()))}, true
}

// cartWant is the cart's rule, after the Go build of the example.
func cartWant(c conflict) (decision, bool) {
	switch {
	case c.incoming == "":
		return decision{Action: "incoming"}, true
	case c.existing == "":
		return decision{Action: "existing"}, true
	}
	items := func(doc string) ([]string, bool) {
		v, err := member(doc, "items")
		if err != nil {
			return nil, false
		}
		var elems []json.RawMessage
		if v != nil && json.Unmarshal(v, &elems) != nil {
			return nil, false
		}
		out := make([]string, len(elems))
		for i, e := range elems {
			var b bytes.Buffer
			_ = json.Compact(&b, e)
			out[i] = b.String()
		}
		return out, true
	}
	set := func(s []string) map[string]bool {
		m := map[string]bool{}
		for _, e := range s {
			m[e] = true
		}
		return m
	}
	inc, ok1 := items(c.incoming)
	ex, ok2 := items(c.existing)
	var base []string
	ok3 := true
	if c.base != "" {
		base, ok3 = items(c.base)
	}
	if !ok1 || !ok2 || !ok3 {
		return decision{Action: "defer"}, true
	}
	inBase, inInc, inEx, added := set(base), set(inc), set(ex), map[string]bool{}
	var out []string
	for _, e := range ex {
		if (!inBase[e] || inInc[e]) && !added[e] {
			added[e] = true
			out = append(out, e)
		}
	}
	for _, e := range inc {
		if !inBase[e] && !inEx[e] && !added[e] {
			added[e] = true
			out = append(out, e)
		}
	}
	return decision{Action: "merge", Document: with(c.existing, "items", []byte("["+strings.Join(out, ",")+"]"))}, true
}
