// Package loadtest is `cloudhub loadtest`: it runs many lightweight edges
// against a hub process and measures what they cost the hub. Each edge has
// its own registered token and node id and speaks the real sync protocol
// (replica/wire) over its own WebSocket, without a replica: it applies
// nothing, it only acknowledges what it receives. The hub is a separate
// process (by default this binary's `serve`), so that its memory and CPU,
// read from /proc, are its own.
//
// A run measures, in order:
//
//   - connect: time until every edge has been welcomed;
//   - idle: the hub's CPU over --idle with every edge connected, its RSS and
//     goroutines;
//   - fan-out: --writes hub writes, one after another; for each, the time
//     from the start of the write until the last edge has received it;
//   - storm (--storm): the hub is killed (SIGKILL) and started again on the
//     same data; time from the restart until every edge is back.
package loadtest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/edgesync/edgesync/internal/bench"
	"github.com/edgesync/edgesync/internal/cli"
)

// Config is one load test.
type Config struct {
	Edges  int           // edges connected to the hub
	Writes int           // fan-out writes measured
	Gap    time.Duration // pause between two fan-out writes
	Idle   time.Duration // how long idle CPU is measured
	Storm  bool          // kill and restart the hub, time the reconnect
	// HubBin is the cloudhub binary to run (default: this executable);
	// HubArgs are added to its serve flags.
	HubBin  string
	HubArgs []string
	Dir     string        // the hub's data dir and log (default: a new temp dir, removed after)
	Timeout time.Duration // bound of each phase
	// Sources is how many loopback source addresses (127.0.0.2, ...) the
	// edges dial from, so that N connections and their TIME_WAIT
	// remnants after a restart do not exhaust one address's ports.
	Sources int
	Log     io.Writer // progress (nil: none)
}

// Result is what a run measured.
type Result struct {
	Edges          int     `json:"edges"`
	ConnectSeconds float64 `json:"connectSeconds"`
	IdleRSSBytes   int64   `json:"idleRssBytes"`
	IdleCPUPercent float64 `json:"idleCpuPercent"` // of one CPU
	IdleGoroutines int     `json:"idleGoroutines"`
	// IdleHubPings is how many pings the edges received from the hub over
	// --idle: the hub pings only edges that are silent, and these ping it.
	IdleHubPings int64 `json:"idleHubPings"`
	// IdleEdgePings is how many pings the edges sent the hub over --idle,
	// each at the interval its welcome asked for (PingIntervalSeconds, the
	// last one seen; 10 s from a hub that asks none).
	IdleEdgePings       int64   `json:"idleEdgePings"`
	PingIntervalSeconds float64 `json:"pingIntervalSeconds"`
	// GoroutinesPerEdge is (idle goroutines - goroutines with no edge) / edges.
	GoroutinesPerEdge float64 `json:"goroutinesPerEdge"`
	Writes            int     `json:"writes"`
	FanoutP50Seconds  float64 `json:"fanoutP50Seconds"`
	FanoutP99Seconds  float64 `json:"fanoutP99Seconds"`
	FanoutMaxSeconds  float64 `json:"fanoutMaxSeconds"`
	// FanoutCPUSeconds is the hub's CPU time over the fan-out phase.
	FanoutCPUSeconds float64 `json:"fanoutCpuSeconds"`
	// FanoutFramesEncoded is the changes frames the hub encoded over the
	// fan-out phase (its metric edgesync_hub_stream_frames_encoded_total;
	// -1: the hub has no such metric).
	FanoutFramesEncoded int64   `json:"fanoutFramesEncoded"`
	AfterRSSBytes       int64   `json:"afterRssBytes"`
	StormSeconds        float64 `json:"stormSeconds,omitempty"`
	StormRefused        int64   `json:"stormRefused,omitempty"` // handshakes the hub refused as busy (503) during the storm
	StormMaxAttempts    int64   `json:"stormMaxAttempts,omitempty"`
	FileLimit           uint64  `json:"fileLimit"` // this process's RLIMIT_NOFILE after raising it
	Load                float64 `json:"load"`      // 1-minute load average at the end
}

var (
	errHubExited = errors.New("hub exited")
	errTimeout   = errors.New("timed out")
)

// Run is `cloudhub loadtest ARGS`.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var cfg Config
	fs := flag.NewFlagSet("cloudhub loadtest", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.IntVar(&cfg.Edges, "edges", 1000, "lightweight edges connected to the hub")
	fs.IntVar(&cfg.Writes, "writes", 20, "hub writes whose fan-out to every edge is timed")
	fs.DurationVar(&cfg.Gap, "gap", 100*time.Millisecond, "pause between two timed writes")
	fs.DurationVar(&cfg.Idle, "idle", 10*time.Second, "how long the hub's idle CPU is measured")
	fs.BoolVar(&cfg.Storm, "storm", true, "kill the hub, start it again on the same data and time until every edge is back")
	fs.StringVar(&cfg.HubBin, "hub-bin", "", "the cloudhub binary to run (default: this one)")
	hubArgs := fs.String("hub-args", "", "more flags for the hub's serve, space-separated")
	fs.StringVar(&cfg.Dir, "dir", "", "the hub's data dir (default: a new temp dir, removed after)")
	fs.DurationVar(&cfg.Timeout, "timeout", 2*time.Minute, "give up on a phase after this long")
	fs.IntVar(&cfg.Sources, "sources", 16, "loopback source addresses the edges dial from")
	asJSON := fs.Bool("json", false, "print the result as JSON")
	if err := cli.ParseFlags(fs, args, "CLOUDHUB_LOADTEST_"); err != nil {
		return err
	}
	if cfg.Edges <= 0 || cfg.Writes <= 0 || cfg.Idle <= 0 || cfg.Timeout <= 0 || cfg.Sources <= 0 || cfg.Sources > 250 {
		return cli.UsageError("--edges, --writes, --idle and --timeout must be positive, --sources 1..250")
	}
	cfg.HubArgs = strings.Fields(*hubArgs)
	cfg.Log = stderr
	res, err := Measure(ctx, cfg)
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(res)
	}
	fmt.Fprintf(stdout, "edges %d: connect %.2f s, idle RSS %.0f MB, idle CPU %.1f%%, %d pings from the hub, %d to it (every %.0f s), goroutines %d (%.2f per edge)\n",
		res.Edges, res.ConnectSeconds, float64(res.IdleRSSBytes)/1e6, res.IdleCPUPercent, res.IdleHubPings, res.IdleEdgePings, res.PingIntervalSeconds,
		res.IdleGoroutines, res.GoroutinesPerEdge)
	fmt.Fprintf(stdout, "fan-out of %d writes to the last edge: p50 %.0f ms, p99 %.0f ms, max %.0f ms; hub CPU %.2f s, %d frames encoded; RSS after %.0f MB\n",
		res.Writes, res.FanoutP50Seconds*1000, res.FanoutP99Seconds*1000, res.FanoutMaxSeconds*1000, res.FanoutCPUSeconds, res.FanoutFramesEncoded,
		float64(res.AfterRSSBytes)/1e6)
	if cfg.Storm {
		fmt.Fprintf(stdout, "restart storm: all back in %.2f s (%d refused as busy, at most %d attempts for one edge)\n",
			res.StormSeconds, res.StormRefused, res.StormMaxAttempts)
	}
	fmt.Fprintf(stdout, "file limit %d, load %.2f\n", res.FileLimit, res.Load)
	return nil
}

// Measure runs one load test.
func Measure(ctx context.Context, cfg Config) (res Result, err error) {
	if cfg.Log == nil {
		cfg.Log = io.Discard
	}
	if cfg.Sources <= 0 {
		cfg.Sources = 1
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 2 * time.Minute
	}
	if cfg.Gap <= 0 {
		cfg.Gap = 50 * time.Millisecond
	}
	res.Edges, res.Writes = cfg.Edges, cfg.Writes
	if res.FileLimit, err = RaiseFileLimit(); err != nil {
		return res, err
	}
	if need := uint64(cfg.Edges) + 256; res.FileLimit < need {
		return res, fmt.Errorf("%d edges need about %d open files; the limit is %d (ulimit -Hn)", cfg.Edges, need, res.FileLimit)
	}
	if cfg.HubBin == "" {
		if cfg.HubBin, err = os.Executable(); err != nil {
			return res, err
		}
	}
	if cfg.Dir == "" {
		dir, err := os.MkdirTemp("", "edgesync-loadtest-")
		if err != nil {
			return res, err
		}
		defer os.RemoveAll(dir)
		cfg.Dir = dir
	}
	port, err := freePort()
	if err != nil {
		return res, err
	}
	t := &test{cfg: cfg, addr: fmt.Sprintf("127.0.0.1:%d", port), token: "loadtest-admin"}
	t.stop, t.cancel = context.WithCancel(ctx)
	defer t.cancel()
	defer t.stopHub()
	if err := t.startHub(ctx); err != nil {
		return res, err
	}
	if err := t.setup(ctx); err != nil {
		return res, err
	}
	base, err := t.hubGoroutines(ctx)
	if err != nil {
		return res, err
	}

	// Connect.
	t.gen.Store(1)
	t.logf("connecting %d edges", cfg.Edges)
	start := time.Now()
	t.wg.Add(len(t.edges))
	for _, e := range t.edges {
		go func() { defer t.wg.Done(); e.run(t) }()
	}
	defer t.wg.Wait()
	defer t.cancel()
	if err := t.waitWelcomed(ctx, 1); err != nil {
		return res, fmt.Errorf("connect: %w", err)
	}
	res.ConnectSeconds = time.Since(start).Seconds()
	t.logf("connected in %.2f s", res.ConnectSeconds)

	// Idle.
	settle(ctx, 2*time.Second)
	cpu0, err := procCPU(t.hub.Process.Pid)
	if err != nil {
		return res, err
	}
	pings0, edgePings0 := t.hubPings.Load(), t.edgePings.Load()
	settle(ctx, cfg.Idle)
	cpu1, err := procCPU(t.hub.Process.Pid)
	if err != nil {
		return res, err
	}
	res.IdleHubPings = t.hubPings.Load() - pings0
	res.IdleEdgePings = t.edgePings.Load() - edgePings0
	res.PingIntervalSeconds = time.Duration(t.pingEvery.Load()).Seconds()
	res.IdleCPUPercent = 100 * (cpu1 - cpu0).Seconds() / cfg.Idle.Seconds()
	if res.IdleRSSBytes, err = procRSS(t.hub.Process.Pid); err != nil {
		return res, err
	}
	if res.IdleGoroutines, err = t.hubGoroutines(ctx); err != nil {
		return res, err
	}
	res.GoroutinesPerEdge = float64(res.IdleGoroutines-base) / float64(cfg.Edges)
	t.logf("idle: CPU %.1f%%, RSS %d MB, %d goroutines, %d pings from the hub, %d to it (every %s)", res.IdleCPUPercent, res.IdleRSSBytes>>20,
		res.IdleGoroutines, res.IdleHubPings, res.IdleEdgePings, time.Duration(t.pingEvery.Load()))

	// Fan-out.
	enc0, err := t.hubMetric(ctx, "edgesync_hub_stream_frames_encoded_total")
	if err != nil {
		return res, err
	}
	lat, cpu, err := t.fanout(ctx)
	if err != nil {
		return res, fmt.Errorf("fan-out: %w", err)
	}
	enc1, err := t.hubMetric(ctx, "edgesync_hub_stream_frames_encoded_total")
	if err != nil {
		return res, err
	}
	res.FanoutFramesEncoded = -1
	if enc0 >= 0 && enc1 >= 0 {
		res.FanoutFramesEncoded = int64(enc1 - enc0)
	}
	res.FanoutCPUSeconds = cpu.Seconds()
	res.FanoutP50Seconds, res.FanoutP99Seconds, res.FanoutMaxSeconds = quantile(lat, 0.5), quantile(lat, 0.99), quantile(lat, 1)
	if res.AfterRSSBytes, err = procRSS(t.hub.Process.Pid); err != nil {
		return res, err
	}
	t.logf("fan-out: p50 %.0f ms, p99 %.0f ms", res.FanoutP50Seconds*1000, res.FanoutP99Seconds*1000)

	// Restart storm.
	if cfg.Storm {
		t.hub.Process.Kill()
		<-t.hubDone
		t.refused.Store(0)
		t.gen.Store(2)
		for _, e := range t.edges {
			e.attempts.Store(0)
		}
		start := time.Now()
		if err := t.startHub(ctx); err != nil {
			return res, fmt.Errorf("restart: %w", err)
		}
		if err := t.waitWelcomed(ctx, 2); err != nil {
			return res, fmt.Errorf("restart storm: %w", err)
		}
		res.StormSeconds = time.Since(start).Seconds()
		res.StormRefused = t.refused.Load()
		for _, e := range t.edges {
			res.StormMaxAttempts = max(res.StormMaxAttempts, e.attempts.Load())
		}
		t.logf("restart storm: all back in %.2f s", res.StormSeconds)
	}
	res.Load = bench.LoadAverage()
	return res, nil
}

type test struct {
	cfg    Config
	addr   string
	token  string
	client http.Client

	hub     *exec.Cmd
	hubDone chan struct{}
	hubLog  *os.File
	stop    context.Context // ends the edges
	cancel  context.CancelFunc

	edges    []*loadEdge
	wg       sync.WaitGroup
	refused  atomic.Int64 // handshakes refused with 503
	hubPings atomic.Int64 // pings the edges received from the hub
	// edgePings counts the pings the edges sent, pingEvery is their
	// interval as the last welcome set it.
	edgePings atomic.Int64
	pingEvery atomic.Int64
	gen       atomic.Int64 // 1 until the restart, then 2

	// Fan-out bookkeeping: the write being timed, and how many edges have
	// received it.
	mu       sync.Mutex
	target   string
	got      int
	lastSeen time.Time
	all      chan struct{}
}

func (t *test) logf(format string, args ...any) {
	fmt.Fprintf(t.cfg.Log, "loadtest: "+format+"\n", args...)
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

func (t *test) startHub(ctx context.Context) error {
	args := append([]string{"serve", "--listen", t.addr, "--data", filepath.Join(t.cfg.Dir, "hub"), "--admin-token", t.token,
		"--log-format", "json"}, t.cfg.HubArgs...)
	logf, err := os.OpenFile(filepath.Join(t.cfg.Dir, "hub.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	cmd := exec.Command(t.cfg.HubBin, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	// The hub gets this process's file limit (raised to the hard limit).
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("start hub: %w", err)
	}
	t.hub, t.hubLog, t.hubDone = cmd, logf, make(chan struct{})
	done := t.hubDone
	go func() { cmd.Wait(); logf.Close(); close(done) }()
	deadline := time.Now().Add(t.cfg.Timeout)
	for {
		resp, err := t.client.Get("http://" + t.addr + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-done:
			return fmt.Errorf("%w (its log: %s)", errHubExited, filepath.Join(t.cfg.Dir, "hub.log"))
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("hub not healthy: %w", errTimeout)
		}
	}
}

// stopHub ends the hub with SIGTERM (SIGKILL after 20 s).
func (t *test) stopHub() {
	if t.hub == nil {
		return
	}
	select {
	case <-t.hubDone:
		return
	default:
	}
	t.hub.Process.Signal(syscall.SIGTERM)
	select {
	case <-t.hubDone:
	case <-time.After(20 * time.Second):
		t.hub.Process.Kill()
		<-t.hubDone
	}
}

func (t *test) api(ctx context.Context, method, path string, body any, out any) error {
	b, err := json.Marshal(body)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://"+t.addr+path, bytes.NewReader(b))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+t.token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := t.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	rb, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode >= 300 {
		return fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, bytes.TrimSpace(rb))
	}
	if out != nil {
		return json.Unmarshal(rb, out)
	}
	return nil
}

// setup defines the container and registers the edges, 32 at a time.
func (t *test) setup(ctx context.Context) error {
	if err := t.api(ctx, http.MethodPut, "/api/v1/containers/load", map[string]any{"partitionKey": "/pk"}, nil); err != nil {
		return err
	}
	t.logf("registering %d edges", t.cfg.Edges)
	t.edges = make([]*loadEdge, t.cfg.Edges)
	var next atomic.Int64
	errc := make(chan error, 32)
	for range 32 {
		go func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= t.cfg.Edges {
					errc <- nil
					return
				}
				e := &loadEdge{name: fmt.Sprintf("load-%05d", i), node: fmt.Sprintf("e%016x", rand.Uint64()),
					source: net.IPv4(127, 0, 0, byte(2+i%t.cfg.Sources))}
				var reg struct{ Token string }
				if err := t.api(ctx, http.MethodPost, "/api/v1/edges", map[string]any{"name": e.name}, &reg); err != nil {
					errc <- err
					return
				}
				e.token = reg.Token
				t.edges[i] = e
			}
		}()
	}
	var errs []error
	for range 32 {
		errs = append(errs, <-errc)
	}
	return errors.Join(errs...)
}

// hubGoroutines reads go_goroutines from the hub's /metrics.
func (t *test) hubGoroutines(ctx context.Context) (int, error) {
	n, err := t.hubMetric(ctx, "go_goroutines")
	if err == nil && n < 0 {
		err = errors.New("no go_goroutines in the hub's metrics")
	}
	return int(n), err
}

// hubMetric reads a metric without labels from the hub's /metrics; -1 if
// the hub has none of that name.
func (t *test) hubMetric(ctx context.Context, name string) (float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+t.addr+"/metrics", nil)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", "Bearer "+t.token)
	resp, err := t.client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			return strconv.ParseFloat(v, 64)
		}
	}
	return -1, sc.Err()
}

// waitWelcomed waits until every edge has been welcomed in its session
// number gen (1: first connect, 2: after the restart).
func (t *test) waitWelcomed(ctx context.Context, gen int64) error {
	deadline := time.Now().Add(t.cfg.Timeout)
	for {
		n := 0
		for _, e := range t.edges {
			if e.welcomed.Load() >= gen {
				n++
			}
		}
		if n == len(t.edges) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d of %d edges welcomed: %w", n, len(t.edges), errTimeout)
		}
		select {
		case <-t.hubDone:
			return fmt.Errorf("%w (its log: %s)", errHubExited, filepath.Join(t.cfg.Dir, "hub.log"))
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// fanout writes cfg.Writes documents at the hub, one at a time, and returns
// for each the time until the last edge received it, and the hub's CPU
// time over all of them.
func (t *test) fanout(ctx context.Context) ([]time.Duration, time.Duration, error) {
	cpu0, err := procCPU(t.hub.Process.Pid)
	if err != nil {
		return nil, 0, err
	}
	var lat []time.Duration
	for k := range t.cfg.Writes {
		id := fmt.Sprintf("w-%d", k)
		t.mu.Lock()
		t.target, t.got, t.all = id, 0, make(chan struct{})
		all := t.all
		t.mu.Unlock()
		start := time.Now()
		if err := t.api(ctx, http.MethodPut, "/api/v1/containers/load/docs/"+id, map[string]any{"id": id, "pk": "p", "n": k}, nil); err != nil {
			return nil, 0, err
		}
		select {
		case <-all:
		case <-time.After(t.cfg.Timeout):
			t.mu.Lock()
			got := t.got
			t.mu.Unlock()
			return nil, 0, fmt.Errorf("write %s reached %d of %d edges: %w", id, got, len(t.edges), errTimeout)
		case <-t.hubDone:
			return nil, 0, errHubExited
		case <-ctx.Done():
			return nil, 0, ctx.Err()
		}
		t.mu.Lock()
		lat = append(lat, t.lastSeen.Sub(start))
		t.mu.Unlock()
		settle(ctx, t.cfg.Gap)
	}
	cpu1, err := procCPU(t.hub.Process.Pid)
	return lat, cpu1 - cpu0, err
}

// received counts an edge's receipt of the document id.
func (t *test) received(id string, at time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if id != t.target || t.all == nil {
		return
	}
	t.got++
	if at.After(t.lastSeen) || t.got == 1 {
		t.lastSeen = at
	}
	if t.got == len(t.edges) {
		close(t.all)
		t.all = nil
	}
}

func settle(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

func quantile(ds []time.Duration, q float64) float64 {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(q*float64(len(s))+0.5) - 1
	return s[min(max(i, 0), len(s)-1)].Seconds()
}
