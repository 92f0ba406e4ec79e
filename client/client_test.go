package client_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/edgesync/edgesync/client"
	"github.com/edgesync/edgesync/replica/edge"
	"github.com/edgesync/edgesync/replica/hub"
	"github.com/edgesync/edgesync/replica/hub/sqlitehub"
	"github.com/edgesync/edgesync/replica/query"
	"github.com/edgesync/edgesync/replica/wire"
	"github.com/edgesync/edgesync/wasmhost"
	"github.com/edgesync/edgesync/web"
)

const adminToken = "admin-secret"

// testHub is a hub with a wasm resolver registry, served by the real hub
// API on loopback until the test ends.
type testHub struct {
	h   *hub.Hub
	srv *httptest.Server
}

func newTestHub(t *testing.T) *testHub {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	wh, err := wasmhost.New(ctx, wasmhost.Config{CacheDir: filepath.Join(dir, "cache")})
	if err != nil {
		t.Fatalf("wasmhost.New: %v", err)
	}
	reg := wasmhost.NewRegistry(wh)
	h := hub.New(hub.Config{Store: sqlitehub.New(sqlitehub.Config{Dir: dir, Durability: "normal"}), Resolvers: reg})
	if err := h.Open(ctx); err != nil {
		t.Fatalf("hub Open: %v", err)
	}
	t.Cleanup(func() {
		if err := h.Close(ctx); err != nil {
			t.Errorf("hub Close: %v", err)
		}
		reg.Close(ctx)
		wh.Close(ctx)
	})
	base, cancel := context.WithCancel(ctx)
	srv := httptest.NewServer(web.NewHub(h, web.HubOptions{AdminToken: adminToken, BaseContext: base, Resolvers: reg}))
	t.Cleanup(srv.Close)
	t.Cleanup(cancel)
	return &testHub{h: h, srv: srv}
}

// testEdge is an edge replica served by the real edge API on loopback;
// with a hub, it syncs with it in-process.
type testEdge struct {
	r   *edge.Replica
	srv *httptest.Server
}

func newTestEdge(t *testing.T, opt web.EdgeOptions, sync *edge.SyncConfig) *testEdge {
	t.Helper()
	ctx := context.Background()
	r := edge.New(edge.Config{Dir: t.TempDir(), Durability: "normal"})
	if err := r.Open(ctx); err != nil {
		t.Fatalf("edge Open: %v", err)
	}
	t.Cleanup(func() {
		if err := r.Close(ctx); err != nil {
			t.Errorf("edge Close: %v", err)
		}
	})
	if sync != nil {
		link, err := edge.NewLink(r, *sync)
		if err != nil {
			t.Fatalf("NewLink: %v", err)
		}
		if err := link.SetOnline(true); err != nil {
			t.Fatalf("SetOnline: %v", err)
		}
		t.Cleanup(func() { link.Close(ctx) })
		opt.Sync, opt.Hubs = link, sync.Hubs
	}
	srv := httptest.NewServer(web.NewEdge(r, opt))
	t.Cleanup(srv.Close)
	return &testEdge{r: r, srv: srv}
}

func newClient(t *testing.T, cfg client.Config) *client.Client {
	t.Helper()
	if cfg.MinBackoff == 0 {
		cfg.MinBackoff, cfg.MaxBackoff = time.Millisecond, 5*time.Millisecond
	}
	c, err := client.New(cfg)
	if err != nil {
		t.Fatalf("client.New: %v", err)
	}
	return c
}

// wantAPIError checks that err is an *Error of status and code, and that
// errors.Is matches sentinel.
func wantAPIError(t *testing.T, what string, err error, status int, code string, sentinel error) {
	t.Helper()
	var ae *client.Error
	if !errors.As(err, &ae) {
		t.Fatalf("%s: err=%v (%T), want *client.Error %d %s", what, err, err, status, code)
	}
	if ae.Status != status || ae.Code != code || ae.Message == "" {
		t.Fatalf("%s: err=%+v, want status %d code %s and a message", what, ae, status, code)
	}
	if sentinel != nil && !errors.Is(err, sentinel) {
		t.Fatalf("%s: errors.Is(%v, %v)=false, want true", what, err, sentinel)
	}
}

type product struct {
	ID       string  `json:"id"`
	Category string  `json:"category"`
	Price    float64 `json:"price"`
}

// nodes returns a client of an edge and one of a hub, each on its own
// node: every document call behaves the same on both.
func nodes(t *testing.T) map[string]*client.Client {
	return map[string]*client.Client{
		"edge": newClient(t, client.Config{URL: newTestEdge(t, web.EdgeOptions{}, nil).srv.URL}),
		"hub":  newClient(t, client.Config{URL: newTestHub(t).srv.URL, Token: adminToken}),
	}
}

func TestClient_Containers(t *testing.T) {
	ctx := context.Background()
	for name, c := range nodes(t) {
		t.Run(name, func(t *testing.T) {
			def, created, err := c.PutContainer(ctx, client.Container{Name: "products", PartitionKey: "/category"})
			if err != nil || !created || def.Name != "products" || def.PartitionKey != "/category" || def.ConflictPolicy.Mode != client.ModeLWW {
				t.Fatalf("PutContainer=%+v, %v, %v; want created products /category lww", def, created, err)
			}
			def, created, err = c.PutContainer(ctx, client.Container{Name: "products", PartitionKey: "/category",
				ConflictPolicy: client.ConflictPolicy{Mode: client.ModeMerge}})
			if err != nil || created || def.ConflictPolicy.Mode != client.ModeMerge {
				t.Fatalf("PutContainer policy change=%+v, %v, %v; want updated to merge", def, created, err)
			}
			_, _, err = c.PutContainer(ctx, client.Container{Name: "products", PartitionKey: "/other"})
			wantAPIError(t, "PutContainer other key", err, 409, "container_mismatch", client.ErrConflict)

			got, err := c.Container(ctx, "products")
			if err != nil || got.ConflictPolicy.Mode != client.ModeMerge {
				t.Fatalf("Container=%+v, %v; want the merge definition", got, err)
			}
			_, err = c.Container(ctx, "nope")
			wantAPIError(t, "Container nope", err, 404, "container_not_found", client.ErrContainerNotFound)
			if !errors.Is(err, client.ErrNotFound) {
				t.Fatalf("errors.Is(%v, ErrNotFound)=false: a missing container is not found", err)
			}
			all, err := c.Containers(ctx)
			if err != nil || len(all) != 1 || all[0].Name != "products" {
				t.Fatalf("Containers=%+v, %v; want products", all, err)
			}
		})
	}
}

func TestClient_Documents(t *testing.T) {
	ctx := context.Background()
	for name, c := range nodes(t) {
		t.Run(name, func(t *testing.T) {
			if _, _, err := c.PutContainer(ctx, client.Container{Name: "products", PartitionKey: "/category"}); err != nil {
				t.Fatal(err)
			}
			d, err := c.Create(ctx, "products", product{ID: "p1", Category: "tools", Price: 12})
			if err != nil || d.ID != "p1" || d.ETag == "" || d.TS == 0 {
				t.Fatalf("Create=%+v, %v; want p1 with an ETag and _ts", d, err)
			}
			if name == "edge" && (!d.Tentative || d.LSN != 0) {
				t.Fatalf("edge Create: tentative=%v lsn=%d, want a tentative write", d.Tentative, d.LSN)
			}
			if name == "hub" && (d.Tentative || d.LSN == 0 || d.CRTS == 0) {
				t.Fatalf("hub Create: tentative=%v lsn=%d crts=%d, want confirmed", d.Tentative, d.LSN, d.CRTS)
			}
			_, err = c.Create(ctx, "products", `{"id":"p1","category":"tools"}`)
			wantAPIError(t, "Create again", err, 409, "conflict", client.ErrConflict)
			_, err = c.Create(ctx, "products", `{"id":"bad/id","category":"tools"}`)
			wantAPIError(t, "Create bad id", err, 400, "bad_request", client.ErrBadRequest)

			got, err := c.Get(ctx, "products", "p1", client.ReadOptions{})
			var p product
			if err != nil || got.ETag != d.ETag || got.Decode(&p) != nil || p != (product{"p1", "tools", 12}) {
				t.Fatalf("Get=%+v (%+v), %v; want p1 at %s", got, p, err, d.ETag)
			}
			if et, err := c.ETag(ctx, "products", "p1"); err != nil || et != d.ETag {
				t.Fatalf("ETag=%q, %v; want %q", et, err, d.ETag)
			}
			_, err = c.ETag(ctx, "products", "nope")
			if !errors.Is(err, client.ErrNotFound) {
				t.Fatalf("ETag(nope) err=%v, want ErrNotFound", err)
			}
			_, err = c.Get(ctx, "products", "p1", client.ReadOptions{IfNoneMatch: d.ETag})
			if !errors.Is(err, client.ErrNotModified) {
				t.Fatalf("Get If-None-Match current err=%v, want ErrNotModified", err)
			}

			_, _, err = c.Put(ctx, "products", "p1", product{"p1", "tools", 13}, client.WriteOptions{IfMatch: `"nope"`})
			wantAPIError(t, "Put stale If-Match", err, 412, "precondition_failed", client.ErrPreconditionFailed)
			upd, created, err := c.Put(ctx, "products", "p1", product{"p1", "tools", 13}, client.WriteOptions{IfMatch: d.ETag})
			if err != nil || created || upd.ETag == d.ETag {
				t.Fatalf("Put If-Match=%+v, %v, %v; want replaced with a new ETag", upd, created, err)
			}
			_, _, err = c.Put(ctx, "products", "p1", product{"p1", "nails", 13}, client.WriteOptions{})
			wantAPIError(t, "Put other partition", err, 400, "partition_key_change", client.ErrBadRequest)
			if _, created, err := c.Put(ctx, "products", "p2", json.RawMessage(`{"id":"p2","category":"nails"}`), client.WriteOptions{}); err != nil || !created {
				t.Fatalf("Put new=%v, %v; want created", created, err)
			}

			err = c.Delete(ctx, "products", "p1", client.WriteOptions{IfMatch: d.ETag})
			wantAPIError(t, "Delete stale If-Match", err, 412, "precondition_failed", client.ErrPreconditionFailed)
			if err := c.Delete(ctx, "products", "p1", client.WriteOptions{IfMatch: upd.ETag}); err != nil {
				t.Fatalf("Delete: %v", err)
			}
			_, err = c.Get(ctx, "products", "p1", client.ReadOptions{})
			wantAPIError(t, "Get deleted", err, 404, "not_found", client.ErrNotFound)
			err = c.Delete(ctx, "products", "p1", client.WriteOptions{})
			wantAPIError(t, "Delete again", err, 404, "not_found", client.ErrNotFound)
			_, err = c.Create(ctx, "nope", `{"id":"x"}`)
			wantAPIError(t, "Create in unknown container", err, 404, "container_not_found", client.ErrContainerNotFound)
		})
	}
}

func TestClient_List(t *testing.T) {
	ctx := context.Background()
	for name, c := range nodes(t) {
		t.Run(name, func(t *testing.T) {
			if _, _, err := c.PutContainer(ctx, client.Container{Name: "products", PartitionKey: "/category"}); err != nil {
				t.Fatal(err)
			}
			var want, wantTools []string
			for i := range 25 {
				cat := []string{"tools", "nails"}[i%2]
				id := "p" + strconv.Itoa(100+i)
				if _, err := c.Create(ctx, "products", product{ID: id, Category: cat}); err != nil {
					t.Fatal(err)
				}
				want = append(want, id)
				if cat == "tools" {
					wantTools = append(wantTools, id)
				}
			}
			page, err := c.List(ctx, "products", client.ListOptions{Limit: 10})
			if err != nil || len(page.Documents) != 10 || page.Continuation == "" {
				t.Fatalf("List limit 10: %d documents, continuation %q, %v; want 10 and a continuation", len(page.Documents), page.Continuation, err)
			}
			var got []string
			pages := 0
			opt := client.ListOptions{Limit: 10}
			for {
				p, err := c.List(ctx, "products", opt)
				if err != nil {
					t.Fatal(err)
				}
				pages++
				for _, d := range p.Documents {
					got = append(got, d.ID)
				}
				if p.Continuation == "" {
					break
				}
				opt.Continuation = p.Continuation
			}
			slices.Sort(got)
			if pages != 3 || !slices.Equal(got, want) {
				t.Fatalf("paged ids=%v in %d pages, want %v in 3", got, pages, want)
			}
			collect := func(opt client.ListOptions) []string {
				var ids []string
				for d, err := range c.ListAll(ctx, "products", opt) {
					if err != nil {
						t.Fatalf("ListAll: %v", err)
					}
					ids = append(ids, d.ID)
				}
				slices.Sort(ids)
				return ids
			}
			if got := collect(client.ListOptions{Limit: 4}); !slices.Equal(got, want) {
				t.Fatalf("ListAll=%v, want %v", got, want)
			}
			tools := "tools"
			if got := collect(client.ListOptions{Limit: 3, PK: &tools}); !slices.Equal(got, wantTools) {
				t.Fatalf("ListAll pk tools=%v, want %v", got, wantTools)
			}
			_, err = c.List(ctx, "products", client.ListOptions{Limit: 5000})
			wantAPIError(t, "List limit 5000", err, 400, "bad_request", client.ErrBadRequest)
			for _, err := range c.ListAll(ctx, "nope", client.ListOptions{}) {
				if !errors.Is(err, client.ErrContainerNotFound) {
					t.Fatalf("ListAll(nope) err=%v, want ErrContainerNotFound", err)
				}
			}
		})
	}
}

func TestClient_Changes(t *testing.T) {
	ctx := context.Background()
	for name, c := range nodes(t) {
		t.Run(name, func(t *testing.T) {
			if _, _, err := c.PutContainer(ctx, client.Container{Name: "products", PartitionKey: "/category"}); err != nil {
				t.Fatal(err)
			}
			for i := range 5 {
				if _, _, err := c.Put(ctx, "products", "p"+strconv.Itoa(i), product{ID: "p" + strconv.Itoa(i), Category: "tools"}, client.WriteOptions{}); err != nil {
					t.Fatal(err)
				}
			}
			if err := c.Delete(ctx, "products", "p0", client.WriteOptions{}); err != nil {
				t.Fatal(err)
			}
			var all []client.Change
			opt := client.ChangesOptions{Limit: 2}
			for range 10 {
				p, err := c.Changes(ctx, "products", opt)
				if err != nil {
					t.Fatalf("Changes: %v", err)
				}
				if len(p.Changes) == 0 {
					break
				}
				all = append(all, p.Changes...)
				opt.Since = p.Next
			}
			if len(all) != 6 || all[0].Op != client.OpCreate || all[0].ID != "p0" || all[5].Op != client.OpDelete || all[5].ID != "p0" {
				t.Fatalf("change feed=%+v, want 5 creates then the delete of p0", all)
			}
			for i := 1; i < len(all); i++ {
				if all[i].Position() <= all[i-1].Position() {
					t.Fatalf("positions %d then %d: want increasing", all[i-1].Position(), all[i].Position())
				}
			}
			_, err := c.Changes(ctx, "nope", client.ChangesOptions{})
			wantAPIError(t, "Changes nope", err, 404, "container_not_found", client.ErrContainerNotFound)
		})
	}
}

// TestClient_StreamChanges reads a live change feed, then cuts every
// connection of the server: the stream reconnects after the last record it
// returned, with no record twice and none lost.
func TestClient_StreamChanges(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	e := newTestEdge(t, web.EdgeOptions{}, nil)
	c := newClient(t, client.Config{URL: e.srv.URL, HTTPClient: &http.Client{Transport: &http.Transport{}}})
	// The writes go over connections of their own, which the cut below
	// leaves alone: a POST on a connection the server closed is not sent
	// again (see the package comment).
	w := newClient(t, client.Config{URL: e.srv.URL, HTTPClient: &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}})
	if _, _, err := w.PutContainer(ctx, client.Container{Name: "products", PartitionKey: "/category"}); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Create(ctx, "products", product{ID: "p0", Category: "tools"}); err != nil {
		t.Fatal(err)
	}
	_, err := c.StreamChanges(ctx, "nope", client.ChangesOptions{})
	wantAPIError(t, "StreamChanges nope", err, 404, "container_not_found", client.ErrContainerNotFound)

	s, err := c.StreamChanges(ctx, "products", client.ChangesOptions{})
	if err != nil {
		t.Fatalf("StreamChanges: %v", err)
	}
	defer s.Close()
	next := func(wantID string) client.Change {
		t.Helper()
		ch, err := s.Next()
		if err != nil || ch.ID != wantID {
			t.Fatalf("Next=%+v, %v; want a change of %s", ch, err, wantID)
		}
		return ch
	}
	next("p0") // the backlog
	if _, err := w.Create(ctx, "products", product{ID: "p1", Category: "tools"}); err != nil {
		t.Fatal(err)
	}
	last := next("p1") // live
	e.srv.CloseClientConnections()
	if _, err := w.Create(ctx, "products", product{ID: "p2", Category: "tools"}); err != nil {
		t.Fatal(err)
	}
	if ch := next("p2"); ch.Position() != last.Position()+1 {
		t.Fatalf("after reconnecting: position %d, want %d", ch.Position(), last.Position()+1)
	}
	s.Close()
	if _, err := s.Next(); !errors.Is(err, client.ErrStreamClosed) {
		t.Fatalf("Next after Close err=%v, want ErrStreamClosed", err)
	}
}

func TestClient_Status(t *testing.T) {
	ctx := context.Background()
	h := newTestHub(t)
	hc := newClient(t, client.Config{URL: h.srv.URL, Token: adminToken})
	hs, err := hc.HubStatus(ctx)
	if err != nil || hs.HubID != h.h.HubID() {
		t.Fatalf("HubStatus=%+v, %v; want hub id %s", hs, err, h.h.HubID())
	}
	if err := hc.Health(ctx); err != nil {
		t.Fatalf("Health: %v", err)
	}
	e := newTestEdge(t, web.EdgeOptions{}, nil)
	ec := newClient(t, client.Config{URL: e.srv.URL})
	es, err := ec.EdgeStatus(ctx)
	if err != nil || es.NodeID != e.r.NodeID() || es.Connected {
		t.Fatalf("EdgeStatus=%+v, %v; want node %s, not connected", es, err, e.r.NodeID())
	}
	err = ec.SetOnline(ctx, true)
	wantAPIError(t, "SetOnline without a hub", err, 400, "bad_request", client.ErrBadRequest)
}

func TestClient_Auth(t *testing.T) {
	ctx := context.Background()
	h := newTestHub(t)
	for _, token := range []string{"", "wrong"} {
		_, err := newClient(t, client.Config{URL: h.srv.URL, Token: token}).HubStatus(ctx)
		wantAPIError(t, "HubStatus token "+strconv.Quote(token), err, 401, "unauthorized", client.ErrUnauthorized)
	}
	e := newTestEdge(t, web.EdgeOptions{LocalToken: "local-secret"}, nil)
	_, err := newClient(t, client.Config{URL: e.srv.URL}).EdgeStatus(ctx)
	wantAPIError(t, "EdgeStatus without the local token", err, 401, "unauthorized", client.ErrUnauthorized)
	if _, err := newClient(t, client.Config{URL: e.srv.URL, Token: "local-secret"}).EdgeStatus(ctx); err != nil {
		t.Fatalf("EdgeStatus with the local token: %v", err)
	}
}

// TestClient_Edges registers an edge, syncs a real edge replica with its
// token, lists it online with its node id, revokes it, and reads the
// edge's outcome records.
func TestClient_Edges(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	h := newTestHub(t)
	hc := newClient(t, client.Config{URL: h.srv.URL, Token: adminToken})
	if _, _, err := hc.PutContainer(ctx, client.Container{Name: "orders", PartitionKey: "/territory"}); err != nil {
		t.Fatal(err)
	}
	scope := []client.ScopeEntry{{Container: "orders", PartitionKeys: []string{"t1"}}}
	reg, err := hc.RegisterEdge(ctx, "laptop-7", scope)
	if err != nil || reg.Name != "laptop-7" || reg.Token == "" || len(reg.Scope) != 1 {
		t.Fatalf("RegisterEdge=%+v, %v; want laptop-7 with a token and its scope", reg, err)
	}
	_, err = hc.RegisterEdge(ctx, "laptop-7", nil)
	wantAPIError(t, "RegisterEdge again", err, 409, "conflict", client.ErrConflict)

	e := newTestEdge(t, web.EdgeOptions{}, &edge.SyncConfig{Hubs: []string{h.srv.URL}, Token: reg.Token, MaxBackoff: 100 * time.Millisecond})
	ec := newClient(t, client.Config{URL: e.srv.URL})
	waitFor(t, "the edge learns orders", func() error { _, err := ec.Container(ctx, "orders"); return err })
	d, err := ec.Create(ctx, "orders", `{"id":"o1","territory":"t1"}`)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the edge's write is confirmed", func() error {
		got, err := ec.Get(ctx, "orders", "o1", client.ReadOptions{Consistency: "confirmed"})
		if err == nil && got.LSN == 0 {
			err = errors.New("no LSN")
		}
		return err
	})
	page, err := ec.Changes(ctx, "orders", client.ChangesOptions{Outcomes: true})
	if err != nil {
		t.Fatal(err)
	}
	var outcome *client.Change
	for i, ch := range page.Changes {
		if ch.Op == client.OpOutcome {
			outcome = &page.Changes[i]
		}
	}
	if outcome == nil || outcome.Outcome != client.OutcomeConfirmed || outcome.ID != "o1" {
		t.Fatalf("changes with outcomes=%+v, want a confirmed outcome of o1 (written as %s)", page.Changes, d.ETag)
	}

	edges, err := hc.Edges(ctx)
	if err != nil || len(edges) != 1 || edges[0].Name != "laptop-7" || edges[0].NodeID != e.r.NodeID() {
		t.Fatalf("Edges=%+v, %v; want laptop-7 as node %s", edges, err, e.r.NodeID())
	}
	for _, online := range []bool{false, true} {
		if err := ec.SetOnline(ctx, online); err != nil {
			t.Fatalf("SetOnline(%v): %v", online, err)
		}
		if st, err := ec.EdgeStatus(ctx); err != nil || st.Offline == online {
			t.Fatalf("after SetOnline(%v): status %+v, %v; want offline=%v", online, st, err, !online)
		}
	}
	if err := hc.RevokeEdge(ctx, "laptop-7"); err != nil {
		t.Fatalf("RevokeEdge: %v", err)
	}
	err = hc.RevokeEdge(ctx, "laptop-7")
	wantAPIError(t, "RevokeEdge again", err, 404, "not_found", client.ErrNotFound)
}

func waitFor(t *testing.T, what string, f func() error) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 15s: %v", what, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestClient_ConflictsAndResolvers records a manual-policy conflict at the
// hub, reads it from the conflicts feed, tries an uploaded resolver on it,
// resolves it, and reads the item's versions.
func TestClient_ConflictsAndResolvers(t *testing.T) {
	ctx := context.Background()
	h := newTestHub(t)
	c := newClient(t, client.Config{URL: h.srv.URL, Token: adminToken})
	if _, _, err := c.PutContainer(ctx, client.Container{Name: "held", PartitionKey: "/territory",
		ConflictPolicy: client.ConflictPolicy{Mode: client.ModeManual}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Create(ctx, "held", `{"id":"o1","territory":"t1","v":0}`); err != nil {
		t.Fatal(err)
	}
	vs, err := c.Versions(ctx, "held", "o1")
	if err != nil || len(vs) != 1 || !vs[0].Confirmed {
		t.Fatalf("Versions=%+v, %v; want one confirmed version", vs, err)
	}
	base := vs[0].Version
	for i, node := range []string{"e1", "e2"} {
		v := wire.Version{Container: "held", ID: "o1", Op: "replace", Version: node + "-10", Base: base, TS: int64(100 + i),
			Body: json.RawMessage(`{"id":"o1","territory":"t1","v":` + strconv.Itoa(i+1) + `}`)}
		if _, _, err := h.h.Push(ctx, node, nil, []wire.Version{v}); err != nil {
			t.Fatalf("Push(%s): %v", node, err)
		}
	}
	page, err := c.Conflicts(ctx, "held", client.ConflictsOptions{Status: client.StatusUnresolved})
	if err != nil || len(page.Conflicts) != 1 || page.Next == 0 {
		t.Fatalf("Conflicts=%+v, %v; want one unresolved and a continuation", page, err)
	}
	cf := page.Conflicts[0]
	if cf.DocID != "o1" || cf.Policy != client.ModeManual || cf.Incoming == nil || cf.Existing == nil || cf.Incoming.Origin != "e2" {
		t.Fatalf("conflict=%+v, want o1, manual, incoming from e2", cf)
	}
	if rest, err := c.Conflicts(ctx, "held", client.ConflictsOptions{After: page.Next}); err != nil || len(rest.Conflicts) != 0 {
		t.Fatalf("Conflicts after %d=%+v, %v; want none", page.Next, rest, err)
	}

	wasm, err := os.ReadFile(filepath.Join("..", "testdata", "resolvers", "prefer-incoming.wasm"))
	if err != nil {
		t.Fatal(err)
	}
	rv, created, err := c.PutResolver(ctx, "prefer", wasm)
	if err != nil || !created || rv.Version != 1 || rv.Size != len(wasm) {
		t.Fatalf("PutResolver=%+v, %v, %v; want version 1 created", rv, created, err)
	}
	if again, created, err := c.PutResolver(ctx, "prefer", wasm); err != nil || created || again.Version != 1 {
		t.Fatalf("PutResolver same bytes=%+v, %v, %v; want version 1 again", again, created, err)
	}
	_, _, err = c.PutResolver(ctx, "junk", []byte("not wasm"))
	wantAPIError(t, "PutResolver junk", err, 400, "bad_request", client.ErrBadRequest)
	list, err := c.Resolvers(ctx)
	if err != nil || len(list) != 1 || list[0].Name != "prefer" {
		t.Fatalf("Resolvers=%+v, %v; want prefer", list, err)
	}
	tr, err := c.TryResolver(ctx, "prefer", client.TryRequest{Container: "held", Conflict: cf.ID})
	if err != nil || tr.Decision == nil || tr.Decision.Action != "incoming" || tr.Resolver != "prefer@1" {
		t.Fatalf("TryResolver=%+v, %v; want prefer@1 deciding incoming", tr, err)
	}
	_, err = c.TryResolver(ctx, "prefer", client.TryRequest{Container: "held", Conflict: cf.ID, Version: 7})
	wantAPIError(t, "TryResolver version 7", err, 404, "not_found", client.ErrNotFound)

	res, err := c.ResolveConflict(ctx, "held", cf.ID, client.Resolution{Keep: "incoming"})
	if err != nil || res.ID != cf.ID || res.Status != client.StatusResolved || res.LSN == 0 {
		t.Fatalf("ResolveConflict=%+v, %v; want resolved with an LSN", res, err)
	}
	_, err = c.ResolveConflict(ctx, "held", cf.ID, client.Resolution{Keep: "existing"})
	wantAPIError(t, "ResolveConflict again", err, 409, "conflict", client.ErrConflict)
	_, err = c.ResolveConflict(ctx, "held", cf.ID, client.Resolution{Keep: "sideways"})
	wantAPIError(t, "ResolveConflict keep sideways", err, 400, "bad_request", client.ErrBadRequest)
	if vs, err := c.Versions(ctx, "held", "o1"); err != nil || vs[len(vs)-1].Resolves != "e2-10" {
		t.Fatalf("Versions after resolving=%+v, %v; want the last to resolve e2-10", vs, err)
	}
}

// TestChangeStream_Close: Close from another goroutine ends a Next that
// waits for a record, and a context that ends does too.
func TestChangeStream_Close(t *testing.T) {
	e := newTestEdge(t, web.EdgeOptions{}, nil)
	c := newClient(t, client.Config{URL: e.srv.URL})
	ctx := context.Background()
	if _, _, err := c.PutContainer(ctx, client.Container{Name: "products", PartitionKey: "/category"}); err != nil {
		t.Fatal(err)
	}
	s, err := c.StreamChanges(ctx, "products", client.ChangesOptions{})
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		time.Sleep(50 * time.Millisecond)
		s.Close()
	}()
	if _, err := s.Next(); !errors.Is(err, client.ErrStreamClosed) {
		t.Fatalf("Next while closed: err=%v, want ErrStreamClosed", err)
	}

	cctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	s, err = c.StreamChanges(cctx, "products", client.ChangesOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.Next(); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Next past the deadline: err=%v, want DeadlineExceeded", err)
	}
}

// TestChangeStream_GivesUp: a server that opens the stream and hangs up
// at once is not reconnected to for ever: Next fails after MaxAttempts
// connections in a row that brought nothing.
func TestChangeStream_GivesUp(t *testing.T) {
	var requests atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		w.Header().Set("Content-Type", "text/event-stream")
		w.Write([]byte(": edgesync change stream\n\n"))
		w.(http.Flusher).Flush()
		if conn, _, err := http.NewResponseController(w).Hijack(); err == nil {
			conn.Close()
		}
	}))
	defer srv.Close()
	c := newClient(t, client.Config{URL: srv.URL, MaxAttempts: 3})
	s, err := c.StreamChanges(context.Background(), "products", client.ChangesOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	_, err = s.Next()
	var ae *client.Error
	if err == nil || errors.As(err, &ae) {
		t.Fatalf("Next from a server that hangs up: err=%v, want the connection's error", err)
	}
	if got := requests.Load(); got != 3 {
		t.Fatalf("connections=%d, want MaxAttempts 3", got)
	}
}

func TestClient_Query(t *testing.T) {
	ctx := context.Background()
	for name, c := range nodes(t) {
		t.Run(name, func(t *testing.T) {
			if _, _, err := c.PutContainer(ctx, client.Container{Name: "products", PartitionKey: "/category"}); err != nil {
				t.Fatal(err)
			}
			for i := range 7 {
				if _, err := c.Create(ctx, "products", product{ID: "p" + strconv.Itoa(i), Category: "tools", Price: float64(i)}); err != nil {
					t.Fatal(err)
				}
			}
			q := client.QueryRequest{Query: "SELECT VALUE c.id FROM c WHERE c.price >= @min ORDER BY c.price DESC",
				Parameters: []client.QueryParameter{{Name: "@min", Value: 2}}, Limit: 2}
			page, err := c.Query(ctx, "products", q)
			if err != nil || len(page.Documents) != 2 || page.Continuation == "" || string(page.Documents[0]) != `"p6"` {
				t.Fatalf("Query page=%+v, %v; want p6 first, 2 results and a continuation", page, err)
			}
			var ids []string
			for v, err := range c.QueryAll(ctx, "products", q) {
				if err != nil {
					t.Fatalf("QueryAll: %v", err)
				}
				var id string
				if err := json.Unmarshal(v, &id); err != nil {
					t.Fatal(err)
				}
				ids = append(ids, id)
			}
			if want := []string{"p6", "p5", "p4", "p3", "p2"}; !slices.Equal(ids, want) {
				t.Fatalf("QueryAll=%v, want %v", ids, want)
			}
			_, err = c.Query(ctx, "products", client.QueryRequest{Query: "SELECT * FROM c WHERE c.price >"})
			wantAPIError(t, "Query that does not parse", err, 400, "bad_query", client.ErrBadRequest)
		})
	}
}

// TestClient_QueryTimeout: a query past the node's time limit is 408
// query_timeout, ErrQueryTimeout, and not sent again.
func TestClient_QueryTimeout(t *testing.T) {
	ctx := context.Background()
	e := newTestEdge(t, web.EdgeOptions{Query: query.Options{Timeout: time.Nanosecond}}, nil)
	var requests atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		e.srv.Config.Handler.ServeHTTP(w, r)
	}))
	defer srv.Close()
	c := newClient(t, client.Config{URL: srv.URL})
	if _, _, err := c.PutContainer(ctx, client.Container{Name: "products", PartitionKey: "/category"}); err != nil {
		t.Fatal(err)
	}
	for i := range 50 {
		if _, err := c.Create(ctx, "products", product{ID: "p" + strconv.Itoa(i), Category: "tools"}); err != nil {
			t.Fatal(err)
		}
	}
	requests.Store(0)
	_, err := c.Query(ctx, "products", client.QueryRequest{Query: "SELECT * FROM c ORDER BY c.id"})
	wantAPIError(t, "Query past its time limit", err, 408, "query_timeout", client.ErrQueryTimeout)
	if got := requests.Load(); got != 1 {
		t.Fatalf("requests=%d, want 1", got)
	}
}
