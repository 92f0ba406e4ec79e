package hub_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"reflect"
	"testing"
	"time"

	"github.com/edgesync/edgesync/replica"
	"github.com/edgesync/edgesync/replica/edge"
	"github.com/edgesync/edgesync/replica/hub"
	"github.com/edgesync/edgesync/replica/wire"
)

// cluster is a hub served on loopback and edges syncing with it, in process.
type cluster struct {
	t     testing.TB
	pkLag int // the edges' PKIndexLag
	hub   *hub.Hub
	srv   *httptest.Server
	ctx   context.Context
	dir   string // the hub's data directory
}

func newCluster(t testing.TB) *cluster {
	t.Helper()
	return newClusterWith(t, hub.Config{})
}

// newClusterWith is newCluster with a hub configured as cfg (its store
// set here).
func newClusterWith(t testing.TB, cfg hub.Config) *cluster {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	dir := t.TempDir()
	cfg.Store = newStore(t, dir)
	h := hub.New(cfg)
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
	return &cluster{t: t, hub: h, srv: srv, ctx: ctx, dir: dir}
}

type testEdge struct {
	r    *edge.Replica
	s    *edge.Syncer
	dir  string
	name string
	tok  string
	c    *cluster
}

func (c *cluster) edge(name string, scope []wire.ScopeEntry) *testEdge {
	c.t.Helper()
	tok, err := c.hub.RegisterEdge(c.ctx, name, scope)
	if err != nil {
		c.t.Fatal(err)
	}
	e := &testEdge{dir: c.t.TempDir(), name: name, tok: tok, c: c}
	e.start()
	c.t.Cleanup(e.stop)
	return e
}

func (e *testEdge) start() {
	e.c.t.Helper()
	e.r = edge.New(edge.Config{Dir: e.dir, Durability: "normal", PKIndexLag: e.c.pkLag})
	if err := e.r.Open(context.Background()); err != nil {
		e.c.t.Fatal(err)
	}
	e.connect()
}

func (e *testEdge) connect() {
	s, err := edge.NewSyncer(e.r, edge.SyncConfig{Hubs: []string{e.c.srv.URL}, Token: e.tok, MaxBackoff: 200 * time.Millisecond})
	if err != nil {
		e.c.t.Fatal(err)
	}
	e.s = s
	s.Open(context.Background())
}

func (e *testEdge) disconnect() {
	if e.s != nil {
		e.s.Close(context.Background())
		e.s = nil
	}
}

func (e *testEdge) stop() {
	e.disconnect()
	if e.r != nil {
		e.r.Close(context.Background())
		e.r = nil
	}
}

// eventually retries f until it returns nil or the time is up.
func eventually(t testing.TB, d time.Duration, f func() error) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %s: %v", d, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (e *testEdge) synced() error {
	if e.r.Pending() != 0 {
		return fmt.Errorf("%s: %d writes pending", e.name, e.r.Pending())
	}
	if got, want := e.r.ResumeLSN(), e.c.hub.Head(); got != want {
		return fmt.Errorf("%s: applied up to %d, hub at %d", e.name, got, want)
	}
	return nil
}

func field(t testing.TB, it replica.Item, name string) any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(it.Body, &m); err != nil {
		t.Fatal(err)
	}
	return m[name]
}

func TestSync_WriteConfirmsAndFansOut(t *testing.T) {
	c := newCluster(t)
	ctx := context.Background()
	if _, _, err := c.hub.PutContainer(ctx, replica.Container{Name: "products", PartitionKey: "/category"}); err != nil {
		t.Fatal(err)
	}
	a, b := c.edge("a", nil), c.edge("b", nil)
	eventually(t, 5*time.Second, func() error { _, err := a.r.Container("products"); return err })
	it, err := a.r.Create(ctx, "products", []byte(`{"id":"p1","category":"tools","price":10}`))
	if err != nil {
		t.Fatal(err)
	}
	if !it.Tentative {
		t.Fatalf("fresh write not tentative")
	}
	eventually(t, 5*time.Second, func() error { return errors.Join(a.synced(), b.synced()) })
	got, err := b.r.Get(ctx, "products", "p1", edge.ReadOptions{Consistency: edge.ConsistencyConfirmed})
	if err != nil {
		t.Fatalf("edge b confirmed read: %v", err)
	}
	if got.LSN == 0 || got.Tentative || got.Version != it.Version {
		t.Fatalf("edge b has %+v, want the confirmed version %s", got, it.Version)
	}
	own, err := a.r.Get(ctx, "products", "p1", edge.ReadOptions{})
	if err != nil || own.Tentative || own.LSN != got.LSN {
		t.Fatalf("edge a local view %+v, %v; want confirmed at LSN %d", own, err, got.LSN)
	}
	changes, _, err := a.r.ChangesWithOutcomes(ctx, "products", 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	var outcome *replica.Change
	for i := range changes {
		if changes[i].Op == edge.OpOutcome {
			outcome = &changes[i]
		}
	}
	if outcome == nil || outcome.Outcome != replica.OutcomeConfirmed || outcome.LSN != got.LSN {
		t.Fatalf("edge a's feed has no confirmed outcome for its write: %+v", changes)
	}
	if outcome.ID != "p1" || outcome.PK != own.PK || outcome.Version != it.Version || outcome.Origin != a.r.NodeID() || outcome.Reason != "" {
		t.Fatalf("edge a's outcome record %+v: want p1 (partition key %q), version %s, origin %s, no reason", outcome, own.PK, it.Version, a.r.NodeID())
	}
}

func TestSync_ConcurrentPriceUpdate(t *testing.T) {
	c := newCluster(t)
	ctx := context.Background()
	if _, _, err := c.hub.PutContainer(ctx, replica.Container{Name: "products", PartitionKey: "/productId",
		ConflictPolicy: replica.ConflictPolicy{Mode: "lww", Path: "/price"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.hub.Create(ctx, "products", []byte(`{"id":"prod-123","productId":"prod-123","name":"Super Widget","price":19.99}`)); err != nil {
		t.Fatal(err)
	}
	a, b := c.edge("east", nil), c.edge("west", nil)
	eventually(t, 5*time.Second, func() error { return errors.Join(a.synced(), b.synced()) })
	a.disconnect()
	b.disconnect()
	if _, _, err := a.r.Upsert(ctx, "products", "prod-123", []byte(`{"id":"prod-123","productId":"prod-123","name":"Super Widget","price":24.99}`), edge.WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := b.r.Upsert(ctx, "products", "prod-123", []byte(`{"id":"prod-123","productId":"prod-123","name":"Super Widget","price":21.99}`), edge.WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	b.connect()
	eventually(t, 5*time.Second, b.synced)
	a.connect()
	eventually(t, 5*time.Second, func() error { return errors.Join(a.synced(), b.synced()) })
	for _, e := range []*testEdge{a, b} {
		it, err := e.r.Get(ctx, "products", "prod-123", edge.ReadOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if p := field(t, it, "price"); p != 24.99 {
			t.Fatalf("edge %s has price %v, want 24.99 (lww on /price)", e.name, p)
		}
	}
	conflicts, _, err := c.hub.Conflicts(ctx, "products", "", 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(conflicts) != 1 || conflicts[0].Existing == nil || conflicts[0].Kind != replica.KindReplace {
		t.Fatalf("conflicts=%+v, want one replace conflict", conflicts)
	}
	loser := conflicts[0].Existing // b's 21.99 was confirmed first, then lost to a's 24.99
	if conflicts[0].Loser != "existing" || !json.Valid(loser.Document) || field(t, replica.Item{Body: loser.Document}, "price") != 21.99 {
		t.Fatalf("loser=%s %s, want existing with price 21.99", conflicts[0].Loser, loser.Document)
	}
}

func TestSync_Scope(t *testing.T) {
	c := newCluster(t)
	ctx := context.Background()
	if _, _, err := c.hub.PutContainer(ctx, replica.Container{Name: "orders", PartitionKey: "/territory"}); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{`{"id":"o1","territory":"t7"}`, `{"id":"o2","territory":"t8"}`} {
		if _, err := c.hub.Create(ctx, "orders", []byte(d)); err != nil {
			t.Fatal(err)
		}
	}
	e := c.edge("laptop-7", []wire.ScopeEntry{{Container: "orders", PartitionKeys: []string{"t7"}}})
	eventually(t, 5*time.Second, e.synced)
	if _, err := e.r.Get(ctx, "orders", "o1", edge.ReadOptions{}); err != nil {
		t.Fatalf("in-scope item: %v", err)
	}
	if _, err := e.r.Get(ctx, "orders", "o2", edge.ReadOptions{}); !errors.Is(err, replica.ErrNotFound) {
		t.Fatalf("out-of-scope item err=%v, want not found", err)
	}
	if _, err := e.r.Create(ctx, "orders", []byte(`{"id":"o3","territory":"t8"}`)); !errors.Is(err, replica.ErrForbidden) {
		t.Fatalf("write outside scope err=%v, want ErrForbidden", err)
	}
}

// edgeConflicts decodes an edge's conflicts feed for container, every page.
func edgeConflicts(t testing.TB, e *testEdge, container, status string) []wire.Conflict {
	t.Helper()
	var out []wire.Conflict
	for after := int64(0); ; {
		recs, next, err := e.r.Conflicts(context.Background(), container, status, after, 100)
		if err != nil {
			t.Fatal(err)
		}
		if len(recs) == 0 {
			return out
		}
		for _, rec := range recs {
			var c wire.Conflict
			if err := json.Unmarshal(rec, &c); err != nil {
				t.Fatal(err)
			}
			out = append(out, c)
		}
		after = next
	}
}

// TestSync_ConflictsFeed: the hub streams the conflicts feed to edges in
// scope, a settled conflict comes again with its new status, and a restarted
// edge resumes the stream where it stopped.
func TestSync_ConflictsFeed(t *testing.T) {
	c := newCluster(t)
	ctx := context.Background()
	if _, _, err := c.hub.PutContainer(ctx, replica.Container{Name: "notes", PartitionKey: "/team",
		ConflictPolicy: replica.ConflictPolicy{Mode: replica.ModeManual}}); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{`{"id":"n1","team":"red","v":0}`, `{"id":"n2","team":"blue","v":0}`} {
		if _, err := c.hub.Create(ctx, "notes", []byte(d)); err != nil {
			t.Fatal(err)
		}
	}
	a, b := c.edge("a", nil), c.edge("b", nil)
	red := c.edge("red-only", []wire.ScopeEntry{{Container: "notes", PartitionKeys: []string{"red"}}})
	eventually(t, 5*time.Second, func() error { return errors.Join(a.synced(), b.synced(), red.synced()) })
	if got := edgeConflicts(t, a, "notes", ""); len(got) != 0 {
		t.Fatalf("conflicts before any: %+v", got)
	}
	// Concurrent writes to n1 (red) and to n2 (blue): two conflicts.
	a.disconnect()
	b.disconnect()
	for _, w := range []struct {
		e    *testEdge
		id   string
		body string
	}{
		{a, "n1", `{"id":"n1","team":"red","v":1}`}, {b, "n1", `{"id":"n1","team":"red","v":2}`},
		{a, "n2", `{"id":"n2","team":"blue","v":1}`}, {b, "n2", `{"id":"n2","team":"blue","v":2}`},
	} {
		if _, _, err := w.e.r.Upsert(ctx, "notes", w.id, []byte(w.body), edge.WriteOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	a.connect()
	eventually(t, 5*time.Second, a.synced)
	b.connect()
	eventually(t, 5*time.Second, func() error { return errors.Join(a.synced(), b.synced(), red.synced()) })
	hubList, _, err := c.hub.Conflicts(ctx, "notes", replica.StatusUnresolved, 0, 10)
	if err != nil || len(hubList) != 2 {
		t.Fatalf("hub conflicts %+v, %v; want 2 unresolved", hubList, err)
	}
	want := func(e *testEdge, n int, status string) func() error {
		return func() error {
			got := edgeConflicts(t, e, "notes", "")
			if len(got) != n {
				return fmt.Errorf("edge %s has %d conflicts, want %d", e.name, len(got), n)
			}
			for _, cf := range got {
				if cf.Status != status {
					return fmt.Errorf("edge %s: conflict %d is %s, want %s", e.name, cf.ID, cf.Status, status)
				}
			}
			return nil
		}
	}
	eventually(t, 5*time.Second, want(a, 2, replica.StatusUnresolved))
	eventually(t, 5*time.Second, want(red, 1, replica.StatusUnresolved))
	got := edgeConflicts(t, a, "notes", replica.StatusUnresolved)
	n1 := got[0]
	if n1.DocID != "n1" || n1.Incoming == nil || n1.Incoming.Origin != b.r.NodeID() || n1.Existing == nil || n1.Existing.Origin != a.r.NodeID() ||
		field(t, replica.Item{Body: n1.Incoming.Document}, "v") != 2.0 || n1.Base == nil || field(t, replica.Item{Body: n1.Base.Document}, "v") != 0.0 {
		t.Fatalf("edge a's record of the n1 conflict: %+v", n1)
	}
	if only := edgeConflicts(t, red, "notes", ""); only[0].DocID != "n1" {
		t.Fatalf("scoped edge sees %+v, want only the red item's conflict", only)
	}

	// Settle n1 at the hub while edge b is stopped; b learns it on restart.
	b.stop()
	if _, err := c.hub.ResolveConflict(ctx, "notes", n1.ID, hub.Resolution{Keep: "incoming"}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, func() error {
		if st := edgeConflicts(t, red, "notes", "")[0].Status; st != replica.StatusResolved {
			return fmt.Errorf("scoped edge: n1 conflict %s", st)
		}
		return nil
	})
	b.start()
	eventually(t, 5*time.Second, b.synced)
	eventually(t, 5*time.Second, func() error {
		if n := len(edgeConflicts(t, b, "notes", replica.StatusResolved)); n != 1 {
			return fmt.Errorf("edge b: %d resolved conflicts, want 1", n)
		}
		return nil
	})
	if n := len(edgeConflicts(t, b, "notes", replica.StatusUnresolved)); n != 1 {
		t.Fatalf("edge b: %d unresolved conflicts, want 1 (n2)", n)
	}
	if seq := b.r.ConflictSeq(); seq != c.hub.ConflictHead() {
		t.Fatalf("edge b resumed the conflicts stream at %d, hub at %d", seq, c.hub.ConflictHead())
	}
	// Paging by bytes: one record per call, each call going on after the
	// last one returned, until the head; a scope that covers none of them
	// returns nothing but covers them all.
	var seqs []int64
	for after := int64(0); after < c.hub.ConflictHead(); {
		page, last, err := c.hub.ConflictsAfter(ctx, after, 100, 1, nil)
		if err != nil || len(page) != 1 || last != page[0].Seq || last <= after {
			t.Fatalf("ConflictsAfter(%d, 1 byte) = %d records, last %d, %v; want one record and its seq", after, len(page), last, err)
		}
		seqs = append(seqs, last)
		after = last
	}
	if len(seqs) != 2 { // n1 (settled: its newer number) and n2
		t.Fatalf("paged through seqs %v, want 2 records", seqs)
	}
	if page, last, err := c.hub.ConflictsAfter(ctx, 0, 100, 0, []wire.ScopeEntry{{Container: "other"}}); err != nil || len(page) != 0 || last != c.hub.ConflictHead() {
		t.Fatalf("out of scope: %d records, last %d, %v; want none, covering the head %d", len(page), last, err, c.hub.ConflictHead())
	}
	if _, _, err := b.r.Conflicts(ctx, "nope", "", 0, 10); !errors.Is(err, replica.ErrContainerNotFound) {
		t.Fatalf("unknown container: %v", err)
	}
	if _, _, err := b.r.Conflicts(ctx, "notes", "lost", 0, 10); !errors.Is(err, replica.ErrInvalid) {
		t.Fatalf("bad status: %v", err)
	}
}

// TestSync_PartitionKeyMoves: an item deleted and written again under another
// partition key, at the hub and at an edge, is listed under its new key and
// not its old one on every replica (updates that keep the key take another
// statement than those that move it). The edges list through their
// partition key index's unindexed tail (the default lag) and through the
// index itself (caught up at every commit).
func TestSync_PartitionKeyMoves(t *testing.T) {
	for _, lag := range []int{0, 1} {
		t.Run(fmt.Sprintf("PKIndexLag=%d", lag), func(t *testing.T) { testPartitionKeyMoves(t, lag) })
	}
}

func testPartitionKeyMoves(t *testing.T, pkLag int) {
	c := newCluster(t)
	c.pkLag = pkLag
	ctx := context.Background()
	if _, _, err := c.hub.PutContainer(ctx, replica.Container{Name: "p", PartitionKey: "/k"}); err != nil {
		t.Fatal(err)
	}
	a, b := c.edge("a", nil), c.edge("b", nil)
	eventually(t, 5*time.Second, func() error { _, err := a.r.Container("p"); return err })
	// x moves at the hub, y at edge a; both are updated in place first.
	steps := []func() error{
		func() error { _, err := c.hub.Create(ctx, "p", []byte(`{"id":"x","k":"old","v":1}`)); return err },
		func() error { _, err := a.r.Create(ctx, "p", []byte(`{"id":"y","k":"old","v":1}`)); return err },
		func() error {
			_, _, err := c.hub.Upsert(ctx, "p", "x", []byte(`{"id":"x","k":"old","v":2}`), hub.WriteOptions{})
			return err
		},
		func() error {
			_, _, err := a.r.Upsert(ctx, "p", "y", []byte(`{"id":"y","k":"old","v":2}`), edge.WriteOptions{})
			return err
		},
		func() error { return c.hub.Delete(ctx, "p", "x", hub.WriteOptions{}) },
		func() error { return a.r.Delete(ctx, "p", "y", edge.WriteOptions{}) },
		func() error { _, err := c.hub.Create(ctx, "p", []byte(`{"id":"x","k":"new","v":3}`)); return err },
		func() error { _, err := a.r.Create(ctx, "p", []byte(`{"id":"y","k":"new","v":3}`)); return err },
	}
	for i, step := range steps {
		if err := step(); err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		eventually(t, 5*time.Second, func() error { return errors.Join(a.synced(), b.synced()) })
	}
	// An edge that joins now learns x and y from their last versions.
	late := c.edge("late", nil)
	eventually(t, 5*time.Second, late.synced)
	ids := func(items []replica.Item) []string {
		var out []string
		for _, it := range items {
			out = append(out, it.ID+"="+it.PK)
		}
		return out
	}
	for _, k := range []string{"old", "new"} {
		want := []string(nil)
		if k == "new" {
			want = []string{"x=new", "y=new"}
		}
		hp, err := c.hub.List(ctx, "p", hub.ListOptions{PK: k, HasPK: true})
		if err != nil || !reflect.DeepEqual(ids(hp.Items), want) {
			t.Fatalf("hub lists %v under %q (%v), want %v", ids(hp.Items), k, err, want)
		}
		for _, e := range []*testEdge{a, b, late} {
			for _, cons := range []string{"", edge.ConsistencyConfirmed} {
				ep, err := e.r.List(ctx, "p", edge.ListOptions{PK: k, HasPK: true, Consistency: cons})
				if err != nil || !reflect.DeepEqual(ids(ep.Items), want) {
					t.Fatalf("edge %s lists %v under %q (consistency %q, %v), want %v", e.name, ids(ep.Items), k, cons, err, want)
				}
			}
		}
	}
}
