package main

// End-to-end scenarios: scoped edges, containers defined on an edge, revoked tokens.

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/edgesync/edgesync/replica/wire"
)

// TestE2E_ScopedEdge registers laptop-7 with scope orders/t7: it sees only
// t7 orders, not the other container, and its writes outside t7 fail at
// once with 403 while those in t7 are confirmed.
func TestE2E_ScopedEdge(t *testing.T) {
	c := newE2ECluster(t)
	c.hub.call(http.MethodPut, "/api/v1/containers/orders", `{"partitionKey":"/territory"}`, http.StatusCreated, nil)
	c.hub.call(http.MethodPut, "/api/v1/containers/customers", `{"partitionKey":"/region"}`, http.StatusCreated, nil)
	for _, d := range []string{
		`{"id":"o1","territory":"t7","total":10}`,
		`{"id":"o2","territory":"t8","total":20}`,
		`{"id":"o3","territory":"t7","total":30}`,
	} {
		c.hub.call(http.MethodPost, "/api/v1/containers/orders/docs", d, http.StatusCreated, nil)
	}
	c.hub.call(http.MethodPost, "/api/v1/containers/customers/docs", `{"id":"c1","region":"eu"}`, http.StatusCreated, nil)

	var reg struct {
		Name  string            `json:"name"`
		Token string            `json:"token"`
		Scope []wire.ScopeEntry `json:"scope"`
	}
	c.hub.call(http.MethodPost, "/api/v1/edges", `{"name":"laptop-7","scope":[{"container":"orders","partitionKeys":["t7"]}]}`, http.StatusCreated, &reg)
	if want := []wire.ScopeEntry{{Container: "orders", PartitionKeys: []string{"t7"}}}; reg.Name != "laptop-7" || reg.Token == "" || !reflect.DeepEqual(reg.Scope, want) {
		t.Fatalf("register laptop-7: %+v, want the name, a token and scope %+v", reg, want)
	}
	e := c.startEdge("laptop-7", reg.Token)
	c.waitSynced(15*time.Second, e)
	// A change outside the scope still moves the edge's resume point.
	c.hub.call(http.MethodPost, "/api/v1/containers/orders/docs", `{"id":"o4","territory":"t8"}`, http.StatusCreated, nil)
	c.hub.call(http.MethodPost, "/api/v1/containers/customers/docs", `{"id":"c2","region":"us"}`, http.StatusCreated, nil)
	c.waitSynced(15*time.Second, e)

	docs := e.listDocs("orders")
	if got, want := slices.Sorted(maps.Keys(docs)), []string{"o1", "o3"}; !reflect.DeepEqual(got, want) {
		t.Errorf("laptop-7 lists orders %v, want %v (t7 only)", got, want)
	}
	for _, id := range []string{"o2", "o4"} {
		if status, d := e.getDoc("orders", id, ""); status != http.StatusNotFound {
			t.Errorf("laptop-7: GET t8 order %s: status %d %v, want 404", id, status, d)
		}
	}
	var list struct {
		Containers []struct {
			Name string `json:"name"`
		} `json:"containers"`
	}
	e.call(http.MethodGet, "/api/v1/containers", nil, http.StatusOK, &list)
	if len(list.Containers) != 1 || list.Containers[0].Name != "orders" {
		t.Errorf("laptop-7 containers %+v, want only orders", list.Containers)
	}
	e.wantError(http.MethodGet, "/api/v1/containers/customers", nil, http.StatusNotFound, "container_not_found")
	e.wantError(http.MethodGet, "/api/v1/containers/customers/docs", nil, http.StatusNotFound, "container_not_found")
	e.wantError(http.MethodGet, "/api/v1/containers/customers/docs/c1", nil, http.StatusNotFound, "container_not_found")

	e.wantError(http.MethodPost, "/api/v1/containers/orders/docs", `{"id":"o5","territory":"t8"}`, http.StatusForbidden, "forbidden")
	e.wantError(http.MethodPut, "/api/v1/containers/orders/docs/o6", `{"id":"o6","territory":"t8"}`, http.StatusForbidden, "forbidden")
	var d e2eDoc
	e.call(http.MethodPost, "/api/v1/containers/orders/docs", `{"id":"o7","territory":"t7","total":70}`, http.StatusCreated, &d)
	e2eWantTentative(t, "laptop-7 POST o7", d)
	c.waitSynced(15*time.Second, e)
	status, hd := c.hub.getDoc("orders", "o7", "")
	if status != http.StatusOK || hd["total"] != 70.0 {
		t.Fatalf("hub: GET o7: status %d %v, want the edge's write", status, hd)
	}
	if status, d := e.getDoc("orders", "o7", ""); status != http.StatusOK || !reflect.DeepEqual(d, hd) {
		t.Errorf("laptop-7: GET o7: status %d %v, want confirmed %v", status, d, hd)
	}
	for _, id := range []string{"o5", "o6"} {
		if status, _ := c.hub.getDoc("orders", id, ""); status != http.StatusNotFound {
			t.Errorf("hub: GET %s (refused at the edge): status %d, want 404", id, status)
		}
	}
	feed := e.changes("orders")
	node := e.mustEdgeStatus().NodeID
	writes, n := e2eOwnWrites(t, feed, node)
	if n != 1 {
		t.Errorf("laptop-7 feed: %d own writes, want 1 (o7): %+v", n, writes)
	}
	if o := e2eOutcomes(feed)[writes["o7"].Version]; len(o) != 1 || o[0].Outcome != "confirmed" {
		t.Errorf("laptop-7: outcomes for o7: %+v, want one confirmed", o)
	}

	// Offline after the first contact (docs/architecture.md, Sync protocol):
	// restarted with the hub gone, the edge still knows its scope and its
	// containers.
	c.hub.stop()
	e.kill9()
	e.start()
	e.wantError(http.MethodPost, "/api/v1/containers/orders/docs", `{"id":"o8","territory":"t8"}`, http.StatusForbidden, "forbidden")
	e.wantError(http.MethodGet, "/api/v1/containers/customers/docs", nil, http.StatusNotFound, "container_not_found")
	e.call(http.MethodPost, "/api/v1/containers/orders/docs", `{"id":"o9","territory":"t7"}`, http.StatusCreated, &d)
	e2eWantTentative(t, "laptop-7 POST o9 offline", d)
	if got, want := slices.Sorted(maps.Keys(e.listDocs("orders"))), []string{"o1", "o3", "o7", "o9"}; !reflect.DeepEqual(got, want) {
		t.Errorf("laptop-7 offline lists orders %v, want %v", got, want)
	}
	c.hub.start()
	c.waitSynced(30*time.Second, e)
	if status, _ := c.hub.getDoc("orders", "o9", ""); status != http.StatusOK {
		t.Errorf("hub: GET o9 written offline: status %d, want 200", status)
	}
}

// TestE2E_LocalContainerAtSync defines containers on an edge that has never
// reached its hub (docs/architecture.md, Containers): at sync the hub
// creates the one it does not have and confirms its writes; for the one whose definition disagrees with
// the hub's, the edge holds the writes (never drops them) and reports the
// mismatch in its status.
func TestE2E_LocalContainerAtSync(t *testing.T) {
	c := newE2ECluster(t)
	c.hub.call(http.MethodPut, "/api/v1/containers/clash", `{"partitionKey":"/a"}`, http.StatusCreated, nil)
	tok := c.registerEdge("field", nil)
	c.hub.stop()
	e := c.startEdge("field", tok)
	e.call(http.MethodPut, "/api/v1/containers/fresh", `{"partitionKey":"/pk","conflictPolicy":{"mode":"lww","path":"/n"}}`, http.StatusCreated, nil)
	e.call(http.MethodPut, "/api/v1/containers/clash", `{"partitionKey":"/b"}`, http.StatusCreated, nil)
	for _, b := range []string{`{"id":"f1","pk":"x","n":1}`, `{"id":"f2","pk":"y","n":2}`} {
		e.call(http.MethodPost, "/api/v1/containers/fresh/docs", b, http.StatusCreated, nil)
	}
	e.call(http.MethodPost, "/api/v1/containers/clash/docs", `{"id":"k1","b":"x"}`, http.StatusCreated, nil)

	c.hub.start()
	type syncStatus struct {
		Connected bool   `json:"connected"`
		Pending   int64  `json:"pending"`
		LastLSN   int64  `json:"lastLsn"`
		LastError string `json:"lastError"`
		Sync      struct {
			Mismatched []string `json:"mismatched"`
		} `json:"sync"`
	}
	var st syncStatus
	e2eWaitFor(t, 30*time.Second, "fresh confirmed, clash held", func() error {
		hs, err := c.hub.hubStatus()
		if err != nil {
			return err
		}
		st = syncStatus{}
		status, b, err := e.do(http.MethodGet, "/api/v1/status", nil)
		if err != nil || status != http.StatusOK {
			return fmt.Errorf("edge status: %d %v", status, err)
		}
		if err := json.Unmarshal(b, &st); err != nil {
			return err
		}
		if !st.Connected || st.Pending != 1 || st.LastLSN != hs.LSN || hs.LSN < 2 {
			return fmt.Errorf("edge %+v, hub lsn %d; want connected, 1 pending (k1), lastLsn = hub lsn >= 2", st, hs.LSN)
		}
		return nil
	})
	if !reflect.DeepEqual(st.Sync.Mismatched, []string{"clash"}) {
		t.Errorf("edge status sync.mismatched=%v, want [clash]", st.Sync.Mismatched)
	}
	var def struct {
		PartitionKey   string `json:"partitionKey"`
		ConflictPolicy struct {
			Mode string `json:"mode"`
			Path string `json:"path"`
		} `json:"conflictPolicy"`
	}
	c.hub.call(http.MethodGet, "/api/v1/containers/fresh", nil, http.StatusOK, &def)
	if def.PartitionKey != "/pk" || def.ConflictPolicy.Mode != "lww" || def.ConflictPolicy.Path != "/n" {
		t.Errorf("hub's definition of fresh %+v, want the edge's (/pk, lww on /n)", def)
	}
	hubDocs, edgeDocs := c.hub.listDocs("fresh"), e.listDocs("fresh")
	if len(hubDocs) != 2 || !reflect.DeepEqual(hubDocs, edgeDocs) {
		t.Errorf("fresh: hub %v, edge %v; want f1 and f2, equal", hubDocs, edgeDocs)
	}
	if status, _ := c.hub.getDoc("clash", "k1", ""); status != http.StatusNotFound {
		t.Errorf("hub: GET clash/k1: status %d, want 404 (held at the edge)", status)
	}
	if status, d := e.getDoc("clash", "k1", ""); status != http.StatusOK || d["_tentative"] != true {
		t.Errorf("edge: GET clash/k1: status %d %v, want 200 tentative (held, not dropped)", status, d)
	}
}

// TestE2E_LocalContainerWhileConnected defines a container through the
// local API of an edge that is connected, then writes to it: the hub creates
// the container and confirms the writes, and a second edge whose scope names
// the container receives them.
func TestE2E_LocalContainerWhileConnected(t *testing.T) {
	c := newE2ECluster(t)
	c.hub.call(http.MethodPut, "/api/v1/containers/orders", `{"partitionKey":"/territory"}`, http.StatusCreated, nil)
	a := c.startEdge("field", c.registerEdge("field", nil))
	b := c.startEdge("reader", c.registerEdge("reader", []wire.ScopeEntry{{Container: "notes"}}))
	c.waitSynced(15*time.Second, a, b)
	a.call(http.MethodPut, "/api/v1/containers/notes", `{"partitionKey":"/pk"}`, http.StatusCreated, nil)
	for _, d := range []string{`{"id":"n1","pk":"x"}`, `{"id":"n2","pk":"y"}`} {
		a.call(http.MethodPost, "/api/v1/containers/notes/docs", d, http.StatusCreated, nil)
	}
	c.waitSynced(30*time.Second, a, b)
	hubDocs := c.hub.listDocs("notes")
	if got, want := slices.Sorted(maps.Keys(hubDocs)), []string{"n1", "n2"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("hub lists notes %v, want %v", got, want)
	}
	for _, e := range []*e2eNode{a, b} {
		for _, id := range []string{"n1", "n2"} {
			status, d := e.getDoc("notes", id, "?consistency=confirmed")
			if status != http.StatusOK || d["_lsn"] != hubDocs[id]["_lsn"] {
				t.Errorf("%s: confirmed GET notes/%s: status %d %v, want 200 at the hub's _lsn %v", e.name, id, status, d, hubDocs[id]["_lsn"])
			}
		}
	}
}

// TestE2E_RevokedEdge revokes a connected edge's token: the hub closes its
// connection, the edge reports connected=false, its writes stay tentative,
// and the hub no longer lists it. An unknown token never connects.
func TestE2E_RevokedEdge(t *testing.T) {
	c := newE2ECluster(t)
	c.hub.call(http.MethodPut, "/api/v1/containers/notes", `{"partitionKey":"/pk"}`, http.StatusCreated, nil)
	e := c.startEdge("laptop-9", c.registerEdge("laptop-9", nil))
	keep := c.startEdge("keeper", c.registerEdge("keeper", nil))
	ghost := c.startEdge("ghost", "est_"+strings.Repeat("A", 43))
	c.waitSynced(15*time.Second, e, keep)
	e.call(http.MethodPost, "/api/v1/containers/notes/docs", `{"id":"n1","pk":"a"}`, http.StatusCreated, nil)
	c.waitSynced(15*time.Second, e, keep)

	c.hub.call(http.MethodDelete, "/api/v1/edges/laptop-9", nil, http.StatusNoContent, nil)
	revoked := time.Now()
	e2eWaitFor(t, 5*time.Second, "laptop-9 disconnected after revocation", func() error {
		st, err := e.edgeStatus()
		if err == nil && st.Connected {
			err = errors.New("still connected")
		}
		return err
	})
	t.Logf("laptop-9 saw the revocation in %v", time.Since(revoked).Round(time.Millisecond))
	var d e2eDoc
	e.call(http.MethodPost, "/api/v1/containers/notes/docs", `{"id":"n2","pk":"a"}`, http.StatusCreated, &d)
	e2eWantTentative(t, "laptop-9 POST n2 after revocation", d)

	var edges struct {
		Edges []struct {
			Name   string `json:"name"`
			Online bool   `json:"online"`
		} `json:"edges"`
	}
	c.hub.call(http.MethodGet, "/api/v1/edges", nil, http.StatusOK, &edges)
	var names []string
	for _, x := range edges.Edges {
		names = append(names, x.Name)
	}
	if !reflect.DeepEqual(names, []string{"keeper"}) {
		t.Errorf("GET /api/v1/edges lists %v, want [keeper]", names)
	}
	c.hub.wantError(http.MethodDelete, "/api/v1/edges/laptop-9", nil, http.StatusNotFound, "not_found")

	// Over a few seconds (the edge retries with backoff), nothing gets
	// through: n2 stays tentative and the hub never sees it.
	deadline := time.Now().Add(2500 * time.Millisecond)
	for time.Now().Before(deadline) {
		st := e.mustEdgeStatus()
		if st.Connected || st.Pending != 1 {
			t.Fatalf("laptop-9 after revocation: connected=%v pending=%d, want false and 1", st.Connected, st.Pending)
		}
		gst := ghost.mustEdgeStatus()
		if gst.Connected || gst.LastLSN != 0 {
			t.Fatalf("ghost edge (unknown token): connected=%v lastLsn=%d, want false and 0", gst.Connected, gst.LastLSN)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if status, d := e.getDoc("notes", "n2", ""); status != http.StatusOK || d["_tentative"] != true {
		t.Errorf("laptop-9: GET n2: status %d %v, want 200 tentative", status, d)
	}
	if status, _ := c.hub.getDoc("notes", "n2", ""); status != http.StatusNotFound {
		t.Errorf("hub: GET n2 (written by the revoked edge): status %d, want 404", status)
	}
	for _, n := range []*e2eNode{e, ghost} {
		if st := n.mustEdgeStatus(); !strings.Contains(st.LastError, "401") && !strings.Contains(st.LastError, "revoked") {
			t.Errorf("%s: lastError %q, want it to say the token was refused (401 or revoked)", n.name, st.LastError)
		}
	}
	if status, _, _ := ghost.do(http.MethodGet, "/api/v1/containers/notes", nil); status != http.StatusNotFound {
		t.Errorf("ghost edge knows container notes (status %d): want 404, it never synced", status)
	}
	// The other edge is unaffected.
	keep.call(http.MethodPost, "/api/v1/containers/notes/docs", `{"id":"k1","pk":"b"}`, http.StatusCreated, nil)
	c.waitSynced(15*time.Second, keep)
}
