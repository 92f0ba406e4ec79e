package query

import (
	"encoding/json"
	"reflect"
	"testing"
)

func TestDecodeProps(t *testing.T) {
	docs := []string{
		`{"a":1,"b":"x","c":[1,{"d":"}"}],"e":{"f":"\"]"},"g":null}`,
		` { "s" : "a\\\"b" , "a" : [ ] , "n" : -1.5e3 , "o" : { } , "t" : true } `,
		`{"a":{"b":{"c":[[["]"]]]}},"z":"\u0041"}`,
		`{}`,
	}
	needs := []map[string]bool{{}, {"a": true}, {"g": true, "c": true}, {"s": true, "n": true, "t": true}, {"z": true, "a": true}, {"e": true, "o": true}}
	for _, doc := range docs {
		full, err := decodeJSON([]byte(doc))
		if err != nil {
			t.Fatalf("decodeJSON(%s): %v", doc, err)
		}
		for _, need := range needs {
			got, err := decodeProps([]byte(doc), need)
			if err != nil {
				t.Fatalf("decodeProps(%s, %v): %v", doc, need, err)
			}
			want := &Object{}
			fo := full.(*Object)
			for i, k := range fo.Keys {
				if need[k] {
					want.Keys = append(want.Keys, k)
					want.Vals = append(want.Vals, fo.Vals[i])
				}
			}
			if !reflect.DeepEqual(got, want) && !(len(want.Keys) == 0 && len(got.(*Object).Keys) == 0) {
				t.Errorf("decodeProps(%s, %v) = %s, want %s", doc, need, appendJSON(nil, got), appendJSON(nil, want))
			}
		}
	}
}

func TestQuery_NeededProps(t *testing.T) {
	tests := []struct {
		query string
		want  []string // nil: the whole document
	}{
		{`SELECT VALUE COUNT(1) FROM c`, []string{}},
		{`SELECT c.a, c["b"].x FROM c WHERE c.d.e = 1 ORDER BY c.f`, []string{"a", "b", "d", "f"}},
		{`SELECT * FROM c WHERE c.a = 1`, []string{"a"}},
		{`SELECT c FROM c`, nil},
		{`SELECT VALUE c[@k] FROM c`, nil},
		{`SELECT t FROM c JOIN t IN c.tags GROUP BY t`, []string{"tags"}},
		{`SELECT VALUE x.y FROM x IN c.items`, []string{"items"}},
		{`SELECT * FROM c.owner o WHERE o.city = 1`, []string{"owner"}},
		{`SELECT VALUE 1`, []string{}},
	}
	for _, tc := range tests {
		q, err := Parse(tc.query)
		if err != nil {
			t.Fatal(err)
		}
		got := q.neededProps()
		if tc.want == nil {
			if got != nil {
				t.Errorf("neededProps(%s) = %v, want the whole document", tc.query, got)
			}
			continue
		}
		want := map[string]bool{}
		for _, k := range tc.want {
			want[k] = true
		}
		if got == nil || !reflect.DeepEqual(got, want) {
			t.Errorf("neededProps(%s) = %v, want %v", tc.query, got, want)
		}
	}
}

func TestValidNumber(t *testing.T) {
	for _, s := range []string{"0", "-0", "1", "-1", "10", "1.5", "0.5", "1e5", "1E+5", "1e-5", "-12.34e56",
		"", "-", "01", "1.", ".5", "1e", "1e+", "+1", "--1", "1.2.3", "1e5e5", "0x10", "1-", "00"} {
		if got, want := validNumber([]byte(s)), json.Valid([]byte(s)); got != want {
			t.Errorf("validNumber(%q) = %v, want %v", s, got, want)
		}
	}
}

// Once an index answers WHERE and gives ORDER BY's order, SELECT * reads
// no property of the documents it returns.
func TestQuery_NeededPropsIndexed(t *testing.T) {
	q, err := Parse(`SELECT * FROM c WHERE c.price >= 1 ORDER BY c.price`)
	if err != nil {
		t.Fatal(err)
	}
	if got := q.neededPropsWhere(false, false); got == nil || len(got) != 0 {
		t.Errorf("neededPropsWhere(false, false) = %v, want none", got)
	}
	if got := q.neededPropsWhere(false, true); !reflect.DeepEqual(got, map[string]bool{"price": true}) {
		t.Errorf("neededPropsWhere(false, true) = %v, want price", got)
	}
}
