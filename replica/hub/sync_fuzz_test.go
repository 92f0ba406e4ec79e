package hub_test

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/edgesync/edgesync/replica"
	"github.com/edgesync/edgesync/replica/edge"
	"github.com/edgesync/edgesync/replica/hub/sqlitehub"
	"github.com/edgesync/edgesync/replica/wire"
)

// fuzzSecret marks the documents no fuzzed edge may ever be sent.
const fuzzSecret = "FUZZ-SECRET"

// fuzzScope is the scope of every fuzzed edge's token.
var fuzzScope = []wire.ScopeEntry{{Container: "c", PartitionKeys: []string{"a"}}}

// syncFuzz is a hub with two real edges syncing with it, a fuzzed edge's
// frames, and what the invariants need.
type syncFuzz struct {
	c            *cluster
	good1, good2 *testEdge // good1: everything; good2: the fuzzed edges' scope
	db           *sql.DB   // the hub's database, read only
	secretV      string    // the version id of an item outside fuzzScope
	tokens       int       // edges registered for fuzzed sessions
	writes       int       // good1's writes
}

func newSyncFuzz(f *testing.F) *syncFuzz {
	c := newCluster(f)
	ctx := context.Background()
	for _, def := range []replica.Container{{Name: "c", PartitionKey: "/pk"}, {Name: "s", PartitionKey: "/pk"},
		{Name: "m", PartitionKey: "/pk", ConflictPolicy: replica.ConflictPolicy{Mode: replica.ModeMerge}}} {
		if _, _, err := c.hub.PutContainer(ctx, def); err != nil {
			f.Fatal(err)
		}
	}
	secret, err := c.hub.Create(ctx, "c", []byte(`{"id":"secret","pk":"b","v":"`+fuzzSecret+`"}`))
	if err != nil {
		f.Fatal(err)
	}
	for _, doc := range []string{`{"id":"x","pk":"a","v":1}`, `{"id":"secret2","pk":"a-not","v":"` + fuzzSecret + `"}`} {
		if _, err := c.hub.Create(ctx, "c", []byte(doc)); err != nil {
			f.Fatal(err)
		}
	}
	if _, err := c.hub.Create(ctx, "s", []byte(`{"id":"x","pk":"a","v":"`+fuzzSecret+`"}`)); err != nil {
		f.Fatal(err)
	}
	sf := &syncFuzz{c: c, secretV: secret.Version}
	sf.good1 = c.edge("good1", nil)
	sf.good2 = c.edge("good2", fuzzScope)
	eventually(f, 10*time.Second, func() error { return errors.Join(sf.good1.synced(), sf.good2.synced()) })
	skipOnPostgres(f)
	q := url.Values{}
	q.Add("_pragma", "busy_timeout(5000)")
	q.Add("_pragma", "query_only(1)")
	sf.db, err = sql.Open("sqlite", "file:"+filepath.Join(c.dir, sqlitehub.DBFile)+"?"+q.Encode())
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { sf.db.Close() })
	return sf
}

// expand fills in the placeholders a seed uses for the ids of this run.
func (sf *syncFuzz) expand(b []byte, self string) []byte {
	r := strings.NewReplacer("$SELF", self, "$HUB", sf.c.hub.HubID(), "$GOOD1", sf.good1.r.NodeID(),
		"$GOOD2", sf.good2.r.NodeID(), "$SECRETV", sf.secretV)
	return []byte(r.Replace(string(b)))
}

// FuzzSync_HubFrames drives a real hub's sync endpoint with a fuzzed hello
// and fuzzed frames after it (newline-separated), from a fresh token scoped
// to container c, partition key "a", while two real edges sync with the
// hub. After each input: the hub serves, both edges still sync a new write,
// no frame sent to the fuzzed edge holds anything outside its scope, no
// rejected version is stored, and every stored version id is its origin's.
func FuzzSync_HubFrames(f *testing.F) {
	sf := newSyncFuzz(f)
	seeds := [][2]string{
		{`{"type":"hello","nodeId":"$SELF","protocol":1}`, `{"type":"push","batch":1,"versions":[{"container":"c","id":"n1","op":"create","version":"$SELF-1","ts":1,"body":{"id":"n1","pk":"a"}}]}
{"type":"ack","lsn":0}`},
		{`{"type":"hello","nodeId":"$HUB","protocol":1}`, `{"type":"push","batch":1,"versions":[{"container":"missing","id":"h","op":"create","version":"$HUB-99","ts":1,"body":{"id":"h","pk":"a"}}]}`},
		{`{"type":"hello","nodeId":"$GOOD1","protocol":1}`, `{"type":"push","batch":1,"versions":[{"container":"c","id":"g","op":"create","version":"$GOOD1-100","ts":1,"body":{"id":"g","pk":"a"}}]}`},
		{`{"type":"hello","nodeId":"$SELF","protocol":1}`, `{"type":"push","batch":1,"versions":[{"container":"c","id":"f1","op":"create","version":"$GOOD2-100","ts":1,"body":{"id":"f1","pk":"a"}},{"container":"c","id":"f2","op":"create","version":"$SELF-$GOOD1-7","ts":1,"body":{"id":"f2","pk":"a"}},{"container":"c","id":"f3","op":"create","version":"$SELF-07","ts":1,"body":{"id":"f3","pk":"a"}}]}`},
		{`{"type":"hello","nodeId":"$SELF","protocol":1,"wantConflicts":true}`, `{"type":"push","batch":1,"versions":[{"container":"c","id":"x","op":"replace","version":"$SELF-1","base":"$SECRETV","ts":1,"body":{"id":"x","pk":"a","v":2}}]}
{"type":"push","batch":2,"versions":[{"container":"m","id":"y","op":"create","version":"$SELF-2","base":"$SECRETV","ts":1,"body":{"id":"y","pk":"a"}}]}`},
		{`{"type":"hello","nodeId":"$SELF","protocol":1,"resumeLsn":0}`, `{"type":"ack","lsn":999999}`},
		{`{"type":"hello","nodeId":"$SELF","protocol":1}`, "{\"type\":\"ack\",\"lsn\":\"\xff\"}"},
		{`{"type":"hello","nodeId":"e\ud800","protocol":1}`, `{"type":"push","batch":1,"versions":[{"container":"c","id":"a\ud800b","op":"delete","version":"$SELF-1","ts":1}]}`},
		{`{"type":"hello","nodeId":"$SELF","protocol":1}`, `{"type":"push","batch":1,"versions":[{"container":"c","id":"o","op":"create","version":"$SELF-1","ts":1,"body":{"id":"o","pk":"b"}},{"container":"s","id":"o","op":"create","version":"$SELF-2","ts":1,"body":{"id":"o","pk":"a"}},{"container":"c","id":"secret","op":"delete","version":"$SELF-3","ts":1}]}`},
		{`{"type":"hello","nodeId":"$SELF","protocol":1}`, `{"type":"push","batch":1,"versions":[{"container":"c","id":"d","op":"create","version":"$SELF-1","ts":1,"body":{"id":"d","pk":"a","o":{"k":1,"k":2}}}]}
{"type":"push","batch":2,"versions":[{"container":"c","id":"d","op":"create","version":"$SELF-1","ts":1,"body":{"id":"d","pk":"a"}}]}
{"type":"push","batch":3,"versions":[{"container":"c","id":"d","op":"create","version":"$SELF-1","ts":1,"body":{"id":"d","pk":"a"}}]}`},
		{`{"type":"hello",`, ``},
		{`{"type":"hello","nodeId":"$SELF","protocol":1,"resumeLsn":99999,"pending":3,"containers":[{"name":"new1","partitionKey":"/pk"},{"name":"c","partitionKey":"/other"}]}`, `{"type":"welcome","hubId":"h1"}`},
		{`{"type":"hello","nodeId":"$SELF","protocol":2}`, ``},
		{`{"type":"push","batch":1,"versions":[]}`, ``},
	}
	for _, s := range seeds {
		f.Add([]byte(s[0]), []byte(s[1]))
	}
	f.Fuzz(func(t *testing.T, hello, frames []byte) {
		ctx := context.Background()
		sf.tokens++
		name := fmt.Sprintf("fz%d", sf.tokens)
		tok, err := sf.c.hub.RegisterEdge(ctx, name, fuzzScope)
		if err != nil {
			t.Fatal(err)
		}
		defer sf.c.hub.RevokeEdge(ctx, name)
		self := fmt.Sprintf("e%016x", 0xf0000000+sf.tokens)
		m := dialRaw(t, sf.c.srv.URL, tok)
		var received [][]byte
		read := func(d time.Duration) {
			for {
				b, _, err := m.next(d)
				if err != nil {
					return
				}
				received = append(received, b)
			}
		}
		m.send(string(sf.expand(hello, self)))
		for i, fr := range bytes.Split(frames, []byte("\n")) {
			if i == 8 {
				break
			}
			if m.send(string(sf.expand(fr, self))) != nil {
				break
			}
		}
		read(300 * time.Millisecond)
		m.conn.Close()
		sf.check(t, received)
	})
}

// check verifies the invariants after one fuzzed session.
func (sf *syncFuzz) check(t *testing.T, received [][]byte) {
	t.Helper()
	ctx := context.Background()
	for _, b := range received {
		if bytes.Contains(b, []byte(fuzzSecret)) {
			t.Fatalf("the fuzzed edge was sent a document outside its scope: %s", b)
		}
		f, err := wire.Decode(b)
		if err != nil {
			t.Fatalf("the hub sent a frame that does not decode: %v: %s", err, b)
		}
		for _, c := range f.Changes {
			if !wire.InScope(fuzzScope, c.Container, c.PK) {
				t.Fatalf("change of %s/%s (pk %q) sent outside the scope", c.Container, c.ID, c.PK)
			}
		}
		for _, c := range f.Conflicts {
			if !wire.InScope(fuzzScope, c.Container, c.PK) {
				t.Fatalf("conflict of %s/%s (pk %q) sent outside the scope", c.Container, c.DocID, c.PK)
			}
			for _, v := range []*wire.ConflictVersion{c.Incoming, c.Existing, c.Base} {
				if v == nil || v.Document == nil {
					continue
				}
				var doc struct {
					ID string `json:"id"`
					PK string `json:"pk"`
				}
				if err := json.Unmarshal(v.Document, &doc); err != nil || doc.ID != c.DocID || !wire.InScope(fuzzScope, c.Container, doc.PK) {
					t.Fatalf("conflict %d of %s carries a document of another item: %s", c.ID, c.DocID, v.Document)
				}
			}
		}
		for _, c := range f.Containers {
			if !wire.ContainerInScope(fuzzScope, c.Name) {
				t.Fatalf("definition of container %s sent outside the scope", c.Name)
			}
		}
	}

	var rejected int
	if err := sf.db.QueryRowContext(ctx, `SELECT count(*) FROM versions WHERE outcome = 'rejected'`).Scan(&rejected); err != nil {
		t.Fatal(err)
	}
	if rejected != 0 {
		t.Fatalf("%d rejected versions stored", rejected)
	}
	rows, err := sf.db.QueryContext(ctx, `SELECT version, origin FROM versions`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var v, origin string
		if err := rows.Scan(&v, &origin); err != nil {
			t.Fatal(err)
		}
		if !wire.IsVersionOf(v, origin) {
			rows.Close()
			t.Fatalf("stored version %q is not one its origin %q issues", v, origin)
		}
	}
	rows.Close()
	var good1 int
	if err := sf.db.QueryRowContext(ctx, `SELECT count(*) FROM versions WHERE origin = ?`, sf.good1.r.NodeID()).Scan(&good1); err != nil {
		t.Fatal(err)
	}
	if good1 != sf.writes {
		t.Fatalf("the hub has %d versions from good1, which wrote %d", good1, sf.writes)
	}

	// Both real edges still sync: a new write reaches the hub and the edge
	// in whose scope it is.
	sf.writes++
	id := fmt.Sprintf("w%d", sf.writes)
	if _, err := sf.good1.r.Create(ctx, "c", []byte(`{"id":"`+id+`","pk":"a"}`)); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, func() error { return errors.Join(sf.good1.synced(), sf.good2.synced()) })
	if _, err := sf.good2.r.Get(ctx, "c", id, edge.ReadOptions{Consistency: edge.ConsistencyConfirmed}); err != nil {
		t.Fatalf("good2 does not have good1's write %s: %v", id, err)
	}
	if _, err := sf.c.hub.Create(ctx, "c", []byte(`{"id":"h`+id+`","pk":"b"}`)); err != nil {
		t.Fatalf("hub write after the fuzzed session: %v", err)
	}
}
