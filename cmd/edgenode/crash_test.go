package main

// Tests that run the real edgenode binary as a child process: kill -9 in the
// middle of a write storm and check that every acknowledged write survived,
// graceful shutdown on SIGTERM, and the data directory lock.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/edgesync/edgesync/internal/proctest"
)

func TestMain(m *testing.M) { os.Exit(proctest.Main(m)) }

// edgenodeBinary builds ./cmd/edgenode with the go tool from the environment
// once per test run and returns the binary's path. It skips the test when
// there is no go tool.
func edgenodeBinary(t *testing.T) string {
	t.Helper()
	return proctest.Build(t, proctest.Edgenode)[0]
}

// edgeProc is a running edgenode child process.
type edgeProc struct {
	t      *testing.T
	proc   *proctest.Process
	cmd    *exec.Cmd
	log    *proctest.Log
	addr   string
	base   string // http://addr
	client *http.Client
	exited chan struct{} // closed once cmd.Wait returned
}

// startEdgenode starts `edgenode serve` on a port of its choosing on
// loopback, reads the address from its log, and waits until /healthz
// answers.
func startEdgenode(t *testing.T, bin, dataDir string, args ...string) *edgeProc {
	t.Helper()
	proc, err := proctest.Start(bin, append([]string{"serve", "--listen", "127.0.0.1:0", "--data", dataDir}, args...), "edgenode listening", 15*time.Second)
	if proc == nil {
		t.Fatalf("start edgenode: %v", err)
	}
	p := &edgeProc{t: t, proc: proc, cmd: proc.Cmd, log: proc.Log, exited: proc.Exited}
	t.Cleanup(func() {
		proc.Kill()
		if p.client != nil {
			p.client.CloseIdleConnections()
		}
	})
	if err != nil {
		t.Fatalf("edgenode: %v", err)
	}
	p.addr = proc.Addr
	p.base = "http://" + p.addr
	p.client = proctest.NewHTTPClient(10*time.Second, 64)
	if err := proctest.WaitHealthy(p.client, p.base, 5*time.Second); err != nil {
		t.Fatalf("%v\nlog:\n%s", err, p.log)
	}
	return p
}

// kill9 sends SIGKILL and waits for the process to be gone. It fails the
// test if the process had already ended by itself.
func (p *edgeProc) kill9() {
	p.t.Helper()
	if err := p.proc.Kill9(10 * time.Second); err != nil {
		p.t.Fatalf("edgenode: %v", err)
	}
	p.client.CloseIdleConnections()
}

// terminate sends SIGTERM and returns the exit code, failing the test if the
// process takes more than 10s to exit.
func (p *edgeProc) terminate() int {
	p.t.Helper()
	if err := p.proc.Terminate(10 * time.Second); err != nil {
		p.t.Fatalf("edgenode: %v", err)
	}
	p.client.CloseIdleConnections()
	return p.cmd.ProcessState.ExitCode()
}

// do sends one request and reads the whole response.
func (p *edgeProc) do(method, path string, body []byte) (int, http.Header, []byte, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, p.base+path, rd)
	if err != nil {
		return 0, nil, nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := p.client.Do(req)
	if err != nil {
		return 0, nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return resp.StatusCode, resp.Header, b, fmt.Errorf("read response: %w", err)
	}
	return resp.StatusCode, resp.Header, b, nil
}

// mustDo is do for setup requests: any error or another status fails the test.
func (p *edgeProc) mustDo(method, path string, body []byte, wantStatus int) []byte {
	p.t.Helper()
	status, _, b, err := p.do(method, path, body)
	if err != nil {
		p.t.Fatalf("%s %s: %v", method, path, err)
	}
	if status != wantStatus {
		p.t.Fatalf("%s %s: status %d, want %d: %s", method, path, status, wantStatus, b)
	}
	return b
}

// systemProps are the properties the node adds to documents (docs/architecture.md, Items).
var systemProps = []string{"_ts", "_etag", "_lsn", "_crts", "_tentative"}

// userContent decodes a document and removes the system properties; it
// returns the removed _etag too.
func userContent(b []byte) (map[string]any, string, error) {
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, "", fmt.Errorf("decode document %q: %w", b, err)
	}
	etag, _ := m["_etag"].(string)
	for _, k := range systemProps {
		delete(m, k)
	}
	return m, etag, nil
}

func compact(m map[string]any) string {
	b, _ := json.Marshal(m)
	if len(b) > 300 {
		return string(b[:300]) + "...(" + strconv.Itoa(len(b)) + " bytes)"
	}
	return string(b)
}

// The crash test's reference model. Every document id is owned by one writer
// goroutine, so the writes to one id have a well-defined order: the order of
// the owner's requests. A writer has at most one request outstanding, and
// stops at its first failed request, so each id has at most one write whose
// fate is unknown when the process is killed.

type attemptState int

const (
	acked    attemptState = iota // the response was fully received with the expected status
	inFlight                     // sent, no complete response: may or may not have landed
	landed                       // was in flight; found applied after the restart
	lost                         // was in flight; found not applied after the restart
)

// attempt is one write to one id.
type attempt struct {
	cycle      int
	method     string // POST, PUT or DELETE
	wantStatus int
	wantOp     string         // the change feed's op: create, replace or delete
	rev        string         // unique per attempt; "" for a delete
	body       []byte         // the JSON sent; nil for a delete
	content    map[string]any // body decoded
	etag       string         // the version's _etag, once known
	state      attemptState
}

func (a *attempt) String() string {
	if a == nil {
		return "nothing"
	}
	var state string
	switch a.state {
	case acked:
		state = "acknowledged"
	case inFlight:
		state = "in flight at the kill"
	case landed:
		state = "in flight at the kill, found applied"
	case lost:
		state = "in flight at the kill, found not applied"
	}
	if a.method == http.MethodDelete {
		return fmt.Sprintf("DELETE in cycle %d (%s)", a.cycle, state)
	}
	return fmt.Sprintf("%s rev %s etag %s in cycle %d (%s) %s", a.method, a.rev, a.etag, a.cycle, state, compact(a.content))
}

// docModel is the reference state of one id.
type docModel struct {
	id       string
	attempts []*attempt // every write sent, in order
	cur      *attempt   // the last acknowledged (or found landed) write; nil if never written
	inflight *attempt   // the write outstanding at the kill, if any
}

func (d *docModel) live() bool { return d.cur != nil && d.cur.method != http.MethodDelete }

// describe says what the model expects of d, for failure messages.
func (d *docModel) describe() string {
	s := "last applied: " + d.cur.String()
	if d.inflight != nil {
		s += "; " + d.inflight.String()
	}
	return s
}

// writer owns docs and writes to them one request at a time.
type writer struct {
	name string
	pk   string
	rng  *rand.Rand
	n    int
	docs []*docModel
}

const crashContainer = "crash"

// next picks an id and a write for it: a create (POST or PUT) for an id that
// is not live, a replace (PUT) or a delete for one that is.
func (w *writer) next(cycle int) (*docModel, *attempt) {
	d := w.docs[w.rng.IntN(len(w.docs))]
	w.n++
	a := &attempt{cycle: cycle}
	switch {
	case !d.live() && w.rng.IntN(2) == 0:
		a.method, a.wantStatus, a.wantOp = http.MethodPost, http.StatusCreated, "create"
	case !d.live():
		a.method, a.wantStatus, a.wantOp = http.MethodPut, http.StatusCreated, "create"
	case w.rng.IntN(100) < 25:
		a.method, a.wantStatus, a.wantOp = http.MethodDelete, http.StatusNoContent, "delete"
		return d, a
	default:
		a.method, a.wantStatus, a.wantOp = http.MethodPut, http.StatusOK, "replace"
	}
	a.rev = fmt.Sprintf("c%d-%s-%06d", cycle, w.name, w.n)
	size := 16 + w.rng.IntN(64)
	if w.rng.IntN(10) == 0 {
		size = 1000 + w.rng.IntN(3000)
	}
	a.content = map[string]any{
		"id":      d.id,
		"pk":      w.pk,
		"rev":     a.rev,
		"n":       float64(w.n),
		"payload": strings.Repeat(string(rune('a'+w.rng.IntN(26))), size),
		"nested":  map[string]any{"cycle": float64(cycle), "tags": []any{w.name, a.rev}},
	}
	var err error
	if a.body, err = json.Marshal(a.content); err != nil {
		panic(err)
	}
	return d, a
}

// run writes until a request fails (which, after the kill, they all do).
// Unexpected statuses and responses are reported through t.Errorf.
func (w *writer) run(t *testing.T, p *edgeProc, cycle int, ackCount *atomic.Int64, killed *atomic.Bool) {
	docsPath := "/api/v1/containers/" + crashContainer + "/docs"
	for {
		d, a := w.next(cycle)
		d.attempts = append(d.attempts, a)
		path := docsPath + "/" + d.id
		if a.method == http.MethodPost {
			path = docsPath
		}
		status, hdr, body, err := p.do(a.method, path, a.body)
		if err != nil {
			a.state, d.inflight = inFlight, a
			if !killed.Load() {
				t.Errorf("writer %s: %s %s failed before the kill: %v", w.name, a.method, d.id, err)
			}
			return
		}
		if status != a.wantStatus {
			// A completed error response: the write should not have
			// happened, but treat it as unknown and report it.
			a.state, d.inflight = inFlight, a
			t.Errorf("writer %s: id %s: %s: status %d, want %d (model: %s): %s", w.name, d.id, a.method, status, a.wantStatus, d.describe(), body)
			return
		}
		if a.method != http.MethodDelete {
			got, etag, err := userContent(body)
			if err != nil {
				t.Errorf("writer %s: id %s: %s response: %v", w.name, d.id, a.method, err)
			} else if !reflect.DeepEqual(got, a.content) {
				t.Errorf("writer %s: id %s: %s response content\n got  %s\n want %s", w.name, d.id, a.method, compact(got), compact(a.content))
			}
			if h := hdr.Get("ETag"); etag == "" || h != etag {
				t.Errorf("writer %s: id %s: %s: ETag header %s, body _etag %s: want equal and not empty", w.name, d.id, a.method, h, etag)
			}
			a.etag = etag
		}
		a.state, d.cur = acked, a
		ackCount.Add(1)
	}
}

// getDoc reads one document: live reports a 200, content and etag its body.
func getDoc(p *edgeProc, id string) (live bool, content map[string]any, etag string, err error) {
	status, hdr, body, err := p.do(http.MethodGet, "/api/v1/containers/"+crashContainer+"/docs/"+id, nil)
	switch {
	case err != nil:
		return false, nil, "", err
	case status == http.StatusNotFound:
		return false, nil, "", nil
	case status != http.StatusOK:
		return false, nil, "", fmt.Errorf("GET status %d: %s", status, body)
	}
	content, etag, err = userContent(body)
	if err == nil && hdr.Get("ETag") != etag {
		err = fmt.Errorf("ETag header %s differs from _etag %s", hdr.Get("ETag"), etag)
	}
	return true, content, etag, err
}

// matches reports whether a read of an item (live, content) shows the state
// that attempt a leaves (a nil a: never written).
func matches(a *attempt, live bool, content map[string]any) bool {
	if a == nil || a.method == http.MethodDelete {
		return !live
	}
	return live && reflect.DeepEqual(content, a.content)
}

const maxReported = 20

// verifyDocs reads every id after a restart. Each must show its last
// acknowledged state or, if a write to it was in flight at the kill, that
// write's result; the model then records which it was.
func verifyDocs(t *testing.T, p *edgeProc, docs []*docModel) (landedN, lostN int) {
	t.Helper()
	// Read in parallel, judge in order.
	type read struct {
		live    bool
		content map[string]any
		etag    string
		err     error
	}
	reads := make([]read, len(docs))
	var next atomic.Int64
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for i := int(next.Add(1) - 1); i < len(docs); i = int(next.Add(1) - 1) {
				r := &reads[i]
				r.live, r.content, r.etag, r.err = getDoc(p, docs[i].id)
			}
		})
	}
	wg.Wait()
	bad := 0
	for i, d := range docs {
		live, content, etag, err := reads[i].live, reads[i].content, reads[i].etag, reads[i].err
		found := "404"
		if live {
			found = "200 " + compact(content)
		}
		switch {
		case err != nil:
			bad++
			if bad <= maxReported {
				t.Errorf("id %s: read after restart: %v (model: %s)", d.id, err, d.describe())
			}
		case matches(d.cur, live, content):
			if live && d.cur.etag != etag {
				bad++
				if bad <= maxReported {
					t.Errorf("id %s: content intact but _etag %s, want %s (%s)", d.id, etag, d.cur.etag, d.describe())
				}
			}
			if d.inflight != nil {
				d.inflight.state = lost
				lostN++
			}
		case d.inflight != nil && matches(d.inflight, live, content):
			d.inflight.state, d.inflight.etag, d.cur = landed, etag, d.inflight
			landedN++
		default:
			bad++
			if bad <= maxReported {
				t.Errorf("id %s: after restart found %s\n  want %s", d.id, found, d.describe())
			}
		}
		d.inflight = nil
	}
	if bad > 0 {
		t.Fatalf("%d of %d ids lost their acknowledged state (first %d shown)\nlog of the restarted node:\n%s", bad, len(docs), min(bad, maxReported), p.log)
	}
	return landedN, lostN
}

type changeRecord struct {
	Seq       int64           `json:"seq"`
	Op        string          `json:"op"`
	ID        string          `json:"id"`
	PK        string          `json:"pk"`
	Document  json.RawMessage `json:"document"`
	Origin    string          `json:"origin"`
	Version   string          `json:"version"`
	Tentative bool            `json:"tentative"`
}

// readFeed reads the container's whole change feed, a page at a time, and
// checks that positions strictly increase and continuations follow them.
func readFeed(t *testing.T, p *edgeProc, container string) []changeRecord {
	t.Helper()
	var all []changeRecord
	since := int64(0)
	for {
		body := p.mustDo(http.MethodGet, fmt.Sprintf("/api/v1/containers/%s/changes?since=%d&limit=1000", container, since), nil, http.StatusOK)
		var page struct {
			Changes      []changeRecord `json:"changes"`
			Continuation string         `json:"continuation"`
		}
		if err := json.Unmarshal(body, &page); err != nil {
			t.Fatalf("decode changes page since=%d: %v", since, err)
		}
		next := since
		for _, ch := range page.Changes {
			if ch.Seq <= next {
				t.Fatalf("change feed: seq %d (id %s) after %d: want strictly increasing", ch.Seq, ch.ID, next)
			}
			next = ch.Seq
		}
		if got, want := page.Continuation, strconv.FormatInt(next, 10); got != want {
			t.Fatalf("changes?since=%d: continuation %q, want %q (the last seq of the page)", since, got, want)
		}
		all = append(all, page.Changes...)
		if len(page.Changes) == 0 {
			return all
		}
		since = next
	}
}

// verifyFeed checks the change feed against the model: every acknowledged
// write (and every in-flight write found applied) appears, in order per id,
// with its op, content and etag, and nothing else does.
func verifyFeed(t *testing.T, p *edgeProc, docs []*docModel) int {
	t.Helper()
	feed := readFeed(t, p, crashContainer)
	byID := map[string][]changeRecord{}
	for _, ch := range feed {
		byID[ch.ID] = append(byID[ch.ID], ch)
	}
	ackedN, appliedN, bad := 0, 0, 0
	report := func(format string, args ...any) {
		bad++
		if bad <= maxReported {
			t.Errorf(format, args...)
		}
	}
	for _, d := range docs {
		var want []*attempt
		for _, a := range d.attempts {
			switch a.state {
			case acked:
				ackedN++
				want = append(want, a)
			case landed:
				want = append(want, a)
			}
		}
		appliedN += len(want)
		got := byID[d.id]
		delete(byID, d.id)
		if len(got) != len(want) {
			report("id %s: change feed has %d records, want %d (the writes acknowledged or found applied)\n  got  %s\n  want %s",
				d.id, len(got), len(want), feedSummary(got), attemptsSummary(want))
			continue
		}
		for i, ch := range got {
			a := want[i]
			if ch.Op != a.wantOp {
				report("id %s: change seq %d: op %s, want %s for %s", d.id, ch.Seq, ch.Op, a.wantOp, a)
				continue
			}
			if a.method == http.MethodDelete {
				if len(ch.Document) > 0 {
					report("id %s: delete change seq %d carries a document %s", d.id, ch.Seq, ch.Document)
				}
				continue
			}
			content, etag, err := userContent(ch.Document)
			switch {
			case err != nil:
				report("id %s: change seq %d: %v", d.id, ch.Seq, err)
			case !reflect.DeepEqual(content, a.content):
				report("id %s: change seq %d: document %s, want %s", d.id, ch.Seq, compact(content), a)
			case etag != a.etag:
				report("id %s: change seq %d: _etag %s, want %s", d.id, ch.Seq, etag, a)
			}
		}
	}
	for id, chs := range byID {
		report("change feed has %d records for id %s, which was never written", len(chs), id)
	}
	if len(feed) < ackedN {
		report("change feed has %d records, fewer than the %d acknowledged writes", len(feed), ackedN)
	}
	if bad > 0 {
		t.Fatalf("change feed: %d problems (first %d shown); %d records, %d acknowledged writes, %d applied", bad, min(bad, maxReported), len(feed), ackedN, appliedN)
	}
	// The status agrees with the feed: no hub, so every change is pending.
	var st struct {
		NodeID  string `json:"nodeId"`
		Pending int64  `json:"pending"`
		LastSeq int64  `json:"lastSeq"`
	}
	if err := json.Unmarshal(p.mustDo(http.MethodGet, "/api/v1/status", nil, http.StatusOK), &st); err != nil {
		t.Fatalf("decode status: %v", err)
	}
	if len(feed) > 0 {
		if got, want := st.LastSeq, feed[len(feed)-1].Seq; got != want {
			t.Errorf("status lastSeq=%d, want %d (the feed's last seq)", got, want)
		}
	}
	if got, want := st.Pending, int64(len(feed)); got != want {
		t.Errorf("status pending=%d, want %d (every change is tentative without a hub)", got, want)
	}
	return len(feed)
}

// feedSummary and attemptsSummary list writes as op:rev for failure messages.
func feedSummary(chs []changeRecord) string {
	var b strings.Builder
	for _, ch := range chs {
		rev := ""
		if m, _, err := userContent(ch.Document); err == nil && len(ch.Document) > 0 {
			rev, _ = m["rev"].(string)
		}
		fmt.Fprintf(&b, "[seq %d %s %s] ", ch.Seq, ch.Op, rev)
	}
	return b.String()
}

func attemptsSummary(as []*attempt) string {
	var b strings.Builder
	for _, a := range as {
		fmt.Fprintf(&b, "[%s %s] ", a.wantOp, a.rev)
	}
	return b.String()
}

func nodeID(t *testing.T, p *edgeProc) string {
	t.Helper()
	var st struct {
		NodeID string `json:"nodeId"`
	}
	if err := json.Unmarshal(p.mustDo(http.MethodGet, "/api/v1/status", nil, http.StatusOK), &st); err != nil {
		t.Fatalf("decode status: %v", err)
	}
	return st.NodeID
}

// TestEdgenode_KillDashNine runs 16 concurrent writers (creates, replaces,
// deletes) against a real edgenode, kills it with SIGKILL mid-stream,
// restarts it on the same data directory and checks that every acknowledged
// write survived, in the documents and in the change feed. Three cycles on
// one data directory, for each durability.
func TestEdgenode_KillDashNine(t *testing.T) {
	if testing.Short() {
		t.Skip("kills real processes; skipped in -short mode")
	}
	bin := edgenodeBinary(t)
	for _, durability := range []string{"full", "normal"} {
		t.Run("durability="+durability, func(t *testing.T) {
			testKillDashNine(t, bin, durability)
		})
	}
}

func testKillDashNine(t *testing.T, bin, durability string) {
	const (
		cycles        = 3
		writers       = 16
		docsPerWriter = 48
		minAcked      = 2000             // kill once at least this many writes are acknowledged...
		extraAcked    = 1000             // ...plus a random number below this
		cycleBudget   = 5 * time.Second  // ...or after this long, whichever is first,
		writeBudget   = 15 * time.Second // ...and within this much from the start of the subtest
		minUseful     = 200              // fewer acknowledged writes in a cycle is a failure
		stallLimit    = 2 * time.Second  // so is a pause this long without an acknowledgement
	)
	start := time.Now()
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 1))
	dir := t.TempDir()

	ws := make([]*writer, writers)
	var docs []*docModel
	for i := range ws {
		w := &writer{name: fmt.Sprintf("w%02d", i), pk: fmt.Sprintf("pk%02d", i%5), rng: rand.New(rand.NewPCG(seed, uint64(i)+2))}
		for k := range docsPerWriter {
			d := &docModel{id: fmt.Sprintf("%s-d%02d", w.name, k)}
			w.docs = append(w.docs, d)
			docs = append(docs, d)
		}
		ws[i] = w
	}

	var node string
	for cycle := 1; cycle <= cycles; cycle++ {
		p := startEdgenode(t, bin, dir, "--durability", durability)
		if cycle == 1 {
			node = nodeID(t, p)
			p.mustDo(http.MethodPut, "/api/v1/containers/"+crashContainer, []byte(`{"partitionKey":"/pk"}`), http.StatusCreated)
		} else {
			if got := nodeID(t, p); got != node {
				t.Errorf("cycle %d: node id %s after restart, want %s (kept in the data dir)", cycle, got, node)
			}
			// The container survived: defining it again is an update (200).
			p.mustDo(http.MethodPut, "/api/v1/containers/"+crashContainer, []byte(`{"partitionKey":"/pk"}`), http.StatusOK)
			landedN, lostN := verifyDocs(t, p, docs)
			records := verifyFeed(t, p, docs)
			t.Logf("cycle %d: after restart: %d in-flight writes found applied, %d not; feed holds %d records", cycle-1, landedN, lostN, records)
		}

		var ackCount atomic.Int64
		var killed atomic.Bool
		var wg sync.WaitGroup
		for _, w := range ws {
			wg.Go(func() { w.run(t, p, cycle, &ackCount, &killed) })
		}
		writersDone := make(chan struct{})
		go func() { wg.Wait(); close(writersDone) }()

		target := int64(minAcked + rng.IntN(extraAcked))
		cycleStart := time.Now()
		// Share what is left of the budget among the cycles left, so that a
		// slow machine shortens the write phases instead of the test
		// running long.
		deadline := cycleStart.Add(min(cycleBudget, time.Until(start.Add(writeBudget))/time.Duration(cycles-cycle+1)))
		lastCount, lastProgress := int64(0), time.Now()
	wait:
		// A cycle whose share of the budget ran out early (a loaded
		// machine) still goes on to twice minUseful acknowledgements, within
		// cycleBudget, so that every cycle kills a node under load.
		for n := ackCount.Load(); n < target && (time.Now().Before(deadline) || n < 2*minUseful && time.Since(cycleStart) < cycleBudget); n = ackCount.Load() {
			select {
			case <-writersDone:
				break wait // every writer failed: the errors say why
			case <-time.After(time.Millisecond):
			}
			if n := ackCount.Load(); n != lastCount {
				lastCount, lastProgress = n, time.Now()
			} else if time.Since(lastProgress) > stallLimit {
				t.Errorf("cycle %d: writes stalled: no acknowledgement for %v after %d (the node hangs?)", cycle, stallLimit, n)
				break
			}
		}
		killed.Store(true)
		atKill := ackCount.Load()
		p.kill9()
		select {
		case <-writersDone:
		case <-time.After(15 * time.Second):
			t.Fatalf("cycle %d: writers still running 15s after the kill", cycle)
		}
		elapsed := time.Since(cycleStart)
		inflight := 0
		for _, d := range docs {
			if d.inflight != nil {
				inflight++
			}
		}
		t.Logf("cycle %d: killed after %d acknowledged writes (target %d) in %v (%.0f/s); %d acknowledged in all, %d in flight",
			cycle, atKill, target, elapsed.Round(time.Millisecond), float64(atKill)/elapsed.Seconds(), ackCount.Load(), inflight)
		if t.Failed() {
			t.FailNow()
		}
		if atKill < minUseful {
			t.Fatalf("cycle %d: only %d writes acknowledged in %v: too few for the test to mean anything", cycle, atKill, cycleBudget)
		}
	}

	// Restart once more: the last cycle's writes survived too.
	p := startEdgenode(t, bin, dir, "--durability", durability)
	landedN, lostN := verifyDocs(t, p, docs)
	records := verifyFeed(t, p, docs)
	t.Logf("cycle %d: after restart: %d in-flight writes found applied, %d not; feed holds %d records", cycles, landedN, lostN, records)
	if code := p.terminate(); code != 0 {
		t.Errorf("exit code %d after SIGTERM, want 0\nlog:\n%s", code, p.log)
	}
	t.Logf("%d cycles in %v", cycles, time.Since(start).Round(time.Millisecond))
}

// TestEdgenode_GracefulShutdown stops edgenode with SIGTERM while a change
// stream is open: it exits 0 within 10s and the documents are there after a
// restart.
func TestEdgenode_GracefulShutdown(t *testing.T) {
	if testing.Short() {
		t.Skip("runs real processes; skipped in -short mode")
	}
	bin := edgenodeBinary(t)
	dir := t.TempDir()
	p := startEdgenode(t, bin, dir)
	p.mustDo(http.MethodPut, "/api/v1/containers/orders", []byte(`{"partitionKey":"/pk"}`), http.StatusCreated)
	want := map[string]map[string]any{}
	for i := range 5 {
		id := fmt.Sprintf("o%d", i)
		doc := map[string]any{"id": id, "pk": "t1", "qty": float64(i), "items": []any{"book", "phone"}}
		b, _ := json.Marshal(doc)
		p.mustDo(http.MethodPost, "/api/v1/containers/orders/docs", b, http.StatusCreated)
		want[id] = doc
	}
	replaced := map[string]any{"id": "o1", "pk": "t1", "qty": float64(42)}
	b, _ := json.Marshal(replaced)
	p.mustDo(http.MethodPut, "/api/v1/containers/orders/docs/o1", b, http.StatusOK)
	want["o1"] = replaced
	p.mustDo(http.MethodDelete, "/api/v1/containers/orders/docs/o4", nil, http.StatusNoContent)
	delete(want, "o4")

	// A streaming change feed holds its connection open: shutdown must end it.
	resp, err := p.client.Get(p.base + "/api/v1/containers/orders/changes?stream=true")
	if err != nil {
		t.Fatalf("open change stream: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("change stream: status %d", resp.StatusCode)
	}
	streamEnded := make(chan error, 1)
	go func() {
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
		}
		streamEnded <- sc.Err()
	}()

	start := time.Now()
	if code := p.terminate(); code != 0 {
		t.Fatalf("exit code %d after SIGTERM, want 0\nlog:\n%s", code, p.log)
	}
	t.Logf("exited %v after SIGTERM", time.Since(start).Round(time.Millisecond))
	select {
	case <-streamEnded:
	case <-time.After(5 * time.Second):
		t.Errorf("change stream still open 5s after the process exited")
	}
	if log := p.log.String(); !strings.Contains(log, "shutting down") {
		t.Errorf("log has no \"shutting down\" line:\n%s", log)
	}

	p = startEdgenode(t, bin, dir)
	for _, id := range []string{"o0", "o1", "o2", "o3", "o4"} {
		status, _, body, err := p.do(http.MethodGet, "/api/v1/containers/orders/docs/"+id, nil)
		if err != nil {
			t.Fatalf("GET %s: %v", id, err)
		}
		w, live := want[id]
		if !live {
			if status != http.StatusNotFound {
				t.Errorf("GET %s (deleted) after restart: status %d, want 404: %s", id, status, body)
			}
			continue
		}
		if status != http.StatusOK {
			t.Errorf("GET %s after restart: status %d, want 200: %s", id, status, body)
			continue
		}
		got, _, err := userContent(body)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, w) {
			t.Errorf("GET %s after restart = %s, want %s", id, compact(got), compact(w))
		}
	}
	if code := p.terminate(); code != 0 {
		t.Errorf("second run: exit code %d after SIGTERM, want 0\nlog:\n%s", code, p.log)
	}
}

// TestEdgenode_DataDirLocked starts a second edgenode on a data directory in
// use: it exits non-zero saying so, and the first one is unharmed.
func TestEdgenode_DataDirLocked(t *testing.T) {
	if testing.Short() {
		t.Skip("runs real processes; skipped in -short mode")
	}
	bin := edgenodeBinary(t)
	dir := t.TempDir()
	p := startEdgenode(t, bin, dir)
	p.mustDo(http.MethodPut, "/api/v1/containers/c", []byte(`{"partitionKey":"/pk"}`), http.StatusCreated)

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	second := exec.CommandContext(ctx, bin, "serve", "--listen", "127.0.0.1:0", "--data", dir)
	second.Env = proctest.ChildEnv()
	out, err := second.CombinedOutput()
	var exitErr *exec.ExitError
	switch {
	case ctx.Err() != nil:
		t.Fatalf("second edgenode on the same data dir still running after 10s, want it to refuse to start\noutput:\n%s", out)
	case errors.As(err, &exitErr):
		if exitErr.ExitCode() == 0 {
			t.Errorf("second edgenode exit code 0, want non-zero")
		}
	case err != nil:
		t.Fatalf("run second edgenode: %v", err)
	default:
		t.Errorf("second edgenode on the same data dir exited 0, want non-zero\noutput:\n%s", out)
	}
	if !strings.Contains(string(out), "in use") {
		t.Errorf("second edgenode's output does not say the data dir is \"in use\":\n%s", out)
	}

	// The first node still serves reads and writes.
	p.mustDo(http.MethodPost, "/api/v1/containers/c/docs", []byte(`{"id":"a","pk":"x"}`), http.StatusCreated)
	p.mustDo(http.MethodGet, "/api/v1/containers/c/docs/a", nil, http.StatusOK)
	if code := p.terminate(); code != 0 {
		t.Errorf("exit code %d after SIGTERM, want 0\nlog:\n%s", code, p.log)
	}
}
