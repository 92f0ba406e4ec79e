package query

import (
	"encoding/json"
	"reflect"
	"testing"
)

// FuzzDecodeProps checks the decoder that skips the properties a query does
// not read against the full decoder: on a valid object both must give the
// same values for the properties kept, and on any input neither may panic
// or run past the input.
func FuzzDecodeProps(f *testing.F) {
	for _, s := range []string{
		`{"a":1,"b":"x","c":[1,{"d":"}"}],"e":{"f":"\"]"},"g":null}`,
		` { "s" : "a\\\"b" , "a" : [ ] , "n" : -1.5e3 , "o" : { } , "t" : true } `,
		`{"a":{"b":{"c":[[["]"]]]}},"z":"\u0041","\u0061":2}`,
		`{}`, `[]`, `"x"`, `{"a":`, `{"a":"\`, `{"a":1,}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		full, err := decodeJSON(b)
		fo, isObject := full.(*Object)
		for _, need := range []map[string]bool{{"a": true}, {"a": true, "b": true, "z": true}, {}} {
			got, perr := decodeProps(b, need)
			if err != nil || !isObject || !json.Valid(b) {
				continue // only that it returns
			}
			if perr != nil {
				t.Fatalf("decodeProps(%q) = %v; decodeJSON gave %s", b, perr, appendJSON(nil, full))
			}
			want := &Object{}
			if len(need) > 0 {
				for i, k := range fo.Keys {
					if need[k] {
						want.Keys = append(want.Keys, k)
						want.Vals = append(want.Vals, fo.Vals[i])
					}
				}
			}
			g := got.(*Object)
			if len(g.Keys) == 0 && len(want.Keys) == 0 {
				continue
			}
			if !reflect.DeepEqual(g, want) {
				t.Fatalf("decodeProps(%q, %v) = %s, want %s", b, need, appendJSON(nil, got), appendJSON(nil, want))
			}
		}
	})
}
