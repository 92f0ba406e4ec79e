package web_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/edgesync/edgesync/replica"
	"github.com/edgesync/edgesync/replica/edge"
	"github.com/edgesync/edgesync/replica/hub"
	"github.com/edgesync/edgesync/replica/wire"
)

// liveQuery opens GET .../query/live; close it with the returned function.
func (s *server) liveQuery(t *testing.T, container string, params url.Values) (<-chan sseEvent, func()) {
	t.Helper()
	return openLiveQuery(t, s.c, s.url+"/api/v1/containers/"+container+"/query/live?"+params.Encode())
}

// openLiveQuery opens a live query at u with the headers given (names and
// values in turn).
func openLiveQuery(t *testing.T, c *http.Client, u string, hdr ...string) (<-chan sseEvent, func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := c.Do(req)
	if err != nil {
		cancel()
		t.Fatalf("GET live query: %v", err)
	}
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		cancel()
		t.Fatalf("live query: %d %s", resp.StatusCode, b)
	}
	ch := make(chan sseEvent, 16)
	go readEvents(resp.Body, ch)
	stop := func() {
		cancel()
		resp.Body.Close()
		for range ch {
		}
	}
	t.Cleanup(stop)
	return ch, stop
}

// nextResult waits for the next "result" event and returns its documents.
func nextResult(t *testing.T, ch <-chan sseEvent) string {
	t.Helper()
	select {
	case ev, ok := <-ch:
		if !ok {
			t.Fatal("live query ended, want a result")
		}
		if ev.event != "result" {
			t.Fatalf("event %q (%s), want result", ev.event, ev.data)
		}
		var p struct{ Documents json.RawMessage }
		if err := json.Unmarshal([]byte(ev.data), &p); err != nil {
			t.Fatalf("%s: %v", ev.data, err)
		}
		return string(p.Documents)
	case <-time.After(5 * time.Second):
		t.Fatal("no result within 5s")
	}
	panic("unreachable")
}

// A live query sends its result, then the result again after each change
// to it, in order: a local write (tentative), its confirmation, a write
// that loses to another node's (its replacement by the winner), a delete.
// A commit that leaves the result as it was sends nothing.
func TestEdge_LiveQuery(t *testing.T) {
	ctx := context.Background()
	s := newServer(t)
	s.putContainer(t, "items", "/kind")
	q := url.Values{"q": {`SELECT c.id, c.v, c._tentative ?? false AS tentative FROM c WHERE c.kind = @k`}, "p.k": {"a"}}
	ch, _ := s.liveQuery(t, "items", q)
	step := func(what, want string) {
		t.Helper()
		if got := nextResult(t, ch); got != want {
			t.Fatalf("%s: result %s, want %s", what, got, want)
		}
	}
	step("first", `[]`)

	if _, err := s.r.Create(ctx, "items", []byte(`{"id":"x","kind":"a","v":1}`)); err != nil {
		t.Fatal(err)
	}
	step("local write", `[{"id":"x","v":1,"tentative":true}]`)

	// A write outside the result changes nothing the query returns.
	if _, err := s.r.Create(ctx, "items", []byte(`{"id":"y","kind":"b","v":1}`)); err != nil {
		t.Fatal(err)
	}
	noEvent(t, ch, 200*time.Millisecond)

	out, _, err := s.r.Outbox(ctx, 0, 10, 1<<20)
	if err != nil || len(out) != 2 {
		t.Fatalf("outbox %v, %v", out, err)
	}
	if err := s.r.ApplyOutcomes(ctx, []wire.Outcome{{Version: out[0].Version, Container: "items", ID: "x", Outcome: replica.OutcomeConfirmed, LSN: 1, CRTS: 1}}, 0); err != nil {
		t.Fatal(err)
	}
	step("confirmation", `[{"id":"x","v":1,"tentative":false}]`)

	if _, _, err := s.r.Upsert(ctx, "items", "", []byte(`{"id":"x","kind":"a","v":2}`), edge.WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	step("second local write", `[{"id":"x","v":2,"tentative":true}]`)
	out, _, err = s.r.Outbox(ctx, 0, 10, 1<<20)
	if err != nil || len(out) != 2 || out[1].ID != "x" {
		t.Fatalf("outbox %v, %v", out, err)
	}
	winner := wire.Change{LSN: 2, CRTS: 2, Container: "items", Op: replica.OpReplace, ID: "x", PK: "a", Version: "n2-1", Origin: "n2", TS: 2,
		Body: json.RawMessage(`{"id":"x","kind":"a","v":3}`)}
	if err := s.r.ApplyConfirmed(ctx, nil, []wire.Change{winner}, 2); err != nil {
		t.Fatal(err)
	}
	if err := s.r.ApplyOutcomes(ctx, []wire.Outcome{{Version: out[1].Version, Container: "items", ID: "x", Outcome: replica.OutcomeLost, LSN: 2, Reason: "lww: existing wins"}}, 0); err != nil {
		t.Fatal(err)
	}
	step("lost write replaced by the winner", `[{"id":"x","v":3,"tentative":false}]`)

	if err := s.r.Delete(ctx, "items", "x", edge.WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	step("delete", `[]`)
}

// A live query that does not parse is refused before the stream starts.
func TestEdge_LiveQueryBadQuery(t *testing.T) {
	s := newServer(t)
	s.putContainer(t, "items", "/kind")
	resp, b := s.do(t, http.MethodGet, "/api/v1/containers/items/query/live?q="+url.QueryEscape("SELECT FROM"), "")
	checkError(t, resp, b, http.StatusBadRequest, "bad_query")
	resp, b = s.do(t, http.MethodGet, "/api/v1/containers/items/query/live", "")
	checkError(t, resp, b, http.StatusBadRequest, "bad_request")
	resp, b = s.do(t, http.MethodGet, "/api/v1/containers/nope/query/live?q="+url.QueryEscape("SELECT * FROM c"), "")
	checkError(t, resp, b, http.StatusNotFound, "container_not_found")
}

// An edge keeps a container's indexing policy and explains the plan of a
// query that uses it; a hub keeps the policy with the definition (it sends
// it to edges).
func TestEdge_IndexingPolicyAndExplain(t *testing.T) {
	s := newServer(t)
	def := `{"partitionKey":"/kind","indexingPolicy":{"paths":["/price"]}}`
	_, b := s.must(t, http.StatusCreated, http.MethodPut, "/api/v1/containers/items", def)
	if !strings.Contains(string(b), `"indexingPolicy":{"paths":["/price"]}`) {
		t.Fatalf("PUT answered %s", b)
	}
	_, b = s.must(t, http.StatusOK, http.MethodGet, "/api/v1/containers/items", "")
	if !strings.Contains(string(b), `"indexingPolicy":{"paths":["/price"]}`) {
		t.Fatalf("GET answered %s", b)
	}
	for i := range 5 {
		s.must(t, http.StatusCreated, http.MethodPost, "/api/v1/containers/items/docs", fmt.Sprintf(`{"id":"i%d","kind":"k","price":%d}`, i, i))
	}
	_, b = s.must(t, http.StatusOK, http.MethodPost, "/api/v1/containers/items/query",
		`{"query":"SELECT VALUE c.id FROM c WHERE c.price >= 2 ORDER BY c.price DESC","explain":true}`)
	var p struct {
		Documents []string
		Plan      map[string]string
	}
	decode(t, b, &p)
	if strings.Join(p.Documents, ",") != "i4,i3,i2" || p.Plan["scan"] != "index" || p.Plan["path"] != "/price" || p.Plan["order"] != "desc" {
		t.Fatalf("explained query answered %s", b)
	}
	_, b = s.must(t, http.StatusOK, http.MethodPost, "/api/v1/containers/items/query", `{"query":"SELECT VALUE c.id FROM c WHERE c.price >= 2"}`)
	if strings.Contains(string(b), `"plan"`) {
		t.Fatalf("a query without explain answered %s", b)
	}
	_, _, err := s.r.PutContainer(context.Background(), replica.Container{Name: "bad", PartitionKey: "/k",
		IndexingPolicy: &replica.IndexingPolicy{Paths: []string{"/_ts"}}})
	if !errors.Is(err, replica.ErrInvalid) {
		t.Fatalf("indexing a system property: %v", err)
	}

	h := newHubServer(t)
	_, b = h.must(t, http.StatusCreated, http.MethodPut, "/api/v1/containers/items", def)
	if !strings.Contains(string(b), `"indexingPolicy":{"paths":["/price"]}`) {
		t.Fatalf("hub PUT answered %s", b)
	}
	_, b = h.must(t, http.StatusOK, http.MethodGet, "/api/v1/containers/items", "")
	if !strings.Contains(string(b), `"indexingPolicy":{"paths":["/price"]}`) {
		t.Fatalf("hub GET answered %s", b)
	}
}

// liveQuery opens GET .../query/live on the hub with the admin token.
func (s *hubServer) liveQuery(t *testing.T, container string, params url.Values) (<-chan sseEvent, func()) {
	t.Helper()
	return openLiveQuery(t, s.c, s.url+"/api/v1/containers/"+container+"/query/live?"+params.Encode(), hubAuth...)
}

// A live query on a hub sends its result over the hub's confirmed state,
// then the result again after each change to it, in order: a write at the
// hub, a pushed replace, a conflict's winner, a delete. A version that
// loses its conflict changes nothing and sends nothing.
func TestHub_LiveQuery(t *testing.T) {
	ctx := context.Background()
	s := newHubServer(t)
	s.putContainer(t, "items", `{"partitionKey":"/kind","indexingPolicy":{"paths":["/kind"]}}`)
	q := url.Values{"q": {`SELECT c.id, c.v FROM c WHERE c.kind = @k`}, "p.k": {"a"}}
	ch, _ := s.liveQuery(t, "items", q)
	step := func(what, want string) {
		t.Helper()
		if got := nextResult(t, ch); got != want {
			t.Fatalf("%s: result %s, want %s", what, got, want)
		}
	}
	step("first", `[]`)

	s.must(t, http.StatusCreated, http.MethodPost, "/api/v1/containers/items/docs", `{"id":"x","kind":"a","v":1}`)
	step("create at the hub", `[{"id":"x","v":1}]`)

	// A write outside the result changes nothing the query returns.
	s.must(t, http.StatusCreated, http.MethodPost, "/api/v1/containers/items/docs", `{"id":"y","kind":"b","v":1}`)
	noEvent(t, ch, 200*time.Millisecond)

	v1 := s.version(t, "items", "x")
	replace := func(node, version string, ts int64, v int) wire.Outcome {
		t.Helper()
		return s.push(t, node, wire.Version{Container: "items", ID: "x", Op: replica.OpReplace, Version: version, Base: v1, TS: ts,
			Body: json.RawMessage(fmt.Sprintf(`{"id":"x","kind":"a","v":%d}`, v))})[0]
	}
	if o := replace("n1", "n1-1", 100, 2); o.Outcome != wire.OutcomeConfirmed {
		t.Fatalf("replace: %+v", o)
	}
	step("pushed replace", `[{"id":"x","v":2}]`)

	// Two more writes over v1: the later _ts wins, the earlier loses.
	if o := replace("n2", "n2-1", 300, 3); o.Outcome != wire.OutcomeConfirmed {
		t.Fatalf("conflict winner: %+v", o)
	}
	step("conflict's winner", `[{"id":"x","v":3}]`)
	if o := replace("n3", "n3-1", 200, 4); o.Outcome != wire.OutcomeLost {
		t.Fatalf("conflict loser: %+v", o)
	}
	noEvent(t, ch, 200*time.Millisecond)

	if err := s.h.Delete(ctx, "items", "x", hub.WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	step("delete", `[]`)
}

// A hub answers a live query without the admin token 401, and a bad query
// 400 before the stream starts.
func TestHub_LiveQueryRefused(t *testing.T) {
	s := newHubServer(t)
	s.putContainer(t, "items", `{"partitionKey":"/kind"}`)
	live := "/api/v1/containers/items/query/live?q=" + url.QueryEscape("SELECT * FROM c")
	resp, b := s.raw(t, http.MethodGet, live, "")
	hubCheckError(t, http.MethodGet, resp, b, http.StatusUnauthorized, "unauthorized")
	resp, b = s.do(t, http.MethodGet, "/api/v1/containers/items/query/live?q="+url.QueryEscape("SELECT FROM"), "")
	hubCheckError(t, http.MethodGet, resp, b, http.StatusBadRequest, "bad_query")
	resp, b = s.do(t, http.MethodGet, live+"&consistency=tentative", "")
	hubCheckError(t, http.MethodGet, resp, b, http.StatusBadRequest, "bad_request")
	resp, b = s.do(t, http.MethodGet, "/api/v1/containers/nope/query/live?q="+url.QueryEscape("SELECT * FROM c"), "")
	hubCheckError(t, http.MethodGet, resp, b, http.StatusNotFound, "container_not_found")
}
