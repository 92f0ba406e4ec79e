package jsonscan

import (
	"encoding/json"
	"math/rand/v2"
	"strings"
	"testing"
)

// scanValid is json.Valid through Value: white space around one value.
func scanValid(b []byte) bool {
	i := 0
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	end, ok := Value(b, i, jsonMaxNesting)
	if !ok {
		return false
	}
	for ; end < len(b); end++ {
		if c := b[end]; c != ' ' && c != '\t' && c != '\n' && c != '\r' {
			return false
		}
	}
	return true
}

func TestScanJSON(t *testing.T) {
	for _, in := range []string{
		`{}`, `[]`, `""`, `0`, `-0`, `1.5e-3`, `1E+2`, `true`, `false`, `null`, ` {"a" : [1, {"b":null}] } `,
		`"\"\\\/\b\f\n\r\t\u00e9\uD83D\uDE00"`, "\"\xff\xfe\"", `[1,2,]`, `{"a":1,}`, `{"a" 1}`, `01`, `1.`, `.5`, `1e`, `-`,
		`+1`, `"\x"`, `"\u12"`, `"a`, "\"\t\"", `[1 2]`, `{1:2}`, `tru`, `nul`, `{"a":1}}`, `[`, ``, ` `, `{"a":"b"`,
		strings.Repeat("[", 10000) + strings.Repeat("]", 10000),
		strings.Repeat("[", 10001) + strings.Repeat("]", 10001),
	} {
		if got, want := scanValid([]byte(in)), json.Valid([]byte(in)); got != want {
			t.Errorf("%.40q: Value says %v, encoding/json %v", in, got, want)
		}
	}
}

func FuzzScanJSON(f *testing.F) {
	for _, s := range []string{`{"id":"a","n":[1,-2.5e3,true,null,{"x":"\u00e9\n"}]}`, `[`, `"\ud800"`, `1e+`, "\"\x01\""} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if got, want := scanValid(b), json.Valid(b); got != want {
			t.Fatalf("%q: Value says %v, encoding/json %v", b, got, want)
		}
	})
}

// plainRun finds the same byte as a byte-by-byte scan, from every start,
// in strings made of the bytes around each threshold it tests.
func TestPlainRun(t *testing.T) {
	alphabet := []byte{0x00, 0x01, 0x1f, 0x20, 0x21, '"', 0x23, '[', '\\', ']', 0x7f, 0x80, 0xa2, 0xdc, 0xff, 'x'}
	naive := func(b []byte, j int) int {
		for ; j < len(b); j++ {
			if c := b[j]; c == '"' || c == '\\' || c < 0x20 {
				return j
			}
		}
		return j
	}
	rng := rand.New(rand.NewPCG(3, 4))
	for range 20000 {
		b := make([]byte, rng.IntN(40))
		for i := range b {
			b[i] = 'x'
			if rng.IntN(6) == 0 {
				b[i] = alphabet[rng.IntN(len(alphabet))]
			}
		}
		for j := 0; j <= len(b); j++ {
			if got, want := plainRun(b, j), naive(b, j); got != want {
				t.Fatalf("plainRun(%q, %d) = %d, want %d", b, j, got, want)
			}
		}
	}
}

// String and Number say what is wrong with a malformed value and where,
// the byte at fault, for the parsers that report it.
func TestString_Number(t *testing.T) {
	for _, tt := range []struct {
		name, in    string
		number      bool
		wantEnd     int
		wantEscaped bool
		wantBad     string
	}{
		{name: "plain", in: `"abc" `, wantEnd: 5},
		{name: "escapes", in: `"a\n\u00e9\"" `, wantEnd: 13, wantEscaped: true},
		{name: "long plain run", in: `"` + strings.Repeat("x", 40) + `"`, wantEnd: 42},
		{name: "not a string", in: `abc`, wantEnd: 0, wantBad: "want a string"},
		{name: "control character", in: "\"ab\x01\"", wantEnd: 3, wantBad: "control character in a string"},
		{name: "unterminated", in: `"abc`, wantEnd: 4, wantBad: "unterminated string"},
		{name: "backslash at end", in: `"ab\`, wantEnd: 4, wantBad: "unterminated string"},
		{name: "bad escape", in: `"a\x"`, wantEnd: 3, wantBad: "bad escape"},
		{name: "bad u escape", in: `"\u12g4"`, wantEnd: 5, wantBad: `bad \u escape`},
		{name: "short u escape", in: `"\u12`, wantEnd: 5, wantBad: `bad \u escape`},
		{name: "integer", in: `-120,`, number: true, wantEnd: 4},
		{name: "fraction and exponent", in: `0.5e+10]`, number: true, wantEnd: 7},
		{name: "leading zero ends the number", in: `01`, number: true, wantEnd: 1},
		{name: "minus alone", in: `-x`, number: true, wantEnd: 1, wantBad: "want a digit"},
		{name: "no digit after point", in: `1.e5`, number: true, wantEnd: 2, wantBad: "want a digit after '.'"},
		{name: "no exponent digit", in: `1e+`, number: true, wantEnd: 3, wantBad: "want a digit in the exponent"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var end int
			var escaped bool
			var bad string
			if tt.number {
				end, bad = Number([]byte(tt.in), 0)
			} else {
				end, escaped, bad = String([]byte(tt.in), 0)
			}
			if end != tt.wantEnd || escaped != tt.wantEscaped || bad != tt.wantBad {
				t.Fatalf("%q: end %d, escaped %t, bad %q; want %d, %t, %q", tt.in, end, escaped, bad, tt.wantEnd, tt.wantEscaped, tt.wantBad)
			}
		})
	}
}
