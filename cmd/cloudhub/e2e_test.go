package main

// End-to-end tests: the real cloudhub and edgenode binaries run as child
// processes on loopback, each with its own data directory. The hub is
// stopped with SIGTERM and started again on the same data directory and
// port; edges reconnect on their own. Edges are killed with SIGKILL in the
// middle of a sync. The tests check what the contract (docs/architecture.md,
// docs/api.md) promises at the end: every replica equal to the hub, every write
// confirmed exactly once or in the conflicts feed, scope and token rules.
//
// This file holds what the scenarios share (a cluster of a hub and edges,
// requests, feeds, waits); the scenarios are in e2e_*_test.go by topic.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/edgesync/edgesync/client"
	"github.com/edgesync/edgesync/internal/proctest"
	"github.com/edgesync/edgesync/replica/hub/pghub/pgtest"
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
	flags := []string{"--admin-token", e2eAdminToken, "--durability", durability, "--resolver-compile-timeout", "1h"}
	if os.Getenv("EDGESYNC_TEST_HUB_STORE") == "postgres" {
		flags = append(flags, "--postgres", pgtest.Database(t))
	}
	h := newE2ENode(t, "hub", "cloudhub listening", hubBin, t.TempDir(), flags...)
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
