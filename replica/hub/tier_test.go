package hub_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/edgesync/edgesync/replica"
	"github.com/edgesync/edgesync/replica/edge"
	"github.com/edgesync/edgesync/replica/hub"
	"github.com/edgesync/edgesync/replica/hub/pghub"
	"github.com/edgesync/edgesync/replica/hub/pghub/pgtest"
	"github.com/edgesync/edgesync/replica/wire"
	"github.com/edgesync/edgesync/wasmhost"
)

// newTierCluster is a hub named name of a tier on the PostgreSQL database
// url, served on loopback, with its own edges.
func newTierCluster(t *testing.T, url, name string) *cluster {
	t.Helper()
	return newTierClusterWith(t, url, name, nil)
}

// newTierClusterWith is newTierCluster with a resolver host.
func newTierClusterWith(t *testing.T, url, name string, res hub.ResolverHost) *cluster {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	st := pghub.New(pghub.Config{URL: url, MaxConns: 4})
	tier := pghub.NewTier(pghub.TierConfig{Store: st, Name: name, LeaseTimeout: time.Second, Poll: 200 * time.Millisecond})
	h := hub.New(hub.Config{Store: st, Name: name, Tier: tier, Resolvers: res})
	if err := h.Open(ctx); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { h.ServeSync(ctx, w, r) }))
	t.Cleanup(func() {
		cancel()
		srv.CloseClientConnections()
		srv.Close()
		h.Close(context.Background())
	})
	return &cluster{t: t, hub: h, srv: srv, ctx: ctx}
}

// TestTier_PushThroughFollower: an edge of a hub that does not sequence
// pushes; the sequencer decides, the outcome reaches the edge on its hub,
// and the confirmed version streams to an edge of the sequencer.
func TestTier_PushThroughFollower(t *testing.T) {
	url := pgtest.Database(t)
	ctx := context.Background()
	a := newTierCluster(t, url, "a")
	b := newTierCluster(t, url, "b")
	if !a.hub.Sequencing() || b.hub.Sequencing() {
		t.Fatalf("a sequences %v, b %v: want a only", a.hub.Sequencing(), b.hub.Sequencing())
	}
	if _, _, err := a.hub.PutContainer(ctx, replica.Container{Name: "products", PartitionKey: "/category"}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, func() error { _, err := b.hub.Container("products"); return err })
	ea, eb := a.edge("ea", nil), b.edge("eb", nil)
	eventually(t, 5*time.Second, func() error { _, err := eb.r.Container("products"); return err })
	it, err := eb.r.Create(ctx, "products", []byte(`{"id":"p1","category":"tools"}`))
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, func() error { return errors.Join(ea.synced(), eb.synced()) })
	for _, e := range []*testEdge{ea, eb} {
		got, err := e.r.Get(ctx, "products", "p1", edge.ReadOptions{Consistency: edge.ConsistencyConfirmed})
		if err != nil || got.LSN == 0 || got.Version != it.Version {
			t.Fatalf("edge %s has %+v, %v; want version %s confirmed", e.name, got, err, it.Version)
		}
	}
	if got, want := b.hub.Head(), a.hub.Head(); got != want || got == 0 {
		t.Fatalf("b's head %d, a's %d: want the same, not 0", got, want)
	}
	// A conflict decided by the sequencer for the follower's edge: eb
	// replaces p1 over a base the hub no longer has as current.
	if _, _, err := a.hub.Upsert(ctx, "products", "p1", []byte(`{"id":"p1","category":"tools","by":"hub"}`), hub.WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	eb.disconnect()
	if _, _, err := eb.r.Upsert(ctx, "products", "p1", []byte(`{"id":"p1","category":"tools","by":"eb"}`), edge.WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	eb.connect()
	eventually(t, 10*time.Second, func() error { return errors.Join(ea.synced(), eb.synced()) })
	fa, err := ea.r.Get(ctx, "products", "p1", edge.ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	fb, err := eb.r.Get(ctx, "products", "p1", edge.ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if fa.Version != fb.Version || fa.Tentative || fb.Tentative {
		t.Fatalf("edges hold %s (tentative %v) and %s (tentative %v): want one confirmed version", fa.Version, fa.Tentative, fb.Version, fb.Tentative)
	}
	edges, err := a.hub.Edges(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range edges {
		want := map[string]string{"ea": "a", "eb": "b"}[e.Name]
		if !e.Online || e.Hub != want {
			t.Fatalf("edge %s: online %v on hub %q, want online on %q", e.Name, e.Online, e.Hub, want)
		}
	}
	hubs, err := b.hub.Hubs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(hubs) != 2 || hubs[0].Edges != 1 || hubs[1].Edges != 1 || !hubs[0].Sequencer {
		t.Fatalf("hubs %+v: want a (sequencer) and b with an edge each", hubs)
	}
}

// TestTier_WritesThroughFollower: hub writes and conflict resolutions
// made on a hub that does not sequence are decided by the sequencer and
// answer as they would there.
func TestTier_WritesThroughFollower(t *testing.T) {
	url := pgtest.Database(t)
	ctx := context.Background()
	a := newTierCluster(t, url, "a")
	b := newTierCluster(t, url, "b")
	if _, _, err := b.hub.PutContainer(ctx, replica.Container{Name: "notes", PartitionKey: "/pk",
		ConflictPolicy: replica.ConflictPolicy{Mode: replica.ModeManual}}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, func() error { _, err := a.hub.Container("notes"); return err })
	it, err := b.hub.Create(ctx, "notes", []byte(`{"id":"n1","pk":"p"}`))
	if err != nil {
		t.Fatal(err)
	}
	if it.LSN != 1 || it.Version == "" {
		t.Fatalf("Create on the follower: %+v, want LSN 1", it)
	}
	got, err := a.hub.Get(ctx, "notes", "n1")
	if err != nil || got.Version != it.Version {
		t.Fatalf("sequencer reads %+v, %v; want version %s", got, err, it.Version)
	}
	// The same errors, with the same messages, on either hub.
	for _, tc := range []struct {
		name  string
		write func(h *hub.Hub) error
		want  error
	}{
		{name: "create of an existing id", want: replica.ErrExists,
			write: func(h *hub.Hub) error { _, err := h.Create(ctx, "notes", []byte(`{"id":"n1","pk":"p"}`)); return err }},
		{name: "stale If-Match", want: replica.ErrPreconditionFailed, write: func(h *hub.Hub) error {
			_, _, err := h.Upsert(ctx, "notes", "n1", []byte(`{"id":"n1","pk":"p"}`), hub.WriteOptions{IfMatch: `"nope"`})
			return err
		}},
		{name: "partition key change", want: replica.ErrPartitionKeyChange, write: func(h *hub.Hub) error {
			_, _, err := h.Upsert(ctx, "notes", "n1", []byte(`{"id":"n1","pk":"q"}`), hub.WriteOptions{})
			return err
		}},
		{name: "delete of a missing item", want: replica.ErrNotFound,
			write: func(h *hub.Hub) error { return h.Delete(ctx, "notes", "missing", hub.WriteOptions{}) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			onSeq, onFollower := tc.write(a.hub), tc.write(b.hub)
			if !errors.Is(onFollower, tc.want) || !errors.Is(onSeq, tc.want) {
				t.Fatalf("sequencer: %v; follower: %v; want %v on both", onSeq, onFollower, tc.want)
			}
			if onSeq.Error() != onFollower.Error() {
				t.Fatalf("follower says %q, sequencer %q: want the same", onFollower, onSeq)
			}
		})
	}
	// A conflict (manual policy) resolved through the follower.
	out, _, err := a.hub.Push(ctx, "n", nil, []wire.Version{{Container: "notes", ID: "n1", Op: replica.OpReplace, Version: "n-1", Base: "other", TS: 1,
		Body: []byte(`{"id":"n1","pk":"p","v":"edge"}`)}})
	if err != nil {
		t.Fatal(err)
	}
	if out[0].ConflictID == 0 {
		t.Fatalf("push outcome %+v: want an unresolved conflict", out[0])
	}
	lsn, err := b.hub.ResolveConflict(ctx, "notes", out[0].ConflictID, hub.Resolution{Keep: "incoming"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.hub.ResolveConflict(ctx, "notes", out[0].ConflictID, hub.Resolution{Keep: "incoming"}); !errors.Is(err, hub.ErrConflictSettled) {
		t.Fatalf("second resolution on the follower: %v, want ErrConflictSettled", err)
	}
	got, err = a.hub.Get(ctx, "notes", "n1")
	if err != nil || got.LSN != lsn || string(got.Body) != `{"id":"n1","pk":"p","v":"edge"}` {
		t.Fatalf("after the resolution: %+v, %v; want the incoming version at LSN %d", got, err, lsn)
	}
	if err := b.hub.Delete(ctx, "notes", "n1", hub.WriteOptions{IfMatch: got.ETag()}); err != nil {
		t.Fatalf("Delete on the follower: %v", err)
	}
	eventually(t, 5*time.Second, func() error {
		if _, err := b.hub.Get(ctx, "notes", "n1"); !errors.Is(err, replica.ErrNotFound) {
			return fmt.Errorf("Get after the delete: %v, want ErrNotFound", err)
		}
		return nil
	})
}

// TestSync_WelcomeNamesTheHub: the welcome carries the hub's name in its
// tier, so that an edge can show which hub it is on.
func TestSync_WelcomeNamesTheHub(t *testing.T) {
	for _, tc := range []struct{ name, hubName string }{
		{name: "named", hubName: "hub-b:8080"},
		{name: "unnamed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := hub.New(hub.Config{Store: newStore(t, t.TempDir()), Name: tc.hubName})
			if err := h.Open(context.Background()); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { h.Close(context.Background()) })
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { h.ServeSync(context.Background(), w, r) }))
			t.Cleanup(func() { srv.CloseClientConnections(); srv.Close() })
			tok, err := h.RegisterEdge(context.Background(), "raw", nil)
			if err != nil {
				t.Fatal(err)
			}
			f := dialRaw(t, srv.URL, tok).hello("e00000000000000ab", false)
			if f.Type != wire.TypeWelcome || f.HubName != tc.hubName {
				t.Fatalf("answer to hello: %+v, want a welcome with hubName %q", f, tc.hubName)
			}
		})
	}
}

// TestTier_RefusedForwardedWriteDoesNotBlockTheQueue: a forwarded write
// the sequencer refuses before deciding it (its container does not exist)
// is answered with the error, and the writes queued after it are decided.
func TestTier_RefusedForwardedWriteDoesNotBlockTheQueue(t *testing.T) {
	url := pgtest.Database(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	a := newTierCluster(t, url, "a")
	b := newTierCluster(t, url, "b")
	if _, _, err := a.hub.PutContainer(ctx, replica.Container{Name: "notes", PartitionKey: "/pk"}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.hub.ForwardWrite(ctx, "missing", "x", []byte(`{"id":"x","pk":"p"}`)); !errors.Is(err, replica.ErrContainerNotFound) {
		t.Fatalf("forwarded write to a missing container: %v, want ErrContainerNotFound", err)
	}
	it, err := b.hub.ForwardWrite(ctx, "notes", "n1", []byte(`{"id":"n1","pk":"p"}`))
	if err != nil || it.LSN != 1 {
		t.Fatalf("the next forwarded write: %+v, %v; want it confirmed at LSN 1", it, err)
	}
}

// TestTier_ResolverUploadsOnTwoHubs: a resolver version uploaded on one
// hub is followed by the next number when another hub uploads a new
// version at once, and every hub lists and runs both.
func TestTier_ResolverUploadsOnTwoHubs(t *testing.T) {
	url := pgtest.Database(t)
	ctx := context.Background()
	registry := func() hub.ResolverHost {
		wh, err := wasmhost.New(ctx, wasmhost.Config{CacheDir: t.TempDir(), Limits: wasmhost.Limits{CompileTimeout: time.Hour}})
		if err != nil {
			t.Fatal(err)
		}
		reg := wasmhost.NewRegistry(wh)
		t.Cleanup(func() { reg.Close(ctx); wh.Close(ctx) })
		return reg
	}
	a := newTierClusterWith(t, url, "a", registry())
	b := newTierClusterWith(t, url, "b", registry())
	v1, _, err := a.hub.PutResolver(ctx, "r", readWasm(t, "prefer-incoming.wasm"))
	if err != nil {
		t.Fatal(err)
	}
	v2, _, err := b.hub.PutResolver(ctx, "r", readWasm(t, "echo.wasm"))
	if err != nil {
		t.Fatalf("upload on the second hub right after the first: %v", err)
	}
	if v1.Version != 1 || v2.Version != 2 {
		t.Fatalf("versions %d and %d, want 1 and 2", v1.Version, v2.Version)
	}
	eventually(t, 5*time.Second, func() error {
		if got := len(a.hub.Resolvers()); got != 2 {
			return fmt.Errorf("a lists %d resolver versions, want 2", got)
		}
		return nil
	})
}

// TestTier_RevokeEndsSessionsOnEveryHub: an edge revoked on one hub is
// disconnected from the other hub it syncs with, with the reason.
func TestTier_RevokeEndsSessionsOnEveryHub(t *testing.T) {
	url := pgtest.Database(t)
	ctx := context.Background()
	a := newTierCluster(t, url, "a")
	b := newTierCluster(t, url, "b")
	tok, err := a.hub.RegisterEdge(ctx, "raw", nil)
	if err != nil {
		t.Fatal(err)
	}
	r := dialRaw(t, b.srv.URL, tok)
	if f := r.hello("e00000000000000ac", false); f.Type != wire.TypeWelcome {
		t.Fatalf("answer to hello on b: %+v, want a welcome", f)
	}
	if err := a.hub.RevokeEdge(ctx, "raw"); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, _, err := r.next(time.Until(deadline))
		var ce *websocket.CloseError
		if errors.As(err, &ce) && strings.HasPrefix(ce.Text, wire.CodeRevoked) {
			return
		}
		if err != nil {
			t.Fatalf("session on b after the revocation on a: %v, want closed as %s", err, wire.CodeRevoked)
		}
	}
}

// TestTier_WelcomeListsContainersDefinedOnAnotherHub: an edge that
// connects to a follower right after the sequencer defined a container
// learns it in the welcome, though the follower read the heads since and
// not yet the definitions (it reads those at most every quarter second).
func TestTier_WelcomeListsContainersDefinedOnAnotherHub(t *testing.T) {
	url := pgtest.Database(t)
	ctx := context.Background()
	a := newTierCluster(t, url, "a")
	b := newTierCluster(t, url, "b")
	if _, _, err := a.hub.PutContainer(ctx, replica.Container{Name: "first", PartitionKey: "/pk"}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, func() error { _, err := b.hub.Container("first"); return err })
	if _, _, err := a.hub.PutContainer(ctx, replica.Container{Name: "second", PartitionKey: "/pk"}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, func() error {
		if b.hub.Head() < a.hub.Head() {
			return errors.New("b has not read the heads yet")
		}
		return nil
	})
	eb := b.edge("eb", nil)
	eventually(t, 5*time.Second, eb.synced)
	time.Sleep(2 * time.Second) // past any poll of b: the edge learns no more from it
	if _, err := eb.r.Container("second"); err != nil {
		t.Fatalf("edge on the follower: %v, want container second", err)
	}
}
