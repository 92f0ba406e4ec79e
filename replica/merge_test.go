package replica_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/edgesync/edgesync/replica"
)

func TestMergeJSON(t *testing.T) {
	tests := []struct {
		name                     string
		base, existing, incoming string // base "" means nil: the ancestor is unknown
		wantIncomingWins         string // the result when incoming wins last-writer-wins
		wantExistingWins         string // the result when existing wins
	}{
		{
			name:             "disjoint changes both survive",
			base:             `{"id":"prod-123","name":"Super Widget","price":19.99}`,
			existing:         `{"id":"prod-123","name":"Super Widget","price":21.99}`,
			incoming:         `{"id":"prod-123","name":"Super Widget","price":19.99,"tags":["sale"]}`,
			wantIncomingWins: `{"id":"prod-123","name":"Super Widget","price":21.99,"tags":["sale"]}`,
			wantExistingWins: `{"id":"prod-123","name":"Super Widget","price":21.99,"tags":["sale"]}`,
		},
		{
			name:             "disjoint changes both survive, sides swapped",
			base:             `{"id":"prod-123","name":"Super Widget","price":19.99}`,
			existing:         `{"id":"prod-123","name":"Super Widget","price":19.99,"tags":["sale"]}`,
			incoming:         `{"id":"prod-123","name":"Super Widget","price":21.99}`,
			wantIncomingWins: `{"id":"prod-123","name":"Super Widget","price":21.99,"tags":["sale"]}`,
			wantExistingWins: `{"id":"prod-123","name":"Super Widget","price":21.99,"tags":["sale"]}`,
		},
		{
			name:             "clash on the same field goes to the winner",
			base:             `{"id":"prod-123","price":19.99,"region":"East US"}`,
			existing:         `{"id":"prod-123","price":21.99,"region":"East US"}`,
			incoming:         `{"id":"prod-123","price":20.99,"region":"West US"}`,
			wantIncomingWins: `{"id":"prod-123","price":20.99,"region":"West US"}`,
			wantExistingWins: `{"id":"prod-123","price":21.99,"region":"West US"}`,
		},
		{
			name:             "same change on both sides is no clash",
			base:             `{"id":"a","n":1,"s":"x"}`,
			existing:         `{"id":"a","n":2,"s":"x"}`,
			incoming:         `{"id":"a","n":2,"s":"y"}`,
			wantIncomingWins: `{"id":"a","n":2,"s":"y"}`,
			wantExistingWins: `{"id":"a","n":2,"s":"y"}`,
		},
		{
			name:             "same change spelled differently keeps existing's bytes",
			base:             `{"id":"a","n":1}`,
			existing:         `{"id":"a","n":2.50}`,
			incoming:         `{"id":"a","n":25e-1}`,
			wantIncomingWins: `{"id":"a","n":2.50}`,
			wantExistingWins: `{"id":"a","n":2.50}`,
		},
		{
			name:             "removed by incoming, unchanged by existing",
			base:             `{"id":"a","note":"x","n":1}`,
			existing:         `{"id":"a","note":"x","n":2}`,
			incoming:         `{"id":"a","n":1}`,
			wantIncomingWins: `{"id":"a","n":2}`,
			wantExistingWins: `{"id":"a","n":2}`,
		},
		{
			name:             "removed by existing, unchanged by incoming",
			base:             `{"id":"a","note":"x","n":1}`,
			existing:         `{"id":"a","n":1}`,
			incoming:         `{"id":"a","note":"x","n":2}`,
			wantIncomingWins: `{"id":"a","n":2}`,
			wantExistingWins: `{"id":"a","n":2}`,
		},
		{
			name:             "removed by both",
			base:             `{"id":"a","note":"x"}`,
			existing:         `{"id":"a"}`,
			incoming:         `{"id":"a"}`,
			wantIncomingWins: `{"id":"a"}`,
			wantExistingWins: `{"id":"a"}`,
		},
		{
			name:             "removed by existing, changed by incoming",
			base:             `{"id":"a","note":"x","n":1}`,
			existing:         `{"id":"a","n":1}`,
			incoming:         `{"id":"a","note":"y","n":1}`,
			wantIncomingWins: `{"id":"a","n":1,"note":"y"}`,
			wantExistingWins: `{"id":"a","n":1}`,
		},
		{
			name:             "changed by existing, removed by incoming",
			base:             `{"id":"a","note":"x","n":1}`,
			existing:         `{"id":"a","note":"y","n":1}`,
			incoming:         `{"id":"a","n":1}`,
			wantIncomingWins: `{"id":"a","n":1}`,
			wantExistingWins: `{"id":"a","note":"y","n":1}`,
		},
		{
			name:             "added on both sides, equal",
			base:             `{"id":"a"}`,
			existing:         `{"id":"a","t":{"x":1,"y":2}}`,
			incoming:         `{"id":"a","t":{"y":2,"x":1}}`,
			wantIncomingWins: `{"id":"a","t":{"x":1,"y":2}}`,
			wantExistingWins: `{"id":"a","t":{"x":1,"y":2}}`,
		},
		{
			name:             "added on both sides, different",
			base:             `{"id":"a"}`,
			existing:         `{"id":"a","t":1}`,
			incoming:         `{"id":"a","t":2}`,
			wantIncomingWins: `{"id":"a","t":2}`,
			wantExistingWins: `{"id":"a","t":1}`,
		},
		{
			name:             "nested objects merge field by field",
			base:             `{"id":"a","addr":{"city":"Oslo","zip":"0150","geo":{"lat":59.9,"lon":10.7}}}`,
			existing:         `{"id":"a","addr":{"city":"Bergen","zip":"0150","geo":{"lat":60.4,"lon":10.7}}}`,
			incoming:         `{"id":"a","addr":{"city":"Oslo","zip":"5003","geo":{"lat":59.9,"lon":5.3},"floor":2}}`,
			wantIncomingWins: `{"id":"a","addr":{"city":"Bergen","zip":"5003","geo":{"lat":60.4,"lon":5.3},"floor":2}}`,
			wantExistingWins: `{"id":"a","addr":{"city":"Bergen","zip":"5003","geo":{"lat":60.4,"lon":5.3},"floor":2}}`,
		},
		{
			name:             "nested clash goes to the winner field by field",
			base:             `{"id":"a","addr":{"city":"Oslo","zip":"0150"}}`,
			existing:         `{"id":"a","addr":{"city":"Bergen","zip":"0150","x":1}}`,
			incoming:         `{"id":"a","addr":{"city":"Tromsø","zip":"0150","y":2}}`,
			wantIncomingWins: `{"id":"a","addr":{"city":"Tromsø","zip":"0150","x":1,"y":2}}`,
			wantExistingWins: `{"id":"a","addr":{"city":"Bergen","zip":"0150","x":1,"y":2}}`,
		},
		{
			name:             "object replaced by a scalar on one side, changed inside on the other",
			base:             `{"id":"a","o":{"x":1,"y":1}}`,
			existing:         `{"id":"a","o":{"x":2,"y":1}}`,
			incoming:         `{"id":"a","o":"gone"}`,
			wantIncomingWins: `{"id":"a","o":"gone"}`,
			wantExistingWins: `{"id":"a","o":{"x":2,"y":1}}`,
		},
		{
			name:             "object changed on one side only is taken whole with its order",
			base:             `{"id":"a","o":{"x":1,"y":1}}`,
			existing:         `{"id":"a","o":{"x":1,"y":1},"n":1}`,
			incoming:         `{"id":"a","o":{"y":1,"z":3,"x":2}}`,
			wantIncomingWins: `{"id":"a","o":{"y":1,"z":3,"x":2},"n":1}`,
			wantExistingWins: `{"id":"a","o":{"y":1,"z":3,"x":2},"n":1}`,
		},
		{
			name:             "scalar made an object on both sides merges against the empty object",
			base:             `{"id":"a","o":5}`,
			existing:         `{"id":"a","o":{"x":1,"s":"e"}}`,
			incoming:         `{"id":"a","o":{"y":2,"s":"i"}}`,
			wantIncomingWins: `{"id":"a","o":{"x":1,"s":"i","y":2}}`,
			wantExistingWins: `{"id":"a","o":{"x":1,"s":"e","y":2}}`,
		},
		{
			name:             "array made an object on both sides merges against the empty object",
			base:             `{"id":"a","o":[{"x":0}]}`,
			existing:         `{"id":"a","o":{"x":1}}`,
			incoming:         `{"id":"a","o":{"y":2}}`,
			wantIncomingWins: `{"id":"a","o":{"x":1,"y":2}}`,
			wantExistingWins: `{"id":"a","o":{"x":1,"y":2}}`,
		},
		{
			name:             "a member added inside an object, an element appended to an array",
			base:             `{"o":{"x":1},"l":[1]}`,
			existing:         `{"o":{"x":1},"l":[1]}`,
			incoming:         `{"o":{"x":1,"y":2},"l":[1,2]}`,
			wantIncomingWins: `{"o":{"x":1,"y":2},"l":[1,2]}`,
			wantExistingWins: `{"o":{"x":1,"y":2},"l":[1,2]}`,
		},
		{
			name:             "arrays are single values",
			base:             `{"id":"a","tags":["a","b"]}`,
			existing:         `{"id":"a","tags":["a","b","c"]}`,
			incoming:         `{"id":"a","tags":["b"]}`,
			wantIncomingWins: `{"id":"a","tags":["b"]}`,
			wantExistingWins: `{"id":"a","tags":["a","b","c"]}`,
		},
		{
			name:             "array of objects changed on one side only",
			base:             `{"id":"a","l":[{"x":1}],"n":1}`,
			existing:         `{"id":"a","l":[{"x":1}],"n":2}`,
			incoming:         `{"id":"a","l":[{"x":1},{"x":2}],"n":1}`,
			wantIncomingWins: `{"id":"a","l":[{"x":1},{"x":2}],"n":2}`,
			wantExistingWins: `{"id":"a","l":[{"x":1},{"x":2}],"n":2}`,
		},
		{
			name:             "unknown base: union, equal values kept, different values clash",
			existing:         `{"id":"a","x":1,"y":2,"same":[1]}`,
			incoming:         `{"id":"a","y":3,"z":4,"same":[1]}`,
			wantIncomingWins: `{"id":"a","x":1,"y":3,"same":[1],"z":4}`,
			wantExistingWins: `{"id":"a","x":1,"y":2,"same":[1],"z":4}`,
		},
		{
			name:             "unknown base: nested objects are a union too",
			existing:         `{"id":"a","o":{"a":1,"c":{"p":1}}}`,
			incoming:         `{"id":"a","o":{"b":2,"c":{"q":2}}}`,
			wantIncomingWins: `{"id":"a","o":{"a":1,"c":{"p":1,"q":2},"b":2}}`,
			wantExistingWins: `{"id":"a","o":{"a":1,"c":{"p":1,"q":2},"b":2}}`,
		},
		{
			name:             "number text is kept exactly",
			base:             `{"id":"a","p":1.10,"big":12345678901234567890,"huge":1e400,"n":0}`,
			existing:         `{"id":"a","p":1.10,"big":12345678901234567890,"huge":1e400,"n":-0.000}`,
			incoming:         `{"id":"a","p":1.10,"big":12345678901234567891,"huge":1e400,"n":0,"tiny":1E-400}`,
			wantIncomingWins: `{"id":"a","p":1.10,"big":12345678901234567891,"huge":1e400,"n":-0.000,"tiny":1E-400}`,
			wantExistingWins: `{"id":"a","p":1.10,"big":12345678901234567891,"huge":1e400,"n":-0.000,"tiny":1E-400}`,
		},
		{
			name:             "large integers differing in the last digit clash",
			base:             `{"id":"a","big":12345678901234567890}`,
			existing:         `{"id":"a","big":12345678901234567892}`,
			incoming:         `{"id":"a","big":12345678901234567891}`,
			wantIncomingWins: `{"id":"a","big":12345678901234567891}`,
			wantExistingWins: `{"id":"a","big":12345678901234567892}`,
		},
		{
			name:             "keys keep existing's order, then incoming's new keys in incoming's order",
			base:             `{"a":0,"b":0,"c":0}`,
			existing:         `{"c":0,"x":1,"a":0,"b":1}`,
			incoming:         `{"e":2,"b":0,"d":2,"a":3,"c":0,"f":2}`,
			wantIncomingWins: `{"c":0,"x":1,"a":3,"b":1,"e":2,"d":2,"f":2}`,
			wantExistingWins: `{"c":0,"x":1,"a":3,"b":1,"e":2,"d":2,"f":2}`,
		},
		{
			name:             "whitespace, key order and spelling create no clash",
			base:             `{"id":"a","o":{"x":1,"y":[1,2]},"s":"é","n":100}`,
			existing:         "{ \"s\" : \"\\u00e9\" ,\n\t\"o\" : { \"y\" : [ 1 , 2 ] , \"x\" : 1.0 } , \"id\" : \"a\", \"n\": 1e2, \"k\" : [ true ] }",
			incoming:         `{"id":"a","o":{"x":2,"y":[1,2]},"s":"é","n":100}`,
			wantIncomingWins: `{"s":"\u00e9","o":{"x":2,"y":[1,2]},"id":"a","n":1e2,"k":[ true ]}`,
			wantExistingWins: `{"s":"\u00e9","o":{"x":2,"y":[1,2]},"id":"a","n":1e2,"k":[ true ]}`,
		},
		{
			name:             "a string respelled on one side and changed on the other is no clash",
			base:             `{"s":"é","t":"\/"}`,
			existing:         `{"s":"\u00e9","t":"/"}`,
			incoming:         `{"s":"x","t":"y"}`,
			wantIncomingWins: `{"s":"x","t":"y"}`,
			wantExistingWins: `{"s":"x","t":"y"}`,
		},
		{
			name:             "escaped key spellings are the same key; existing's spelling is kept",
			base:             `{"a":1}`,
			existing:         `{"\u0061":1}`,
			incoming:         `{"a":2}`,
			wantIncomingWins: `{"\u0061":2}`,
			wantExistingWins: `{"\u0061":2}`,
		},
		{
			name:             "null, booleans and strings are single values",
			base:             `{"a":null,"b":true,"c":"x"}`,
			existing:         `{"a":false,"b":true,"c":"y"}`,
			incoming:         `{"a":0,"b":null,"c":"z"}`,
			wantIncomingWins: `{"a":0,"b":null,"c":"z"}`,
			wantExistingWins: `{"a":false,"b":null,"c":"y"}`,
		},
		{
			name:             "all removed",
			base:             `{"a":1}`,
			existing:         `{}`,
			incoming:         `{"a":1}`,
			wantIncomingWins: `{}`,
			wantExistingWins: `{}`,
		},
		{
			name:             "empty objects",
			base:             ` {} `,
			existing:         "\n{ }\n",
			incoming:         `{}`,
			wantIncomingWins: `{}`,
			wantExistingWins: `{}`,
		},
		{
			name:             "large objects use the same rules",
			base:             mergeTestWide(40, nil),
			existing:         mergeTestWide(40, map[int]string{3: `"e"`, 20: `"e"`}),
			incoming:         mergeTestWide(40, map[int]string{20: `"i"`, 35: `"i"`}),
			wantIncomingWins: mergeTestWide(40, map[int]string{3: `"e"`, 20: `"i"`, 35: `"i"`}),
			wantExistingWins: mergeTestWide(40, map[int]string{3: `"e"`, 20: `"e"`, 35: `"i"`}),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var base []byte
			if tt.base != "" {
				base = []byte(tt.base)
			}
			for _, incomingWins := range []bool{true, false} {
				want := tt.wantExistingWins
				if incomingWins {
					want = tt.wantIncomingWins
				}
				got, err := replica.MergeJSON(base, []byte(tt.existing), []byte(tt.incoming), incomingWins)
				if err != nil {
					t.Fatalf("MergeJSON(incomingWins=%v): %v", incomingWins, err)
				}
				if string(got) != want {
					t.Errorf("MergeJSON(incomingWins=%v)=%s, want %s", incomingWins, got, want)
				}
				// The sides swapped, with the same winner: the same document.
				swapped, err := replica.MergeJSON(base, []byte(tt.incoming), []byte(tt.existing), !incomingWins)
				if err != nil {
					t.Fatalf("MergeJSON(swapped, incomingWins=%v): %v", !incomingWins, err)
				}
				if !mergeTestSemEqual(t, swapped, []byte(want)) {
					t.Errorf("MergeJSON(swapped, incomingWins=%v)=%s, want the same document as %s", !incomingWins, swapped, want)
				}
			}
		})
	}
}

// mergeTestWide returns an object with keys k00..k(n-1), each 0 unless set.
func mergeTestWide(n int, set map[int]string) string {
	var sb strings.Builder
	sb.WriteByte('{')
	for i := range n {
		if i > 0 {
			sb.WriteByte(',')
		}
		v, ok := set[i]
		if !ok {
			v = "0"
		}
		fmt.Fprintf(&sb, `"k%02d":%s`, i, v)
	}
	sb.WriteByte('}')
	return sb.String()
}

func TestMergeJSON_UnknownBase(t *testing.T) {
	existing, incoming := []byte(`{"id":"a","x":1,"y":2}`), []byte(`{"id":"a","y":3,"z":4}`)
	want := `{"id":"a","x":1,"y":3,"z":4}`
	tests := []struct {
		name string
		base []byte
	}{
		{name: "nil", base: nil},
		{name: "empty", base: []byte{}},
		{name: "space", base: []byte(" \n")},
		{name: "null", base: []byte("null")},
		{name: "null with space", base: []byte(" null\n")},
		{name: "empty object", base: []byte("{}")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := replica.MergeJSON(tt.base, existing, incoming, true)
			if err != nil {
				t.Fatalf("MergeJSON: %v", err)
			}
			if string(got) != want {
				t.Errorf("MergeJSON=%s, want %s", got, want)
			}
		})
	}
}

func TestMergeJSON_Errors(t *testing.T) {
	const ok = `{"id":"a"}`
	wide := mergeTestWide(20, nil)
	wideDup := wide[:len(wide)-1] + `,"k07":1}`
	tests := []struct {
		name                     string
		base, existing, incoming string
		wantMsg                  string // a part of the error message
	}{
		{name: "existing is an array", existing: `[1]`, incoming: ok, wantMsg: "existing is a JSON array, want an object"},
		{name: "incoming is a string", existing: ok, incoming: `"x"`, wantMsg: "incoming is a JSON string"},
		{name: "incoming is a number", existing: ok, incoming: `1`, wantMsg: "incoming is a JSON number"},
		{name: "existing is null", existing: `null`, incoming: ok, wantMsg: "existing is a JSON null"},
		{name: "existing is a boolean", existing: `true`, incoming: ok, wantMsg: "existing is a JSON boolean"},
		{name: "base is an array", base: `[]`, existing: ok, incoming: ok, wantMsg: "base is a JSON array"},
		{name: "existing empty", existing: ``, incoming: ok, wantMsg: "existing is empty"},
		{name: "incoming only space", existing: ok, incoming: " \t", wantMsg: "incoming is empty"},
		{name: "malformed", existing: `{"a":`, incoming: ok, wantMsg: "existing is malformed JSON"},
		{name: "trailing data", existing: ok, incoming: `{} {}`, wantMsg: "incoming is malformed JSON: data after the top-level value at byte 3"},
		{name: "trailing comma", existing: `{"a":1,}`, incoming: ok, wantMsg: "existing is malformed JSON"},
		{name: "missing colon", existing: `{"a" 1}`, incoming: ok, wantMsg: "existing is malformed JSON: want ':'"},
		{name: "unquoted name", existing: `{a:1}`, incoming: ok, wantMsg: "existing is malformed JSON"},
		{name: "control character in a string", existing: "{\"a\":\"\x1f\"}", incoming: ok, wantMsg: "existing is malformed JSON: control character"},
		{name: "bad escape", existing: `{"a":"\x"}`, incoming: ok, wantMsg: "existing is malformed JSON: bad escape"},
		{name: "short unicode escape", existing: `{"a":"\u12"}`, incoming: ok, wantMsg: "existing is malformed JSON: bad \\u escape"},
		{name: "leading zero", existing: `{"a":01}`, incoming: ok, wantMsg: "existing is malformed JSON"},
		{name: "bare minus", existing: `{"a":-}`, incoming: ok, wantMsg: "existing is malformed JSON"},
		{name: "no digit after the point", existing: `{"a":1.}`, incoming: ok, wantMsg: "existing is malformed JSON"},
		{name: "no digit in the exponent", existing: `{"a":1e+}`, incoming: ok, wantMsg: "existing is malformed JSON"},
		{name: "leading point", existing: `{"a":.5}`, incoming: ok, wantMsg: "existing is malformed JSON"},
		{name: "truncated literal", existing: `{"a":tru}`, incoming: ok, wantMsg: "existing is malformed JSON"},
		{name: "capitalised literal", existing: `{"a":Null}`, incoming: ok, wantMsg: "existing is malformed JSON"},
		{name: "unterminated string", existing: `{"a":"x}`, incoming: ok, wantMsg: "existing is malformed JSON: unterminated string"},
		{name: "single quotes", existing: `{'a':1}`, incoming: ok, wantMsg: "existing is malformed JSON"},
		{name: "not JSON", existing: `hello`, incoming: ok, wantMsg: "existing is malformed JSON"},
		{name: "invalid UTF-8", existing: "{\"a\":\"\xff\"}", incoming: ok, wantMsg: "existing is not valid UTF-8"},
		{name: "duplicate key", existing: `{"a":1,"a":1}`, incoming: ok, wantMsg: `existing: duplicate property "a" at /a`},
		{name: "duplicate key spelled differently", existing: ok, incoming: `{"a":1,"\u0061":2}`, wantMsg: `incoming: duplicate property "a"`},
		{name: "duplicate nested key", existing: ok, incoming: `{"o":{"p/q":{"a":1,"a":2}}}`, wantMsg: `duplicate property "a" at /o/p~1q/a`},
		{name: "duplicate key in an array element", base: `{"l":[0,{"a":1,"a":2}]}`, existing: ok, incoming: ok, wantMsg: `base: duplicate property "a" at /l/1/a`},
		{name: "duplicate key in a large object", existing: wideDup, incoming: ok, wantMsg: `duplicate property "k07"`},
		{name: "duplicate key in base even when unchanged", base: `{"a":1,"a":1}`, existing: `{"a":1}`, incoming: `{"a":1}`, wantMsg: "base: duplicate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var base []byte
			if tt.base != "" {
				base = []byte(tt.base)
			}
			got, err := replica.MergeJSON(base, []byte(tt.existing), []byte(tt.incoming), true)
			if !errors.Is(err, replica.ErrInvalid) {
				t.Fatalf("MergeJSON=%s, %v, want an error wrapping ErrInvalid", got, err)
			}
			if got != nil {
				t.Errorf("MergeJSON=%s with an error, want nil", got)
			}
			if !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("error %q, want it to contain %q", err, tt.wantMsg)
			}
		})
	}
}

// TestMergeJSON_Nesting checks that MergeJSON accepts exactly the nesting
// json.Valid accepts.
func TestMergeJSON_Nesting(t *testing.T) {
	for _, depth := range []int{1, 128, 9999, 10000, 10001} {
		t.Run(fmt.Sprint(depth), func(t *testing.T) {
			// depth levels: the object, then depth-1 arrays.
			doc := []byte(`{"a":` + strings.Repeat("[", depth-1) + strings.Repeat("]", depth-1) + `}`)
			_, err := replica.MergeJSON(nil, doc, []byte(`{"b":1}`), true)
			if got, want := err == nil, json.Valid(doc); got != want {
				t.Fatalf("MergeJSON at depth %d: %v, want success %v as json.Valid", depth, err, want)
			}
			if err != nil && !errors.Is(err, replica.ErrInvalid) {
				t.Fatalf("MergeJSON at depth %d: %v, want an error wrapping ErrInvalid", depth, err)
			}
		})
	}
}

// TestMergeJSON_NumberEquality checks that numbers compare by exact decimal
// value: base {"n":a}, existing {"n":b}, incoming {"n":7} and existing
// winning clashes gives 7 when a equals b (only incoming changed n) and b
// otherwise.
func TestMergeJSON_NumberEquality(t *testing.T) {
	tests := []struct {
		name  string
		a, b  string
		equal bool
	}{
		{name: "same text", a: "1", b: "1", equal: true},
		{name: "trailing zero", a: "1", b: "1.0", equal: true},
		{name: "trailing zeros", a: "1.10", b: "1.1", equal: true},
		{name: "exponent", a: "100", b: "1e2", equal: true},
		{name: "exponent with sign and capital", a: "100", b: "1E+2", equal: true},
		{name: "negative exponent", a: "0.1", b: "1e-1", equal: true},
		{name: "fraction and exponent", a: "0.1e1", b: "10e-1", equal: true},
		{name: "exponent leading zeros", a: "1e005", b: "100000", equal: true},
		{name: "negative zero", a: "0", b: "-0", equal: true},
		{name: "zeros", a: "0.000e-7", b: "-0e99999999999999999999999", equal: true},
		{name: "negatives", a: "-1.5", b: "-15e-1", equal: true},
		{name: "sign differs", a: "-1.5", b: "1.5"},
		{name: "different values", a: "1", b: "2"},
		{name: "digits shifted", a: "12", b: "1.2"},
		{name: "large integers", a: "12345678901234567890", b: "12345678901234567891"},
		{name: "large integer and its float64 rounding", a: "12345678901234567890", b: "12345678901234567000"},
		{name: "same float64, different decimals", a: "0.1", b: "0.10000000000000000001"},
		{name: "beyond float64", a: "1e400", b: "10e399", equal: true},
		{name: "beyond float64, different", a: "1e400", b: "1e401"},
		{name: "huge exponents", a: "1e99999999999999999999", b: "10e99999999999999999998", equal: true},
		{name: "huge exponents, different", a: "1e99999999999999999999", b: "1e99999999999999999998"},
		{name: "huge and small exponent", a: "1e99999999999999999999", b: "1"},
		{name: "huge negative exponents", a: "1e-99999999999999999999", b: "0.01e-99999999999999999997", equal: true},
		{name: "exponent at the edge of the long form", a: "1e999999999999999999", b: "0.1e1000000000000000000", equal: true},
		{name: "exponent at the edge of the long form, different", a: "1e999999999999999999", b: "1e1000000000000000000"},
		{name: "largest int64 exponent", a: "1e9223372036854775807", b: "10e9223372036854775806", equal: true},
		{name: "beyond int64 exponent", a: "1e9223372036854775808", b: "10e9223372036854775807", equal: true},
		{name: "beyond int64 negative exponent", a: "1e-9223372036854775809", b: "0.1e-9223372036854775808", equal: true},
		{name: "exponents far apart", a: "1e99999999999999999999", b: "1e-99999999999999999999"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// The reference the fuzz test uses must agree, and with big.Rat
			// where that is cheap.
			if got := mergeTestNumberEqual(tt.a, tt.b); got != tt.equal {
				t.Fatalf("mergeTestNumberEqual(%s, %s)=%v, want %v", tt.a, tt.b, got, tt.equal)
			}
			if len(tt.a) < 12 && len(tt.b) < 12 || !strings.ContainsAny(tt.a+tt.b, "eE") {
				ra, _ := new(big.Rat).SetString(tt.a)
				rb, _ := new(big.Rat).SetString(tt.b)
				if got := ra.Cmp(rb) == 0; got != tt.equal {
					t.Fatalf("big.Rat: %s == %s is %v, want %v", tt.a, tt.b, got, tt.equal)
				}
			}
			base := `{"n":` + tt.a + `}`
			existing := `{"n":` + tt.b + `}`
			got, err := replica.MergeJSON([]byte(base), []byte(existing), []byte(`{"n":7}`), false)
			if err != nil {
				t.Fatalf("MergeJSON: %v", err)
			}
			want := existing
			if tt.equal {
				want = `{"n":7}`
			}
			if string(got) != want {
				t.Errorf("MergeJSON(%s, %s, {\"n\":7}, false)=%s, want %s", base, existing, got, want)
			}
		})
	}
}

// TestMergeJSON_LinearTime merges inputs that take time quadratic in their
// size if each level of a deep change compares whole texts again, or if long
// exponents are parsed as big integers.
func TestMergeJSON_LinearTime(t *testing.T) {
	chain := func(depth int, leaf string) []byte {
		return []byte(strings.Repeat(`{"a":`, depth) + `{"bulk":"` + strings.Repeat("x", 1<<20) + `","v":` + leaf + `}` + strings.Repeat(`}`, depth))
	}
	digits := strings.Repeat("7", 4<<20)
	tenth := digits[:len(digits)-1] + "6" // digits - 1
	tests := []struct {
		name                     string
		base, existing, incoming []byte
		want                     string // a part of the result
	}{
		{name: "deep change", base: chain(1000, "1"), existing: chain(1000, "2"), incoming: chain(1000, "3"), want: `"v":2}`},
		{name: "deep respelling", base: chain(1000, "1"), existing: chain(1000, "1.0"), incoming: chain(1000, "3"), want: `"v":3}`},
		{name: "long exponents", base: []byte(`{"n":1e` + digits + `}`), existing: []byte(`{"n":10e` + tenth + `,"m":1}`), incoming: []byte(`{"n":2}`), want: `{"n":2,"m":1}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start := time.Now()
			got, err := replica.MergeJSON(tt.base, tt.existing, tt.incoming, false)
			if err != nil {
				t.Fatalf("MergeJSON: %v", err)
			}
			if elapsed := time.Since(start); elapsed > 10*time.Second {
				t.Errorf("MergeJSON took %v, want well under 10s", elapsed)
			}
			if !bytes.Contains(got, []byte(tt.want)) {
				t.Errorf("MergeJSON=%.100s...%s, want it to contain %s", got, got[max(0, len(got)-100):], tt.want)
			}
		})
	}
}

func TestMergeJSON_ResultNotAliased(t *testing.T) {
	base := []byte(`{"a":1,"b":1}`)
	existing := []byte(`{"a":2,"b":1}`)
	incoming := []byte(`{"a":1,"b":2}`)
	got, err := replica.MergeJSON(base, existing, incoming, true)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"a":2,"b":2}`
	for _, b := range [][]byte{base, existing, incoming} {
		for i := range b {
			b[i] = 'x'
		}
	}
	if string(got) != want {
		t.Errorf("MergeJSON after changing the inputs=%s, want %s", got, want)
	}
}

func FuzzMergeJSON(f *testing.F) {
	seeds := []struct{ base, existing, incoming string }{
		{`{"id":"prod-123","name":"Super Widget","price":19.99}`, `{"id":"prod-123","name":"Super Widget","price":21.99}`, `{"id":"prod-123","name":"Super Widget","price":19.99,"tags":["sale"]}`},
		{`{"id":"a","addr":{"city":"Oslo","zip":"0150"}}`, `{"id":"a","addr":{"city":"Bergen","zip":"0150","x":1}}`, `{"id":"a","addr":{"city":"Tromsø","zip":"0150","y":2}}`},
		{``, `{"id":"a","o":{"a":1,"c":{"p":1}}}`, `{"id":"a","o":{"b":2,"c":{"q":2}}}`},
		{`{"n":1,"m":[1,2]}`, `{ "n" : 1.0 , "m":[1, 2e0]}`, `{"n":1e0,"m":[1,2],"s":"\u00e9"}`},
		{`{"a":null,"b":true,"c":"x"}`, `{"a":false,"b":true}`, `{"a":0,"c":"z"}`},
		{`{"big":12345678901234567890,"huge":1e400}`, `{"big":12345678901234567891}`, `{"big":12345678901234567890,"huge":10e399}`},
		{`null`, `{"a":1,"a":2}`, `[]`},
		{`{"o":{"x":1}}`, `{"o":5}`, `{"o":{"x":2,"y":{}}}`},
		{mergeTestWide(20, nil), mergeTestWide(20, map[int]string{1: "1"}), mergeTestWide(20, map[int]string{19: "[]"})},
	}
	for _, s := range seeds {
		f.Add([]byte(s.base), []byte(s.existing), []byte(s.incoming), true)
		f.Add([]byte(s.base), []byte(s.existing), []byte(s.incoming), false)
	}
	f.Fuzz(func(t *testing.T, base, existing, incoming []byte, incomingWins bool) {
		if len(base) == 0 {
			base = nil
		}
		mergeTestProperties(t, base, existing, incoming, incomingWins)

		// Mutated bytes are seldom three valid objects, so also merge three
		// versions of a document generated from the same bytes.
		g := mergeTestGen{r: slices.Concat(base, existing, incoming)}
		gb, ge, gi := g.versions()
		for _, doc := range [][]byte{gb, ge, gi} {
			if doc != nil && !mergeTestValidObject(doc) {
				t.Fatalf("generated %q is not a valid object", doc)
			}
		}
		mergeTestProperties(t, gb, ge, gi, incomingWins)
	})
}

// mergeTestProperties checks MergeJSON(base, existing, incoming,
// incomingWins): an error exactly for invalid input, and otherwise a valid,
// deterministic, compact result that agrees with the model, follows the order
// rule, is symmetric, and merges a version with itself or with the base into
// that version.
func mergeTestProperties(t *testing.T, base, existing, incoming []byte, incomingWins bool) {
	t.Helper()
	got, err := replica.MergeJSON(base, existing, incoming, incomingWins)

	trimmedBase := bytes.Trim(base, " \t\r\n")
	baseKnown := len(trimmedBase) > 0 && string(trimmedBase) != "null"
	valid := mergeTestValidObject(existing) && mergeTestValidObject(incoming) && (!baseKnown || mergeTestValidObject(base))
	if !valid {
		if !errors.Is(err, replica.ErrInvalid) {
			t.Fatalf("MergeJSON(%q, %q, %q)=%q, %v, want an error wrapping ErrInvalid", base, existing, incoming, got, err)
		}
		return
	}
	if err != nil {
		t.Fatalf("MergeJSON(%q, %q, %q): %v, want no error", base, existing, incoming, err)
	}
	if !mergeTestValidObject(got) {
		t.Fatalf("MergeJSON(%q, %q, %q)=%q, want a JSON object without duplicate keys", base, existing, incoming, got)
	}
	again, err := replica.MergeJSON(base, existing, incoming, incomingWins)
	if err != nil || !bytes.Equal(again, got) {
		t.Fatalf("MergeJSON again=%q, %v, want %q: not deterministic", again, err, got)
	}

	// The reference model.
	var b any = map[string]any{}
	if baseKnown {
		b = mergeTestDecode(t, base)
	}
	e, i := mergeTestDecode(t, existing), mergeTestDecode(t, incoming)
	want := mergeTestModel(b.(map[string]any), e.(map[string]any), i.(map[string]any), incomingWins)
	if !mergeTestEqual(mergeTestDecode(t, got), want) {
		t.Fatalf("MergeJSON(%q, %q, %q, %v)=%s, want the same document as the model's %v", base, existing, incoming, incomingWins, got, want)
	}

	// The order rule, at the top level.
	if gotKeys, wantKeys := mergeTestKeys(t, got), mergeTestOrder(t, existing, incoming, got); !slices.Equal(gotKeys, wantKeys) {
		t.Fatalf("MergeJSON(%q, %q, %q) keys %q, want %q", base, existing, incoming, gotKeys, wantKeys)
	}

	// No whitespace added: compact inputs give a compact result.
	if mergeTestCompact(base) && mergeTestCompact(existing) && mergeTestCompact(incoming) && !mergeTestCompact(got) {
		t.Fatalf("MergeJSON(%q, %q, %q)=%q, want compact", base, existing, incoming, got)
	}

	// Symmetry: the same winner with the sides swapped.
	swapped, err := replica.MergeJSON(base, incoming, existing, !incomingWins)
	if err != nil {
		t.Fatalf("MergeJSON swapped: %v", err)
	}
	if !mergeTestSemEqual(t, swapped, got) {
		t.Fatalf("MergeJSON(%q, %q, %q, %v)=%s, swapped with %v=%s, want the same document", base, existing, incoming, incomingWins, got, !incomingWins, swapped)
	}

	// Merging a version with itself, or with the base, gives that version.
	for _, x := range [][]byte{existing, incoming} {
		check := func(what string, b, e, i []byte) {
			t.Helper()
			got, err := replica.MergeJSON(b, e, i, incomingWins)
			if err != nil {
				t.Fatalf("MergeJSON(%s): %v", what, err)
			}
			if !mergeTestSemEqual(t, got, x) {
				t.Fatalf("MergeJSON(%s)=%s, want the same document as %s", what, got, x)
			}
		}
		check("base, x, x", base, x, x)
		if baseKnown {
			check("base, base, x", base, base, x)
			check("base, x, base", base, x, base)
		}
	}
}

// mergeTestGen generates a document and two concurrent versions of it,
// taking its choices from r (zeros once r runs out).
type mergeTestGen struct{ r []byte }

// mergeTestObject is a generated object; values are *mergeTestObject,
// []any or the text of a scalar.
type mergeTestObject struct {
	keys []string
	vals []any
}

// mergeTestScalars spell some values more than one way.
var mergeTestScalars = []string{`1`, `1.0`, `10e-1`, `2`, `0`, `-0`, `"x"`, `"\u0078"`, `"y"`, `true`, `false`, `null`, `12345678901234567890`, `1e400`, `[]`, `{}`}

var mergeTestNames = []string{"a", "b", "c", "d", "e/f", "o"}

func (g *mergeTestGen) intn(n int) int {
	if len(g.r) == 0 {
		return 0
	}
	v := int(g.r[0]) % n
	g.r = g.r[1:]
	return v
}

func (g *mergeTestGen) value(depth int) any {
	switch g.intn(5) {
	case 0:
		if depth < 3 {
			return g.object(depth + 1)
		}
	case 1:
		if depth < 3 {
			a := []any{}
			for range g.intn(3) {
				a = append(a, g.value(depth+1))
			}
			return a
		}
	}
	return mergeTestScalars[g.intn(len(mergeTestScalars))]
}

func (g *mergeTestGen) object(depth int) *mergeTestObject {
	o := &mergeTestObject{}
	for range g.intn(5) {
		g.add(o, depth)
	}
	return o
}

// add gives o a member it does not have yet, if any name is left.
func (g *mergeTestGen) add(o *mergeTestObject, depth int) {
	for range len(mergeTestNames) {
		if k := mergeTestNames[g.intn(len(mergeTestNames))]; !slices.Contains(o.keys, k) {
			o.keys, o.vals = append(o.keys, k), append(o.vals, g.value(depth))
			return
		}
	}
}

// change returns a concurrent version of o: members kept, removed, replaced,
// respelled or changed inside, members added, the order perhaps reversed.
func (g *mergeTestGen) change(o *mergeTestObject, depth int) *mergeTestObject {
	out := &mergeTestObject{}
	for i, k := range o.keys {
		v := o.vals[i]
		switch g.intn(6) { // 0, when r has run out, keeps it
		case 1:
			continue
		case 2:
			v = g.value(depth)
		case 3:
			if c, ok := v.(*mergeTestObject); ok {
				v = g.change(c, depth+1)
			}
		}
		out.keys, out.vals = append(out.keys, k), append(out.vals, v)
	}
	for range g.intn(3) {
		g.add(out, depth)
	}
	if g.intn(3) == 1 {
		slices.Reverse(out.keys)
		slices.Reverse(out.vals)
	}
	return out
}

func (g *mergeTestGen) render(sb *strings.Builder, v any) {
	space := func() {
		if g.intn(5) == 1 {
			sb.WriteString(" ")
		}
	}
	switch v := v.(type) {
	case *mergeTestObject:
		sb.WriteString("{")
		for i, k := range v.keys {
			if i > 0 {
				sb.WriteString(",")
			}
			space()
			if g.intn(4) == 1 {
				fmt.Fprintf(sb, `"\u%04x%s"`, k[0], k[1:]) // the same name, escaped
			} else {
				sb.WriteString(strconv.Quote(k))
			}
			space()
			sb.WriteString(":")
			space()
			g.render(sb, v.vals[i])
		}
		space()
		sb.WriteString("}")
	case []any:
		sb.WriteString("[")
		for i, e := range v {
			if i > 0 {
				sb.WriteString(",")
			}
			g.render(sb, e)
		}
		sb.WriteString("]")
	case string:
		sb.WriteString(v)
	}
}

// versions returns a base (nil one time in four: unknown) and two versions.
func (g *mergeTestGen) versions() (base, existing, incoming []byte) {
	text := func(o *mergeTestObject) []byte {
		var sb strings.Builder
		g.render(&sb, o)
		return []byte(sb.String())
	}
	b := g.object(0)
	e, i := g.change(b, 0), g.change(b, 0)
	if g.intn(4) != 0 {
		base = text(b)
	}
	return base, text(e), text(i)
}

// mergeTestModel is the reference the fuzz test compares with, written on
// decoded documents: per key, a side's state is its value or its absence;
// equal states agree, a side equal to the base did not change, and two
// objects changed on both sides merge recursively (against base's object, or
// the empty one).
func mergeTestModel(base, existing, incoming map[string]any, incomingWins bool) map[string]any {
	out := map[string]any{}
	keys := map[string]bool{}
	for k := range existing {
		keys[k] = true
	}
	for k := range incoming {
		keys[k] = true
	}
	same := func(a any, aok bool, b any, bok bool) bool {
		return aok == bok && (!aok || mergeTestEqual(a, b))
	}
	for k := range keys {
		bv, bok := base[k]
		ev, eok := existing[k]
		iv, iok := incoming[k]
		eo, _ := ev.(map[string]any)
		io, _ := iv.(map[string]any)
		v, ok := ev, eok
		switch {
		case same(ev, eok, iv, iok):
		case same(bv, bok, ev, eok):
			v, ok = iv, iok
		case same(bv, bok, iv, iok):
		case eo != nil && io != nil:
			bo, _ := bv.(map[string]any)
			v = mergeTestModel(bo, eo, io, incomingWins)
		case incomingWins:
			v, ok = iv, iok
		}
		if ok {
			out[k] = v
		}
	}
	return out
}

// mergeTestEqual compares decoded JSON (numbers as json.Number) semantically.
func mergeTestEqual(a, b any) bool {
	switch a := a.(type) {
	case map[string]any:
		b, ok := b.(map[string]any)
		if !ok || len(a) != len(b) {
			return false
		}
		for k, av := range a {
			bv, ok := b[k]
			if !ok || !mergeTestEqual(av, bv) {
				return false
			}
		}
		return true
	case []any:
		b, ok := b.([]any)
		return ok && slices.EqualFunc(a, b, mergeTestEqual)
	case json.Number:
		b, ok := b.(json.Number)
		return ok && mergeTestNumberEqual(string(a), string(b))
	default: // string, bool, nil
		return a == b
	}
}

// mergeTestNumberEqual reports whether two JSON numbers have the same exact
// decimal value.
func mergeTestNumberEqual(a, b string) bool {
	return mergeTestCanonNumber(a) == mergeTestCanonNumber(b)
}

// mergeTestCanonNumber writes a JSON number as sign, digits without leading
// or trailing zeros, "e" and the exponent; zero as "0".
func mergeTestCanonNumber(s string) string {
	sign := ""
	if rest, ok := strings.CutPrefix(s, "-"); ok {
		sign, s = "-", rest
	}
	mant, exp, _ := strings.Cut(strings.ToLower(s), "e")
	whole, frac, _ := strings.Cut(mant, ".")
	digits := strings.TrimLeft(whole+frac, "0")
	if digits == "" {
		return "0"
	}
	e := new(big.Int)
	if exp != "" {
		if _, ok := e.SetString(exp, 10); !ok {
			panic("bad exponent in " + s)
		}
	}
	trimmed := strings.TrimRight(digits, "0")
	e.Add(e, big.NewInt(int64(len(digits)-len(trimmed)-len(frac))))
	return sign + trimmed + "e" + e.String()
}

func mergeTestDecode(t *testing.T, b []byte) any {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("decode %q: %v", b, err)
	}
	return v
}

func mergeTestSemEqual(t *testing.T, a, b []byte) bool {
	t.Helper()
	return mergeTestEqual(mergeTestDecode(t, a), mergeTestDecode(t, b))
}

// mergeTestValidObject reports whether b is valid UTF-8 JSON, an object, with
// no duplicate keys at any depth.
func mergeTestValidObject(b []byte) bool {
	t := bytes.Trim(b, " \t\r\n")
	if !utf8.Valid(t) || !json.Valid(t) || len(t) == 0 || t[0] != '{' {
		return false
	}
	type frame struct {
		obj, wantKey bool
		keys         map[string]bool
	}
	var stack []*frame
	dec := json.NewDecoder(bytes.NewReader(t))
	dec.UseNumber() // 1e400 is valid JSON, not a float64
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			return true
		}
		if err != nil {
			return false
		}
		if n := len(stack); n > 0 && stack[n-1].obj {
			top := stack[n-1]
			if top.wantKey {
				if tok == json.Delim('}') {
					stack = stack[:n-1]
					continue
				}
				k, ok := tok.(string)
				if !ok || top.keys[k] {
					return false
				}
				top.keys[k], top.wantKey = true, false
				continue
			}
			top.wantKey = true // this token starts the value
		}
		switch tok {
		case json.Delim('{'):
			stack = append(stack, &frame{obj: true, wantKey: true, keys: map[string]bool{}})
		case json.Delim('['):
			stack = append(stack, &frame{})
		case json.Delim(']'):
			stack = stack[:len(stack)-1]
		}
	}
}

// mergeTestKeys lists the decoded top-level keys of an object in order.
func mergeTestKeys(t *testing.T, b []byte) []string {
	t.Helper()
	var keys []string
	dec := json.NewDecoder(bytes.NewReader(b))
	if _, err := dec.Token(); err != nil {
		t.Fatalf("keys of %q: %v", b, err)
	}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			t.Fatalf("keys of %q: %v", b, err)
		}
		keys = append(keys, tok.(string))
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			t.Fatalf("keys of %q: %v", b, err)
		}
	}
	return keys
}

// mergeTestOrder is the order rule applied to the keys got has: existing's
// keys in existing's order, then the others in incoming's order.
func mergeTestOrder(t *testing.T, existing, incoming, got []byte) []string {
	t.Helper()
	has := map[string]bool{}
	for _, k := range mergeTestKeys(t, got) {
		has[k] = true
	}
	ek := mergeTestKeys(t, existing)
	var want []string
	for _, k := range ek {
		if has[k] {
			want = append(want, k)
		}
	}
	for _, k := range mergeTestKeys(t, incoming) {
		if has[k] && !slices.Contains(ek, k) {
			want = append(want, k)
		}
	}
	return want
}

func mergeTestCompact(b []byte) bool {
	if len(b) == 0 {
		return true
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, b); err != nil {
		return false
	}
	return bytes.Equal(buf.Bytes(), b)
}

// mergeTestKiB returns a base document of about 1 KiB and two concurrent
// versions of it, each changing a few fields (one in a nested object).
func mergeTestKiB() (base, existing, incoming []byte) {
	doc := func(price, qty, city, zip, note string) []byte {
		var sb strings.Builder
		sb.WriteString(`{"id":"order-000123","pk":"customer-42","status":"open","currency":"EUR",`)
		fmt.Fprintf(&sb, `"price":%s,"qty":%s,"discount":0.15,"total":1234567890123.45,`, price, qty)
		fmt.Fprintf(&sb, `"shipTo":{"name":"Kari Nordmann","street":"Karl Johans gate 1","city":%s,"zip":%s,"country":"NO","geo":{"lat":59.9139,"lon":10.7522}},`, city, zip)
		sb.WriteString(`"tags":["priority","gift","fragile","eu"],"lines":[`)
		for i := range 6 {
			if i > 0 {
				sb.WriteByte(',')
			}
			fmt.Fprintf(&sb, `{"sku":"SKU-%04d","qty":%d,"unit":19.99}`, i, i+1)
		}
		fmt.Fprintf(&sb, `],"note":%s,"createdBy":"edge-node-oslo-01","flags":{"paid":true,"shipped":false,"returned":null},`, note)
		sb.WriteString(`"history":[{"at":"2025-01-01T10:00:00Z","by":"a"},{"at":"2025-01-02T11:30:00Z","by":"b"}],"padding":"` + strings.Repeat("x", 238) + `"}`)
		return []byte(sb.String())
	}
	base = doc("19.99", "1", `"Oslo"`, `"0150"`, `"leave at the door"`)
	existing = doc("21.99", "2", `"Oslo"`, `"0150"`, `"leave at the door"`)
	incoming = doc("19.99", "1", `"Bergen"`, `"5003"`, `"ring twice"`)
	return base, existing, incoming
}

func BenchmarkMergeJSON_1KiB(b *testing.B) {
	base, existing, incoming := mergeTestKiB()
	if n := len(existing); n < 900 || n > 1200 {
		b.Fatalf("len(existing)=%d, want about 1024", n)
	}
	b.SetBytes(int64(len(existing)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := replica.MergeJSON(base, existing, incoming, true); err != nil {
			b.Fatal(err)
		}
	}
}
