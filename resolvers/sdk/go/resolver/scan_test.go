package resolver

import (
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzMember checks the scanner against encoding/json: where both accept a
// document, they agree on its members.
func FuzzMember(f *testing.F) {
	for _, s := range []string{`{"a":1,"b":"x\"y","c":[1,{"d":null}],"e\\u0041":true}`, `{}`, `{"a":"\\\\"}`, `[1]`, `{"a":1}x`, `{"a":"\\"}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, doc []byte) {
		var want map[string]json.RawMessage
		werr := json.Unmarshal(doc, &want)
		got := map[string]json.RawMessage{}
		gerr := members(doc, func(k []byte, v json.RawMessage) { got[string(k)] = v })
		if werr != nil || want == nil || !utf8.Valid(doc) {
			// The scanner may accept more (it checks neither numbers nor
			// UTF-8, which the hub did); null is not an object, though
			// encoding/json decodes it into a map (a nil one).
			return
		}
		if gerr != nil {
			t.Fatalf("members(%q) = %v, encoding/json accepts it", doc, gerr)
		}
		// The index decodeInput builds agrees with the scanner.
		var in Input
		var idx inputIndex
		input := append(append([]byte(`{"kind":"replace","incoming":`), doc...), '}')
		if err := decodeInput(input, &in, &idx); err != nil {
			t.Fatalf("decodeInput of an input holding %q: %v", doc, err)
		}
		ms, ok := lookup(in.Incoming)
		if !ok {
			t.Fatalf("the input holding %q was decoded without an index", doc)
		}
		var scanned []member
		_ = eachMember(doc, func(k, v []byte) bool { scanned = append(scanned, member{k, v}); return true })
		if len(ms) != len(scanned) {
			t.Fatalf("index of %q: %d members, the scanner %d", doc, len(ms), len(scanned))
		}
		for i, m := range ms {
			if string(m.key) != string(scanned[i].key) || string(m.value) != string(scanned[i].value) {
				t.Fatalf("index of %q: member %d = %q: %s, the scanner %q: %s", doc, i, m.key, m.value, scanned[i].key, scanned[i].value)
			}
		}
	})
}

func TestWith(t *testing.T) {
	got, err := With(json.RawMessage(`{"id":"a", "count": 1,"x":{"count":2}}`), "count", json.RawMessage(`5`))
	if err != nil || string(got) != `{"id":"a","count":5,"x":{"count":2}}` {
		t.Fatalf("With() = %s, %v", got, err)
	}
	got, err = With(json.RawMessage(`{}`), "count", json.RawMessage(`5`))
	if err != nil || string(got) != `{"count":5}` {
		t.Fatalf("With() on {} = %s, %v", got, err)
	}
	if _, err := With(json.RawMessage(`[1]`), "count", json.RawMessage(`5`)); err == nil {
		t.Fatal("With() on an array: no error")
	}
}

func TestRun(t *testing.T) {
	out := Run(func(in *Input) Output {
		if in.Kind != "replace" || in.ID != "a\"b" || string(in.Existing) != `{"id":"a\"b"}` || !in.IncomingDeleted() || len(in.Conflicting) != 1 {
			return Defer("bad input decoding")
		}
		panic("boom")
	}, []byte(`{"kind":"replace","container":"c","id":"a\"b","incoming":null,"existing":{"id":"a\"b"},"base":null,"isTombstone":true,"conflicting":[{"x":1}]}`))
	var o Output
	if err := json.Unmarshal(out, &o); err != nil || o.Action != "defer" || o.Reason != "resolver panicked: boom" {
		t.Fatalf("Run() = %s (%v), want a defer for the panic", out, err)
	}
	if out := Run(func(*Input) Output { return KeepIncoming() }, []byte(`{"kind":`)); !json.Valid(out) || string(out[:18]) != `{"action":"defer",` {
		t.Fatalf("Run() on bad input = %s, want a defer", out)
	}
}

// TestMembers_errors checks the scanner's error for each way an object can
// be broken, through both readers (the index and the scanner).
func TestMembers_errors(t *testing.T) {
	for doc, want := range map[string]string{
		`[1]`:           "not a JSON object",
		`{"a":1 "b":2}`: "expected ',' or '}' at offset 7",
		`{"a" 1}`:       "expected ':' at offset 5",
		`{1:2}`:         "expected a key at offset 1",
		`{"a":1,`:       "expected a key at offset 7",
		`{"a":1`:        "unexpected end at offset 6",
		`{"a":}`:        "unexpected character at offset 5",
		`{"a":1}x`:      "data after the value at offset 7",
	} {
		err := members([]byte(doc), func([]byte, json.RawMessage) {})
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("members(%s) = %v, want %q", doc, err, want)
		}
		var in Input
		var idx inputIndex
		input := `{"kind":"replace","incoming":` + doc + `}`
		if want == "data after the value at offset 7" || want == "not a JSON object" {
			continue // the input's own error, or a value the hub never sends (taken as it is)
		}
		if err := decodeInput([]byte(input), &in, &idx); err == nil || !strings.Contains(err.Error(), strings.Split(want, " at offset")[0]) {
			t.Errorf("decodeInput(%s) = %v, want %q", input, err, want)
		}
	}
}
