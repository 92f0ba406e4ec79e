package main

// End-to-end scenario: a hub tier of three cloudhub processes on one
// PostgreSQL database, five edges writing all the time, the sequencer killed
// twice and paused once.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/edgesync/edgesync/replica/hub/pghub/pgtest"
)

// failoverLease is the hubs' --lease-timeout in the failover test: short, to
// keep the test fast; each takeover must take at most this plus a second.
const failoverLease = 2 * time.Second

// failoverDrain bounds how long after the lease timeout the new sequencer
// confirms writes again: it first decides the pushes queued during the
// outage.
const failoverDrain = 8 * time.Second

// The failover test's containers, one per conflict policy.
const (
	failoverItems    = "items"    // lww: creates of new ids and updates of shared ones
	failoverProfiles = "profiles" // merge: each edge sets its own field of shared documents
	failoverCounters = "counters" // custom: the counter resolver adds concurrent increments
)

var failoverContainers = []string{failoverItems, failoverProfiles, failoverCounters}

// TestE2E_TierFailover runs, whenever the PostgreSQL tests run (a hub tier
// always keeps its state there), three hubs on one PostgreSQL database and five
// edges whose --hub lists name them in different orders, all writing
// continuously: creates, and updates of shared ids under lww, merge and the
// counter wasm resolver. It kills the sequencer with SIGKILL, then the next
// one, brings them back, pauses the sequencer with SIGSTOP past its lease
// and resumes it. At the end every write an edge acknowledged has exactly
// one outcome: confirmed once at the LSN the log has it at, or lost or
// merged with its version kept in the database and the conflict recorded;
// the log's LSNs have no gap and no duplicate, in the database, in every
// hub's feeds and in every edge's; every edge and every hub hold the same
// documents; each counter equals its increments that were confirmed or
// merged; each takeover took at most the lease timeout plus one second.
func TestE2E_TierFailover(t *testing.T) {
	hubBin, edgeBin := e2eBinaries(t)
	db := pgtest.Database(t) // a hub tier always runs on PostgreSQL
	seed := e2eSeed(t)
	t0 := time.Now()
	step := func(format string, args ...any) {
		t.Logf("%6.2fs  %s", time.Since(t0).Seconds(), fmt.Sprintf(format, args...))
	}
	tr := &failoverTier{t: t, db: db}
	step("lease timeout %v: each takeover must take at most %v, writes confirmed again within %v", failoverLease, failoverLease+time.Second, failoverLease+failoverDrain)

	// The hubs join one at a time, so that their order is h1, h2, h3.
	for i := 1; i <= 3; i++ {
		name := fmt.Sprintf("h%d", i)
		h := newE2ENode(t, "hub "+name, "cloudhub listening", hubBin, t.TempDir(),
			"--admin-token", e2eAdminToken, "--postgres", db, "--hub-name", name,
			"--lease-timeout", failoverLease.String(), "--resolver-compile-timeout", "1h")
		h.auth = e2eAdminToken
		h.start()
		h.listen = h.addr
		tr.hubs = append(tr.hubs, h)
		tr.names = append(tr.names, name)
		tr.waitTier(30*time.Second, tr.hubs...)
	}
	st := tr.waitTier(30*time.Second, tr.hubs...)
	step("tier up: sequencer %s, hubs %+v", st.Sequencer, st.Hubs)
	if st.Sequencer != "h1" {
		t.Errorf("sequencer %s, want h1, the first hub that joined", st.Sequencer)
	}

	h1 := tr.hubs[0]
	h1.call(http.MethodPut, "/api/v1/resolvers/counter", readResolver(t, "counter-c.wasm"), http.StatusCreated, nil)
	h1.call(http.MethodPut, "/api/v1/containers/"+failoverItems, `{"partitionKey":"/pk","conflictPolicy":{"mode":"lww"}}`, http.StatusCreated, nil)
	h1.call(http.MethodPut, "/api/v1/containers/"+failoverProfiles, `{"partitionKey":"/pk","conflictPolicy":{"mode":"merge"}}`, http.StatusCreated, nil)
	h1.call(http.MethodPut, "/api/v1/containers/"+failoverCounters,
		`{"partitionKey":"/pk","conflictPolicy":{"mode":"custom","resolver":"counter"}}`, http.StatusCreated, nil)
	for k := range failoverCounterIDs {
		h1.call(http.MethodPost, "/api/v1/containers/"+failoverCounters+"/docs", fmt.Sprintf(`{"id":"k%d","pk":"k","count":0}`, k), http.StatusCreated, nil)
	}

	// Each edge lists the hubs in its own order.
	orders := [][]int{{0, 1, 2}, {1, 2, 0}, {2, 0, 1}, {0, 2, 1}, {1, 0, 2}}
	for i, order := range orders {
		name := fmt.Sprintf("e%d", i+1)
		var tok struct {
			Token string `json:"token"`
		}
		tr.hubs[i%3].call(http.MethodPost, "/api/v1/edges", map[string]any{"name": name}, http.StatusCreated, &tok)
		var urls []string
		for _, h := range order {
			urls = append(urls, "http://"+tr.hubs[h].listen)
		}
		e := newE2ENode(t, "edge "+name, "edgenode listening", edgeBin, t.TempDir(),
			"--hub", strings.Join(urls, ","), "--token", tok.Token, "--durability", "normal")
		e.start()
		tr.edges = append(tr.edges, &failoverEdge{node: e, name: name, rng: rand.New(rand.NewPCG(seed, uint64(i)))})
	}
	tr.waitSynced(60 * time.Second)
	for _, e := range tr.edges {
		for _, c := range failoverContainers {
			e2eWaitKnows(t, e.node, c)
		}
		e.nodeID = e.node.mustEdgeStatus().NodeID
	}
	step("5 edges in sync")

	stop := make(chan struct{})
	var wg sync.WaitGroup
	for _, e := range tr.edges {
		wg.Go(func() { e.write(t, stop) })
	}
	stopWriters := func() {
		if stop != nil {
			close(stop)
			wg.Wait()
			stop = nil
		}
	}
	defer stopWriters()
	time.Sleep(3 * time.Second)

	// Two kills: the sequencer, then the hub that took over.
	for range 2 {
		seq := tr.sequencer()
		at := tr.kill9(seq)
		step("killed %s (SIGKILL), the sequencer", seq.name)
		tr.awaitTakeover("kill -9 "+seq.name, seq, at)
		time.Sleep(2 * time.Second)
	}
	for _, h := range tr.hubs {
		if !h.running() {
			h.start()
			step("started %s again", h.name)
		}
	}
	st = tr.waitTier(30*time.Second, tr.hubs...)
	step("all three hubs back: sequencer %s", st.Sequencer)
	// The edges return to the first hub of their lists (at their probe of
	// it): the pause then finds edges on the other hubs, whose writes go
	// on once another hub sequences. Edges on the paused hub wait for it,
	// or for their hub timeout, whatever the tier does.
	e2eWaitFor(t, 30*time.Second, "every hub serves an edge again", func() error {
		st, err := tr.status(tr.hubs[0])
		if err != nil {
			return err
		}
		for _, h := range st.Hubs {
			if h.Edges == 0 {
				return fmt.Errorf("hub %s serves no edge: %+v", h.Name, st.Hubs)
			}
		}
		return nil
	})
	step("every hub serves an edge")
	time.Sleep(2 * time.Second)

	// A pause past the lease: the sequencer stops with SIGSTOP, another
	// takes over, and once resumed the paused one is a follower.
	seq := tr.sequencer()
	at := time.Now()
	if err := seq.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatalf("SIGSTOP %s: %v", seq.name, err)
	}
	step("paused %s (SIGSTOP), the sequencer", seq.name)
	tr.awaitTakeover("SIGSTOP "+seq.name, seq, at)
	if d := failoverLease + time.Second - time.Since(at); d > 0 {
		time.Sleep(d)
	}
	if err := seq.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatalf("SIGCONT %s: %v", seq.name, err)
	}
	step("resumed %s (SIGCONT) after %v", seq.name, time.Since(at).Round(time.Millisecond))
	e2eWaitFor(t, 15*time.Second, seq.name+" rejoins as a follower", func() error {
		st, err := tr.status(seq)
		switch {
		case err != nil:
			return err
		case st.Sequencer == tr.name(seq) || st.Sequencer == "":
			return fmt.Errorf("%s reports sequencer %q", seq.name, st.Sequencer)
		case !st.online(tr.name(seq)):
			return fmt.Errorf("%s is not online in its own status: %+v", seq.name, st.Hubs)
		}
		return nil
	})
	step("%s is a follower again", seq.name)
	time.Sleep(2 * time.Second)

	stopWriters()
	for _, e := range tr.edges {
		if e.failed {
			t.FailNow() // an edge's API failed: its writes are not all known
		}
	}
	writes := 0
	for _, e := range tr.edges {
		writes += len(e.acked)
	}
	step("writers stopped: %d writes acknowledged", writes)
	st = tr.waitTier(30*time.Second, tr.hubs...)
	tr.waitSynced(60 * time.Second)
	step("every edge in sync at LSN %d (sequencer %s)", tr.head(), st.Sequencer)

	tr.check()
	step("checked")
	// The followers handed their edges' pushes to the sequencer's hub
	// (cloudhub serve --tier-handoff, the default), falling back to the
	// queue around the kills and the pause.
	var handed, fellBack float64
	for _, h := range tr.hubs {
		p, _ := strconv.ParseFloat(h.metric("edgesync_hub_handoff_pushes_total"), 64)
		f, _ := strconv.ParseFloat(h.metric("edgesync_hub_handoff_fallbacks_total"), 64)
		handed, fellBack = handed+p, fellBack+f
	}
	t.Logf("pushes handed to the sequencer's hub since the hubs last started: %.0f decided there, %.0f queued after a failed hand-off", handed, fellBack)
	if handed == 0 {
		t.Error("no push was handed to the sequencer's hub")
	}
	for _, to := range st.Takeovers {
		t.Logf("the tier's history: %s", to)
	}
	for _, to := range tr.takeovers {
		t.Logf("takeover after %s: %s -> %s, named after %v, writes confirmed again after %v", to.what, to.from, to.to,
			to.named.Round(time.Millisecond), to.took.Round(time.Millisecond))
		// The takeover is another hub holding the lease: the lease
		// timeout bounds it. Its first commits come after the writes
		// queued during the outage are decided (wasm resolver calls
		// included), which on a loaded machine takes some seconds more:
		// bounded too, more loosely.
		if to.named > failoverLease+time.Second {
			t.Errorf("takeover after %s: another hub sequenced after %v, want at most %v (lease timeout + 1s)", to.what, to.named.Round(time.Millisecond), failoverLease+time.Second)
		}
		if to.took > failoverLease+failoverDrain {
			t.Errorf("takeover after %s: writes confirmed again after %v, want at most %v (lease timeout + %v)", to.what, to.took.Round(time.Millisecond), failoverLease+failoverDrain, failoverDrain)
		}
	}
}

// failoverCounterIDs and failoverSharedIDs are how many shared documents the edges
// update in each container.
const (
	failoverCounterIDs = 4
	failoverSharedIDs  = 6
)

// failoverTier is the failover test's hubs and edges.
type failoverTier struct {
	t         *testing.T
	db        string
	hubs      []*e2eNode
	names     []string // the hubs' --hub-name, as hubs
	edges     []*failoverEdge
	takeovers []failoverTakeover
}

// failoverTakeover is one takeover: how long after the sequencer went away the
// hubs named another (named), and the log moved again (took).
type failoverTakeover struct {
	what, from, to string
	named, took    time.Duration
}

// failoverStatus is GET /api/v1/status on a hub of the tier.
type failoverStatus struct {
	LSN       int64             `json:"lsn"`
	Sequencer string            `json:"sequencer"`
	Takeovers []json.RawMessage `json:"takeovers"`
	Hubs      []struct {
		Name      string `json:"name"`
		Order     int    `json:"order"`
		Online    bool   `json:"online"`
		Sequencer bool   `json:"sequencer"`
		Edges     int    `json:"edges"`
	} `json:"hubs"`
}

func (s failoverStatus) online(name string) bool {
	for _, h := range s.Hubs {
		if h.Name == name {
			return h.Online
		}
	}
	return false
}

func (tr *failoverTier) name(h *e2eNode) string { return tr.names[slices.Index(tr.hubs, h)] }

func (tr *failoverTier) status(h *e2eNode) (failoverStatus, error) {
	var st failoverStatus
	status, b, err := h.do(http.MethodGet, "/api/v1/status", nil)
	if err != nil {
		return st, err
	}
	if status != http.StatusOK {
		return st, fmt.Errorf("GET /api/v1/status on %s: status %d: %s", h.name, status, b)
	}
	if err := json.Unmarshal(b, &st); err != nil {
		return st, fmt.Errorf("GET /api/v1/status on %s: %v: %s", h.name, err, b)
	}
	return st, nil
}

// live is the hubs running and not paused.
func (tr *failoverTier) live() []*e2eNode {
	var out []*e2eNode
	for _, h := range tr.hubs {
		if h.running() {
			out = append(out, h)
		}
	}
	return out
}

// waitTier waits until every hub of up reports the same sequencer, one of
// up, and every hub of up online, and returns the status of the first.
func (tr *failoverTier) waitTier(timeout time.Duration, up ...*e2eNode) failoverStatus {
	tr.t.Helper()
	var st failoverStatus
	e2eWaitFor(tr.t, timeout, "the tier agrees on a sequencer", func() error {
		var seq string
		for i, h := range up {
			s, err := tr.status(h)
			if err != nil {
				return err
			}
			if i == 0 {
				st, seq = s, s.Sequencer
			}
			if s.Sequencer == "" || s.Sequencer != seq {
				return fmt.Errorf("%s reports sequencer %q, %s %q", h.name, s.Sequencer, up[0].name, seq)
			}
			for _, o := range up {
				if !s.online(tr.name(o)) {
					return fmt.Errorf("%s reports %s offline: %+v", h.name, tr.name(o), s.Hubs)
				}
			}
		}
		if !slices.ContainsFunc(up, func(h *e2eNode) bool { return tr.name(h) == seq }) {
			return fmt.Errorf("sequencer %q is not one of the live hubs", seq)
		}
		return nil
	})
	return st
}

// sequencer is the hub the tier names as its sequencer, once the live hubs
// have agreed on it for longer than a lease (a hub that came back may take
// the lease again).
func (tr *failoverTier) sequencer() *e2eNode {
	tr.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	st := tr.waitTier(30*time.Second, tr.live()...)
	for since := time.Now(); time.Since(since) < failoverLease+500*time.Millisecond; {
		if time.Now().After(deadline) {
			tr.t.Fatalf("the sequencer does not settle: now %s", st.Sequencer)
		}
		time.Sleep(100 * time.Millisecond)
		if now := tr.waitTier(30*time.Second, tr.live()...); now.Sequencer != st.Sequencer {
			st, since = now, time.Now()
		}
	}
	return tr.hubs[slices.Index(tr.names, st.Sequencer)]
}

func (tr *failoverTier) head() int64 {
	tr.t.Helper()
	st, err := tr.status(tr.live()[0])
	if err != nil {
		tr.t.Fatal(err)
	}
	return st.LSN
}

// kill9 kills h with SIGKILL and returns when it sent the signal.
func (tr *failoverTier) kill9(h *e2eNode) time.Time {
	tr.t.Helper()
	at := time.Now()
	h.kill9()
	return at
}

// awaitTakeover waits until another hub sequences after old went away at
// at: a live hub names a sequencer other than old, and the log has moved
// past where it was (the edges write all the time). It records how long
// that took; after 45s it fails the test and returns.
func (tr *failoverTier) awaitTakeover(what string, old *e2eNode, at time.Time) {
	tr.t.Helper()
	var watch []*e2eNode
	for _, h := range tr.live() {
		if h != old {
			watch = append(watch, h)
		}
	}
	var lsn0 int64
	for _, h := range watch {
		if st, err := tr.status(h); err == nil {
			lsn0 = max(lsn0, st.LSN)
		}
	}
	var to string
	var named time.Duration
	deadline := at.Add(45 * time.Second)
	for to == "" {
		for _, h := range watch {
			st, err := tr.status(h)
			if err != nil || st.Sequencer == "" || st.Sequencer == tr.name(old) {
				continue
			}
			if named == 0 {
				named = time.Since(at)
			}
			if st.LSN > lsn0 {
				to = st.Sequencer
				break
			}
		}
		if to == "" {
			if time.Now().After(deadline) {
				// The scenario goes on: what the tier does once it
				// recovers is checked at the end.
				tr.t.Errorf("%s: no other hub sequenced within %v (another named after %v); the database's sessions:\n%s",
					what, time.Since(at).Round(time.Millisecond), named.Round(time.Millisecond), tr.sessions())
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	took := time.Since(at)
	tr.takeovers = append(tr.takeovers, failoverTakeover{what: what, from: tr.name(old), to: to, named: named, took: took})
	tr.t.Logf("takeover after %s: %s named sequencer after %v, the log moved again after %v (lease timeout %v)",
		what, to, named.Round(time.Millisecond), took.Round(time.Millisecond), failoverLease)
}

// sessions lists the database's sessions, for a failure's message: what
// each runs and waits for, since when its transaction is open, and since
// when its last statement began.
func (tr *failoverTier) sessions() string {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, tr.db)
	if err != nil {
		return err.Error()
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, `SELECT pid, coalesce(client_port, 0), state, coalesce(wait_event_type, ''), coalesce(wait_event, ''),
			coalesce(extract(epoch FROM clock_timestamp() - xact_start), 0)::float8,
			coalesce(extract(epoch FROM clock_timestamp() - query_start), 0)::float8, left(query, 200)
		FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid() ORDER BY xact_start NULLS LAST LIMIT 50`)
	if err != nil {
		return err.Error()
	}
	defer rows.Close()
	var b strings.Builder
	for rows.Next() {
		var pid, port int32
		var state, wtype, wevent, query string
		var xact, since float64
		if err := rows.Scan(&pid, &port, &state, &wtype, &wevent, &xact, &since, &query); err != nil {
			return err.Error()
		}
		fmt.Fprintf(&b, "pid %d client port %d %s wait %s/%s transaction open %.1fs, statement %.1fs: %s\n", pid, port, state, wtype, wevent, xact, since,
			strings.Join(strings.Fields(query), " "))
	}
	if err := rows.Err(); err != nil {
		return err.Error()
	}
	return b.String()
}

// synced reports why the edges are not in sync with the tier: each must be
// connected, have nothing pending, and have applied the log's head.
func (tr *failoverTier) synced() error {
	head := int64(-1)
	for _, h := range tr.live() {
		st, err := tr.status(h)
		if err != nil {
			return err
		}
		if head >= 0 && st.LSN != head {
			return fmt.Errorf("hubs report LSN %d and %d", head, st.LSN)
		}
		head = st.LSN
	}
	var errs []error
	for _, e := range tr.edges {
		st, err := e.node.edgeStatus()
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("%s: %v", e.name, err))
		case !st.Connected || st.Pending != 0 || st.LastLSN != head:
			errs = append(errs, fmt.Errorf("%s: connected=%v hub=%s pending=%d lastLsn=%d lastError=%q; head %d",
				e.name, st.Connected, st.Hub, st.Pending, st.LastLSN, st.LastError, head))
		}
	}
	return errors.Join(errs...)
}

func (tr *failoverTier) waitSynced(timeout time.Duration) {
	tr.t.Helper()
	e2eWaitFor(tr.t, timeout, "edges in sync with the tier", tr.synced)
}

// failoverEdge is an edge of the failover test and the writes it acknowledged.
type failoverEdge struct {
	node   *e2eNode
	name   string
	nodeID string
	rng    *rand.Rand
	n      int
	acked  map[string]failoverWrite // by version
	failed bool                     // a write failed: the writer stopped
}

// failoverWrite is a write the edge's API acknowledged.
type failoverWrite struct {
	container, id string
	increment     bool // a counter's count + 1 over the version it read
}

// write writes until stop is closed, one write every few milliseconds:
// creates of new ids (lww), updates of shared ids under lww, of the edge's
// own field of shared documents under merge, and counter increments
// (custom), each read-modify-write with If-Match over the local version.
func (e *failoverEdge) write(t *testing.T, stop <-chan struct{}) {
	e.acked = map[string]failoverWrite{}
	for {
		select {
		case <-stop:
			return
		case <-time.After(time.Duration(20+e.rng.IntN(30)) * time.Millisecond):
		}
		e.n++
		var err error
		switch r := e.rng.IntN(100); {
		case r < 35:
			id := fmt.Sprintf("%s-%05d", e.name, e.n)
			err = e.put(failoverItems, id, "", fmt.Sprintf(`{"id":%q,"pk":"p%d","by":%q,"n":%d}`, id, e.n%4, e.name, e.n), false)
		case r < 55:
			id := fmt.Sprintf("s%d", e.rng.IntN(failoverSharedIDs))
			err = e.put(failoverItems, id, "", fmt.Sprintf(`{"id":%q,"pk":"shared","by":%q,"n":%d}`, id, e.name, e.n), false)
		case r < 75:
			id := fmt.Sprintf("m%d", e.rng.IntN(failoverSharedIDs))
			err = e.update(failoverProfiles, id, func(d map[string]any) {
				d[e.name] = e.n
				d["last"] = e.name
			})
		default:
			id := fmt.Sprintf("k%d", e.rng.IntN(failoverCounterIDs))
			err = e.update(failoverCounters, id, func(d map[string]any) {
				c, _ := d["count"].(float64)
				d["count"] = int64(c) + 1
			})
		}
		if err != nil {
			t.Errorf("%s: write %d: %v", e.name, e.n, err)
			e.failed = true
			return
		}
	}
}

// errFailoverRetry is a write whose If-Match no longer matched: another
// version arrived between the read and the write.
var errFailoverRetry = errors.New("version changed since read")

// update reads the document (a new one if there is none), changes it with
// f and writes it over the version read, again while that version changed
// in between (up to 50 times).
func (e *failoverEdge) update(container, id string, f func(map[string]any)) error {
	for range 50 {
		status, b, err := e.node.do(http.MethodGet, "/api/v1/containers/"+container+"/docs/"+id, nil)
		if err != nil {
			return err
		}
		d := map[string]any{"id": id, "pk": id[:1]}
		etag := ""
		switch status {
		case http.StatusOK:
			if err := json.Unmarshal(b, &d); err != nil {
				return fmt.Errorf("GET %s/%s: %v", container, id, err)
			}
			etag, _ = d["_etag"].(string)
			for k := range d {
				if strings.HasPrefix(k, "_") {
					delete(d, k)
				}
			}
		case http.StatusNotFound:
			if container == failoverCounters {
				return fmt.Errorf("GET %s/%s: 404, the counters exist from the start", container, id)
			}
		default:
			return fmt.Errorf("GET %s/%s: status %d: %s", container, id, status, b)
		}
		f(d)
		body, err := json.Marshal(d)
		if err != nil {
			return err
		}
		err = e.put(container, id, etag, string(body), container == failoverCounters)
		if !errors.Is(err, errFailoverRetry) {
			return err
		}
	}
	return fmt.Errorf("%s/%s: changed under 50 read-modify-writes in a row", container, id)
}

// put writes body as id (If-Match etag unless ""), and records the version
// the edge acknowledged.
func (e *failoverEdge) put(container, id, etag, body string, increment bool) error {
	req, err := http.NewRequest(http.MethodPut, e.node.base+"/api/v1/containers/"+container+"/docs/"+id, strings.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	if etag != "" {
		req.Header.Set("If-Match", etag)
	}
	resp, err := e.node.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return err
	}
	switch resp.StatusCode {
	case http.StatusOK, http.StatusCreated:
	case http.StatusPreconditionFailed:
		return errFailoverRetry
	default:
		return fmt.Errorf("PUT %s/%s: status %d: %s", container, id, resp.StatusCode, b)
	}
	var d struct {
		ETag string `json:"_etag"`
	}
	if err := json.Unmarshal(b, &d); err != nil || d.ETag == "" {
		return fmt.Errorf("PUT %s/%s: no _etag in %s (%v)", container, id, b, err)
	}
	e.acked[strings.Trim(d.ETag, `"`)] = failoverWrite{container: container, id: id, increment: increment}
	return nil
}

// failoverVersion is a version's row in the hub's database.
type failoverVersion struct {
	outcome string
	lsn     int64
}

// check is the end state, once every edge is in sync.
func (tr *failoverTier) check() {
	t := tr.t
	t.Helper()
	head := tr.head()

	// The database: LSNs 1..head, each version in the log once.
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, tr.db)
	if err != nil {
		t.Fatalf("connect to the tier's database: %v", err)
	}
	defer conn.Close(ctx)
	var n, lo, hi int64
	if err := conn.QueryRow(ctx, `SELECT count(*), coalesce(min(lsn), 0), coalesce(max(lsn), 0) FROM log`).Scan(&n, &lo, &hi); err != nil {
		t.Fatalf("database: log: %v", err)
	}
	if n != head || hi != head || (n > 0 && lo != 1) {
		t.Errorf("database: log has %d records, LSNs %d..%d; want LSNs 1..%d, the head, each once", n, lo, hi, head)
	}
	rows, err := conn.Query(ctx, `SELECT version, count(*) FROM log GROUP BY version HAVING count(*) > 1 LIMIT 20`)
	if err != nil {
		t.Fatalf("database: log: %v", err)
	}
	for rows.Next() {
		var v string
		var k int64
		if err := rows.Scan(&v, &k); err != nil {
			t.Fatalf("database: log: %v", err)
		}
		t.Errorf("database: version %s is in the log %d times, want once", v, k)
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("database: log: %v", err)
	}
	versions := map[string]failoverVersion{}
	rows, err = conn.Query(ctx, `SELECT version, outcome, lsn FROM versions`)
	if err != nil {
		t.Fatalf("database: versions: %v", err)
	}
	for rows.Next() {
		var v string
		var r failoverVersion
		if err := rows.Scan(&v, &r.outcome, &r.lsn); err != nil {
			t.Fatalf("database: versions: %v", err)
		}
		versions[v] = r
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("database: versions: %v", err)
	}
	inConflict := map[string]bool{}
	rows, err = conn.Query(ctx, `SELECT incoming FROM conflicts`)
	if err != nil {
		t.Fatalf("database: conflicts: %v", err)
	}
	for rows.Next() {
		var v string
		if err := rows.Scan(&v); err != nil {
			t.Fatalf("database: conflicts: %v", err)
		}
		inConflict[v] = true
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("database: conflicts: %v", err)
	}

	// Every hub's feeds: the same records, LSNs 1..head each once.
	var logByVersion map[string]int64
	var hubDocs map[string]map[string]e2eDoc
	for i, h := range tr.hubs {
		lsns := map[int64]bool{}
		byVersion := map[string]int64{}
		docs := map[string]map[string]e2eDoc{}
		for _, c := range failoverContainers {
			for _, r := range h.feed(c, false) {
				if lsns[r.LSN] {
					t.Errorf("%s: LSN %d twice in the feeds", h.name, r.LSN)
				}
				lsns[r.LSN] = true
				byVersion[r.Version] = r.LSN
			}
			docs[c] = h.listDocs(c)
		}
		if int64(len(lsns)) != head || (head > 0 && (!lsns[1] || !lsns[head])) {
			t.Errorf("%s: feeds hold %d LSNs, want 1..%d", h.name, len(lsns), head)
		}
		if i == 0 {
			logByVersion, hubDocs = byVersion, docs
			continue
		}
		if !reflect.DeepEqual(byVersion, logByVersion) {
			t.Errorf("%s: feeds differ from %s's (%d and %d versions)", h.name, tr.hubs[0].name, len(byVersion), len(logByVersion))
		}
		if !reflect.DeepEqual(docs, hubDocs) {
			t.Errorf("%s: documents differ from %s's", h.name, tr.hubs[0].name)
		}
	}

	// Every edge: its acknowledged writes each once in its feed with one
	// outcome that the hub's records bear out; the log's LSNs each once;
	// the hub's documents.
	outcomes := map[string]int{}
	increments := map[string]int64{} // counter id -> increments confirmed or merged
	for _, e := range tr.edges {
		lsns := map[int64]int{}
		own := map[string]int{}
		outs := map[string][]e2eRecord{}
		for _, c := range failoverContainers {
			feed := e.node.changes(c)
			for _, r := range feed {
				switch {
				case r.Op == "outcome":
					outs[r.Version] = append(outs[r.Version], r)
				case r.Origin == e.nodeID:
					own[r.Version]++
					if r.LSN > 0 {
						lsns[r.LSN]++
					}
				case r.LSN > 0:
					lsns[r.LSN]++
				}
			}
			docs := e.node.listDocs(c)
			if !reflect.DeepEqual(docs, hubDocs[c]) {
				bad := 0
				for id, want := range hubDocs[c] {
					if got := docs[id]; !reflect.DeepEqual(got, want) {
						if bad++; bad <= 5 {
							t.Errorf("%s: %s/%s = %v, want the hub's %v", e.name, c, id, got, want)
						}
					}
				}
				t.Errorf("%s: %s: %d documents, %d differ from the hub's %d", e.name, c, len(docs), bad, len(hubDocs[c]))
			}
		}
		if int64(len(lsns)) != head {
			t.Errorf("%s: feeds hold %d distinct LSNs, want 1..%d", e.name, len(lsns), head)
		}
		for lsn, k := range lsns {
			if k != 1 || lsn < 1 || lsn > head {
				t.Errorf("%s: LSN %d %d times in its feeds, want once in 1..%d", e.name, lsn, k, head)
			}
		}
		for v := range own {
			if _, ok := e.acked[v]; !ok {
				t.Errorf("%s: own version %s in its feed was never acknowledged", e.name, v)
			}
		}
		bad := 0
		fail := func(format string, args ...any) {
			if bad++; bad <= 20 {
				t.Errorf(e.name+": "+format, args...)
			}
		}
		for v, w := range e.acked {
			if own[v] != 1 {
				fail("acknowledged %s/%s version %s is %d times in its feed, want once", w.container, w.id, v, own[v])
			}
			o := outs[v]
			if len(o) != 1 {
				fail("%d outcomes for %s/%s version %s, want 1: %+v", len(o), w.container, w.id, v, o)
				continue
			}
			out := o[0]
			outcomes[out.Outcome]++
			row, stored := versions[v]
			switch out.Outcome {
			case "confirmed":
				if lsn, ok := logByVersion[v]; !ok || lsn != out.LSN {
					fail("%s confirmed at LSN %d; the hubs' log has it at %d (present: %v)", v, out.LSN, lsn, ok)
				}
				if !stored || row.lsn != out.LSN {
					fail("%s confirmed at LSN %d; the database has %+v (present: %v)", v, out.LSN, row, stored)
				}
			case "lost", "merged":
				if _, ok := logByVersion[v]; ok {
					fail("%s %s, yet the log has it", v, out.Outcome)
				}
				if !stored || row.outcome != out.Outcome || row.lsn != out.LSN {
					fail("%s %s at LSN %d; the database keeps %+v (present: %v)", v, out.Outcome, out.LSN, row, stored)
				}
				if !inConflict[v] {
					fail("%s %s: no conflict record has it as the incoming version", v, out.Outcome)
				}
			case "rejected":
				t.Logf("%s: %s/%s version %s rejected: %s", e.name, w.container, w.id, v, out.Reason)
			default:
				fail("%s: outcome %q", v, out.Outcome)
			}
			if w.increment && (out.Outcome == "confirmed" || out.Outcome == "merged") {
				increments[w.id]++
			}
		}
	}
	for k := range failoverCounterIDs {
		id := fmt.Sprintf("k%d", k)
		got, _ := hubDocs[failoverCounters][id]["count"].(float64)
		if int64(got) != increments[id] {
			t.Errorf("counter %s = %v, want %d: the increments confirmed or merged", id, got, increments[id])
		}
	}
	t.Logf("log head %d; outcomes %v; counters %v; %d versions and %d conflicts in the database", head, outcomes, increments, len(versions), len(inConflict))
}
