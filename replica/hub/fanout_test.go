package hub_test

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/edgesync/edgesync/replica"
	"github.com/edgesync/edgesync/replica/hub"
	"github.com/edgesync/edgesync/replica/wire"
)

// helloRaw registers an edge, connects it as a raw edge with a node id of
// its name, says hello from resume and reads the welcome.
func helloRaw(t testing.TB, c *cluster, name string, scope []wire.ScopeEntry, resume int64) (*rawEdge, string) {
	t.Helper()
	tok, err := c.hub.RegisterEdge(c.ctx, name, scope)
	if err != nil {
		t.Fatal(err)
	}
	hash := fnv.New64a()
	hash.Write([]byte(name))
	node := fmt.Sprintf("e%016x", hash.Sum64())
	return redialRaw(t, c, tok, node, resume), node
}

// redialRaw connects a raw edge with token and node id, says hello from
// resume and reads the welcome.
func redialRaw(t testing.TB, c *cluster, tok, node string, resume int64) *rawEdge {
	t.Helper()
	r := dialRaw(t, c.srv.URL, tok)
	if err := r.send(fmt.Sprintf(`{"type":"hello","nodeId":%q,"protocol":1,"resumeLsn":%d}`, node, resume)); err != nil {
		t.Fatal(err)
	}
	if _, f, err := r.next(10 * time.Second); err != nil || f.Type != wire.TypeWelcome {
		t.Fatalf("%s: welcome: %+v, %v", node, f, err)
	}
	return r
}

// until reads r's frames until it has a changes frame covering lsn, and
// returns the ids of the changes it received.
func (r *rawEdge) until(lsn int64, d time.Duration) ([]string, error) {
	ids, _, err := r.untilFrom(lsn, d)
	return ids, err
}

// untilFrom is until that also returns the position the frames covered.
func (r *rawEdge) untilFrom(lsn int64, d time.Duration) (ids []string, covered int64, err error) {
	deadline := time.Now().Add(d)
	for {
		_, f, err := r.next(time.Until(deadline))
		if err != nil {
			return ids, covered, err
		}
		if f.Type != wire.TypeChanges {
			continue
		}
		for _, ch := range f.Changes {
			ids = append(ids, ch.ID)
		}
		covered = f.LSN
		if f.LSN >= lsn {
			return ids, covered, nil
		}
	}
}

// TestSync_FanoutEncodesOncePerCommit: edges at the head with the same scope
// get a commit from one log read and one encoded frame, whatever their
// number; edges of another scope share another; every edge gets exactly
// what its scope covers.
func TestSync_FanoutEncodesOncePerCommit(t *testing.T) {
	const edges, writes = 40, 5
	c := newCluster(t)
	ctx := context.Background()
	if _, _, err := c.hub.PutContainer(ctx, replica.Container{Name: "c", PartitionKey: "/pk"}); err != nil {
		t.Fatal(err)
	}
	scoped := []wire.ScopeEntry{{Container: "c", PartitionKeys: []string{"a"}}}
	var all, some []*rawEdge
	for i := range edges {
		r, _ := helloRaw(t, c, fmt.Sprintf("all-%d", i), nil, 0)
		all = append(all, r)
	}
	for i := range edges / 4 {
		r, _ := helloRaw(t, c, fmt.Sprintf("some-%d", i), scoped, 0)
		some = append(some, r)
	}
	// The first frame of every session carries the container's definition
	// and is its own; the writes after it are measured.
	if _, err := c.hub.Create(ctx, "c", []byte(`{"id":"first","pk":"a"}`)); err != nil {
		t.Fatal(err)
	}
	for _, r := range append(all, some...) {
		if _, err := r.until(c.hub.Head(), 10*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	before := c.hub.FanoutStats()
	for k := range writes {
		pk := "a"
		if k%2 == 1 {
			pk = "b"
		}
		if _, err := c.hub.Create(ctx, "c", []byte(fmt.Sprintf(`{"id":"w%d","pk":%q}`, k, pk))); err != nil {
			t.Fatal(err)
		}
		head := c.hub.Head()
		for i, r := range all {
			ids, err := r.until(head, 10*time.Second)
			if err != nil || strings.Join(ids, ",") != fmt.Sprintf("w%d", k) {
				t.Fatalf("edge all-%d after write %d: got %v (%v), want [w%d]", i, k, ids, err, k)
			}
		}
		for i, r := range some {
			ids, err := r.until(head, 10*time.Second)
			want := ""
			if pk == "a" {
				want = fmt.Sprintf("w%d", k)
			}
			if err != nil || strings.Join(ids, ",") != want {
				t.Fatalf("edge some-%d after write %d (pk %s): got %v (%v), want [%s]", i, k, pk, ids, err, want)
			}
		}
	}
	after := c.hub.FanoutStats()
	// Two scope shapes: two reads and two frames per commit. Per-session
	// reads and encodes would be (edges + edges/4) per commit.
	if got, limit := after.Encodes-before.Encodes, int64(2*writes+2); got > limit {
		t.Errorf("%d frames encoded for %d commits to %d sessions of 2 scopes, want at most %d", got, writes, edges+edges/4, limit)
	}
	if got, limit := after.Reads-before.Reads, int64(2*writes+2); got > limit {
		t.Errorf("%d log reads for %d commits to %d sessions of 2 scopes, want at most %d", got, writes, edges+edges/4, limit)
	}
}

// TestSync_FanoutOwnWritesAndNewContainers: an edge is not streamed its own
// pushed writes, though the others at the head share one frame of them, and
// an edge first sent a container's change gets its definition with it.
func TestSync_FanoutOwnWritesAndNewContainers(t *testing.T) {
	c := newCluster(t)
	ctx := context.Background()
	if _, _, err := c.hub.PutContainer(ctx, replica.Container{Name: "c", PartitionKey: "/pk"}); err != nil {
		t.Fatal(err)
	}
	pusher, node := helloRaw(t, c, "pusher", nil, 0)
	watcher, _ := helloRaw(t, c, "watcher", nil, 0)
	// A container defined after both connected: its definition goes out
	// with its first change.
	if _, _, err := c.hub.PutContainer(ctx, replica.Container{Name: "late", PartitionKey: "/pk"}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.hub.Create(ctx, "late", []byte(`{"id":"l1","pk":"a"}`)); err != nil {
		t.Fatal(err)
	}
	for _, r := range []*rawEdge{pusher, watcher} {
		_, f, err := r.next(10 * time.Second)
		if err != nil || f.Type != wire.TypeChanges || len(f.Containers) != 1 || f.Containers[0].Name != "late" {
			t.Fatalf("first change of a new container: %+v, %v; want its definition with it", f, err)
		}
	}
	if err := pusher.send(pushFrame(1, createVersion("c", "p1", node+"-1", `{"id":"p1","pk":"a"}`))); err != nil {
		t.Fatal(err)
	}
	var outcome *wire.Frame
	for outcome == nil {
		_, f, err := pusher.next(10 * time.Second)
		if err != nil {
			t.Fatal(err)
		}
		switch f.Type {
		case wire.TypeChanges:
			for _, ch := range f.Changes {
				if ch.ID == "p1" {
					t.Fatalf("the pusher was streamed its own write p1")
				}
			}
		case wire.TypeOutcomes:
			outcome = f
		}
	}
	if len(outcome.Outcomes) != 1 || outcome.Outcomes[0].Outcome != wire.OutcomeConfirmed {
		t.Fatalf("outcomes %+v, want one confirmed", outcome.Outcomes)
	}
	ids, err := watcher.until(outcome.Outcomes[0].LSN, 10*time.Second)
	if err != nil || strings.Join(ids, ",") != "p1" {
		t.Fatalf("watcher got %v (%v), want [p1]", ids, err)
	}
	// A hub write after the push: the pusher, no longer waiting for
	// outcomes, shares the frame with the watcher.
	if _, err := c.hub.Create(ctx, "c", []byte(`{"id":"h1","pk":"a"}`)); err != nil {
		t.Fatal(err)
	}
	for _, r := range []*rawEdge{pusher, watcher} {
		ids, err := r.until(c.hub.Head(), 10*time.Second)
		if err != nil || strings.Join(ids, ",") != "h1" {
			t.Fatalf("after a hub write: got %v (%v), want [h1]", ids, err)
		}
	}
}

// TestSync_SlowEdgeDoesNotHoldBackOthers: an edge that stops reading falls
// behind in the log while the others receive every write at once; when it
// reads again it catches up with everything, in order (from where it was,
// after reconnecting, if the hub gave up on writing to it).
func TestSync_SlowEdgeDoesNotHoldBackOthers(t *testing.T) {
	c := newCluster(t)
	ctx := context.Background()
	if _, _, err := c.hub.PutContainer(ctx, replica.Container{Name: "c", PartitionKey: "/pk"}); err != nil {
		t.Fatal(err)
	}
	tok, err := c.hub.RegisterEdge(ctx, "slow", nil)
	if err != nil {
		t.Fatal(err)
	}
	const slowNode = "e00000000000051ab"
	slow := redialRaw(t, c, tok, slowNode, 0)
	fast, _ := helloRaw(t, c, "fast", nil, 0)
	big := strings.Repeat("x", 256<<10)
	const writes = 64 // 16 MiB: more than the sockets buffer
	var want []string
	for k := range writes {
		id := fmt.Sprintf("w%02d", k)
		want = append(want, id)
		if _, err := c.hub.Create(ctx, "c", []byte(fmt.Sprintf(`{"id":%q,"pk":"a","v":%q}`, id, big))); err != nil {
			t.Fatal(err)
		}
		ids, err := fast.until(c.hub.Head(), 5*time.Second)
		if err != nil || len(ids) != 1 || ids[0] != id {
			t.Fatalf("fast edge, write %d: got %v (%v), want [%s]", k, ids, err, id)
		}
	}
	var got []string
	var covered int64
	for attempt := 0; covered < c.hub.Head(); attempt++ {
		if attempt > 0 {
			if attempt > 3 {
				t.Fatalf("the slow edge did not catch up in 3 reconnections: %d changes", len(got))
			}
			slow = redialRaw(t, c, tok, slowNode, covered)
		}
		ids, last, err := slow.untilFrom(c.hub.Head(), 30*time.Second)
		got = append(got, ids...)
		covered = max(covered, last)
		if err != nil {
			t.Logf("slow edge: %v after %d changes (the hub cut a write it could not finish)", err, len(got))
		}
	}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("slow edge caught up with %d changes, want %d in order", len(got), len(want))
	}
}

// TestSync_IdleSessionGoroutines: an idle session holds two goroutines (its
// reader, in the HTTP handler, and its writer), not one per role.
func TestSync_IdleSessionGoroutines(t *testing.T) {
	const edges = 30
	c := newCluster(t)
	ctx := context.Background()
	if _, _, err := c.hub.PutContainer(ctx, replica.Container{Name: "c", PartitionKey: "/pk"}); err != nil {
		t.Fatal(err)
	}
	// A push and its outcome first, so that a session that has pushed is
	// counted too.
	r0, node := helloRaw(t, c, "e0", nil, 0)
	if err := r0.send(pushFrame(1, createVersion("c", "p", node+"-1", `{"id":"p","pk":"a"}`))); err != nil {
		t.Fatal(err)
	}
	for {
		_, f, err := r0.next(10 * time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if f.Type == wire.TypeOutcomes {
			break
		}
	}
	base := goroutinesSettled(0)
	for i := 1; i <= edges; i++ {
		helloRaw(t, c, fmt.Sprintf("e%d", i), nil, 0)
	}
	got := goroutinesSettled(base + 2*edges)
	if per := float64(got-base) / edges; per > 2.2 {
		t.Fatalf("%d goroutines for %d idle sessions: %.2f per session, want at most 2", got-base, edges, per)
	}
}

// goroutinesSettled waits up to 2 s for the goroutine count to come down to
// want and returns it.
func goroutinesSettled(want int) int {
	deadline := time.Now().Add(2 * time.Second)
	for {
		n := runtime.NumGoroutine()
		if n <= want || time.Now().After(deadline) {
			return n
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestServeSync_Admission: a connection that finds every handshake slot
// taken waits for one, and is refused with 503 and Retry-After if none comes
// free in time; one beyond the session limit is refused at once; a refused
// edge gets in once there is room.
func TestServeSync_Admission(t *testing.T) {
	defer hub.SetHandshakeWait(300 * time.Millisecond)()
	skipOnPostgres(t)
	ctx, cancel := context.WithCancel(context.Background())
	h := hub.New(hub.Config{Store: newStore(t, t.TempDir()), MaxSyncHandshakes: 1, MaxSyncSessions: 2})
	if err := h.Open(ctx); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { h.ServeSync(ctx, w, r) }))
	t.Cleanup(func() { cancel(); srv.CloseClientConnections(); srv.Close(); h.Close(context.Background()) })
	var toks []string
	for i := range 3 {
		tok, err := h.RegisterEdge(ctx, fmt.Sprintf("a%d", i), nil)
		if err != nil {
			t.Fatal(err)
		}
		toks = append(toks, tok)
	}
	dial := func(tok string) (*websocket.Conn, *http.Response, error) {
		d := websocket.Dialer{Subprotocols: []string{wire.Subprotocol}, HandshakeTimeout: 5 * time.Second}
		conn, resp, err := d.Dial("ws"+strings.TrimPrefix(srv.URL, "http"), http.Header{"Authorization": {"Bearer " + tok}})
		if conn != nil {
			t.Cleanup(func() { conn.Close() })
		}
		return conn, resp, err
	}
	busy := func(what string, resp *http.Response, err error) {
		t.Helper()
		if !errors.Is(err, websocket.ErrBadHandshake) || resp == nil || resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") != "1" {
			status := 0
			if resp != nil {
				status = resp.StatusCode
			}
			t.Fatalf("%s: status %d, err %v; want 503 with Retry-After 1", what, status, err)
		}
	}
	// a0 is upgraded and holds the only handshake slot until its hello.
	holder, _, err := dial(toks[0])
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, resp, err := dial(toks[1])
	busy("a second handshake while the slot is held", resp, err)
	if waited := time.Since(start); waited < 300*time.Millisecond {
		t.Fatalf("refused after %s, want a wait of the handshake wait (300ms) first", waited)
	}
	// The waiting connection gets the slot as soon as it frees.
	got := make(chan error, 1)
	go func() {
		conn, _, err := dial(toks[1])
		if err == nil {
			err = conn.WriteMessage(websocket.TextMessage, []byte(`{"type":"hello","nodeId":"e00000000000000a1","protocol":1}`))
		}
		if err == nil {
			conn.SetReadDeadline(time.Now().Add(5 * time.Second))
			_, _, err = conn.ReadMessage()
		}
		got <- err
	}()
	time.Sleep(50 * time.Millisecond)
	if err := holder.WriteMessage(websocket.TextMessage, []byte(`{"type":"hello","nodeId":"e00000000000000a0","protocol":1}`)); err != nil {
		t.Fatal(err)
	}
	if err := <-got; err != nil {
		t.Fatalf("the waiting edge after the slot freed: %v, want its welcome", err)
	}
	// Two sessions: the third edge is refused at once.
	start = time.Now()
	_, resp, err = dial(toks[2])
	busy("one sync session more than the limit of two", resp, err)
	if waited := time.Since(start); waited > 250*time.Millisecond {
		t.Fatalf("refused after %s, want at once", waited)
	}
	if got := h.SyncRefusedBusy(); got != 2 {
		t.Fatalf("SyncRefusedBusy() = %d, want 2", got)
	}
	// Once a session ends, the third gets in.
	holder.Close()
	eventually(t, 5*time.Second, func() error {
		conn, resp, err := dial(toks[2])
		if err != nil {
			if resp != nil {
				return fmt.Errorf("status %d", resp.StatusCode)
			}
			return err
		}
		conn.Close()
		return nil
	})
}
