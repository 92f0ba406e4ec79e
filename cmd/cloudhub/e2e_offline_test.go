package main

// End-to-end scenarios: writes made while the hub is down.

import (
	"fmt"
	"net/http"
	"reflect"
	"testing"
	"time"
)

// TestE2E_WritesWhileHubDownReachEveryEdge stops the hub, writes on three
// edges, starts the hub again on the same data directory and port, and
// checks that every edge ends with every document confirmed, equal to the
// hub, and a confirmed outcome for each of its writes.
func TestE2E_WritesWhileHubDownReachEveryEdge(t *testing.T) {
	c := newE2ECluster(t)
	c.hub.call(http.MethodPut, "/api/v1/containers/notes", `{"partitionKey":"/pk"}`, http.StatusCreated, nil)
	var edges []*e2eNode
	for _, name := range []string{"e1", "e2", "e3"} {
		edges = append(edges, c.startEdge(name, c.registerEdge(name, nil)))
	}
	c.waitSynced(15*time.Second, edges...)
	for _, e := range edges {
		e2eWaitKnows(t, e, "notes")
	}

	c.hub.stop()
	e2eWaitDisconnected(t, edges...)
	const perEdge = 20
	for i, e := range edges {
		for k := range perEdge {
			body := map[string]any{"id": fmt.Sprintf("e%d-n%02d", i+1, k), "pk": fmt.Sprintf("p%d", k%3), "from": e.name, "k": k}
			if k%2 == 0 {
				body["nested"] = map[string]any{"edge": i, "tags": []any{"a", "b"}}
			}
			var d e2eDoc
			e.call(http.MethodPost, "/api/v1/containers/notes/docs", body, http.StatusCreated, &d)
			e2eWantTentative(t, e.name+" POST response", d)
		}
		if st := e.mustEdgeStatus(); st.Pending != perEdge || st.Connected {
			t.Errorf("%s with the hub down: pending=%d connected=%v, want %d and false", e.name, st.Pending, st.Connected, perEdge)
		}
	}

	c.hub.start()
	c.waitSynced(30*time.Second, edges...)
	e2eWaitFor(t, 10*time.Second, "the hub lists every edge online with lag 0", func() error {
		var list struct {
			Edges []struct {
				Name   string `json:"name"`
				Online bool   `json:"online"`
				Lag    int64  `json:"lag"`
			} `json:"edges"`
		}
		c.hub.call(http.MethodGet, "/api/v1/edges", nil, http.StatusOK, &list)
		hs, err := c.hub.hubStatus()
		if err != nil {
			return err
		}
		if len(list.Edges) != len(edges) || hs.EdgesOnline != len(edges) {
			return fmt.Errorf("edges %+v, edgesOnline %d; want %d edges online", list.Edges, hs.EdgesOnline, len(edges))
		}
		for _, x := range list.Edges {
			if !x.Online || x.Lag != 0 {
				return fmt.Errorf("edges %+v: want every edge online with lag 0", list.Edges)
			}
		}
		return nil
	})

	hubDocs := c.hub.listDocs("notes")
	if got, want := len(hubDocs), perEdge*len(edges); got != want {
		t.Fatalf("hub has %d documents, want %d", got, want)
	}
	for id, d := range hubDocs {
		e2eWantConfirmed(t, "hub "+id, d)
	}
	for i, e := range edges {
		got := e.listDocs("notes")
		if len(got) != len(hubDocs) {
			t.Errorf("%s lists %d documents, hub %d", e.name, len(got), len(hubDocs))
		}
		for id, want := range hubDocs {
			d, ok := got[id]
			if !ok {
				t.Errorf("%s: document %s missing", e.name, id)
				continue
			}
			e2eWantConfirmed(t, e.name, d)
			if !reflect.DeepEqual(d, want) {
				t.Errorf("%s: document %s\n got  %v\n want %v (the hub's)", e.name, id, d, want)
			}
		}
		// The confirmed read agrees.
		for k := range 3 {
			id := fmt.Sprintf("e%d-n%02d", i+1, k)
			if status, d := e.getDoc("notes", id, "?consistency=confirmed"); status != http.StatusOK || !reflect.DeepEqual(d, hubDocs[id]) {
				t.Errorf("%s: GET %s?consistency=confirmed: status %d %v, want 200 %v", e.name, id, status, d, hubDocs[id])
			}
		}
		// One confirmed outcome per write, at the LSN the hub gave it.
		st := e.mustEdgeStatus()
		feed := e.changes("notes")
		writes, n := e2eOwnWrites(t, feed, st.NodeID)
		if n != perEdge || len(writes) != perEdge {
			t.Errorf("%s: feed has %d own writes (%d ids), want %d", e.name, n, len(writes), perEdge)
		}
		outs := e2eOutcomes(feed)
		for id, w := range writes {
			o := outs[w.Version]
			switch {
			case len(o) != 1:
				t.Errorf("%s: %d outcome records for %s (%s), want 1: %+v", e.name, len(o), w.Version, id, o)
			case o[0].Outcome != "confirmed" || o[0].LSN != e2eLSN(hubDocs[id]) || o[0].ID != id:
				t.Errorf("%s: outcome for %s: %s at LSN %d (id %s), want confirmed at %d (id %s)", e.name, w.Version, o[0].Outcome, o[0].LSN, o[0].ID, e2eLSN(hubDocs[id]), id)
			}
		}
		if len(outs) != perEdge {
			t.Errorf("%s: outcomes for %d versions, want %d", e.name, len(outs), perEdge)
		}
	}
}
