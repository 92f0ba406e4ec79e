package hubbench

// The hub tier's runs: hubs as real `cloudhub serve --postgres` processes
// sharing one database (a schema of their own), the edges in this process.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/edgesync/edgesync/internal/bench"
	"github.com/edgesync/edgesync/replica/edge"
)

// takeoverTarget is the longest a takeover may take after the sequencer
// is killed (from the issue that asked for the hub tier).
const takeoverTarget = 5 * time.Second

// tierLeaseTimeout is the tier runs' default --lease-timeout: cloudhub
// serve's.
const tierLeaseTimeout = 5 * time.Second

// tierAdminToken is the bench hubs' admin token.
const tierAdminToken = "bench-admin-token"

// tierProc is one `cloudhub serve` process of a bench tier.
type tierProc struct {
	name   string
	bin    string
	args   []string // without --listen
	env    []string // added to this process's, less its CLOUDHUB_ variables
	listen string   // 127.0.0.1:0 at first, then the port it got
	url    string   // http://host:port
	cmd    *exec.Cmd
	out    *tailLog
	exited chan struct{}
}

// tailLog keeps the last 64 KiB a child wrote and reports the address of
// its "cloudhub listening" line.
type tailLog struct {
	mu    sync.Mutex
	buf   []byte
	addrc chan string
}

var listenRE = regexp.MustCompile(`cloudhub listening.*\baddr=("?)([^\s"]+)`)

func (l *tailLog) scan(r io.Reader) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	found := false
	for sc.Scan() {
		line := sc.Bytes()
		l.mu.Lock()
		l.buf = append(l.buf, line...)
		l.buf = append(l.buf, '\n')
		if len(l.buf) > 64<<10 {
			l.buf = append(l.buf[:0], l.buf[len(l.buf)-32<<10:]...)
		}
		l.mu.Unlock()
		if m := listenRE.FindSubmatch(line); !found && m != nil {
			found = true
			l.addrc <- string(m[2])
		}
	}
	// The rest of what the child writes is dropped; the pipe keeps draining.
	_, _ = io.Copy(io.Discard, r)
}

func (l *tailLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return string(l.buf)
}

// start runs the process and waits until it listens.
func (p *tierProc) start(timeout time.Duration) error {
	cmd := exec.Command(p.bin, append([]string{"serve", "--listen", p.listen}, p.args...)...)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "CLOUDHUB_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, p.env...)
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	p.out = &tailLog{addrc: make(chan string, 1)}
	go p.out.scan(pr)
	if err := cmd.Start(); err != nil {
		pw.Close()
		return fmt.Errorf("start hub %s: %w", p.name, err)
	}
	p.cmd, p.exited = cmd, make(chan struct{})
	go func() {
		cmd.Wait()
		pw.Close()
		close(p.exited)
	}()
	select {
	case addr := <-p.out.addrc:
		p.listen, p.url = addr, "http://"+addr
		return nil
	case <-p.exited:
		return fmt.Errorf("hub %s exited before it listened: %v\n%s", p.name, cmd.ProcessState, p.out)
	case <-time.After(timeout):
		p.kill()
		return fmt.Errorf("hub %s did not listen within %v\n%s", p.name, timeout, p.out)
	}
}

func (p *tierProc) running() bool {
	if p.cmd == nil {
		return false
	}
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

// kill sends SIGKILL and waits for the process to be gone.
func (p *tierProc) kill() {
	if p.running() {
		_ = p.cmd.Process.Kill()
		<-p.exited
	}
}

// stop sends SIGTERM and waits up to 15s, then kills.
func (p *tierProc) stop() error {
	if !p.running() {
		return nil
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		return fmt.Errorf("hub %s: SIGTERM: %w", p.name, err)
	}
	select {
	case <-p.exited:
		return nil
	case <-time.After(15 * time.Second):
		p.kill()
		return fmt.Errorf("hub %s still running 15s after SIGTERM", p.name)
	}
}

// tierProcsText is the tier hubs' GOMAXPROCS for the report.
func (b *bencher) tierProcsText() string {
	if b.cfg.tierProcs == 0 {
		return "cloudhub's default"
	}
	return strconv.Itoa(b.cfg.tierProcs)
}

// benchTier is a tier of hub processes on one database schema.
type benchTier struct {
	procs  []*tierProc
	client *http.Client
	drop   func() error
}

// tierStatus is the part of GET /api/v1/status the runs read.
type tierStatus struct {
	LSN       int64  `json:"lsn"`
	Sequencer string `json:"sequencer"`
	Hubs      []struct {
		Name   string `json:"name"`
		Online bool   `json:"online"`
	} `json:"hubs"`
}

// runTier starts the --tier-hubs hubs of a run with the --lease-timeout
// lease (startTier), has cl close them, and defines the bench container.
func (b *bencher) runTier(ctx context.Context, dir string, cl *cleanups) (*benchTier, error) {
	t, err := b.startTier(ctx, dir, b.cfg.tierHubs, b.cfg.lease)
	if err != nil {
		return nil, err
	}
	cl.add(t.close)
	if err := t.putContainer(ctx); err != nil {
		return nil, err
	}
	return t, nil
}

// startTier starts n hubs, one after another (their order), on a new schema
// of the --postgres database, each with --lease-timeout lease, and waits
// until they agree on a sequencer.
func (b *bencher) startTier(ctx context.Context, dir string, n int, lease time.Duration) (*benchTier, error) {
	url, drop, err := pgSchema(ctx, b.cfg.postgres)
	if err != nil {
		return nil, err
	}
	t := &benchTier{client: &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 16}}, drop: drop}
	for i := range n {
		name := fmt.Sprintf("bench-%d", i+1)
		p := &tierProc{name: name, bin: b.cfg.cloudhub, listen: "127.0.0.1:0", args: []string{
			"--data", filepath.Join(dir, name), "--postgres", url, "--hub-name", name, "--lease-timeout", lease.String(),
			"--admin-token", tierAdminToken, "--log-format", "text",
		}}
		if b.cfg.tierProcs > 0 {
			p.env = append(p.env, fmt.Sprintf("GOMAXPROCS=%d", b.cfg.tierProcs))
		}
		if b.cfg.cpuProfile != "" {
			// The hubs profile their whole life: from the start of
			// the run, the sync's measured phase most of it.
			ext := filepath.Ext(b.cfg.cpuProfile)
			p.env = append(p.env, "EDGESYNC_CPUPROFILE="+strings.TrimSuffix(b.cfg.cpuProfile, ext)+".hub-"+name+ext)
		}
		t.procs = append(t.procs, p)
		if err := p.start(30 * time.Second); err != nil {
			return nil, errors.Join(err, t.close())
		}
		if _, err := t.waitAgreed(ctx, 30*time.Second); err != nil {
			return nil, errors.Join(err, t.close())
		}
	}
	return t, nil
}

// close stops the hubs and drops the schema.
func (t *benchTier) close() error {
	var err error
	for _, p := range t.procs {
		err = errors.Join(err, p.stop())
	}
	t.client.CloseIdleConnections()
	return errors.Join(err, t.drop())
}

// call sends a request to a hub's API with the admin token and decodes the
// answer into out (if not nil); any status but want is an error.
func (t *benchTier) call(ctx context.Context, p *tierProc, method, path string, body []byte, want int, out any) error {
	req, err := http.NewRequestWithContext(ctx, method, p.url+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+tierAdminToken)
	req.Header.Set("Content-Type", "application/json")
	resp, err := t.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode != want {
		return fmt.Errorf("%s %s on hub %s: status %d: %s", method, path, p.name, resp.StatusCode, bytes.TrimSpace(b))
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			return fmt.Errorf("%s %s on hub %s: %w", method, path, p.name, err)
		}
	}
	return nil
}

func (t *benchTier) status(ctx context.Context, p *tierProc) (tierStatus, error) {
	var st tierStatus
	err := t.call(ctx, p, http.MethodGet, "/api/v1/status", nil, http.StatusOK, &st)
	return st, err
}

func (t *benchTier) live() []*tierProc {
	var out []*tierProc
	for _, p := range t.procs {
		if p.running() {
			out = append(out, p)
		}
	}
	return out
}

// waitAgreed waits until every running hub names the same sequencer, a
// running one, and reports every running hub online; it returns that
// sequencer.
func (t *benchTier) waitAgreed(ctx context.Context, timeout time.Duration) (*tierProc, error) {
	deadline := time.Now().Add(timeout)
	for {
		seq, err := t.agreed(ctx)
		if err == nil {
			return seq, nil
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("the hubs do not agree on a sequencer after %v: %w", timeout, err)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func (t *benchTier) agreed(ctx context.Context) (*tierProc, error) {
	live := t.live()
	seq := ""
	for i, p := range live {
		st, err := t.status(ctx, p)
		if err != nil {
			return nil, err
		}
		if i == 0 {
			seq = st.Sequencer
		}
		if st.Sequencer == "" || st.Sequencer != seq {
			return nil, fmt.Errorf("hub %s names sequencer %q, hub %s %q", p.name, st.Sequencer, live[0].name, seq)
		}
		for _, q := range live {
			if !slices.ContainsFunc(st.Hubs, func(h struct {
				Name   string `json:"name"`
				Online bool   `json:"online"`
			}) bool {
				return h.Name == q.name && h.Online
			}) {
				return nil, fmt.Errorf("hub %s does not list hub %s online", p.name, q.name)
			}
		}
	}
	i := slices.IndexFunc(live, func(p *tierProc) bool { return p.name == seq })
	if i < 0 {
		return nil, fmt.Errorf("sequencer %q is not running", seq)
	}
	return live[i], nil
}

// registerEdge registers an edge and returns its token. Its scope is the
// bench container's partition keys pks, or everything when pks is nil.
func (t *benchTier) registerEdge(ctx context.Context, p *tierProc, name string, pks []string) (string, error) {
	var resp struct {
		Token string `json:"token"`
	}
	req := map[string]any{"name": name}
	if pks != nil {
		req["scope"] = []map[string]any{{"container": bench.Container, "partitionKeys": pks}}
	}
	body, _ := json.Marshal(req)
	if err := t.call(ctx, p, http.MethodPost, "/api/v1/edges", body, http.StatusCreated, &resp); err != nil {
		return "", err
	}
	return resp.Token, nil
}

// hubList is the --hub list of an edge homed on hub i: that hub first,
// then the others in order.
func (t *benchTier) hubList(i int) []string {
	urls := []string{t.procs[i].url}
	for j, p := range t.procs {
		if j != i {
			urls = append(urls, p.url)
		}
	}
	return urls
}

func (t *benchTier) putContainer(ctx context.Context) error {
	body, _ := json.Marshal(map[string]string{"partitionKey": bench.PartitionKey})
	return t.call(ctx, t.procs[0], http.MethodPut, "/api/v1/containers/"+bench.Container, body, http.StatusCreated, nil)
}

func startTierSyncer(r *edge.Replica, hubs []string, token string, cl *cleanups, b *bencher) error {
	s, err := edge.NewSyncer(r, edge.SyncConfig{Hubs: hubs, Token: token, Logger: b.quiet})
	if err != nil {
		return err
	}
	if err := s.Open(context.Background()); err != nil {
		return err
	}
	cl.add(func() error {
		cctx, cancel := closeCtx()
		defer cancel()
		return s.Close(cctx)
	})
	return nil
}

// syncTier is the sync run on the hub tier: --tier-edges edges, spread over
// --tier-hubs hubs, hold the --docs documents in their outboxes, written
// offline; then every sync client starts at once. It measures the time
// until every edge holds every outcome, and checks the log grew by --docs.
//
// With --tier-scope own (the default) the documents of a partition key are
// all written at one edge, whose scope is its partition keys: each document
// is written and applied at one edge, as in the single-hub runs, so the
// hubs' work is compared with the same work at the edges. With all, every
// edge also applies the other edges' documents (k-1 more applies each).
func (b *bencher) syncTier(ctx context.Context, dir string) (rows []benchRow, err error) {
	var cl cleanups
	defer func() { err = errors.Join(err, cl.run()) }()
	n, k := b.cfg.docs, b.cfg.tierEdges
	fmt.Fprintf(b.stderr, "sync: hub tier: %d cloudhub processes on PostgreSQL (GOMAXPROCS %s), %d edges spread over them\n", b.cfg.tierHubs, b.tierProcsText(), k)
	t, err := b.runTier(ctx, dir, &cl)
	if err != nil {
		return nil, err
	}
	edges := make([]*edge.Replica, k)
	tokens := make([]string, k)
	edgeOf := func(doc int) int { return doc % k }
	var scopes [][]string
	if b.cfg.tierScope == "own" {
		edgeOf = func(doc int) int { return (doc % bench.Tenants) % k }
		scopes = make([][]string, k)
		for tn := range bench.Tenants {
			scopes[tn%k] = append(scopes[tn%k], bench.Tenant(tn))
		}
	}
	for i := range k {
		var scope []string
		if scopes != nil {
			scope = scopes[i]
		}
		if tokens[i], err = t.registerEdge(ctx, t.procs[i%len(t.procs)], fmt.Sprintf("bench-tier-%d", i), scope); err != nil {
			return nil, err
		}
		if edges[i], err = b.openEdge(ctx, filepath.Join(dir, fmt.Sprintf("edge-%d", i)), &cl); err != nil {
			return nil, err
		}
		if _, _, err := edges[i].PutContainer(ctx, benchContainer()); err != nil {
			return nil, err
		}
	}
	fmt.Fprintf(b.stderr, "sync: writing %d documents at %d edges, sync clients not started ...\n", n, k)
	if _, err := bench.Run("", n, b.cfg.clients, func(i int) error {
		_, err := edges[edgeOf(i)].Create(ctx, bench.Container, bench.Doc(i, b.cfg.size))
		return err
	}); err != nil {
		return nil, err
	}
	st, err := t.status(ctx, t.procs[0])
	if err != nil {
		return nil, err
	}
	head0 := st.LSN
	fmt.Fprintf(b.stderr, "sync: starting %d sync clients with %d writes in their outboxes ...\n", k, n)
	stopProfile, err := b.profile(runSync+"-tier", &cl)
	if err != nil {
		return nil, err
	}
	meter := startCPUMeter(ctx, b.cfg.postgres, t.procs)
	start := time.Now()
	for i, r := range edges {
		if err := startTierSyncer(r, t.hubList(i%len(t.procs)), tokens[i], &cl, b); err != nil {
			return nil, err
		}
	}
	wctx, cancel := context.WithTimeout(ctx, b.cfg.timeout)
	defer cancel()
	tick := time.NewTicker(progressEvery)
	defer tick.Stop()
	for {
		var pending int64
		var changed <-chan struct{}
		for _, r := range edges {
			if p := r.Pending(); p > 0 {
				pending += p
				if changed == nil {
					changed = r.Changed()
				}
			}
		}
		if pending == 0 {
			break
		}
		select {
		case <-changed:
		case <-tick.C:
			meter.sample(ctx, false)
			fmt.Fprintf(b.stderr, "sync: hub tier: %d of %d writes have their outcome\n", int64(n)-pending, n)
		case <-wctx.Done():
			return nil, fmt.Errorf("after %s: %d writes still pending: %w", time.Since(start).Round(time.Millisecond), pending, context.Cause(wctx))
		}
	}
	took := time.Since(start)
	cpu := meter.stop(ctx, n)
	if err := stopProfile(); err != nil {
		return nil, err
	}
	for _, e := range meter.errs {
		fmt.Fprintf(b.stderr, "sync: hub tier: CPU time not read: %s\n", e)
	}
	if st, err = t.status(ctx, t.procs[0]); err != nil {
		return nil, err
	}
	if st.LSN-head0 != int64(n) {
		return nil, fmt.Errorf("every edge has its outcomes but the log grew by %d, want %d", st.LSN-head0, n)
	}
	row := throughputRow(runSync, fmt.Sprintf("end to end: %d hubs, %d edges over them (scope: %s), all outcomes", len(t.procs), k, b.cfg.tierScope), n, took)
	row.Hub, row.CPU = hubTier, cpu
	return []benchRow{row}, nil
}

// fanoutTier is the fan-out on the hub tier: --edges edges spread over
// --tier-hubs hubs; --writes writes at the sequencer's API, --interval
// apart; for each, when each edge applied it.
func (b *bencher) fanoutTier(ctx context.Context, dir string) (rows []benchRow, err error) {
	var cl cleanups
	defer func() { err = errors.Join(err, cl.run()) }()
	k, w := b.cfg.edges, b.cfg.writes
	fmt.Fprintf(b.stderr, "fanout: hub tier: %d cloudhub processes on PostgreSQL, %d edges spread over them\n", b.cfg.tierHubs, k)
	t, err := b.runTier(ctx, dir, &cl)
	if err != nil {
		return nil, err
	}
	seq, err := t.waitAgreed(ctx, 30*time.Second)
	if err != nil {
		return nil, err
	}
	edges := make([]*edge.Replica, k)
	for i := range k {
		name := fmt.Sprintf("fan-%03d", i)
		token, err := t.registerEdge(ctx, t.procs[i%len(t.procs)], name, nil)
		if err != nil {
			return nil, err
		}
		var ecl cleanups
		if edges[i], err = b.openEdge(ctx, filepath.Join(dir, name), &ecl); err == nil {
			err = startTierSyncer(edges[i], t.hubList(i%len(t.procs)), token, &ecl, b)
		}
		cl.add(ecl.run)
		if err != nil {
			return nil, err
		}
	}
	st, err := t.status(ctx, seq)
	if err != nil {
		return nil, err
	}
	wctx, cancel := context.WithTimeout(ctx, b.cfg.timeout)
	defer cancel()
	for i, r := range edges {
		for r.ResumeLSN() < st.LSN {
			select {
			case <-r.Changed():
			case <-wctx.Done():
				return nil, fmt.Errorf("edge %d applied up to %d of %d: %w", i, r.ResumeLSN(), st.LSN, context.Cause(wctx))
			}
		}
	}
	fmt.Fprintf(b.stderr, "fanout: hub tier: %d edges caught up (LSN %d); %d writes at the sequencer %s, %s apart ...\n", k, st.LSN, w, seq.name, b.cfg.interval)
	base := st.LSN
	applied, allDone := watchEdges(wctx, cancel, edges, base, w, &cl)
	sent := make([]time.Time, w)
	commits := make([]time.Duration, w)
	start := time.Now()
	for i := range w {
		if d := time.Until(start.Add(time.Duration(i) * b.cfg.interval)); d > 0 {
			time.Sleep(d)
		}
		var doc struct {
			LSN int64 `json:"_lsn"`
		}
		sent[i] = time.Now()
		if err := t.call(wctx, seq, http.MethodPost, "/api/v1/containers/"+bench.Container+"/docs", bench.Doc(i, b.cfg.size), http.StatusCreated, &doc); err != nil {
			return nil, fmt.Errorf("hub write %d: %w", i, err)
		}
		commits[i] = time.Since(sent[i])
		if doc.LSN != base+int64(i)+1 {
			return nil, fmt.Errorf("write %d got LSN %d, want %d (is something else writing?)", i, doc.LSN, base+int64(i)+1)
		}
	}
	select {
	case <-allDone:
	case <-wctx.Done():
		return nil, fmt.Errorf("not every edge applied the %d writes: %w", w, context.Cause(wctx))
	}
	elapsed := time.Since(start)
	last, each := appliedLatencies(sent, applied)
	rows = []benchRow{
		latencyRow(runFanout, "hub write at the sequencer's API (commit, HTTP)", commits, elapsed),
		latencyRow(runFanout, fmt.Sprintf("last of %d edges over %d hubs applied (per write)", k, len(t.procs)), last, elapsed),
		latencyRow(runFanout, fmt.Sprintf("each of %d edges over %d hubs applied (per write and edge)", k, len(t.procs)), each, elapsed),
	}
	for i := range rows {
		rows[i].DocsPerSec, rows[i].Hub = 0, hubTier
	}
	return rows, nil
}

// takeover kills the sequencer of a tier of --tier-hubs hubs with SIGKILL
// --kills times. Each time it measures how long until a write at another
// hub's API is confirmed again (a prober writes all the time), and until
// the hubs name a new sequencer; then it starts the killed hub again and
// waits until every hub is back.
func (b *bencher) takeover(ctx context.Context, dir string) (rows []benchRow, err error) {
	var cl cleanups
	defer func() { err = errors.Join(err, cl.run()) }()
	fmt.Fprintf(b.stderr, "takeover: %d cloudhub processes on PostgreSQL, --lease-timeout %v, %d kills of the sequencer\n", b.cfg.tierHubs, b.cfg.lease, b.cfg.kills)
	t, err := b.runTier(ctx, dir, &cl)
	if err != nil {
		return nil, err
	}
	var writes, named []time.Duration
	start := time.Now()
	for kill := range b.cfg.kills {
		seq, err := t.waitAgreed(ctx, 60*time.Second)
		if err != nil {
			return nil, err
		}
		var others []*tierProc
		for _, p := range t.live() {
			if p != seq {
				others = append(others, p)
			}
		}
		if len(others) == 0 {
			return nil, errors.New("no hub left to take over")
		}
		at := time.Now()
		seq.kill()
		w, s, err := b.awaitTakeover(ctx, t, others, seq.name, at, kill)
		if err != nil {
			return nil, fmt.Errorf("kill %d of %s: %w", kill+1, seq.name, err)
		}
		writes, named = append(writes, w), append(named, s)
		fmt.Fprintf(b.stderr, "takeover: kill %d of %s: a write confirmed again after %v, a new sequencer named after %v\n",
			kill+1, seq.name, w.Round(time.Millisecond), s.Round(time.Millisecond))
		if err := seq.start(30 * time.Second); err != nil {
			return nil, err
		}
	}
	elapsed := time.Since(start)
	wr := latencyRow(runTakeover, fmt.Sprintf("kill -9 of the sequencer until a write at another hub is confirmed (%d kills)", len(writes)), writes, elapsed)
	wr.target(fmt.Sprintf("max <= %.0fs", takeoverTarget.Seconds()), wr.MaxMs <= float64(takeoverTarget.Milliseconds()))
	nr := latencyRow(runTakeover, "kill -9 of the sequencer until the hubs name a new one", named, elapsed)
	rows = []benchRow{wr, nr}
	// The kills are one after another: neither their rate nor their total
	// time says anything.
	for i := range rows {
		rows[i].DocsPerSec, rows[i].Seconds, rows[i].Hub = 0, 0, hubTier
	}
	return rows, nil
}

// awaitTakeover writes at the hubs of others, in turn, until one write is
// confirmed, and watches their status for a sequencer other than old; it
// returns both times since at.
func (b *bencher) awaitTakeover(ctx context.Context, t *benchTier, others []*tierProc, old string, at time.Time, kill int) (write, named time.Duration, err error) {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	done := make(chan struct{})
	go func() {
		defer close(done)
		for named == 0 && ctx.Err() == nil {
			for _, p := range others {
				if st, err := t.status(ctx, p); err == nil && st.Sequencer != "" && st.Sequencer != old {
					named = time.Since(at)
					return
				}
			}
			time.Sleep(10 * time.Millisecond)
		}
	}()
	for i := 0; write == 0; i++ {
		p := others[i%len(others)]
		body := fmt.Appendf(nil, `{"id":"probe-%d-%d","tenant":"t00"}`, kill, i)
		rctx, rcancel := context.WithTimeout(ctx, 2*time.Second)
		err := t.call(rctx, p, http.MethodPost, "/api/v1/containers/"+bench.Container+"/docs", body, http.StatusCreated, nil)
		rcancel()
		switch {
		case err == nil:
			write = time.Since(at)
		case ctx.Err() != nil:
			<-done
			return 0, 0, fmt.Errorf("no write confirmed within %v: %w", time.Since(at).Round(time.Millisecond), err)
		default:
			time.Sleep(10 * time.Millisecond)
		}
	}
	<-done
	if named == 0 {
		return 0, 0, fmt.Errorf("a write was confirmed after %v but no hub named a new sequencer", write)
	}
	return write, named, nil
}
