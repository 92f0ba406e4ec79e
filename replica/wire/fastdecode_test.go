package wire

import (
	"encoding/json"
	"fmt"
	"reflect"
	"runtime"
	"strings"
	"testing"
)

// checkFast holds decodeFast to encoding/json: whatever it takes, encoding/json
// takes too and decodes to the same frame.
func checkFast(t *testing.T, b []byte) bool {
	t.Helper()
	fast, ok, err := decodeFast(b)
	if err != nil {
		if _, serr := decodeJSON(b); serr == nil {
			t.Fatalf("decodeFast refuses %.200q (%v), encoding/json's path takes it", b, err)
		}
		return false
	}
	if !ok {
		return false
	}
	slow, err := decodeJSON(b)
	if err != nil {
		t.Fatalf("decodeFast took %q, encoding/json refuses it: %v", b, err)
	}
	if !reflect.DeepEqual(fast, slow) {
		t.Fatalf("decodeFast(%q) =\n%+v\nencoding/json:\n%+v", b, fast, slow)
	}
	return true
}

func benchDoc(i int) json.RawMessage {
	return json.RawMessage(fmt.Sprintf(`{"id":"d%09d","tenant":"t%02d","price":12.5e1,"qty":-3,"ok":true,"no":null,"tags":["a","\u00e9\n"],"note":"%s"}`,
		i, i%16, strings.Repeat("x", 900)))
}

func pushFrame(n int) *Frame {
	f := &Frame{Type: TypePush, Batch: 7}
	for i := range n {
		f.Versions = append(f.Versions, Version{Container: "bench", ID: fmt.Sprintf("d%09d", i), Op: "create",
			Version: fmt.Sprintf("node-%d", i+1), Base: "node-0", TS: 1700000000, Body: benchDoc(i)})
	}
	f.Versions = append(f.Versions, Version{Container: "bench", ID: "gone", Op: "delete", Version: "node-x", TS: 1})
	return f
}

func changesFrame(n int) *Frame {
	f := &Frame{Type: TypeChanges, LSN: int64(n), HeadLSN: int64(n + 5)}
	for i := range n {
		f.Changes = append(f.Changes, Change{LSN: int64(i + 1), CRTS: 1700000001, Container: "bench", Op: "create",
			ID: fmt.Sprintf("d%09d", i), PK: "t01", Version: fmt.Sprintf("node-%d", i+1), Origin: "node", TS: 1700000000,
			Policy: "lww", Resolver: "cart@2", Resolves: "n-2", Body: benchDoc(i)})
	}
	return f
}

func outcomesFrame(n int) *Frame {
	f := &Frame{Type: TypeOutcomes, Batch: 3, LSN: 9}
	for i := range n {
		f.Outcomes = append(f.Outcomes, Outcome{Version: fmt.Sprintf("node-%d", i+1), Container: "bench", ID: "d",
			Outcome: OutcomeLost, LSN: int64(i), CRTS: 5, Reason: "ünïcode reason", ConflictID: 4})
	}
	return f
}

// The frames this package encodes take the fast path, and decode as
// encoding/json decodes them.
func TestDecodeFast_EncodedFrames(t *testing.T) {
	for _, f := range []*Frame{pushFrame(3), changesFrame(3), outcomesFrame(3), {Type: TypeChanges, LSN: 4}, {Type: TypeAck, LSN: 7, Pending: 3}} {
		b, err := Encode(f)
		if err != nil {
			t.Fatal(err)
		}
		if !checkFast(t, b) {
			t.Fatalf("decodeFast does not take %s", b)
		}
		got, err := Decode(b)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, f) {
			t.Fatalf("Decode(Encode(f)) =\n%+v\nwant\n%+v", got, f)
		}
	}
}

// Inputs the fast path leaves to encoding/json, which decodes some of them
// and refuses others.
func TestDecodeFast_LeavesToEncodingJSON(t *testing.T) {
	for _, in := range []string{
		`{"type":"push","Batch":1}`,                      // a name in another case
		`{"type":"push","batch":1,"batch":2}`,            // a member twice
		`{"type":"p\u0075sh"}`,                           // an escape in a string
		`{"type":"push","batch":1.0}`,                    // a fraction
		`{"type":"push","batch":1e2}`,                    // an exponent
		`{"type":"push","batch":01}`,                     // a leading zero
		`{"type":"push","batch":9223372036854775808}`,    // out of range
		`{"type":"push","batch":null}`,                   // null
		`{"type":"push","versions":null}`,                // null
		`{"type":"hello","nodeId":"n"}`,                  // another frame's member
		"{\"type\":\"p\xffsh\"}",                         // invalid UTF-8 in a string
		"{\"type\":\"p\tsh\"}",                           // a control character
		`{"type":"push"} x`,                              // trailing data
		`{"type":"push"}}`,                               // trailing data encoding/json lets by
		`{"type":"push","versions":[{"body":{"a":1,}}]}`, // malformed document
		`{"type":"push","versions":[{"body":"\x"}]}`,     // a bad escape
		`{"type":"push","versions":[{"body":-}]}`,        // a bad number
		`{"type":"push","versions":[{"body":tru}]}`,      // a bad literal
		`{"type":"push","versions":[{"body":{"a" 1}}]}`,  // no colon
		`{"type":"push","versions":[{"body":{"a":1}]}`,   // unbalanced
		`{"type":"push","versions":[{"body":[1 2]}]}`,    // no comma
		`{"type":"push","versions":[{"bodies":{}}]}`,     // unknown member
		`{"type":"push","versions":[{"body":"\ud800"}]}`, // a lone surrogate escape: valid JSON, taken
		`["type"]`, `{`, ``, ` `,
		`{"type":"push","versions":[{"body":` + strings.Repeat("[", maxFastDepth+1) + strings.Repeat("]", maxFastDepth+1) + `}]}`,
	} {
		if checkFast(t, []byte(in)) && !strings.Contains(in, `\ud800`) {
			t.Errorf("decodeFast took %s", in)
		}
	}
}

// A frame made of a huge array of empty objects is refused before it
// becomes a huge slice of structs, on both paths, whatever the frame's type.
func TestDecode_HugeArrays(t *testing.T) {
	many := strings.Repeat(`{},`, (MaxFrameBytes-100)/3)
	for _, in := range []string{
		`{"type":"ack","outcomes":[` + many + `{}]}`,                     // fast path
		`{"type":"push","batch":1,"versions":[` + many + `{}]}`,          // fast path
		`{"type":"hello","nodeId":"n","containers":[` + many + `{}]}`,    // encoding/json's path
		`{"type":"ack","outcomes":[{"reason":"\u0041"},` + many + `{}]}`, // encoding/json's path
	} {
		b := []byte(in)
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		_, err := Decode(b)
		runtime.ReadMemStats(&after)
		if err == nil || !strings.Contains(err.Error(), "more than 65536 elements") {
			t.Fatalf("Decode(%.60s...): %v, want the array limit", in, err)
		}
		if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 128<<20 { // unbounded: 8 M structs of 100 bytes or more
			t.Fatalf("Decode(%.60s...) allocated %d MiB", in, alloc>>20)
		}
	}
	// At the limit both paths decode, and the type's own checks refuse
	// what is too many for it.
	at := strings.Repeat(`{},`, MaxFrameArray-1)
	for _, in := range []string{`{"type":"ack","outcomes":[` + at + `{}]}`, `{"type":"ack","outcomes":[{"reason":"\u0041"},` + at[3:] + `{}]}`} {
		if _, err := Decode([]byte(in)); err != nil {
			t.Fatalf("Decode(%.60s...) at the limit: %v", in, err)
		}
	}
}

func FuzzDecodeFast(f *testing.F) {
	for _, fr := range []*Frame{pushFrame(2), changesFrame(2), outcomesFrame(2)} {
		b, err := Encode(fr)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	for _, s := range []string{
		`{"type":"push","batch":-0,"versions":[]}`,
		`{ "type" : "changes" , "changes" : [ { "lsn" : 1 , "body" : { "a" : [ 1.5e-3 , -0 , "é\"\\\/\b\f\n\r\t\u0041" ] } } ] , "lsn" : 2 }`,
		"{\"type\":\"push\",\"versions\":[{\"body\":\"\xff\xfe\"}]}",
		`{"type":"push","batch":1,"batch":2}`,
		`{"type":"outcomes","outcomes":[{"version":"n-1","conflictId":12,"reason":""}]}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		checkFast(t, b)
	})
}

func BenchmarkDecode(b *testing.B) {
	for _, c := range []struct {
		name string
		f    *Frame
	}{{"push256", pushFrame(255)}, {"changes256", changesFrame(256)}} {
		raw, err := Encode(c.f)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(c.name+"/fast", func(b *testing.B) {
			b.SetBytes(int64(len(raw)))
			for b.Loop() {
				if _, err := Decode(raw); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(c.name+"/encoding-json", func(b *testing.B) {
			b.SetBytes(int64(len(raw)))
			for b.Loop() {
				f, err := decodeJSON(raw)
				if err != nil {
					b.Fatal(err)
				}
				if err := f.check(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
