package main

// End-to-end scenarios: edges and the hub killed with SIGKILL in the middle of a sync.

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestE2E_EdgeKilledMidSyncConfirmsOnce writes 3,000 documents on an edge
// while the hub is down, then, while the edge pushes them, kills it with
// SIGKILL and restarts it three times at random moments, then writes more. At the end the hub's log has each document exactly once, all are
// confirmed on the edge, and the edge's feed has exactly one outcome per
// write.
func TestE2E_EdgeKilledMidSyncConfirmsOnce(t *testing.T) {
	const (
		initial  = 3000
		perCycle = 300
		cycles   = 3
		workers  = 8
	)
	seed := e2eSeed(t)
	rng := rand.New(rand.NewPCG(seed, 7))
	c := newE2ECluster(t)
	c.hub.call(http.MethodPut, "/api/v1/containers/bulk", `{"partitionKey":"/pk"}`, http.StatusCreated, nil)
	e := c.startEdge("bulk", c.registerEdge("bulk", nil))
	c.waitSynced(15*time.Second, e)
	e2eWaitKnows(t, e, "bulk")
	nodeID := e.mustEdgeStatus().NodeID

	var ids []string
	write := func(prefix string, n int) {
		t.Helper()
		start := time.Now()
		next := make(chan int)
		var wg sync.WaitGroup
		for range workers {
			wg.Go(func() {
				for k := range next {
					id := fmt.Sprintf("%s-%05d", prefix, k)
					body := fmt.Sprintf(`{"id":%q,"pk":"p%d","k":%d,"payload":%q}`, id, k%16, k, strings.Repeat("x", 64+k%200))
					status, b, err := e.do(http.MethodPost, "/api/v1/containers/bulk/docs", body)
					if err != nil || status != http.StatusCreated {
						t.Errorf("POST %s: status %d %v: %s", id, status, err, b)
					}
				}
			})
		}
		for k := range n {
			next <- k
			ids = append(ids, fmt.Sprintf("%s-%05d", prefix, k))
		}
		close(next)
		wg.Wait()
		if t.Failed() {
			t.FailNow()
		}
		t.Logf("wrote %d documents (%s) in %v", n, prefix, time.Since(start).Round(time.Millisecond))
	}

	c.hub.stop()
	e2eWaitDisconnected(t, e)
	write("w0", initial)
	c.hub.start()
	// Each cycle waits for the edge to connect and kills it once its
	// backlog has shrunk to a random fraction: while it pushes, with push
	// frames in flight and outcomes on their way back.
	killedMidPush := 0
	t0 := time.Now()
	for cycle := 1; cycle <= cycles; cycle++ {
		var at e2eEdgeStatus
		e2eWaitFor(t, 20*time.Second, e.name+" connects", func() error {
			var err error
			if at, err = e.edgeStatus(); err == nil && !at.Connected {
				err = fmt.Errorf("connected=false lastError=%q", at.LastError)
			}
			return err
		})
		target := int64(float64(at.Pending) * (0.35 + 0.4*rng.Float64()))
		last := at
		for deadline := time.Now().Add(20 * time.Second); last.Pending > target && time.Now().Before(deadline); {
			last = e.mustEdgeStatus()
		}
		e.kill9()
		if last.Pending > 0 {
			killedMidPush++
		}
		t.Logf("cycle %d (%v): %d writes pending at connect; killed with %d pending (target %d)", cycle, time.Since(t0).Round(time.Millisecond), at.Pending, last.Pending, target)
		e.start()
		if got := e.mustEdgeStatus().NodeID; got != nodeID {
			t.Fatalf("node id %s after restart, want %s", got, nodeID)
		}
	}
	if killedMidPush < cycles {
		t.Logf("warning: %d of %d kills came after the edge had pushed everything", cycles-killedMidPush, cycles)
	}
	// Writes after the kills sync too.
	write("w9", perCycle)
	c.waitSynced(60*time.Second, e)
	t.Logf("in sync %v after the hub came back", time.Since(t0).Round(time.Millisecond))

	total := initial + perCycle
	// The hub's log: each document exactly once, no version twice.
	hubLog := c.hub.changes("bulk")
	byVersion := map[string]int64{}
	byID := map[string]int{}
	for _, r := range hubLog {
		if lsn, dup := byVersion[r.Version]; dup {
			t.Errorf("hub log: version %s confirmed twice, at LSN %d and %d", r.Version, lsn, r.LSN)
		}
		byVersion[r.Version] = r.LSN
		byID[r.ID]++
		if r.Op != "create" || r.Origin != nodeID {
			t.Errorf("hub log: %s %s from %s, want only creates from %s", r.Op, r.ID, r.Origin, nodeID)
		}
	}
	if len(hubLog) != total {
		t.Errorf("hub log has %d records, want %d (one per document)", len(hubLog), total)
	}
	for _, id := range ids {
		if byID[id] != 1 {
			t.Errorf("hub log has %d records for %s, want 1", byID[id], id)
		}
	}
	hubDocs := c.hub.listDocs("bulk")
	if len(hubDocs) != total {
		t.Errorf("hub has %d documents, want %d", len(hubDocs), total)
	}

	// The edge: all confirmed and equal to the hub.
	edgeDocs := e.listDocs("bulk")
	if len(edgeDocs) != total {
		t.Errorf("edge has %d documents, want %d", len(edgeDocs), total)
	}
	bad := 0
	for id, want := range hubDocs {
		if got := edgeDocs[id]; !reflect.DeepEqual(got, want) {
			if bad++; bad <= 10 {
				t.Errorf("edge: document %s\n got  %v\n want %v (the hub's)", id, got, want)
			}
		}
	}
	// The edge's feed: each write once, one confirmed outcome each.
	feed := e.changes("bulk")
	writes, n := e2eOwnWrites(t, feed, nodeID)
	if n != total || len(writes) != total {
		t.Errorf("edge feed has %d own writes (%d ids), want %d", n, len(writes), total)
	}
	outs := e2eOutcomes(feed)
	if len(outs) != total {
		t.Errorf("edge feed has outcomes for %d versions, want %d", len(outs), total)
	}
	bad = 0
	for id, w := range writes {
		o := outs[w.Version]
		if len(o) != 1 || o[0].Outcome != "confirmed" || o[0].LSN != byVersion[w.Version] {
			if bad++; bad <= 10 {
				t.Errorf("edge outcomes for %s (%s): %+v, want one confirmed at LSN %d", w.Version, id, o, byVersion[w.Version])
			}
		}
	}
	t.Logf("%d documents, hub log %d records, edge feed %d records, %d of %d kills while pushing", total, len(hubLog), len(feed), killedMidPush, cycles)
}

// TestE2E_HubKilledMidPushKeepsConfirmed kills the hub (--durability full)
// with SIGKILL while an edge pushes 3,000 writes, and starts it again: every
// outcome the edge had received before the kill still holds at the hub (same
// version at the same LSN), and after the edge resumes each write is in the
// log exactly once (docs/architecture.md, Sync protocol: a hub confirms
// nothing before it is durable).
func TestE2E_HubKilledMidPushKeepsConfirmed(t *testing.T) {
	const docs = 3000
	seed := e2eSeed(t)
	rng := rand.New(rand.NewPCG(seed, 11))
	c := newE2EClusterDurability(t, "full")
	c.hub.call(http.MethodPut, "/api/v1/containers/bulk", `{"partitionKey":"/pk"}`, http.StatusCreated, nil)
	e := c.startEdge("bulk", c.registerEdge("bulk", nil))
	c.waitSynced(15*time.Second, e)
	e2eWaitKnows(t, e, "bulk")
	nodeID := e.mustEdgeStatus().NodeID

	c.hub.stop()
	e2eWaitDisconnected(t, e)
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for k := w; k < docs; k += 8 {
				body := fmt.Sprintf(`{"id":"d%05d","pk":"p%d","k":%d}`, k, k%16, k)
				if status, b, err := e.do(http.MethodPost, "/api/v1/containers/bulk/docs", body); err != nil || status != http.StatusCreated {
					t.Errorf("POST d%05d: status %d %v: %s", k, status, err, b)
				}
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}

	c.hub.start()
	target := int64(float64(docs) * (0.3 + 0.4*rng.Float64()))
	var last e2eEdgeStatus
	for deadline := time.Now().Add(20 * time.Second); ; {
		last = e.mustEdgeStatus()
		if last.Connected && last.Pending <= target || time.Now().After(deadline) {
			break
		}
	}
	c.hub.kill9()
	// What the edge's app was told before the kill.
	before := e2eOutcomes(e.changes("bulk"))
	st := e.mustEdgeStatus()
	t.Logf("hub killed with %d writes pending (target %d); the edge had %d outcomes, applied up to LSN %d", last.Pending, target, len(before), st.LastLSN)
	if len(before) == 0 || len(before) == docs {
		t.Logf("warning: the kill did not come in the middle of the push")
	}

	c.hub.start()
	hs, err := c.hub.hubStatus()
	if err != nil {
		t.Fatal(err)
	}
	if hs.LSN < st.LastLSN {
		t.Errorf("hub restarted at LSN %d, but the edge had applied up to %d before the kill: confirmed changes were lost", hs.LSN, st.LastLSN)
	}
	c.waitSynced(30*time.Second, e)

	logByVersion := map[string]int64{}
	hubLog := c.hub.changes("bulk")
	for _, r := range hubLog {
		if lsn, dup := logByVersion[r.Version]; dup {
			t.Errorf("hub log: version %s confirmed twice, at LSN %d and %d", r.Version, lsn, r.LSN)
		}
		logByVersion[r.Version] = r.LSN
	}
	if len(hubLog) != docs {
		t.Errorf("hub log has %d records, want %d", len(hubLog), docs)
	}
	bad := 0
	for v, os := range before {
		if lsn, ok := logByVersion[v]; !ok || lsn != os[0].LSN || os[0].Outcome != "confirmed" {
			if bad++; bad <= 10 {
				t.Errorf("edge was told %s %s at LSN %d before the kill; the hub's log has it at %d (present: %v)", v, os[0].Outcome, os[0].LSN, lsn, ok)
			}
		}
	}
	after := e2eOutcomes(e.changes("bulk"))
	writes, n := e2eOwnWrites(t, e.changes("bulk"), nodeID)
	if n != docs || len(after) != docs {
		t.Errorf("edge: %d own writes, outcomes for %d versions; want %d and %d", n, len(after), docs, docs)
	}
	bad = 0
	for id, w := range writes {
		if o := after[w.Version]; len(o) != 1 || o[0].Outcome != "confirmed" || o[0].LSN != logByVersion[w.Version] {
			if bad++; bad <= 10 {
				t.Errorf("edge outcomes for %s (%s): %+v, want one confirmed at LSN %d", w.Version, id, o, logByVersion[w.Version])
			}
		}
	}
	hubDocs, edgeDocs := c.hub.listDocs("bulk"), e.listDocs("bulk")
	if len(hubDocs) != docs || !reflect.DeepEqual(hubDocs, edgeDocs) {
		t.Errorf("hub has %d documents, the edge %d (equal: %v); want %d, equal", len(hubDocs), len(edgeDocs), reflect.DeepEqual(hubDocs, edgeDocs), docs)
	}
}
