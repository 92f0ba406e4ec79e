package main

// End-to-end tests: the real cloudhub and edgenode binaries run as child
// processes on loopback, each with its own data directory. The hub is
// stopped with SIGTERM and started again on the same data directory and
// port; edges reconnect on their own. Edges are killed with SIGKILL in the
// middle of a sync. The tests check what the contract (docs/architecture.md,
// docs/api.md) promises at the end: every replica equal to the hub, every write
// confirmed exactly once or in the conflicts feed, scope and token rules.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/edgesync/edgesync/client"
	"github.com/edgesync/edgesync/internal/proctest"
	"github.com/edgesync/edgesync/replica/wire"
)

const e2eAdminToken = "e2e-admin-token"

var e2eSeedFlag = flag.Uint64("e2e.seed", 0, "seed of the randomised end-to-end tests (0: from the clock)")

// e2eSeed returns the seed for a randomised test and logs it.
func e2eSeed(t *testing.T) uint64 {
	seed := *e2eSeedFlag
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	t.Logf("seed %d (rerun with -e2e.seed %d)", seed, seed)
	return seed
}

func TestMain(m *testing.M) { os.Exit(proctest.Main(m)) }

// e2eBinaries builds cmd/cloudhub and cmd/edgenode once per test run. It
// skips the test in -short mode and when there is no go tool.
func e2eBinaries(t *testing.T) (hubBin, edgeBin string) {
	t.Helper()
	if testing.Short() {
		t.Skip("runs real cloudhub and edgenode processes; skipped in -short mode")
	}
	bins := proctest.Build(t, proctest.Cloudhub, proctest.Edgenode)
	return bins[0], bins[1]
}

// e2eLog collects a child's output and reports the address from its
// "<marker> ... addr=HOST:PORT" line.
type e2eLog = proctest.Log

// e2eNode is a hub or an edge: a binary, a data directory and flags, run as a
// child process any number of times (one at a time).
type e2eNode struct {
	t      *testing.T
	name   string // "hub", "edge east": for messages
	marker string // the log line that carries the address
	bin    string
	dir    string
	listen string // --listen; the hub keeps its first port across restarts
	flags  []string
	auth   string // bearer token for the node's API ("" for edges)
	client *http.Client
	https  bool           // the node serves TLS; client trusts its CA
	api    *client.Client // the node's API over client, made at start

	proc   *proctest.Process
	cmd    *exec.Cmd
	log    *e2eLog
	exited chan struct{}
	addr   string
	base   string
	runs   []*e2eLog
}

// e2eChildEnv is the test's environment without CLOUDHUB_* and EDGENODE_*
// variables, so that only the command line configures the children.
func e2eChildEnv() []string { return proctest.ChildEnv() }

func newE2ENode(t *testing.T, name, marker, bin, dir string, flags ...string) *e2eNode {
	n := &e2eNode{t: t, name: name, marker: marker, bin: bin, dir: dir, listen: "127.0.0.1:0", flags: flags,
		client: proctest.NewHTTPClient(20*time.Second, 32),
	}
	t.Cleanup(func() {
		if n.running() {
			n.proc.Kill()
		}
		n.client.CloseIdleConnections()
		if t.Failed() {
			for i, l := range n.runs {
				t.Logf("%s, run %d, log (last 6000 bytes):\n%s", n.name, i+1, proctest.Tail(l.String(), 6000))
			}
		}
	})
	return n
}

func (n *e2eNode) running() bool { return n.proc != nil && n.proc.Running() }

// start runs the node and waits until it listens and /healthz answers. A
// port still held by the previous run is retried for a few seconds.
func (n *e2eNode) start() {
	n.t.Helper()
	if n.running() {
		n.t.Fatalf("%s: start: already running", n.name)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := n.tryStart()
		if err == nil {
			break
		}
		if !strings.Contains(err.Error(), "address already in use") || time.Now().After(deadline) {
			n.t.Fatalf("%s: %v", n.name, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	n.base = "http://" + n.addr
	if n.https {
		n.base = "https://" + n.addr
	}
	// One attempt per call: the tests poll, and see each failure.
	api, err := client.New(client.Config{URL: n.base, Token: n.auth, HTTPClient: n.client, MaxAttempts: 1})
	if err != nil {
		n.t.Fatalf("%s: %v", n.name, err)
	}
	n.api = api
	deadline = time.Now().Add(10 * time.Second)
	for {
		err := n.api.Health(context.Background())
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			n.t.Fatalf("%s: GET /healthz on %s: %v\nlog:\n%s", n.name, n.addr, err, n.log)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (n *e2eNode) tryStart() error {
	args := append([]string{"serve", "--listen", n.listen, "--data", n.dir}, n.flags...)
	p, err := proctest.Start(n.bin, args, n.marker, 15*time.Second)
	if p != nil {
		n.proc, n.cmd, n.log, n.exited = p, p.Cmd, p.Log, p.Exited
		n.runs = append(n.runs, p.Log)
	}
	if err != nil {
		return err
	}
	n.addr = p.Addr
	return nil
}

// stop sends SIGTERM and waits for a clean exit (code 0).
func (n *e2eNode) stop() {
	n.t.Helper()
	if !n.running() {
		n.t.Fatalf("%s: stop: not running (%v)\nlog:\n%s", n.name, n.cmd.ProcessState, n.log)
	}
	if err := n.proc.Terminate(15 * time.Second); err != nil {
		n.t.Fatalf("%s: %v", n.name, err)
	}
	n.client.CloseIdleConnections()
	if code := n.cmd.ProcessState.ExitCode(); code != 0 {
		n.t.Errorf("%s: exit code %d after SIGTERM, want 0\nlog:\n%s", n.name, code, n.log)
	}
}

// kill9 sends SIGKILL and waits for the process to be gone.
func (n *e2eNode) kill9() {
	n.t.Helper()
	if n.proc == nil {
		n.t.Fatalf("%s: kill9: never started", n.name)
	}
	if err := n.proc.Kill9(10 * time.Second); err != nil {
		n.t.Fatalf("%s: %v", n.name, err)
	}
	n.client.CloseIdleConnections()
}

// do sends one request to the node's API; body is nil, a string, []byte or
// a value to encode as JSON.
func (n *e2eNode) do(method, path string, body any) (int, []byte, error) {
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		enc, err := json.Marshal(b)
		if err != nil {
			return 0, nil, err
		}
		rd = bytes.NewReader(enc)
	}
	req, err := http.NewRequest(method, n.base+path, rd)
	if err != nil {
		return 0, nil, err
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if n.auth != "" {
		req.Header.Set("Authorization", "Bearer "+n.auth)
	}
	resp, err := n.client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

// call is do for requests that must succeed with wantStatus; it decodes the
// response into out when out is not nil.
func (n *e2eNode) call(method, path string, body any, wantStatus int, out any) []byte {
	n.t.Helper()
	status, b, err := n.do(method, path, body)
	if err != nil {
		n.t.Fatalf("%s: %s %s: %v", n.name, method, path, err)
	}
	if status != wantStatus {
		n.t.Fatalf("%s: %s %s: status %d, want %d: %s", n.name, method, path, status, wantStatus, b)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			n.t.Fatalf("%s: %s %s: decode %q: %v", n.name, method, path, b, err)
		}
	}
	return b
}

// wantError checks an error response: status and {"code"}.
func (n *e2eNode) wantError(method, path string, body any, wantStatus int, wantCode string) {
	n.t.Helper()
	status, b, err := n.do(method, path, body)
	if err != nil {
		n.t.Fatalf("%s: %s %s: %v", n.name, method, path, err)
	}
	var e struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	}
	if jerr := json.Unmarshal(b, &e); status != wantStatus || jerr != nil || e.Code != wantCode {
		n.t.Errorf("%s: %s %s: status %d %s, want %d {\"code\":%q}", n.name, method, path, status, b, wantStatus, wantCode)
	}
}

type (
	e2eHubStatus  = client.HubStatus
	e2eEdgeStatus = client.EdgeStatus
)

func (n *e2eNode) hubStatus() (e2eHubStatus, error) {
	return n.api.HubStatus(context.Background())
}

func (n *e2eNode) edgeStatus() (e2eEdgeStatus, error) {
	return n.api.EdgeStatus(context.Background())
}

func (n *e2eNode) mustEdgeStatus() e2eEdgeStatus {
	n.t.Helper()
	st, err := n.edgeStatus()
	if err != nil {
		n.t.Fatalf("%s: %v", n.name, err)
	}
	return st
}

// e2eDoc is a document as a node returns it, system properties included.
type e2eDoc = map[string]any

func e2eDecodeDoc(b []byte) (e2eDoc, error) {
	var d e2eDoc
	if err := json.Unmarshal(b, &d); err != nil {
		return nil, fmt.Errorf("decode document %q: %w", b, err)
	}
	return d, nil
}

// getDoc reads a document; query is "" or "?consistency=confirmed". An
// error answer gives its status and no document.
func (n *e2eNode) getDoc(container, id, query string) (int, e2eDoc) {
	n.t.Helper()
	var opt client.ReadOptions
	if query != "" {
		q, err := url.ParseQuery(strings.TrimPrefix(query, "?"))
		if err != nil {
			n.t.Fatalf("%s: getDoc query %q: %v", n.name, query, err)
		}
		opt.Consistency = q.Get("consistency")
	}
	doc, err := n.api.Get(context.Background(), container, id, opt)
	var ae *client.Error
	if errors.As(err, &ae) {
		return ae.Status, nil
	}
	if err != nil {
		n.t.Fatalf("%s: GET %s/%s: %v", n.name, container, id, err)
	}
	d, err := e2eDecodeDoc(doc.JSON)
	if err != nil {
		n.t.Fatalf("%s: GET %s/%s: %v", n.name, container, id, err)
	}
	return http.StatusOK, d
}

// listDocs reads every live document of a container, by id.
func (n *e2eNode) listDocs(container string) map[string]e2eDoc {
	n.t.Helper()
	out := map[string]e2eDoc{}
	for doc, err := range n.api.ListAll(context.Background(), container, client.ListOptions{Limit: 1000}) {
		if err != nil {
			n.t.Fatalf("%s: list %s: %v", n.name, container, err)
		}
		d, err := e2eDecodeDoc(doc.JSON)
		if err != nil {
			n.t.Fatalf("%s: list %s: %v", n.name, container, err)
		}
		if _, dup := out[doc.ID]; dup {
			n.t.Fatalf("%s: listing %s has id %q twice", n.name, container, doc.ID)
		}
		out[doc.ID] = d
	}
	return out
}

// e2eRecord is a change feed record (hub: positions are LSNs; edge: seqs,
// with outcome records).
type e2eRecord = client.Change

// changes reads a container's whole change feed, a page at a time, with
// an edge's outcome records.
func (n *e2eNode) changes(container string) []e2eRecord {
	n.t.Helper()
	return n.feed(container, true)
}

// feed reads a container's whole change feed, a page at a time; outcomes
// asks an edge for its outcome records too.
func (n *e2eNode) feed(container string, outcomes bool) []e2eRecord {
	n.t.Helper()
	var all []e2eRecord
	opt := client.ChangesOptions{Limit: 1000, Outcomes: outcomes}
	for {
		page, err := n.api.Changes(context.Background(), container, opt)
		if err != nil {
			n.t.Fatalf("%s: changes of %s: %v", n.name, container, err)
		}
		if len(page.Changes) == 0 {
			return all
		}
		all = append(all, page.Changes...)
		if page.Next == opt.Since {
			n.t.Fatalf("%s: changes of %s: continuation %d did not move after a page of %d", n.name, container, opt.Since, len(page.Changes))
		}
		opt.Since = page.Next
	}
}

// e2eConflict is a record of the hub's conflicts feed.
type e2eConflict struct {
	ID        int64            `json:"id"`
	Kind      string           `json:"kind"`
	Status    string           `json:"status"`
	DocID     string           `json:"docId"`
	Policy    string           `json:"policy"`
	Loser     string           `json:"loser"`
	WinnerLSN int64            `json:"winnerLsn"`
	Reason    string           `json:"reason"`
	Resolver  string           `json:"resolver"`
	Incoming  *e2eConflictSide `json:"incoming"`
	Existing  *e2eConflictSide `json:"existing"`
	Base      *e2eConflictSide `json:"base"`
}

type e2eConflictSide struct {
	Version  string          `json:"version"`
	Origin   string          `json:"origin"`
	Deleted  bool            `json:"deleted"`
	Document json.RawMessage `json:"document"`
}

func (s *e2eConflictSide) String() string {
	if s == nil {
		return "<nil>"
	}
	return fmt.Sprintf("{version %s origin %s deleted %v document %s}", s.Version, s.Origin, s.Deleted, s.Document)
}

func (s *e2eConflictSide) field(name string) any {
	if s == nil {
		return nil
	}
	var m map[string]any
	json.Unmarshal(s.Document, &m)
	return m[name]
}

func (n *e2eNode) conflicts(container, status string) []e2eConflict {
	n.t.Helper()
	page, err := n.api.Conflicts(context.Background(), container, client.ConflictsOptions{Status: status, Limit: 1000})
	if err != nil {
		n.t.Fatalf("%s: conflicts of %s: %v", n.name, container, err)
	}
	side := func(s *client.ConflictSide) *e2eConflictSide {
		if s == nil {
			return nil
		}
		return &e2eConflictSide{Version: s.Version, Origin: s.Origin, Deleted: s.Deleted, Document: s.Document}
	}
	out := make([]e2eConflict, 0, len(page.Conflicts))
	for _, c := range page.Conflicts {
		out = append(out, e2eConflict{ID: c.ID, Kind: c.Kind, Status: c.Status, DocID: c.DocID, Policy: c.Policy, Loser: c.Loser,
			WinnerLSN: c.WinnerLSN, Reason: c.Reason, Resolver: c.Resolver,
			Incoming: side(c.Incoming), Existing: side(c.Existing), Base: side(c.Base)})
	}
	return out
}

// e2eOwnWrites returns an edge's own writes from its feed (records of its
// origin other than outcomes; confirmed in place, they carry their LSN once
// the hub confirmed them), by id (the last one per id), and their number.
// A version recorded twice fails the test.
func e2eOwnWrites(t *testing.T, feed []e2eRecord, nodeID string) (map[string]e2eRecord, int) {
	t.Helper()
	byID := map[string]e2eRecord{}
	seen := map[string]int64{}
	n := 0
	for _, r := range feed {
		if r.Op == "outcome" || r.Origin != nodeID {
			continue
		}
		if seq, dup := seen[r.Version]; dup {
			t.Errorf("edge %s feed: own version %s at seq %d and %d, want it once", nodeID, r.Version, seq, r.Seq)
			continue
		}
		seen[r.Version] = r.Seq
		byID[r.ID] = r
		n++
	}
	return byID, n
}

// e2eOutcomes returns an edge's outcome records by version.
func e2eOutcomes(feed []e2eRecord) map[string][]e2eRecord {
	out := map[string][]e2eRecord{}
	for _, r := range feed {
		if r.Op == "outcome" {
			out[r.Version] = append(out[r.Version], r)
		}
	}
	return out
}

// e2eWaitFor polls f every 50ms until it returns nil, failing the test with
// f's last error after timeout.
func e2eWaitFor(t *testing.T, timeout time.Duration, what string, f func() error) {
	t.Helper()
	start := time.Now()
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Since(start) > timeout {
			t.Fatalf("%s: not within %v: %v", what, timeout, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// e2eCluster is a hub process and the edge processes syncing with it.
type e2eCluster struct {
	t       *testing.T
	edgeBin string
	hub     *e2eNode
}

// newE2ECluster starts a hub on a port of its choosing; later starts reuse the
// port, so that edges find it again.
func newE2ECluster(t *testing.T) *e2eCluster {
	t.Helper()
	return newE2EClusterDurability(t, "normal")
}

// newE2EClusterDurability is newE2ECluster with the hub's --durability.
func newE2EClusterDurability(t *testing.T, durability string) *e2eCluster {
	t.Helper()
	hubBin, edgeBin := e2eBinaries(t)
	// The compile timeout is long: the tests upload the Go examples, which
	// take seconds to compile, more under -race.
	h := newE2ENode(t, "hub", "cloudhub listening", hubBin, t.TempDir(), "--admin-token", e2eAdminToken, "--durability", durability,
		"--resolver-compile-timeout", "1h")
	h.auth = e2eAdminToken
	h.start()
	h.listen = h.addr
	return &e2eCluster{t: t, edgeBin: edgeBin, hub: h}
}

// registerEdge registers an edge (scope nil: everything) and returns its
// token.
func (c *e2eCluster) registerEdge(name string, scope []wire.ScopeEntry) string {
	c.t.Helper()
	var cs []client.ScopeEntry
	for _, e := range scope {
		cs = append(cs, client.ScopeEntry{Container: e.Container, PartitionKeys: e.PartitionKeys})
	}
	resp, err := c.hub.api.RegisterEdge(context.Background(), name, cs)
	if err != nil {
		c.t.Fatalf("register edge %s: %v", name, err)
	}
	if resp.Name != name || resp.Token == "" {
		c.t.Fatalf("POST /api/v1/edges %s: got name %q token %q, want the name and a token", name, resp.Name, resp.Token)
	}
	return resp.Token
}

// startEdge starts an edge process syncing with the hub.
func (c *e2eCluster) startEdge(name, token string) *e2eNode {
	c.t.Helper()
	e := newE2ENode(c.t, "edge "+name, "edgenode listening", c.edgeBin, c.t.TempDir(),
		"--hub", "http://"+c.hub.listen, "--token", token, "--durability", "normal")
	e.start()
	return e
}

// synced reports why the edges are not yet in sync with the hub: each must
// be connected, have nothing pending, and have applied the hub's head.
func (c *e2eCluster) synced(edges ...*e2eNode) error {
	hs, err := c.hub.hubStatus()
	if err != nil {
		return fmt.Errorf("hub: %v", err)
	}
	var errs []error
	for _, e := range edges {
		st, err := e.edgeStatus()
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("%s: %v", e.name, err))
		case !st.Connected || st.Pending != 0 || st.LastLSN != hs.LSN:
			errs = append(errs, fmt.Errorf("%s: connected=%v pending=%d lastLsn=%d headLsn=%d lastError=%q; hub lsn %d",
				e.name, st.Connected, st.Pending, st.LastLSN, st.HeadLSN, st.LastError, hs.LSN))
		}
	}
	return errors.Join(errs...)
}

func (c *e2eCluster) waitSynced(timeout time.Duration, edges ...*e2eNode) {
	c.t.Helper()
	e2eWaitFor(c.t, timeout, "edges in sync with the hub", func() error { return c.synced(edges...) })
}

// e2eWaitKnows waits until an edge has learnt a container's definition.
func e2eWaitKnows(t *testing.T, e *e2eNode, container string) {
	t.Helper()
	e2eWaitFor(t, 15*time.Second, e.name+" learns container "+container, func() error {
		_, err := e.api.Container(context.Background(), container)
		return err
	})
}

// e2eWaitDisconnected waits until every edge reports connected=false (after
// the hub went away).
func e2eWaitDisconnected(t *testing.T, edges ...*e2eNode) {
	t.Helper()
	for _, e := range edges {
		e2eWaitFor(t, 10*time.Second, e.name+" notices the hub is gone", func() error {
			st, err := e.edgeStatus()
			if err == nil && st.Connected {
				err = errors.New("still connected")
			}
			return err
		})
	}
}

func e2eWantTentative(t *testing.T, who string, d e2eDoc) {
	t.Helper()
	if d["_tentative"] != true {
		t.Errorf("%s: document %v: _tentative=%v, want true", who, d["id"], d["_tentative"])
	}
	if _, ok := d["_lsn"]; ok {
		t.Errorf("%s: tentative document %v has _lsn %v", who, d["id"], d["_lsn"])
	}
}

func e2eWantConfirmed(t *testing.T, who string, d e2eDoc) {
	t.Helper()
	if _, ok := d["_tentative"]; ok {
		t.Errorf("%s: document %v: _tentative=%v, want it absent (confirmed)", who, d["id"], d["_tentative"])
	}
	if lsn, _ := d["_lsn"].(float64); lsn <= 0 {
		t.Errorf("%s: document %v: _lsn=%v, want a positive LSN", who, d["id"], d["_lsn"])
	}
	if crts, _ := d["_crts"].(float64); crts <= 0 {
		t.Errorf("%s: document %v: _crts=%v, want a confirmation time", who, d["id"], d["_crts"])
	}
}

func e2eLSN(d e2eDoc) int64 {
	f, _ := d["_lsn"].(float64)
	return int64(f)
}

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

// e2ePriceDoc is prod-123 at a price.
func e2ePriceDoc(price float64) string {
	return fmt.Sprintf(`{"id":"prod-123","productId":"prod-123","name":"Super Widget","price":%v}`, price)
}

// heal starts the hub again. order "together" lets every edge reconnect on
// its own; otherwise the edges return one at a time in the order given: the
// others are stopped before the hub starts and each is started once the
// previous ones are in sync.
func (c *e2eCluster) heal(together bool, edges ...*e2eNode) {
	c.t.Helper()
	if together {
		c.hub.start()
		c.waitSynced(30*time.Second, edges...)
		return
	}
	for _, e := range edges[1:] {
		e.stop()
	}
	c.hub.start()
	for i, e := range edges {
		if i > 0 {
			e.start()
		}
		c.waitSynced(30*time.Second, edges[:i+1]...)
	}
	c.waitSynced(30*time.Second, edges...)
}

// TestE2E_ConcurrentPriceUpdate is the seed's scenario: with the hub gone,
// east sets prod-123's price to 24.99 and west to 21.99; lww on /price makes
// 24.99 win everywhere whichever write the hub sees first, and the 21.99
// version is the loser in the conflicts feed.
func TestE2E_ConcurrentPriceUpdate(t *testing.T) {
	for _, order := range []string{"together", "east first", "west first"} {
		t.Run(strings.ReplaceAll(order, " ", "_"), func(t *testing.T) { testConcurrentPriceUpdate(t, order) })
	}
}

func testConcurrentPriceUpdate(t *testing.T, order string) {
	c := newE2ECluster(t)
	c.hub.call(http.MethodPut, "/api/v1/containers/products",
		`{"partitionKey":"/productId","conflictPolicy":{"mode":"lww","path":"/price"}}`, http.StatusCreated, nil)
	var orig e2eDoc
	c.hub.call(http.MethodPost, "/api/v1/containers/products/docs", e2ePriceDoc(19.99), http.StatusCreated, &orig)
	east := c.startEdge("east", c.registerEdge("east", nil))
	west := c.startEdge("west", c.registerEdge("west", nil))
	north := c.startEdge("north", c.registerEdge("north", nil)) // only watches
	all := []*e2eNode{east, west, north}
	c.waitSynced(15*time.Second, all...)
	for _, e := range all {
		if status, d := e.getDoc("products", "prod-123", "?consistency=confirmed"); status != http.StatusOK || d["price"] != 19.99 {
			t.Fatalf("%s before the update: status %d %v, want price 19.99", e.name, status, d)
		}
	}

	c.hub.stop()
	e2eWaitDisconnected(t, all...)
	var ed, wd e2eDoc
	east.call(http.MethodPut, "/api/v1/containers/products/docs/prod-123", e2ePriceDoc(24.99), http.StatusOK, &ed)
	west.call(http.MethodPut, "/api/v1/containers/products/docs/prod-123", e2ePriceDoc(21.99), http.StatusOK, &wd)
	e2eWantTentative(t, "east PUT response", ed)
	e2eWantTentative(t, "west PUT response", wd)
	eastNode, westNode := east.mustEdgeStatus().NodeID, west.mustEdgeStatus().NodeID
	eastW, _ := e2eOwnWrites(t, east.changes("products"), eastNode)
	westW, _ := e2eOwnWrites(t, west.changes("products"), westNode)
	eastV, westV := eastW["prod-123"].Version, westW["prod-123"].Version
	if eastV == "" || westV == "" {
		t.Fatalf("no own write of prod-123 in the feeds: east %q, west %q", eastV, westV)
	}

	switch order {
	case "together":
		c.heal(true, all...)
	case "east first":
		c.heal(false, east, west, north)
	case "west first":
		c.heal(false, west, east, north)
	}

	_, hubDoc := c.hub.getDoc("products", "prod-123", "")
	if hubDoc["price"] != 24.99 {
		t.Fatalf("hub: price %v, want 24.99 (lww on /price)", hubDoc["price"])
	}
	if hubDoc["_etag"] != ed["_etag"] {
		t.Errorf("hub: _etag %v, want east's version's %v", hubDoc["_etag"], ed["_etag"])
	}
	winnerLSN := e2eLSN(hubDoc)
	for _, e := range all {
		for _, q := range []string{"", "?consistency=confirmed"} {
			status, d := e.getDoc("products", "prod-123", q)
			if status != http.StatusOK || !reflect.DeepEqual(d, hubDoc) {
				t.Errorf("%s: GET prod-123%s: status %d %v, want the hub's %v", e.name, q, status, d, hubDoc)
			}
		}
	}

	cs := c.hub.conflicts("products", "")
	if len(cs) != 1 {
		t.Fatalf("conflicts feed has %d records, want 1: %+v", len(cs), cs)
	}
	cf := cs[0]
	if cf.Kind != "replace" || cf.Status != "resolved" || cf.DocID != "prod-123" || cf.Policy != "lww" || cf.WinnerLSN != winnerLSN {
		t.Errorf("conflict: kind %s status %s docId %s policy %s winnerLsn %d; want replace resolved prod-123 lww %d",
			cf.Kind, cf.Status, cf.DocID, cf.Policy, cf.WinnerLSN, winnerLSN)
	}
	if got := c.hub.conflicts("products", "unresolved"); len(got) != 0 {
		t.Errorf("?status=unresolved: %d conflicts, want 0", len(got))
	}
	if got := c.hub.conflicts("products", "resolved"); len(got) != 1 {
		t.Errorf("?status=resolved: %d conflicts, want 1", len(got))
	}
	loser, winner := cf.Incoming, cf.Existing
	if cf.Loser == "existing" {
		loser, winner = cf.Existing, cf.Incoming
	} else if cf.Loser != "incoming" {
		t.Fatalf("conflict loser %q, want incoming or existing", cf.Loser)
	}
	if loser == nil || loser.Version != westV || loser.Origin != westNode || loser.field("price") != 21.99 {
		t.Errorf("conflict loser (%s) %s, want west's version %s with price 21.99", cf.Loser, loser, westV)
	}
	if winner == nil || winner.Version != eastV || winner.field("price") != 24.99 {
		t.Errorf("conflict winner %s, want east's version %s with price 24.99", winner, eastV)
	}
	if cf.Base == nil || cf.Base.field("price") != 19.99 || cf.Base.Version != strings.Trim(orig["_etag"].(string), `"`) {
		t.Errorf("conflict base %s, want the 19.99 version created at the hub", cf.Base)
	}

	// Every edge has the conflict in its own conflicts feed, as the hub
	// records it (streamed over sync; readable offline).
	for _, e := range all {
		e2eWaitFor(t, 10*time.Second, e.name+"'s conflicts feed", func() error {
			got := e.conflicts("products", "resolved")
			if len(got) != 1 {
				return fmt.Errorf("%d resolved conflicts, want 1", len(got))
			}
			g := got[0]
			if g.ID != cf.ID || g.DocID != cf.DocID || g.Loser != cf.Loser || g.WinnerLSN != cf.WinnerLSN ||
				g.Incoming == nil || g.Incoming.Version != cf.Incoming.Version || g.Existing == nil || g.Existing.Version != cf.Existing.Version {
				return fmt.Errorf("record %+v, want the hub's %+v", g, cf)
			}
			return nil
		})
	}

	// The hub's log holds east's version at the winning LSN, and west's
	// only if it was confirmed before east's arrived.
	logByVersion := map[string]e2eRecord{}
	for _, r := range c.hub.changes("products") {
		if _, dup := logByVersion[r.Version]; dup {
			t.Errorf("hub log has version %s twice", r.Version)
		}
		logByVersion[r.Version] = r
	}
	if r, ok := logByVersion[eastV]; !ok || r.LSN != winnerLSN {
		t.Errorf("hub log: east's version %s at %+v, want LSN %d", eastV, r, winnerLSN)
	}
	eastOut := e2eOutcomes(east.changes("products"))[eastV]
	if len(eastOut) != 1 || eastOut[0].Outcome != "confirmed" || eastOut[0].LSN != winnerLSN {
		t.Errorf("east's outcomes %+v, want one confirmed at LSN %d", eastOut, winnerLSN)
	}
	westOut := e2eOutcomes(west.changes("products"))[westV]
	if len(westOut) != 1 {
		t.Fatalf("west's outcomes for %s: %+v, want exactly one", westV, westOut)
	}
	wr, westLogged := logByVersion[westV]
	switch cf.Loser {
	case "incoming": // east's write was confirmed first; west's lost
		t.Logf("%s: west's write arrived second and lost", order)
		if westLogged {
			t.Errorf("hub log has west's losing version at LSN %d", wr.LSN)
		}
		if o := westOut[0]; o.Outcome != "lost" || o.LSN != winnerLSN {
			t.Errorf("west's outcome %s at LSN %d, want lost at the winner's LSN %d", o.Outcome, o.LSN, winnerLSN)
		}
	case "existing": // west's write was confirmed, then superseded by east's
		t.Logf("%s: west's write was confirmed, then superseded by east's", order)
		if !westLogged || wr.LSN >= winnerLSN {
			t.Errorf("hub log: west's version %s at %+v, want an LSN before %d", westV, wr, winnerLSN)
		}
		if o := westOut[0]; o.Outcome != "confirmed" || o.LSN != wr.LSN {
			t.Errorf("west's outcome %s at LSN %d, want confirmed at %d", o.Outcome, o.LSN, wr.LSN)
		}
	}
	switch {
	case order == "east first" && cf.Loser != "incoming":
		t.Errorf("east first: loser %s, want incoming (west's write arrived second)", cf.Loser)
	case order == "west first" && cf.Loser != "existing":
		t.Errorf("west first: loser %s, want existing (west's write was confirmed first)", cf.Loser)
	}
}

// TestE2E_DeleteVersusUpdate deletes an item on one edge and updates it on
// another while the hub is gone: after healing it is deleted everywhere,
// whichever arrives first, and the update is in the conflicts feed (kind
// delete).
func TestE2E_DeleteVersusUpdate(t *testing.T) {
	for _, order := range []string{"delete first", "update first"} {
		t.Run(strings.ReplaceAll(order, " ", "_"), func(t *testing.T) { testDeleteVersusUpdate(t, order) })
	}
}

func testDeleteVersusUpdate(t *testing.T, order string) {
	c := newE2ECluster(t)
	c.hub.call(http.MethodPut, "/api/v1/containers/items", `{"partitionKey":"/pk","conflictPolicy":{"mode":"lww"}}`, http.StatusCreated, nil)
	c.hub.call(http.MethodPost, "/api/v1/containers/items/docs", `{"id":"item-1","pk":"a","qty":1}`, http.StatusCreated, nil)
	c.hub.call(http.MethodPost, "/api/v1/containers/items/docs", `{"id":"item-2","pk":"a","qty":2}`, http.StatusCreated, nil)
	del := c.startEdge("deleter", c.registerEdge("deleter", nil))
	upd := c.startEdge("updater", c.registerEdge("updater", nil))
	c.waitSynced(15*time.Second, del, upd)

	c.hub.stop()
	e2eWaitDisconnected(t, del, upd)
	del.call(http.MethodDelete, "/api/v1/containers/items/docs/item-1", nil, http.StatusNoContent, nil)
	var ud e2eDoc
	upd.call(http.MethodPut, "/api/v1/containers/items/docs/item-1", `{"id":"item-1","pk":"a","qty":99}`, http.StatusOK, &ud)
	e2eWantTentative(t, "updater PUT response", ud)
	if status, _ := del.getDoc("items", "item-1", ""); status != http.StatusNotFound {
		t.Errorf("deleter: GET item-1 after its delete: status %d, want 404", status)
	}
	delNode, updNode := del.mustEdgeStatus().NodeID, upd.mustEdgeStatus().NodeID
	dw, _ := e2eOwnWrites(t, del.changes("items"), delNode)
	uw, _ := e2eOwnWrites(t, upd.changes("items"), updNode)
	delV, updV := dw["item-1"].Version, uw["item-1"].Version
	if dw["item-1"].Op != "delete" || updV == "" {
		t.Fatalf("own writes: deleter %+v, updater %+v; want a delete and a replace of item-1", dw["item-1"], uw["item-1"])
	}

	if order == "delete first" {
		c.heal(false, del, upd)
	} else {
		c.heal(false, upd, del)
	}

	for _, n := range []*e2eNode{c.hub, del, upd} {
		for _, q := range []string{"", "?consistency=confirmed"} {
			if n == c.hub && q != "" {
				continue
			}
			if status, d := n.getDoc("items", "item-1", q); status != http.StatusNotFound {
				t.Errorf("%s: GET item-1%s: status %d %v, want 404 (a delete wins)", n.name, q, status, d)
			}
		}
		if status, d := n.getDoc("items", "item-2", ""); status != http.StatusOK || d["qty"] != 2.0 {
			t.Errorf("%s: GET item-2 (untouched): status %d %v, want 200 qty 2", n.name, status, d)
		}
	}
	var deleteLSN int64
	for _, r := range c.hub.changes("items") {
		if r.Version == delV {
			if r.Op != "delete" || deleteLSN != 0 {
				t.Errorf("hub log: %+v for the delete (seen before: %v)", r, deleteLSN != 0)
			}
			deleteLSN = r.LSN
		}
	}
	if deleteLSN == 0 {
		t.Fatalf("hub log has no record of the delete %s", delV)
	}
	cs := c.hub.conflicts("items", "")
	if len(cs) != 1 {
		t.Fatalf("conflicts feed has %d records, want 1: %+v", len(cs), cs)
	}
	cf := cs[0]
	if cf.Kind != "delete" || cf.DocID != "item-1" || cf.Status != "resolved" || cf.Policy != "lww" || cf.WinnerLSN != deleteLSN {
		t.Errorf("conflict: kind %s docId %s status %s policy %s winnerLsn %d; want delete item-1 resolved lww %d",
			cf.Kind, cf.DocID, cf.Status, cf.Policy, cf.WinnerLSN, deleteLSN)
	}
	wantLoser := "incoming" // the update arrived after the delete
	if order == "update first" {
		wantLoser = "existing" // the update was confirmed, then deleted
	}
	loser, winner := cf.Incoming, cf.Existing
	if cf.Loser == "existing" {
		loser, winner = cf.Existing, cf.Incoming
	}
	if cf.Loser != wantLoser || loser == nil || loser.Version != updV || loser.Deleted || loser.field("qty") != 99.0 {
		t.Errorf("conflict loser %q %s, want %s: the update %s with qty 99", cf.Loser, loser, wantLoser, updV)
	}
	if winner == nil || winner.Version != delV || !winner.Deleted {
		t.Errorf("conflict winner %s, want the delete %s", winner, delV)
	}
	wantOutcome := "lost"
	if order == "update first" {
		wantOutcome = "confirmed"
	}
	if o := e2eOutcomes(upd.changes("items"))[updV]; len(o) != 1 || o[0].Outcome != wantOutcome {
		t.Errorf("updater's outcomes for %s: %+v, want one %s", updV, o, wantOutcome)
	}
	if o := e2eOutcomes(del.changes("items"))[delV]; len(o) != 1 || o[0].Outcome != "confirmed" || o[0].LSN != deleteLSN {
		t.Errorf("deleter's outcomes for %s: %+v, want one confirmed at LSN %d", delV, o, deleteLSN)
	}
}

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

// e2eDial dials the sync endpoint, with a bearer token unless token is "".
// The connection is closed when the test ends.
func e2eDial(t *testing.T, hubAddr, token string) (*websocket.Conn, *http.Response, error) {
	t.Helper()
	d := websocket.Dialer{HandshakeTimeout: 5 * time.Second, Subprotocols: []string{wire.Subprotocol}}
	hdr := http.Header{}
	if token != "" {
		hdr.Set("Authorization", "Bearer "+token)
	}
	conn, resp, err := d.Dial("ws://"+hubAddr+"/api/v1/sync", hdr)
	if conn != nil {
		t.Cleanup(func() { conn.Close() })
	}
	return conn, resp, err
}

func e2eReadFrame(conn *websocket.Conn) (map[string]any, error) {
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, b, err := conn.ReadMessage()
	if err != nil {
		return nil, err
	}
	var f map[string]any
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("frame %q: %v", b, err)
	}
	return f, nil
}

// e2eWaitClosed reads until the connection fails, which must happen within
// 10s, and returns the frames read before and the error that ended it.
func e2eWaitClosed(t *testing.T, conn *websocket.Conn, what string) ([]map[string]any, error) {
	t.Helper()
	var frames []map[string]any
	deadline := time.Now().Add(10 * time.Second)
	for {
		conn.SetReadDeadline(deadline)
		_, b, err := conn.ReadMessage()
		if err != nil {
			var ne interface{ Timeout() bool }
			if errors.As(err, &ne) && ne.Timeout() {
				t.Errorf("%s: the hub did not close the connection within 10s", what)
			}
			return frames, err
		}
		var f map[string]any
		json.Unmarshal(b, &f)
		frames = append(frames, f)
	}
}

// e2eWantClose checks that err is a close frame whose reason starts with
// code (PROTOCOL.md: "a close frame whose reason repeats the code").
func e2eWantClose(t *testing.T, err error, code, what string) {
	t.Helper()
	var ce *websocket.CloseError
	if !errors.As(err, &ce) || !strings.HasPrefix(ce.Text, code) {
		t.Errorf("%s: connection ended with %v, want a close frame with reason %q", what, err, code)
	}
}

// e2eErrorFrame returns the first error frame of frames, or nil.
func e2eErrorFrame(frames []map[string]any) map[string]any {
	for _, f := range frames {
		if f["type"] == "error" {
			return f
		}
	}
	return nil
}

// TestE2E_SyncProtocolHygiene speaks to the sync endpoint directly: no
// token is a 401, a wrong protocol version gets a protocol_mismatch error
// frame, and an oversized or garbage frame closes the connection, while the
// hub keeps serving a real edge.
func TestE2E_SyncProtocolHygiene(t *testing.T) {
	c := newE2ECluster(t)
	c.hub.call(http.MethodPut, "/api/v1/containers/notes", `{"partitionKey":"/pk"}`, http.StatusCreated, nil)
	c.hub.call(http.MethodPost, "/api/v1/containers/notes/docs", `{"id":"h1","pk":"a"}`, http.StatusCreated, nil)
	good := c.startEdge("good", c.registerEdge("good", nil))
	c.waitSynced(15*time.Second, good)
	rawTok := c.registerEdge("raw", nil)
	addr := c.hub.addr
	hello := func(protocol int) string {
		return fmt.Sprintf(`{"type":"hello","nodeId":"e0000000000000001","protocol":%d}`, protocol)
	}
	welcome := func(t *testing.T) *websocket.Conn {
		t.Helper()
		conn, _, err := e2eDial(t, addr, rawTok)
		if err != nil {
			t.Fatalf("dial with a valid token: %v", err)
		}
		if err := conn.WriteMessage(websocket.TextMessage, []byte(hello(wire.ProtocolVersion))); err != nil {
			t.Fatal(err)
		}
		f, err := e2eReadFrame(conn)
		if err != nil || f["type"] != "welcome" || f["edge"] != "raw" {
			t.Fatalf("answer to a good hello: %v %v, want a welcome for edge raw", f, err)
		}
		return conn
	}

	t.Run("no_token", func(t *testing.T) {
		for _, tok := range []string{"", "est_unknown", e2eAdminToken} {
			conn, resp, err := e2eDial(t, addr, tok)
			if err == nil {
				conn.Close()
				t.Errorf("token %q: the upgrade succeeded, want 401", tok)
				continue
			}
			if resp == nil || resp.StatusCode != http.StatusUnauthorized {
				t.Errorf("token %q: %v (response %v), want HTTP 401", tok, err, resp)
				continue
			}
			var e struct {
				Code string `json:"code"`
			}
			b, _ := io.ReadAll(resp.Body)
			if json.Unmarshal(b, &e) != nil || e.Code != "unauthorized" {
				t.Errorf("token %q: 401 body %q, want {\"code\":\"unauthorized\"}", tok, b)
			}
		}
	})

	t.Run("protocol_99", func(t *testing.T) {
		conn, _, err := e2eDial(t, addr, rawTok)
		if err != nil {
			t.Fatalf("dial with a valid token: %v", err)
		}
		if err := conn.WriteMessage(websocket.TextMessage, []byte(hello(99))); err != nil {
			t.Fatal(err)
		}
		f, err := e2eReadFrame(conn)
		if err != nil || f["type"] != "error" || f["code"] != "protocol_mismatch" {
			t.Fatalf("answer to a hello with protocol 99: %v %v, want {\"type\":\"error\",\"code\":\"protocol_mismatch\"}", f, err)
		}
		if msg, _ := f["message"].(string); !strings.Contains(msg, "99") {
			t.Errorf("protocol_mismatch message %q does not name the version 99", msg)
		}
		_, err = e2eWaitClosed(t, conn, "after protocol_mismatch")
		e2eWantClose(t, err, "protocol_mismatch", "after protocol_mismatch")
	})

	t.Run("garbage_hello", func(t *testing.T) {
		conn, _, err := e2eDial(t, addr, rawTok)
		if err != nil {
			t.Fatalf("dial: %v", err)
		}
		conn.WriteMessage(websocket.TextMessage, []byte(`{"type":"hello",`))
		f, err := e2eReadFrame(conn)
		if err != nil || f["type"] != "error" || f["code"] != "bad_frame" {
			t.Errorf("answer to a garbage hello: %v %v, want an error frame with code bad_frame", f, err)
		}
		_, err = e2eWaitClosed(t, conn, "after a garbage hello")
		e2eWantClose(t, err, "bad_frame", "after a garbage hello")
	})

	t.Run("garbage_after_welcome", func(t *testing.T) {
		conn := welcome(t)
		if err := conn.WriteMessage(websocket.TextMessage, []byte("this is {not json")); err != nil {
			t.Fatal(err)
		}
		frames, err := e2eWaitClosed(t, conn, "after a garbage frame")
		if f := e2eErrorFrame(frames); f == nil || f["code"] != "bad_frame" {
			t.Errorf("garbage frame after the welcome: error frame %v, want {\"type\":\"error\",\"code\":\"bad_frame\"} (PROTOCOL.md, Liveness and errors)", f)
		}
		e2eWantClose(t, err, "bad_frame", "after a garbage frame")
	})

	t.Run("push_idempotent", func(t *testing.T) {
		conn := welcome(t)
		push := func(batch int, versions ...string) []map[string]any {
			t.Helper()
			msg := fmt.Sprintf(`{"type":"push","batch":%d,"versions":[%s]}`, batch, strings.Join(versions, ","))
			if err := conn.WriteMessage(websocket.TextMessage, []byte(msg)); err != nil {
				t.Fatalf("push batch %d: %v", batch, err)
			}
			for {
				f, err := e2eReadFrame(conn)
				if err != nil {
					t.Fatalf("waiting for the outcomes of batch %d: %v", batch, err)
				}
				if f["type"] == "outcomes" && f["batch"] == float64(batch) {
					var outs []map[string]any
					for _, o := range f["outcomes"].([]any) {
						outs = append(outs, o.(map[string]any))
					}
					if len(outs) != len(versions) {
						t.Fatalf("batch %d: %d outcomes for %d versions: %v", batch, len(outs), len(versions), f)
					}
					return outs
				}
				if f["type"] == "error" {
					t.Fatalf("batch %d: error frame %v", batch, f)
				}
			}
		}
		v := func(version string, n int) string {
			return fmt.Sprintf(`{"container":"notes","id":"r1","op":"create","version":%q,"ts":1700000000,"body":{"id":"r1","pk":"raw","n":%d}}`, version, n)
		}
		first := push(1, v("e0000000000000001-1", 1))
		lsn, _ := first[0]["lsn"].(float64)
		if first[0]["outcome"] != "confirmed" || lsn <= 0 {
			t.Fatalf("first push: outcome %v, want confirmed with an LSN", first[0])
		}
		// The same version id again (a retry), even with other content, and
		// a version id of another node.
		again := push(2, v("e0000000000000001-1", 2), strings.Replace(v("e0000000000000007-7", 3), `"id":"r1"`, `"id":"r2"`, 2))
		if again[0]["outcome"] != "confirmed" || again[0]["lsn"] != first[0]["lsn"] {
			t.Errorf("pushed again: outcome %v, want the first answer %v", again[0], first[0])
		}
		if again[1]["outcome"] != "rejected" {
			t.Errorf("version id of another node: outcome %v, want rejected", again[1])
		}
		status, d := c.hub.getDoc("notes", "r1", "")
		if status != http.StatusOK || d["n"] != 1.0 || e2eLSN(d) != int64(lsn) {
			t.Errorf("hub: GET r1: status %d %v, want n 1 at LSN %v", status, d, lsn)
		}
		if status, _ := c.hub.getDoc("notes", "r2", ""); status != http.StatusNotFound {
			t.Errorf("hub: GET r2 (rejected): status %d, want 404", status)
		}
		count := 0
		for _, r := range c.hub.changes("notes") {
			if r.Version == "e0000000000000001-1" {
				count++
			}
		}
		if count != 1 {
			t.Errorf("hub log has e0000000000000001-1 %d times, want once", count)
		}
	})

	t.Run("oversized_frame", func(t *testing.T) {
		conn := welcome(t)
		big := make([]byte, wire.MaxFrameBytes+1024)
		copy(big, `{"type":"ack","lsn":1,"x":"`)
		for i := 30; i < len(big); i++ {
			big[i] = 'a'
		}
		conn.SetWriteDeadline(time.Now().Add(20 * time.Second))
		werr := conn.WriteMessage(websocket.TextMessage, big)
		_, err := e2eWaitClosed(t, conn, "after a frame over the size limit")
		var ce *websocket.CloseError
		if errors.As(err, &ce) && ce.Code != websocket.CloseMessageTooBig {
			t.Errorf("close code %d, want %d (message too big)", ce.Code, websocket.CloseMessageTooBig)
		}
		t.Logf("write: %v; connection ended: %v", werr, err)
	})

	// The hub still serves: healthz, the real edge's session, its writes.
	c.hub.call(http.MethodGet, "/healthz", nil, http.StatusOK, nil)
	if st := good.mustEdgeStatus(); !st.Connected {
		t.Errorf("good edge: connected=false lastError=%q after the raw clients", st.LastError)
	}
	good.call(http.MethodPost, "/api/v1/containers/notes/docs", `{"id":"g1","pk":"a"}`, http.StatusCreated, nil)
	c.waitSynced(15*time.Second, good)
	if status, d := c.hub.getDoc("notes", "g1", ""); status != http.StatusOK {
		t.Errorf("hub: GET g1 written by the good edge: status %d %v", status, d)
	}
	e2eWaitFor(t, 5*time.Second, "the raw clients' sessions end at the hub", func() error {
		hs, err := c.hub.hubStatus()
		if err == nil && hs.EdgesOnline != 1 {
			err = fmt.Errorf("edgesOnline=%d, want 1 (the good edge)", hs.EdgesOnline)
		}
		return err
	})
}
