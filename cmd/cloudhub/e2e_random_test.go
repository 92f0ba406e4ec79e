package main

// End-to-end scenarios: random writes, deletes, partitions and kills, then convergence.

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"reflect"
	"testing"
	"time"
)

// TestE2E_RandomConvergence runs three edges writing and deleting on a
// small key space, with the hub stopped and started and edges killed with
// SIGKILL at random, then heals and checks that every replica equals the
// hub, that no version was confirmed twice, that every acknowledged write
// is in the hub's log or in the conflicts feed, and that each edge has
// exactly one outcome per write.
func TestE2E_RandomConvergence(t *testing.T) {
	for _, mode := range []string{"lww", "merge"} {
		t.Run(mode, func(t *testing.T) { testRandomConvergence(t, mode, 120) })
	}
}

func testRandomConvergence(t *testing.T, mode string, steps int) {
	seed := e2eSeed(t)
	t.Logf("policy %s, %d steps", mode, steps)
	rng := rand.New(rand.NewPCG(seed, 3))
	c := newE2ECluster(t)
	c.hub.call(http.MethodPut, "/api/v1/containers/kv", fmt.Sprintf(`{"partitionKey":"/p","conflictPolicy":{"mode":%q}}`, mode), http.StatusCreated, nil)
	const nKeys = 5
	var edges []*e2eNode
	for i := range 3 {
		name := fmt.Sprintf("r%d", i)
		edges = append(edges, c.startEdge(name, c.registerEdge(name, nil)))
	}
	c.waitSynced(15*time.Second, edges...)
	for _, e := range edges {
		e2eWaitKnows(t, e, "kv")
	}
	acked := make([]int, len(edges)) // acknowledged writes per edge
	hubUp, hubWrites, kills, hubStops := true, 0, 0, 0
	for step := range steps {
		i := rng.IntN(len(edges))
		e := edges[i]
		id := fmt.Sprintf("k%d", rng.IntN(nKeys))
		switch r := rng.IntN(100); {
		case r < 60:
			body := fmt.Sprintf(`{"id":%q,"p":"p-%s","f%d":%d,"n":%d}`, id, id, rng.IntN(3), step, rng.IntN(1000))
			status, b, err := e.do(http.MethodPut, "/api/v1/containers/kv/docs/"+id, body)
			if err != nil || (status != http.StatusOK && status != http.StatusCreated) {
				t.Fatalf("step %d: %s PUT %s: status %d %v: %s", step, e.name, id, status, err, b)
			}
			acked[i]++
		case r < 75:
			status, b, err := e.do(http.MethodDelete, "/api/v1/containers/kv/docs/"+id, nil)
			switch {
			case err != nil || (status != http.StatusNoContent && status != http.StatusNotFound):
				t.Fatalf("step %d: %s DELETE %s: status %d %v: %s", step, e.name, id, status, err, b)
			case status == http.StatusNoContent:
				acked[i]++
			}
		case r < 83:
			if hubUp {
				c.hub.stop()
				hubStops++
			} else {
				c.hub.start()
			}
			hubUp = !hubUp
		case r < 91:
			e.kill9()
			e.start()
			kills++
		case r < 95:
			if hubUp {
				body := fmt.Sprintf(`{"id":%q,"p":"p-%s","hub":%d}`, id, id, step)
				status, b, err := c.hub.do(http.MethodPut, "/api/v1/containers/kv/docs/"+id, body)
				if err != nil || (status != http.StatusOK && status != http.StatusCreated) {
					t.Fatalf("step %d: hub PUT %s: status %d %v: %s", step, id, status, err, b)
				}
				hubWrites++
			}
		default:
			time.Sleep(time.Duration(rng.IntN(20)) * time.Millisecond)
		}
	}
	if !hubUp {
		c.hub.start()
	}
	c.waitSynced(45*time.Second, edges...)

	// Every replica equals the hub, in the local and the confirmed view.
	for k := range nKeys {
		id := fmt.Sprintf("k%d", k)
		hs, hd := c.hub.getDoc("kv", id, "")
		for _, e := range edges {
			for _, q := range []string{"", "?consistency=confirmed"} {
				if es, ed := e.getDoc("kv", id, q); es != hs || !reflect.DeepEqual(ed, hd) {
					t.Errorf("%s: GET %s%s: status %d %v; hub: %d %v", e.name, id, q, es, ed, hs, hd)
				}
			}
		}
	}
	// No version confirmed twice.
	inLog := map[string]int64{}
	for _, r := range c.hub.changes("kv") {
		if lsn, dup := inLog[r.Version]; dup {
			t.Errorf("hub log: version %s confirmed twice, at LSN %d and %d", r.Version, lsn, r.LSN)
		}
		inLog[r.Version] = r.LSN
	}
	inConflicts := map[string]bool{}
	cs := c.hub.conflicts("kv", "")
	for _, cf := range cs {
		if cf.Incoming != nil {
			inConflicts[cf.Incoming.Version] = true
		}
		if cf.Existing != nil {
			inConflicts[cf.Existing.Version] = true
		}
	}
	// Every acknowledged write survived the kills, reached the hub and has
	// exactly one outcome.
	for i, e := range edges {
		feed := e.changes("kv")
		nodeID := e.mustEdgeStatus().NodeID
		versions := map[string]bool{}
		for _, r := range feed {
			if r.Op != "outcome" && r.Origin == nodeID {
				versions[r.Version] = true
			}
		}
		if len(versions) != acked[i] {
			t.Errorf("%s: feed has %d own writes, %d were acknowledged", e.name, len(versions), acked[i])
		}
		outs := e2eOutcomes(feed)
		for v := range versions {
			if _, ok := inLog[v]; !ok && !inConflicts[v] {
				t.Errorf("%s: acknowledged write %s is neither in the hub's log nor in the conflicts feed", e.name, v)
			}
			if o := outs[v]; len(o) != 1 {
				t.Errorf("%s: %d outcomes for %s, want 1: %+v", e.name, len(o), v, o)
			}
		}
		if len(outs) != len(versions) {
			t.Errorf("%s: outcomes for %d versions, %d own writes", e.name, len(outs), len(versions))
		}
	}
	t.Logf("writes acknowledged per edge %v, %d hub writes, %d hub stops, %d edge kills; %d versions confirmed, %d conflicts",
		acked, hubWrites, hubStops, kills, len(inLog), len(cs))
}
