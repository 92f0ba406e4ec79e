package wire_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/edgesync/edgesync/replica"
	"github.com/edgesync/edgesync/replica/wire"
)

// Valid frames of every type, as a peer sends them.
const (
	helloFrame = `{"type":"hello","nodeId":"n1","protocol":1,"resumeLsn":5,"pending":2,` +
		`"containers":[{"name":"c","partitionKey":"/pk","conflictPolicy":{"mode":"lww","path":"/_ts"}}]}`
	welcomeFrame = `{"type":"welcome","hubId":"h1","protocol":1,"edge":"laptop-7","scope":[{"container":"c","partitionKeys":["a","b"]}],` +
		`"headLsn":10,"containers":[{"name":"c","partitionKey":"/pk","conflictPolicy":{"mode":"merge"}}],"mismatched":["d"]}`
	errorFrame = `{"type":"error","code":"bad_frame","message":"what went wrong"}`
	pushFrame  = `{"type":"push","batch":3,"versions":[` +
		`{"container":"c","id":"x","op":"create","version":"n1-1","ts":100,"body":{"id":"x","pk":"a"}},` +
		`{"container":"c","id":"x","op":"replace","version":"n1-2","base":"n1-1","ts":101,"body":{"id":"x","pk":"a","v":2}},` +
		`{"container":"c","id":"x","op":"delete","version":"n1-3","base":"n1-2","ts":102}]}`
	outcomesFrame = `{"type":"outcomes","batch":3,"outcomes":[` +
		`{"version":"n1-1","container":"c","id":"x","outcome":"confirmed","lsn":7},` +
		`{"version":"n1-2","container":"c","id":"x","outcome":"lost","lsn":9,"reason":"lww: existing wins","conflictId":4},` +
		`{"version":"n1-3","container":"c","id":"x","outcome":"rejected","reason":"outside scope"}]}`
	changesFrame = `{"type":"changes","changes":[` +
		`{"lsn":1,"crts":1000,"container":"c","op":"create","id":"x","pk":"a","version":"n1-1","origin":"n1","ts":999,"body":{"id":"x","pk":"a"}},` +
		`{"lsn":4,"crts":1001,"container":"c","op":"delete","id":"x","pk":"a","version":"h1-4","base":"n1-1","origin":"h1","ts":1001}],` +
		`"lsn":6,"headLsn":9,"containers":[{"name":"c","partitionKey":"/pk","conflictPolicy":{"mode":"lww","path":"/_ts"}}]}`
	emptyChangesFrame = `{"type":"changes","lsn":6,"headLsn":9}`
	ackFrame          = `{"type":"ack","lsn":6}`
	conflictsFrame    = `{"type":"conflicts","conflictSeq":9,"conflicts":[` +
		`{"id":3,"seq":7,"kind":"replace","status":"unresolved","container":"c","docId":"x","pk":"a","policy":"manual","loser":"incoming","winnerLsn":4,` +
		`"reason":"manual policy","createdAt":1000,"incoming":{"version":"n2-1","origin":"n2","ts":999,"deleted":false,"document":{"id":"x","pk":"a","v":2}},` +
		`"existing":{"version":"n1-1","origin":"n1","ts":998,"deleted":true,"document":null},"base":null}]}`
)

var validFrames = []string{helloFrame, welcomeFrame, errorFrame, pushFrame, outcomesFrame, changesFrame, emptyChangesFrame, ackFrame, conflictsFrame}

// conflict is one conflicts feed record's JSON.
func conflict(id, seq int64, status string) string {
	return fmt.Sprintf(`{"id":%d,"seq":%d,"kind":"replace","status":%q,"container":"c","docId":"x","pk":"a","policy":"lww","loser":"incoming","winnerLsn":1,"reason":"r","createdAt":1,"incoming":null,"existing":null,"base":null}`, id, seq, status)
}

// conflicts is a conflicts frame holding records, covering seq.
func conflicts(seq int64, cs ...string) string {
	return fmt.Sprintf(`{"type":"conflicts","conflictSeq":%d,"conflicts":[%s]}`, seq, strings.Join(cs, ","))
}

// version is one pushed version's JSON.
func version(i int, op, body string) string {
	s := fmt.Sprintf(`{"container":"c","id":"x%d","op":%q,"version":"n1-%d","ts":1`, i, op, i)
	if body != "" {
		s += `,"body":` + body
	}
	return s + "}"
}

// push is a push frame holding versions.
func push(versions ...string) string {
	return `{"type":"push","batch":1,"versions":[` + strings.Join(versions, ",") + `]}`
}

// pushN is a push frame of n create versions.
func pushN(n int) string {
	vs := make([]string, n)
	for i := range vs {
		vs[i] = version(i, "create", `{"id":"x","pk":"a"}`)
	}
	return push(vs...)
}

// change is one change record's JSON.
func change(lsn int64, op string) string {
	return fmt.Sprintf(`{"lsn":%d,"crts":1,"container":"c","op":%q,"id":"x","pk":"a","version":"n1-%d","origin":"n1","ts":1}`, lsn, op, lsn)
}

// changes is a changes frame with lsn covered.
func changes(lsn int64, cs ...string) string {
	return fmt.Sprintf(`{"type":"changes","changes":[%s],"lsn":%d}`, strings.Join(cs, ","), lsn)
}

func changesN(n int) string {
	cs := make([]string, n)
	for i := range cs {
		cs[i] = change(int64(i+1), "create")
	}
	return changes(int64(n), cs...)
}

// repeatJSON is a JSON list of n copies of item.
func repeatJSON(item string, n int) string {
	return "[" + strings.Repeat(item+",", n-1) + item + "]"
}

// bigBody is a valid document of n bytes.
func bigBody(n int) string {
	head, tail := `{"id":"x","pk":"a","pad":"`, `"}`
	return head + strings.Repeat("p", n-len(head)-len(tail)) + tail
}

func TestDecode_Valid(t *testing.T) {
	lww := replica.Container{Name: "c", PartitionKey: "/pk", ConflictPolicy: replica.ConflictPolicy{Mode: "lww", Path: "/_ts"}}
	tests := []struct {
		name string
		in   string
		want wire.Frame
	}{
		{name: "hello", in: helloFrame, want: wire.Frame{Type: "hello", NodeID: "n1", Protocol: 1, ResumeLSN: 5, Pending: 2, Containers: []replica.Container{lww}}},
		{name: "hello of a new edge", in: `{"type":"hello","nodeId":"n1","protocol":1}`, want: wire.Frame{Type: "hello", NodeID: "n1", Protocol: 1}},
		{name: "push with a surrogate pair in an id and a lone surrogate in a document",
			in: push(`{"container":"c","id":"a\ud83d\ude00","op":"create","version":"n1-1","ts":1,"body":{"id":"a\ud83d\ude00","v":"\ud800"}}`),
			want: wire.Frame{Type: "push", Batch: 1, Versions: []wire.Version{{Container: "c", ID: "a\U0001F600", Op: "create", Version: "n1-1", TS: 1,
				Body: json.RawMessage(`{"id":"a\ud83d\ude00","v":"\ud800"}`)}}}},
		{name: "hello with a 128-byte node id", in: `{"type":"hello","nodeId":"` + strings.Repeat("n", 128) + `"}`, want: wire.Frame{Type: "hello", NodeID: strings.Repeat("n", 128)}},
		{name: "welcome", in: welcomeFrame, want: wire.Frame{Type: "welcome", HubID: "h1", Protocol: 1, Edge: "laptop-7",
			Scope: []wire.ScopeEntry{{Container: "c", PartitionKeys: []string{"a", "b"}}}, HeadLSN: 10,
			Containers: []replica.Container{{Name: "c", PartitionKey: "/pk", ConflictPolicy: replica.ConflictPolicy{Mode: "merge"}}}, Mismatched: []string{"d"}}},
		{name: "welcome of an empty hub", in: `{"type":"welcome","hubId":"h1"}`, want: wire.Frame{Type: "welcome", HubID: "h1"}},
		{name: "welcome from a named hub", in: `{"type":"welcome","hubId":"h1","hubName":"hub-b"}`, want: wire.Frame{Type: "welcome", HubID: "h1", HubName: "hub-b"}},
		{name: "error", in: errorFrame, want: wire.Frame{Type: "error", Code: "bad_frame", Message: "what went wrong"}},
		{name: "push", in: pushFrame, want: wire.Frame{Type: "push", Batch: 3, Versions: []wire.Version{
			{Container: "c", ID: "x", Op: "create", Version: "n1-1", TS: 100, Body: json.RawMessage(`{"id":"x","pk":"a"}`)},
			{Container: "c", ID: "x", Op: "replace", Version: "n1-2", Base: "n1-1", TS: 101, Body: json.RawMessage(`{"id":"x","pk":"a","v":2}`)},
			{Container: "c", ID: "x", Op: "delete", Version: "n1-3", Base: "n1-2", TS: 102},
		}}},
		{name: "push of 256 versions", in: pushN(wire.MaxPushVersions)},
		{name: "push of a 2 MiB document", in: push(version(1, "create", bigBody(replica.MaxDocumentSize)))},
		{name: "outcomes", in: outcomesFrame, want: wire.Frame{Type: "outcomes", Batch: 3, Outcomes: []wire.Outcome{
			{Version: "n1-1", Container: "c", ID: "x", Outcome: "confirmed", LSN: 7},
			{Version: "n1-2", Container: "c", ID: "x", Outcome: "lost", LSN: 9, Reason: "lww: existing wins", ConflictID: 4},
			{Version: "n1-3", Container: "c", ID: "x", Outcome: "rejected", Reason: "outside scope"},
		}}},
		{name: "changes", in: changesFrame, want: wire.Frame{Type: "changes", LSN: 6, HeadLSN: 9, Containers: []replica.Container{lww}, Changes: []wire.Change{
			{LSN: 1, CRTS: 1000, Container: "c", Op: "create", ID: "x", PK: "a", Version: "n1-1", Origin: "n1", TS: 999, Body: json.RawMessage(`{"id":"x","pk":"a"}`)},
			{LSN: 4, CRTS: 1001, Container: "c", Op: "delete", ID: "x", PK: "a", Version: "h1-4", Base: "n1-1", Origin: "h1", TS: 1001},
		}}},
		{name: "changes without changes", in: emptyChangesFrame, want: wire.Frame{Type: "changes", LSN: 6, HeadLSN: 9}},
		{name: "changes of 512", in: changesN(wire.MaxChangesFrame)},
		{name: "changes covering exactly the last", in: changes(2, change(1, "create"), change(2, "replace"))},
		{name: "ack", in: ackFrame, want: wire.Frame{Type: "ack", LSN: 6}},
		{name: "hello asking for conflicts", in: `{"type":"hello","nodeId":"n1","protocol":1,"wantConflicts":true,"conflictSeq":4}`,
			want: wire.Frame{Type: "hello", NodeID: "n1", Protocol: 1, WantConflicts: true, ConflictSeq: 4}},
		{name: "conflicts", in: conflictsFrame, want: wire.Frame{Type: "conflicts", ConflictSeq: 9, Conflicts: []wire.Conflict{{
			ID: 3, Seq: 7, Kind: "replace", Status: "unresolved", Container: "c", DocID: "x", PK: "a", Policy: "manual", Loser: "incoming", WinnerLSN: 4,
			Reason: "manual policy", CreatedAt: 1000,
			Incoming: &wire.ConflictVersion{Version: "n2-1", Origin: "n2", TS: 999, Document: json.RawMessage(`{"id":"x","pk":"a","v":2}`)},
			Existing: &wire.ConflictVersion{Version: "n1-1", Origin: "n1", TS: 998, Deleted: true, Document: json.RawMessage(`null`)},
		}}}},
		{name: "conflicts covering records filtered out", in: `{"type":"conflicts","conflictSeq":12}`, want: wire.Frame{Type: "conflicts", ConflictSeq: 12}},
		{name: "ack of nothing", in: `{"type":"ack"}`, want: wire.Frame{Type: "ack"}},
		{name: "surrounding whitespace", in: " \n\t" + ackFrame + " \r\n", want: wire.Frame{Type: "ack", LSN: 6}},
		{name: "field order does not matter", in: `{"lsn":6,"type":"ack"}`, want: wire.Frame{Type: "ack", LSN: 6}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := wire.Decode([]byte(tt.in))
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if tt.want.Type != "" && !reflect.DeepEqual(*f, tt.want) {
				t.Fatalf("Decode=%+v, want %+v", *f, tt.want)
			}
			checkRoundTrip(t, f)
		})
	}
}

func TestDecode_Invalid(t *testing.T) {
	tests := []struct {
		name string
		in   string
	}{
		{name: "empty", in: ""},
		{name: "whitespace", in: "  \n"},
		{name: "null", in: "null"},
		{name: "a list", in: `[{"type":"ack"}]`},
		{name: "a string", in: `"ack"`},
		{name: "no type", in: `{"lsn":1}`},
		{name: "empty type", in: `{"type":""}`},
		{name: "unknown type", in: `{"type":"goodbye"}`},
		{name: "conflicts out of order", in: conflicts(9, conflict(1, 5, "resolved"), conflict(2, 5, "resolved"))},
		{name: "conflicts past the position covered", in: conflicts(4, conflict(1, 5, "resolved"))},
		{name: "conflict with an unknown status", in: conflicts(9, conflict(1, 5, "lost"))},
		{name: "conflict without an id", in: conflicts(9, conflict(0, 5, "resolved"))},
		{name: "conflict with a bad container", in: strings.Replace(conflicts(9, conflict(1, 5, "resolved")), `"container":"c"`, `"container":"a/b"`, 1)},
		{name: "conflict document over 2 MiB", in: strings.Replace(conflicts(9, conflict(1, 5, "resolved")), `"incoming":null`,
			`"incoming":{"version":"v","origin":"o","ts":1,"deleted":false,"document":`+bigBody(replica.MaxDocumentSize+1)+`}`, 1)},
		{name: "negative conflictSeq", in: `{"type":"conflicts","conflictSeq":-1}`},
		{name: "hello with a negative conflictSeq", in: `{"type":"hello","nodeId":"n1","conflictSeq":-1}`},
		{name: "type not a string", in: `{"type":1}`},
		{name: "unknown field", in: `{"type":"ack","lsn":1,"extra":true}`},
		{name: "lone surrogate in a pushed id", in: push(`{"container":"c","id":"a\ud800b","op":"delete","version":"n1-1","ts":1}`)},
		{name: "lone low surrogate in a pushed id", in: push(`{"container":"c","id":"a\udc00b","op":"delete","version":"n1-1","ts":1}`)},
		{name: "lone surrogate in a pushed base", in: push(`{"container":"c","id":"a","op":"delete","version":"n1-1","base":"h\ud800","ts":1}`)},
		{name: "lone surrogate in a pushed version", in: push(`{"container":"c","id":"a","op":"delete","version":"n1-\udbff","ts":1}`)},
		{name: "lone surrogate in a node id", in: `{"type":"hello","nodeId":"e\ud800","protocol":1}`},
		{name: "unknown field in a version", in: push(`{"container":"c","id":"x","op":"delete","version":"n1-1","ts":1,"extra":1}`)},
		{name: "unknown field in a scope entry", in: `{"type":"welcome","hubId":"h1","scope":[{"container":"c","keys":["a"]}]}`},
		{name: "unknown field in a container", in: `{"type":"hello","nodeId":"n1","containers":[{"name":"c","partitionKey":"/pk","x":1}]}`},
		{name: "trailing object", in: ackFrame + ` {"type":"ack"}`},
		{name: "trailing garbage", in: ackFrame + `x`},
		{name: "truncated", in: ackFrame[:len(ackFrame)-1]},
		{name: "lsn not a number", in: `{"type":"ack","lsn":"6"}`},
		{name: "lsn not an integer", in: `{"type":"ack","lsn":6.5}`},
		{name: "lsn over int64", in: `{"type":"ack","lsn":9223372036854775808}`},
		{name: "over the frame limit", in: `{"type":"error","code":"x","message":"` + strings.Repeat("m", wire.MaxFrameBytes) + `"}`},

		{name: "hello without node id", in: `{"type":"hello","protocol":1}`},
		{name: "hello node id over 128 bytes", in: `{"type":"hello","nodeId":"` + strings.Repeat("n", 129) + `"}`},
		{name: "hello negative resumeLsn", in: `{"type":"hello","nodeId":"n1","resumeLsn":-1}`},
		{name: "hello negative pending", in: `{"type":"hello","nodeId":"n1","pending":-1}`},
		{name: "hello over 1000 containers", in: `{"type":"hello","nodeId":"n1","containers":` + repeatJSON(`{"name":"c","partitionKey":"/pk"}`, wire.MaxHelloDefs+1) + `}`},

		{name: "welcome without hub id", in: `{"type":"welcome","headLsn":1}`},
		{name: "welcome negative headLsn", in: `{"type":"welcome","hubId":"h1","headLsn":-1}`},
		{name: "welcome over 1000 scope entries", in: `{"type":"welcome","hubId":"h1","scope":` + repeatJSON(`{"container":"c"}`, wire.MaxScopeEntries+1) + `}`},

		{name: "error without code", in: `{"type":"error","message":"m"}`},

		{name: "push without versions", in: `{"type":"push","batch":1}`},
		{name: "push of an empty list", in: `{"type":"push","batch":1,"versions":[]}`},
		{name: "push over 256 versions", in: pushN(wire.MaxPushVersions + 1)},
		{name: "push without batch", in: `{"type":"push","versions":[` + version(1, "delete", "") + `]}`},
		{name: "push negative batch", in: `{"type":"push","batch":-1,"versions":[` + version(1, "delete", "") + `]}`},
		{name: "push over 8 MiB of documents", in: push(
			version(1, "create", bigBody(2<<20)), version(2, "create", bigBody(2<<20)),
			version(3, "create", bigBody(2<<20)), version(4, "create", bigBody(2<<20)), version(5, "create", `{"id":"x"}`))},
		{name: "version over 2 MiB", in: push(version(1, "create", bigBody(replica.MaxDocumentSize+1)))},
		{name: "version bad container name", in: push(`{"container":"a b","id":"x","op":"delete","version":"n1-1","ts":1}`)},
		{name: "version empty container", in: push(`{"container":"","id":"x","op":"delete","version":"n1-1","ts":1}`)},
		{name: "version empty id", in: push(`{"container":"c","id":"","op":"delete","version":"n1-1","ts":1}`)},
		{name: "version id with a slash", in: push(`{"container":"c","id":"a/b","op":"delete","version":"n1-1","ts":1}`)},
		{name: "version id over 1023 bytes", in: push(`{"container":"c","id":"` + strings.Repeat("i", 1024) + `","op":"delete","version":"n1-1","ts":1}`)},
		{name: "version without version id", in: push(`{"container":"c","id":"x","op":"delete","ts":1}`)},
		{name: "version id over 256 bytes", in: push(`{"container":"c","id":"x","op":"delete","version":"` + strings.Repeat("v", 257) + `","ts":1}`)},
		{name: "version base over 256 bytes", in: push(`{"container":"c","id":"x","op":"delete","version":"n1-1","base":"` + strings.Repeat("v", 257) + `","ts":1}`)},
		{name: "version unknown op", in: push(version(1, "upsert", `{"id":"x"}`))},
		{name: "version empty op", in: push(version(1, "", `{"id":"x"}`))},
		{name: "version create without body", in: push(version(1, "create", ""))},
		{name: "version replace without body", in: push(version(1, "replace", ""))},
		{name: "version delete with body", in: push(version(1, "delete", `{"id":"x"}`))},
		{name: "version body malformed", in: push(`{"container":"c","id":"x","op":"create","version":"n1-1","ts":1,"body":{"id":}`)},
		{name: "second version bad", in: push(version(1, "delete", ""), version(2, "bogus", ""))},

		{name: "outcomes without batch", in: `{"type":"outcomes","outcomes":[{"version":"n1-1","container":"c","id":"x","outcome":"confirmed","lsn":1}]}`},
		{name: "outcome negative lsn", in: `{"type":"outcomes","batch":1,"outcomes":[{"version":"n1-1","container":"c","id":"x","outcome":"confirmed","lsn":-1}]}`},

		{name: "changes over 512", in: changesN(wire.MaxChangesFrame + 1)},
		{name: "changes lsn behind the changes", in: changes(1, change(1, "create"), change(2, "replace"))},
		{name: "changes lsn absent", in: `{"type":"changes","changes":[` + change(1, "create") + `]}`},
		{name: "change lsn zero", in: changes(2, change(0, "create"), change(2, "replace"))},
		{name: "change lsn negative", in: changes(2, change(-1, "create"))},
		{name: "changes out of order", in: changes(5, change(3, "create"), change(2, "replace"))},
		{name: "changes with a repeated lsn", in: changes(5, change(2, "create"), change(2, "replace"))},
		{name: "change unknown op", in: changes(1, change(1, "outcome"))},
		{name: "change empty op", in: changes(1, change(1, ""))},
		{name: "changes negative lsn", in: `{"type":"changes","lsn":-1}`},
		{name: "changes negative headLsn", in: `{"type":"changes","lsn":1,"headLsn":-1}`},

		{name: "ack negative lsn", in: `{"type":"ack","lsn":-1}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := wire.Decode([]byte(tt.in))
			if err == nil {
				t.Fatalf("Decode(%.200s)=%+v, want an error", tt.in, f)
			}
			if !errors.Is(err, wire.ErrBadFrame) {
				t.Fatalf("Decode error %v does not wrap ErrBadFrame", err)
			}
			if f != nil {
				t.Fatalf("Decode returned frame %+v with error %v", f, err)
			}
			if len(err.Error()) > 1024 {
				t.Fatalf("error message is %d bytes, want a short one", len(err.Error()))
			}
		})
	}
}

// checkRoundTrip checks that an accepted frame re-encodes and decodes again,
// and that after that first round nothing changes any more.
func checkRoundTrip(t *testing.T, f *wire.Frame) {
	t.Helper()
	b1, err := wire.Encode(f)
	if err != nil {
		t.Fatalf("Encode(%+v): %v", f, err)
	}
	f2, err := wire.Decode(b1)
	if err != nil {
		t.Fatalf("Decode(Encode(frame)) of %.300s: %v", b1, err)
	}
	b2, err := wire.Encode(f2)
	if err != nil {
		t.Fatalf("Encode again: %v", err)
	}
	f3, err := wire.Decode(b2)
	if err != nil {
		t.Fatalf("Decode again of %.300s: %v", b2, err)
	}
	if !reflect.DeepEqual(f2, f3) {
		t.Fatalf("frame after a second round=%+v, want %+v", f3, f2)
	}
	if !bytes.Equal(b1, b2) {
		t.Fatalf("Encode after a round=%.300s, want %.300s", b2, b1)
	}
}

// Documents travel in frames as the client wrote them; re-encoding a frame
// must not grow a body past the limits the peer checks.
func TestEncode_KeepsDocumentsWithinLimits(t *testing.T) {
	tests := []struct {
		name string
		body string
	}{
		{name: "HTML in a 1 MiB document", body: `{"id":"x","pk":"a","html":"` + strings.Repeat("<b>&amp;</b>", (1<<20)/12) + `"}`},
		{name: "512 KiB of angle brackets", body: `{"id":"x","pk":"a","s":"` + strings.Repeat("<>", 256<<10) + `"}`},
		{name: "line separators", body: `{"id":"x","pk":"a","s":"` + strings.Repeat("\u2028", 400<<10) + `"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if len(tt.body) > replica.MaxDocumentSize {
				t.Fatalf("test body is %d bytes, over the limit", len(tt.body))
			}
			f := &wire.Frame{Type: wire.TypePush, Batch: 1, Versions: []wire.Version{
				{Container: "c", ID: "x", Op: "create", Version: "n1-1", TS: 1, Body: json.RawMessage(tt.body)},
			}}
			b, err := wire.Encode(f)
			if err != nil {
				t.Fatalf("Encode: %v", err)
			}
			got, err := wire.Decode(b)
			if err != nil {
				t.Fatalf("Decode(Encode(push of a %d-byte document)): %v", len(tt.body), err)
			}
			if n := len(got.Versions[0].Body); n > len(tt.body) {
				t.Fatalf("body is %d bytes after encoding, want at most the %d written", n, len(tt.body))
			}
		})
	}
}

func TestInScope(t *testing.T) {
	scope := []wire.ScopeEntry{
		{Container: "orders", PartitionKeys: []string{"t1", "t2"}},
		{Container: "catalog"},
		{Container: "split", PartitionKeys: []string{"a"}},
		{Container: "split", PartitionKeys: []string{"b"}},
		{Container: "empty-keys", PartitionKeys: []string{}},
	}
	tests := []struct {
		name          string
		scope         []wire.ScopeEntry
		container, pk string
		want          bool
		wantContainer bool
	}{
		{name: "nil scope covers everything", scope: nil, container: "any", pk: "x", want: true, wantContainer: true},
		{name: "empty scope covers everything", scope: []wire.ScopeEntry{}, container: "any", pk: "", want: true, wantContainer: true},
		{name: "listed partition key", scope: scope, container: "orders", pk: "t2", want: true, wantContainer: true},
		{name: "unlisted partition key", scope: scope, container: "orders", pk: "t3", want: false, wantContainer: true},
		{name: "empty partition key not listed", scope: scope, container: "orders", pk: "", want: false, wantContainer: true},
		{name: "partition keys are case-sensitive", scope: scope, container: "orders", pk: "T1", want: false, wantContainer: true},
		{name: "container without keys covers every key", scope: scope, container: "catalog", pk: "anything", want: true, wantContainer: true},
		{name: "empty key list covers every key", scope: scope, container: "empty-keys", pk: "z", want: true, wantContainer: true},
		{name: "container in two entries: first", scope: scope, container: "split", pk: "a", want: true, wantContainer: true},
		{name: "container in two entries: second", scope: scope, container: "split", pk: "b", want: true, wantContainer: true},
		{name: "container in two entries: neither", scope: scope, container: "split", pk: "c", want: false, wantContainer: true},
		{name: "other container", scope: scope, container: "users", pk: "t1", want: false, wantContainer: false},
		{name: "container names are case-sensitive", scope: scope, container: "Orders", pk: "t1", want: false, wantContainer: false},
		{name: "a key of another container", scope: scope, container: "split", pk: "t1", want: false, wantContainer: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := wire.InScope(tt.scope, tt.container, tt.pk); got != tt.want {
				t.Fatalf("InScope(%s, %q)=%v, want %v", tt.container, tt.pk, got, tt.want)
			}
			if got := wire.ContainerInScope(tt.scope, tt.container); got != tt.wantContainer {
				t.Fatalf("ContainerInScope(%s)=%v, want %v", tt.container, got, tt.wantContainer)
			}
		})
	}
}

// splitJoin returns b split in two halves joined with whitespace.
func splitJoin(b []byte, ws string) []byte {
	h := len(b) / 2
	out := make([]byte, 0, len(b)+len(ws))
	out = append(out, b[:h]...)
	out = append(out, ws...)
	return append(out, b[h:]...)
}

// checkDecode is the fuzz property for one input: Decode never panics, its
// errors wrap ErrBadFrame, and an accepted frame survives a round trip.
func checkDecode(t *testing.T, b []byte) {
	t.Helper()
	f, err := wire.Decode(b)
	if err != nil {
		if !errors.Is(err, wire.ErrBadFrame) {
			t.Fatalf("Decode(%q) error %v does not wrap ErrBadFrame", b, err)
		}
		if f != nil {
			t.Fatalf("Decode(%q) returned a frame with error %v", b, err)
		}
		return
	}
	if f == nil {
		t.Fatalf("Decode(%q) returned neither a frame nor an error", b)
	}
	checkRoundTrip(t, f)
}

func FuzzDecode(f *testing.F) {
	seeds := append([]string{}, validFrames...)
	seeds = append(seeds,
		`{"type":"hello","nodeId":"n1"}`,
		`{"type":"welcome","hubId":"h1","scope":[{"container":"c"}]}`,
		`{"type":"push","batch":1,"versions":[{"container":"c","id":"x","op":"create","version":"n1-1","ts":1,"body":{"id":"x","s":"<&>\u2028"}}]}`,
		`{"type":"push","batch":1,"versions":[{"container":"c","id":"x","op":"create","version":"n1-1","ts":1,"body":null}]}`,
		`{"type":"push","batch":1,"versions":[{"container":"c","id":"x","op":"replace","version":"n1-1","ts":1,"body":  [ 1 , 2 ] }]}`,
		`{"type":"changes","changes":[],"lsn":0}`,
		`{"type":"ack","lsn":-1}`,
		`{"type":"goodbye"}`,
		`{"type":"ack"} {}`,
		`{"TYPE":"ack","LSN":3}`,
		`{"type":"ack","type":"hello","nodeId":"n"}`,
		``, `null`, `[]`, `{`,
	)
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		checkDecode(t, b)
		// The same input split in two halves joined with whitespace:
		// between tokens it is the same frame, inside one it is another
		// input; either way the properties hold.
		for _, ws := range []string{" ", "\n\t"} {
			checkDecode(t, splitJoin(b, ws))
		}
	})
}

// A frame split between two tokens and joined with whitespace is the same
// frame.
func TestDecode_SplitBetweenTokens(t *testing.T) {
	for _, in := range validFrames {
		want, err := wire.Decode([]byte(in))
		if err != nil {
			t.Fatalf("Decode(%s): %v", in, err)
		}
		wb, err := wire.Encode(want)
		if err != nil {
			t.Fatalf("Encode: %v", err)
		}
		// The offsets after each token are between tokens.
		var offsets []int64
		dec := json.NewDecoder(strings.NewReader(in))
		for {
			if _, err := dec.Token(); err != nil {
				break
			}
			offsets = append(offsets, dec.InputOffset())
		}
		if len(offsets) < 3 {
			t.Fatalf("%d token offsets in %s, want more", len(offsets), in)
		}
		for _, at := range offsets {
			b := []byte(in[:at] + " \n\t " + in[at:])
			got, err := wire.Decode(b)
			if err != nil {
				t.Fatalf("Decode(%s): %v", b, err)
			}
			// Raw bodies keep the inserted whitespace (Encode embeds them
			// as they are); compare what the frames say, compacted.
			gb, err := wire.Encode(got)
			if err != nil {
				t.Fatalf("Encode: %v", err)
			}
			var gc, wc bytes.Buffer
			if err := errors.Join(json.Compact(&gc, gb), json.Compact(&wc, wb)); err != nil {
				t.Fatalf("Encode gave invalid JSON: %v", err)
			}
			if !bytes.Equal(gc.Bytes(), wc.Bytes()) {
				t.Fatalf("Decode(%s)=%s, want %s", b, gb, wb)
			}
		}
	}
}

// TestEncode_SameAsEncodingJSON: for frames whose documents are compact, the
// spliced encoding of push and changes frames says exactly what
// encoding/json (without HTML escaping) says, field for field.
func TestEncode_SameAsEncodingJSON(t *testing.T) {
	for _, in := range validFrames {
		f, err := wire.Decode([]byte(in))
		if err != nil {
			t.Fatal(err)
		}
		got, err := wire.Encode(f)
		if err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(f); err != nil {
			t.Fatal(err)
		}
		var a, b map[string]any
		if err := errors.Join(json.Unmarshal(got, &a), json.Unmarshal(buf.Bytes(), &b)); err != nil {
			t.Fatalf("%s: %v", got, err)
		}
		if !reflect.DeepEqual(a, b) {
			t.Fatalf("Encode(%s) = %s, encoding/json says %s", f.Type, got, buf.Bytes())
		}
	}
	// A body with what encoding/json would escape is embedded as it is.
	f := &wire.Frame{Type: wire.TypeChanges, LSN: 1, Changes: []wire.Change{{LSN: 1, Container: "c", Op: "create", ID: "x", Body: json.RawMessage(`{"s":"<&>\u2028 "}`)}}}
	got, err := wire.Encode(f)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(got, []byte(`"body":{"s":"<&>\u2028 "}}`)) {
		t.Fatalf("Encode = %s, want the body as it is", got)
	}
}

// A definition in a frame keeps its indexing policy: edges learn it from
// the hub with the rest of the definition.
func TestEncode_KeepsIndexingPolicy(t *testing.T) {
	def := replica.Container{Name: "c", PartitionKey: "/pk", ConflictPolicy: replica.ConflictPolicy{Mode: "merge"},
		IndexingPolicy: &replica.IndexingPolicy{Paths: []string{"/price"}}}
	frames := []*wire.Frame{
		{Type: "hello", NodeID: "n1", Protocol: 1, Containers: []replica.Container{def}},
		{Type: "changes", LSN: 2, HeadLSN: 2, Containers: []replica.Container{def}, Changes: []wire.Change{
			{LSN: 1, CRTS: 1, Container: "c", Op: "create", ID: "x", PK: "a", Version: "n1-1", Origin: "n1", TS: 1, Body: json.RawMessage(`{"id":"x","pk":"a"}`)}}},
	}
	for _, f := range frames {
		b, err := wire.Encode(f)
		if err != nil {
			t.Fatal(err)
		}
		got, err := wire.Decode(b)
		if err != nil {
			t.Fatalf("%s frame: %v", f.Type, err)
		}
		if ip := got.Containers[0].IndexingPolicy; ip == nil || len(ip.Paths) != 1 || ip.Paths[0] != "/price" || len(got.Changes) != len(f.Changes) {
			t.Fatalf("%s frame %s decodes as %+v, want the indexing policy /price", f.Type, b, got)
		}
	}
}
