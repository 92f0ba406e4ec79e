package hub_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/edgesync/edgesync/replica"
	"github.com/edgesync/edgesync/replica/edge"
	"github.com/edgesync/edgesync/replica/hub"
	"github.com/edgesync/edgesync/replica/wire"
)

// rawEdge is a hand-written sync client, as an attacker holding an edge
// token would write one: it sends whatever frames it is given.
type rawEdge struct {
	t    testing.TB
	conn *websocket.Conn
}

func dialRaw(t testing.TB, srvURL, token string) *rawEdge {
	t.Helper()
	d := websocket.Dialer{Subprotocols: []string{wire.Subprotocol}, HandshakeTimeout: 5 * time.Second}
	hdr := http.Header{}
	hdr.Set("Authorization", "Bearer "+token)
	conn, _, err := d.Dial("ws"+strings.TrimPrefix(srvURL, "http"), hdr)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { conn.Close() })
	return &rawEdge{t: t, conn: conn}
}

// send writes a text frame; a connection the hub has closed is not an
// error here (the test checks what the hub did, not that it listened).
func (r *rawEdge) send(frame string) error {
	r.conn.SetWriteDeadline(time.Now().Add(2 * time.Second))
	return r.conn.WriteMessage(websocket.TextMessage, []byte(frame))
}

// next reads the next frame within d.
func (r *rawEdge) next(d time.Duration) ([]byte, *wire.Frame, error) {
	r.conn.SetReadDeadline(time.Now().Add(d))
	_, b, err := r.conn.ReadMessage()
	if err != nil {
		return nil, nil, err
	}
	f, err := wire.Decode(b)
	return b, f, err
}

// hello sends a hello as nodeID and returns the hub's answer.
func (r *rawEdge) hello(nodeID string, wantConflicts bool) *wire.Frame {
	r.t.Helper()
	if err := r.send(fmt.Sprintf(`{"type":"hello","nodeId":%q,"protocol":%d,"wantConflicts":%v}`, nodeID, wire.ProtocolVersion, wantConflicts)); err != nil {
		r.t.Fatalf("send hello: %v", err)
	}
	_, f, err := r.next(5 * time.Second)
	if err != nil {
		r.t.Fatalf("read the answer to hello: %v", err)
	}
	return f
}

// waitFor reads frames until one satisfies ok, or the connection ends, or d
// passes; it returns every frame read, raw.
func (r *rawEdge) waitFor(d time.Duration, ok func(*wire.Frame) bool) (raw [][]byte, found *wire.Frame) {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		b, f, err := r.next(time.Until(deadline))
		if err != nil {
			return raw, nil
		}
		raw = append(raw, b)
		if ok(f) {
			return raw, f
		}
	}
	return raw, nil
}

func pushFrame(batch int, versions ...string) string {
	return fmt.Sprintf(`{"type":"push","batch":%d,"versions":[%s]}`, batch, strings.Join(versions, ","))
}

func createVersion(container, id, version, body string) string {
	return fmt.Sprintf(`{"container":%q,"id":%q,"op":"create","version":%q,"ts":1,"body":%s}`, container, id, version, body)
}

// versionCounter is the counter of a version id node-n.
func versionCounter(t testing.TB, version string) int64 {
	t.Helper()
	_, n, _ := strings.Cut(version, "-")
	c, err := strconv.ParseInt(n, 10, 64)
	if err != nil {
		t.Fatalf("version id %q: %v", version, err)
	}
	return c
}

// An edge that claims the hub's own node id is refused at hello, and what
// it pushes under the hub's version ids leaves nothing behind: the hub's
// own writes, which take those ids, succeed, also after a restart.
func TestSync_HubIDClaimLeavesHubWritesWorking(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	h := hub.New(hub.Config{Store: newStore(t, dir)})
	if err := h.Open(ctx); err != nil {
		t.Fatal(err)
	}
	sctx, cancel := context.WithCancel(ctx)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { h.ServeSync(sctx, w, r) }))
	defer func() { cancel(); srv.CloseClientConnections(); srv.Close() }()
	tok, err := h.RegisterEdge(ctx, "mallory", []wire.ScopeEntry{{Container: "missing"}})
	if err != nil {
		t.Fatal(err)
	}
	var vs []string
	for n := 1; n <= 5; n++ {
		vs = append(vs, createVersion("missing", "x"+strconv.Itoa(n), h.HubID()+"-"+strconv.Itoa(n), fmt.Sprintf(`{"id":"x%d"}`, n)))
	}
	m := dialRaw(t, srv.URL, tok)
	if f := m.hello(h.HubID(), false); f.Type != wire.TypeError || f.Code != wire.CodeBadNodeID {
		t.Errorf("hello as the hub's id %s: got %s %s %s, want an error frame %s", h.HubID(), f.Type, f.Code, f.Message, wire.CodeBadNodeID)
	}
	m.send(pushFrame(1, vs...))
	m.waitFor(2*time.Second, func(f *wire.Frame) bool { return f.Type == wire.TypeOutcomes })

	// The same through the engine's own entry point.
	var wvs []wire.Version
	for n := 1; n <= 5; n++ {
		wvs = append(wvs, pushV("missing", "y"+strconv.Itoa(n), replica.OpCreate, h.HubID()+"-"+strconv.Itoa(n), "", 1, `{}`))
	}
	out, _, err := h.Push(ctx, h.HubID(), nil, wvs)
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range out {
		if o.Outcome != replica.OutcomeRejected {
			t.Errorf("Push as the hub's id: %s got %s, want rejected", o.Version, o.Outcome)
		}
	}

	if _, _, err := h.PutContainer(ctx, replica.Container{Name: "c", PartitionKey: "/pk"}); err != nil {
		t.Fatal(err)
	}
	write := func(h *hub.Hub, id string) {
		t.Helper()
		if _, err := h.Create(ctx, "c", []byte(`{"id":"`+id+`","pk":"a"}`)); err != nil {
			t.Fatalf("hub write %s after the claim: %v", id, err)
		}
	}
	for n := 1; n <= 6; n++ {
		write(h, "a"+strconv.Itoa(n))
	}
	cancel()
	srv.CloseClientConnections()
	if err := h.Close(ctx); err != nil {
		t.Fatal(err)
	}
	h = hub.New(hub.Config{Store: newStore(t, dir)})
	if err := h.Open(ctx); err != nil {
		t.Fatal(err)
	}
	defer h.Close(ctx)
	write(h, "b1")
	for _, id := range []string{"a1", "a6", "b1"} {
		if _, err := h.Get(ctx, "c", id); err != nil {
			t.Fatalf("Get(%s) after reopen: %v", id, err)
		}
	}
}

// An edge that claims another edge's node id is refused, and content it
// pushes under the victim's next version ids never stands for the
// victim's writes.
func TestSync_VictimNodeIDClaimRefused(t *testing.T) {
	c := newCluster(t)
	ctx := context.Background()
	if _, _, err := c.hub.PutContainer(ctx, replica.Container{Name: "c", PartitionKey: "/pk"}); err != nil {
		t.Fatal(err)
	}
	victim := c.edge("victim", nil)
	eventually(t, 5*time.Second, func() error { _, err := victim.r.Container("c"); return err })
	first, err := victim.r.Create(ctx, "c", []byte(`{"id":"v0","pk":"a"}`))
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, victim.synced)

	tok, err := c.hub.RegisterEdge(ctx, "mallory", nil)
	if err != nil {
		t.Fatal(err)
	}
	m := dialRaw(t, c.srv.URL, tok)
	if f := m.hello(victim.r.NodeID(), false); f.Type != wire.TypeError || f.Code != wire.CodeNodeMismatch {
		t.Errorf("hello as the victim's node id: got %s %s %s, want an error frame %s", f.Type, f.Code, f.Message, wire.CodeNodeMismatch)
	}
	// Use up the victim's next version ids with other content.
	n := versionCounter(t, first.Version)
	var vs []string
	for i := n + 1; i <= n+20; i++ {
		vs = append(vs, createVersion("c", "forged"+strconv.FormatInt(i, 10), fmt.Sprintf("%s-%d", victim.r.NodeID(), i), `{"id":"forged`+strconv.FormatInt(i, 10)+`","pk":"a"}`))
	}
	m.send(pushFrame(1, vs...))
	m.waitFor(2*time.Second, func(f *wire.Frame) bool { return f.Type == wire.TypeOutcomes })

	for i := 1; i <= 3; i++ {
		id := "v" + strconv.Itoa(i)
		if _, err := victim.r.Create(ctx, "c", []byte(`{"id":"`+id+`","pk":"a","by":"victim"}`)); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, 5*time.Second, victim.synced)
	for i := 1; i <= 3; i++ {
		id := "v" + strconv.Itoa(i)
		it, err := c.hub.Get(ctx, "c", id)
		if err != nil {
			t.Fatalf("hub Get(%s): %v (the victim's write did not reach the hub)", id, err)
		}
		if it.Origin != victim.r.NodeID() {
			t.Fatalf("hub has %s from %s, want the victim %s", id, it.Origin, victim.r.NodeID())
		}
		if _, err := victim.r.Get(ctx, "c", id, edge.ReadOptions{Consistency: edge.ConsistencyConfirmed}); err != nil {
			t.Fatalf("victim's confirmed read of its own write %s: %v", id, err)
		}
	}
	for i := n + 1; i <= n+20; i++ {
		if _, err := c.hub.Get(ctx, "c", "forged"+strconv.FormatInt(i, 10)); !errors.Is(err, replica.ErrNotFound) {
			t.Fatalf("hub Get(forged%d) err=%v, want not found", i, err)
		}
	}
}

// A token is bound to the node that first used it: a hello with another
// node id, even a well-formed one, is refused.
func TestSync_TokenBoundToFirstNode(t *testing.T) {
	c := newCluster(t)
	a := c.edge("a", nil)
	eventually(t, 5*time.Second, a.synced)
	eventually(t, 5*time.Second, func() error {
		if !a.s.Status().Connected {
			return errors.New("edge a not connected")
		}
		return nil
	})
	m := dialRaw(t, c.srv.URL, a.tok)
	if f := m.hello("e00000000000000aa", false); f.Type != wire.TypeError || f.Code != wire.CodeNodeMismatch {
		t.Fatalf("hello with a's token as another node: got %s %s %s, want an error frame %s", f.Type, f.Code, f.Message, wire.CodeNodeMismatch)
	}
	edges, err := c.hub.Edges(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(edges) != 1 || edges[0].NodeID != a.r.NodeID() {
		t.Fatalf("Edges()=%+v, want a bound to %s", edges, a.r.NodeID())
	}
	// The node itself still connects with it.
	a.disconnect()
	a.connect()
	eventually(t, 5*time.Second, func() error {
		if st := a.s.Status(); !st.Connected {
			return fmt.Errorf("edge a not connected again: %s", st.LastError)
		}
		return nil
	})
}

// A hello whose node id is not an edge's is refused.
func TestSync_MalformedNodeIDRefused(t *testing.T) {
	c := newCluster(t)
	tok, err := c.hub.RegisterEdge(context.Background(), "m", nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"n1", "raw-node-1", "e0123456789abcde", "E0123456789ABCDEF", "h0123456789abcdef", "e0123456789abcdef-1"} {
		m := dialRaw(t, c.srv.URL, tok)
		if f := m.hello(id, false); f.Type != wire.TypeError || f.Code != wire.CodeBadNodeID {
			t.Fatalf("hello as %q: got %s %s %s, want an error frame %s", id, f.Type, f.Code, f.Message, wire.CodeBadNodeID)
		}
	}
	edges, err := c.hub.Edges(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if edges[0].NodeID != "" {
		t.Fatalf("edge bound to %q after refused hellos, want unbound", edges[0].NodeID)
	}
}

// An edge cannot push versions under ids its node does not issue; they
// are rejected and not stored, and the node they name still confirms its
// writes under those ids.
func TestSync_ForgedVersionIDsRejected(t *testing.T) {
	c := newCluster(t)
	ctx := context.Background()
	if _, _, err := c.hub.PutContainer(ctx, replica.Container{Name: "c", PartitionKey: "/pk"}); err != nil {
		t.Fatal(err)
	}
	victim := c.edge("victim", nil)
	eventually(t, 5*time.Second, func() error { _, err := victim.r.Container("c"); return err })
	first, err := victim.r.Create(ctx, "c", []byte(`{"id":"v0","pk":"a"}`))
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, victim.synced)
	n := versionCounter(t, first.Version)

	tok, err := c.hub.RegisterEdge(ctx, "mallory", nil)
	if err != nil {
		t.Fatal(err)
	}
	const self = "e00000000000000ee"
	m := dialRaw(t, c.srv.URL, tok)
	if f := m.hello(self, false); f.Type != wire.TypeWelcome {
		t.Fatalf("hello as %s: got %s %s %s, want welcome", self, f.Type, f.Code, f.Message)
	}
	forged := []string{
		fmt.Sprintf("%s-%d", victim.r.NodeID(), n+1), // the victim's next
		fmt.Sprintf("%s-%s-%d", self, victim.r.NodeID(), n+1),
		self + "-1x",
		self + "-01",
		self + "-",
		c.hub.HubID() + "-1",
	}
	var vs []string
	for i, v := range forged {
		vs = append(vs, createVersion("c", "f"+strconv.Itoa(i), v, `{"id":"f`+strconv.Itoa(i)+`","pk":"a"}`))
	}
	if err := m.send(pushFrame(1, vs...)); err != nil {
		t.Fatal(err)
	}
	_, f := m.waitFor(5*time.Second, func(f *wire.Frame) bool { return f.Type == wire.TypeOutcomes })
	if f == nil || len(f.Outcomes) != len(forged) {
		t.Fatalf("no outcomes for the forged push: %+v", f)
	}
	for i, o := range f.Outcomes {
		if o.Outcome != replica.OutcomeRejected {
			t.Errorf("version %q: %s, want rejected", forged[i], o.Outcome)
		}
		if _, err := c.hub.Get(ctx, "c", "f"+strconv.Itoa(i)); !errors.Is(err, replica.ErrNotFound) {
			t.Errorf("hub Get(f%d) err=%v, want not found", i, err)
		}
	}
	next, err := victim.r.Create(ctx, "c", []byte(`{"id":"v1","pk":"a"}`))
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, victim.synced)
	it, err := c.hub.Get(ctx, "c", "v1")
	if err != nil || it.Version != next.Version || it.Origin != victim.r.NodeID() {
		t.Fatalf("hub Get(v1)=%+v, %v; want the victim's version %s", it, err, next.Version)
	}
}

// A scoped edge that pushes a replace whose base is the version id of an
// item outside its scope (hub version ids are the hub id and an LSN, easy
// to guess) never gets that item's document, in the conflicts stream or
// anywhere else.
func TestSync_BaseOutsideScopeNeverSent(t *testing.T) {
	c := newCluster(t)
	ctx := context.Background()
	if _, _, err := c.hub.PutContainer(ctx, replica.Container{Name: "c", PartitionKey: "/pk"}); err != nil {
		t.Fatal(err)
	}
	secret, err := c.hub.Create(ctx, "c", []byte(`{"id":"s","pk":"theirs","secret":"TOP-SECRET-42"}`))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.hub.Create(ctx, "c", []byte(`{"id":"x","pk":"mine","v":1}`)); err != nil {
		t.Fatal(err)
	}
	tok, err := c.hub.RegisterEdge(ctx, "mallory", []wire.ScopeEntry{{Container: "c", PartitionKeys: []string{"mine"}}})
	if err != nil {
		t.Fatal(err)
	}
	const self = "e00000000000000ee"
	m := dialRaw(t, c.srv.URL, tok)
	if f := m.hello(self, true); f.Type != wire.TypeWelcome {
		t.Fatalf("hello: got %s %s %s, want welcome", f.Type, f.Code, f.Message)
	}
	bases := []string{secret.Version, c.hub.HubID() + "-1", c.hub.HubID() + "-2"}
	for i, base := range bases {
		v := fmt.Sprintf(`{"container":"c","id":"x","op":"replace","version":"%s-%d","base":%q,"ts":1,"body":{"id":"x","pk":"mine","v":%d}}`, self, i+1, base, i+2)
		if err := m.send(pushFrame(i+1, v)); err != nil {
			t.Fatal(err)
		}
	}
	// Read until the conflicts stream has covered every conflict recorded.
	raw, _ := m.waitFor(5*time.Second, func(f *wire.Frame) bool {
		return f.Type == wire.TypeConflicts && f.ConflictSeq >= c.hub.ConflictHead() && c.hub.ConflictHead() > 0
	})
	sawConflict := false
	for _, b := range raw {
		if bytes.Contains(b, []byte("TOP-SECRET-42")) {
			t.Fatalf("a frame sent to the scoped edge carries the out-of-scope document: %s", b)
		}
		if f, err := wire.Decode(b); err == nil && f.Type == wire.TypeConflicts && len(f.Conflicts) > 0 {
			sawConflict = true
		}
	}
	if !sawConflict {
		t.Fatalf("the conflicts stream sent no conflict; frames: %q", raw)
	}
	// The hub's own feed shows no such base either.
	cs, _, err := c.hub.Conflicts(ctx, "c", "", 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	for _, cf := range cs {
		if cf.Base != nil && bytes.Contains(cf.Base.Document, []byte("TOP-SECRET-42")) {
			t.Fatalf("conflict %d of item %s has the other item's document as its base", cf.ID, cf.DocID)
		}
	}
}

// An ack past the log's head is refused, and an edge's applied LSN is what
// it last said, so an edge that starts again from 0 shows its lag from 0.
func TestSync_AckedLSNStaysWithinTheLog(t *testing.T) {
	c := newCluster(t)
	ctx := context.Background()
	if _, _, err := c.hub.PutContainer(ctx, replica.Container{Name: "c", PartitionKey: "/pk"}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.hub.Create(ctx, "c", []byte(`{"id":"x","pk":"a"}`)); err != nil {
		t.Fatal(err)
	}
	tok, err := c.hub.RegisterEdge(ctx, "m", nil)
	if err != nil {
		t.Fatal(err)
	}
	const self = "e00000000000000ee"
	acked := func() int64 {
		t.Helper()
		edges, err := c.hub.Edges(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return edges[0].AckedLSN
	}
	m := dialRaw(t, c.srv.URL, tok)
	if f := m.hello(self, false); f.Type != wire.TypeWelcome {
		t.Fatalf("hello: got %s %s, want welcome", f.Type, f.Code)
	}
	m.send(`{"type":"ack","lsn":1000000}`)
	_, f := m.waitFor(3*time.Second, func(f *wire.Frame) bool { return f.Type == wire.TypeError })
	if f == nil || f.Code != wire.CodeBadFrame {
		t.Errorf("ack past the head: got %+v, want an error frame %s", f, wire.CodeBadFrame)
	}
	m.conn.Close()
	eventually(t, 5*time.Second, func() error {
		if c.hub.EdgesOnline() != 0 {
			return errors.New("session still live")
		}
		return nil
	})
	if got, head := acked(), c.hub.Head(); got > head {
		t.Fatalf("acked LSN %d after an ack past the head, head %d", got, head)
	}

	// A resume point past the head is not shown either; a later hello from
	// 0 shows 0.
	m = dialRaw(t, c.srv.URL, tok)
	m.send(fmt.Sprintf(`{"type":"hello","nodeId":%q,"protocol":%d,"resumeLsn":500}`, self, wire.ProtocolVersion))
	m.waitFor(time.Second, func(f *wire.Frame) bool { return f.Type == wire.TypeWelcome })
	if got, head := acked(), c.hub.Head(); got > head {
		t.Fatalf("acked LSN %d after a resume point past the head, head %d", got, head)
	}
	m.conn.Close()
	eventually(t, 5*time.Second, func() error {
		if c.hub.EdgesOnline() != 0 {
			return errors.New("session still live")
		}
		return nil
	})
	m = dialRaw(t, c.srv.URL, tok)
	if f := m.hello(self, false); f.Type != wire.TypeWelcome {
		t.Fatalf("hello: got %s %s, want welcome", f.Type, f.Code)
	}
	if got := acked(); got != 0 {
		t.Fatalf("acked LSN %d after a hello from 0, want 0", got)
	}
}

// Invalid UTF-8 in a text frame fails the connection with close code 1007
// (RFC 6455), at hello and after it.
func TestSync_InvalidUTF8FailsConnection(t *testing.T) {
	c := newCluster(t)
	tok, err := c.hub.RegisterEdge(context.Background(), "m", nil)
	if err != nil {
		t.Fatal(err)
	}
	const self = "e00000000000000ee"
	check := func(what string, m *rawEdge) {
		t.Helper()
		for i := 0; i < 10; i++ {
			if _, _, err := m.next(3 * time.Second); err != nil {
				var ce *websocket.CloseError
				if !errors.As(err, &ce) || ce.Code != websocket.CloseInvalidFramePayloadData {
					t.Fatalf("%s: connection ended with %v, want close code 1007", what, err)
				}
				return
			}
		}
		t.Fatalf("%s: connection still open", what)
	}
	m := dialRaw(t, c.srv.URL, tok)
	m.send("{\"type\":\"hello\",\"nodeId\":\"" + self + "\",\"protocol\":1,\"containers\":[{\"name\":\"c\",\"partitionKey\":\"/\xff\"}]}")
	check("hello", m)

	m = dialRaw(t, c.srv.URL, tok)
	if f := m.hello(self, false); f.Type != wire.TypeWelcome {
		t.Fatalf("hello: got %s %s, want welcome", f.Type, f.Code)
	}
	m.send(pushFrame(1, "{\"container\":\"c\",\"id\":\"a\xc3\x28\",\"op\":\"delete\",\"version\":\""+self+"-1\",\"ts\":1}"))
	check("push", m)
}
