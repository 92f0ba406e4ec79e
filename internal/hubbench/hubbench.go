// Package hubbench is `cloudhub bench`: it measures sync, catch-up and
// fan-out with a hub and edges in one process, each with its own SQLite
// data dir, over real WebSockets on 127.0.0.1; with --postgres, the sync
// run is measured on a hub kept in PostgreSQL as well. The cloudhub binary
// dispatches to Run; the flags, the table and the --json report are the
// command's.
package hubbench

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/edgesync/edgesync/internal/bench"
	"github.com/edgesync/edgesync/internal/cli"
	"github.com/edgesync/edgesync/replica"
	"github.com/edgesync/edgesync/replica/edge"
	"github.com/edgesync/edgesync/replica/hub"
	"github.com/edgesync/edgesync/replica/hub/pghub"
	"github.com/edgesync/edgesync/replica/hub/sqlitehub"
	"github.com/edgesync/edgesync/replica/sqlitestore"
	"github.com/edgesync/edgesync/replica/wire"
	"github.com/edgesync/edgesync/web"
)

// The runs of `cloudhub bench`, in their default order.
const (
	runSync    = "sync"
	runCatchup = "catchup"
	runFanout  = "fanout"
	// takeover needs --postgres: it kills the sequencer of a hub tier.
	runTakeover = "takeover"
)

// Targets (from the issues that asked for this benchmark).
const (
	syncTargetDocsPerSec = 20000
	catchupTarget        = 60 * time.Second
	// A hub on PostgreSQL (database included, on the same machine) syncs
	// at least this fast, and at least pgTargetRatio of the SQLite hub.
	pgSyncTargetDocsPerSec = 10000
	pgTargetRatio          = 0.5
)

// progressEvery is how often a run prints its progress on stderr.
const progressEvery = 2 * time.Second

type benchConfig struct {
	runs        []string
	docs        int
	catchupDocs int
	edges       int
	writes      int
	size        int
	clients     int
	loadWorkers int
	interval    time.Duration
	timeout     time.Duration
	dir         string
	durability  string
	postgres    string
	tierHubs    int           // hubs of the tier runs; 0: no tier rows
	tierEdges   int           // sync: edges of the tier run, spread over its hubs
	tierScope   string        // sync: "own" (each tier edge holds the tenants it writes) or "all"
	lease       time.Duration // the tier hubs' --lease-timeout
	tierProcs   int           // the tier hubs' GOMAXPROCS; 0: their own default
	kills       int           // takeover: kills of the sequencer
	cloudhub    string        // the binary the tier runs start their hubs with
	cpuProfile  string
	json        bool
}

// Run is `cloudhub bench ARGS`. It measures the sync path with a hub and edges in this process,
// each with its own SQLite data dir, over real WebSockets on 127.0.0.1:
//
//   - sync: an edge's outbox of --docs documents written offline, then the
//     sync client starts; time until the hub has confirmed them all and the
//     edge holds every outcome. Baseline: the same local writes. With
//     --postgres, the same again with the hub kept in PostgreSQL, and the
//     ratio of the two.
//   - catchup: a hub holding --catchup-docs documents; time for a new edge to
//     apply the whole log.
//   - fanout: --edges edges connected; latency of --writes hub writes until
//     every edge has applied each. Baseline: the same writes with no edge.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var cfg benchConfig
	fs := flag.NewFlagSet("cloudhub bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	runs := fs.String("run", "", "runs to do, comma-separated: sync, catchup, fanout, takeover (default: all; takeover only with --postgres)")
	fs.IntVar(&cfg.docs, "docs", 100000, "sync: documents in the edge's outbox")
	fs.IntVar(&cfg.catchupDocs, "catchup-docs", 1000000, "catchup: documents the hub holds when the new edge connects")
	fs.IntVar(&cfg.edges, "edges", 100, "fanout: edges connected to the hub")
	fs.IntVar(&cfg.writes, "writes", 500, "fanout: hub writes measured (and as many for the baseline)")
	fs.DurationVar(&cfg.interval, "interval", 2*time.Millisecond, "fanout: time between the starts of two hub writes (0: back to back)")
	fs.IntVar(&cfg.size, "size", 1024, "document size in bytes")
	fs.IntVar(&cfg.clients, "clients", 32, "sync: concurrent writers filling the edge's outbox")
	fs.IntVar(&cfg.loadWorkers, "load-workers", 4, "catchup: goroutines loading the hub with push batches")
	fs.DurationVar(&cfg.timeout, "timeout", 10*time.Minute, "give up on a run that has not finished after this long")
	fs.StringVar(&cfg.dir, "dir", "", "where to put the data dirs (default: a new temp dir); each run's dir is removed after it")
	fs.StringVar(&cfg.durability, "durability", sqlitestore.DurabilityFull, "full or normal, for the hub and every edge")
	fs.StringVar(&cfg.postgres, "postgres", "", "sync: measure a hub kept in this PostgreSQL database too (postgres://user:password@host:port/db; "+
		"the run creates a schema of its own in it and drops it after)")
	fs.IntVar(&cfg.tierHubs, "tier-hubs", 3, "sync, fanout and takeover with --postgres: cloudhub processes of the hub tier (0: sync and fanout without the tier's rows)")
	fs.IntVar(&cfg.tierEdges, "tier-edges", 3, "sync with --postgres: edges of the hub tier's run, spread over its hubs, the --docs split among them")
	fs.StringVar(&cfg.tierScope, "tier-scope", "own", "sync with --postgres: own (each tier edge's scope is the partition keys it writes, as the one edge of the single-hub runs holds what it writes) or all (every tier edge also applies the others' documents)")
	fs.DurationVar(&cfg.lease, "lease-timeout", tierLeaseTimeout, "the hub tier's --lease-timeout")
	fs.IntVar(&cfg.kills, "kills", 10, "takeover: kills of the sequencer")
	fs.StringVar(&cfg.cloudhub, "cloudhub", "", "the cloudhub binary the hub tier runs start (default: this program)")
	fs.IntVar(&cfg.tierProcs, "tier-gomaxprocs", runtime.NumCPU(), "GOMAXPROCS of each hub of the tier: they share the machine's CPUs with each other and PostgreSQL (0: cloudhub's default, 2 per CPU)")
	fs.StringVar(&cfg.cpuProfile, "cpuprofile", "", "write a CPU profile of each run's measured phase to this file, the run's name inserted before the extension")
	fs.BoolVar(&cfg.json, "json", false, "print the results as JSON")
	if err := cli.ParseFlags(fs, args, "CLOUDHUB_BENCH_"); err != nil {
		return err
	}
	if *runs == "" {
		*runs = "sync,catchup,fanout"
		if cfg.postgres != "" && cfg.tierHubs != 0 {
			*runs += "," + runTakeover
		}
	}
	for _, r := range strings.Split(*runs, ",") {
		r = strings.TrimSpace(r)
		switch {
		case r == "":
		case r != runSync && r != runCatchup && r != runFanout && r != runTakeover:
			return cli.UsageError(fmt.Sprintf("--run %q: unknown run %q: want sync, catchup, fanout or takeover", *runs, r))
		case r == runTakeover && cfg.postgres == "":
			return cli.UsageError("--run takeover needs --postgres: the hub tier keeps its state in PostgreSQL")
		case !slices.Contains(cfg.runs, r):
			cfg.runs = append(cfg.runs, r)
		}
	}
	switch {
	case len(cfg.runs) == 0:
		return cli.UsageError("--run is empty: want sync, catchup or fanout")
	case cfg.docs <= 0, cfg.catchupDocs <= 0, cfg.edges <= 0, cfg.writes <= 0, cfg.clients <= 0, cfg.loadWorkers <= 0:
		return cli.UsageError("--docs, --catchup-docs, --edges, --writes, --clients and --load-workers must be positive")
	case cfg.tierHubs != 0 && (cfg.tierHubs < 2 || cfg.tierHubs > 16):
		return cli.UsageError(fmt.Sprintf("--tier-hubs %d: want 0 or 2..16", cfg.tierHubs))
	case cfg.tierHubs == 0 && slices.Contains(cfg.runs, runTakeover):
		return cli.UsageError("--run takeover needs a hub tier: --tier-hubs 2..16")
	case cfg.tierEdges < 1 || cfg.tierEdges > 1000:
		return cli.UsageError(fmt.Sprintf("--tier-edges %d: want 1..1000", cfg.tierEdges))
	case cfg.tierProcs < 0:
		return cli.UsageError(fmt.Sprintf("--tier-gomaxprocs %d: want 0 or more", cfg.tierProcs))
	case cfg.tierScope != "own" && cfg.tierScope != "all":
		return cli.UsageError(fmt.Sprintf("--tier-scope %q: want own or all", cfg.tierScope))
	case cfg.tierScope == "own" && cfg.tierEdges > bench.Tenants:
		return cli.UsageError(fmt.Sprintf("--tier-edges %d with --tier-scope own: want at most %d, one partition key or more per edge", cfg.tierEdges, bench.Tenants))
	case cfg.lease < time.Second || cfg.lease > time.Minute:
		return cli.UsageError(fmt.Sprintf("--lease-timeout %v: want 1s..1m", cfg.lease))
	case cfg.kills < 1 || cfg.kills > 1000:
		return cli.UsageError(fmt.Sprintf("--kills %d: want 1..1000", cfg.kills))
	case cfg.size < 64 || cfg.size > replica.MaxDocumentSize:
		return cli.UsageError(fmt.Sprintf("--size %d: want 64..%d", cfg.size, replica.MaxDocumentSize))
	case cfg.interval < 0 || cfg.timeout <= 0:
		return cli.UsageError("--interval must not be negative and --timeout must be positive")
	case cfg.durability != sqlitestore.DurabilityFull && cfg.durability != sqlitestore.DurabilityNormal:
		return cli.UsageError(fmt.Sprintf("--durability %q: want full or normal", cfg.durability))
	}

	if cfg.cloudhub == "" {
		exe, err := os.Executable()
		if err != nil {
			return fmt.Errorf("--cloudhub: %w", err)
		}
		cfg.cloudhub = exe
	}
	root := cfg.dir
	if root == "" {
		tmp, err := os.MkdirTemp("", "cloudhub-bench-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(tmp)
		root = tmp
	} else if err := os.MkdirAll(root, 0o700); err != nil {
		return err
	}
	errOut := &lockedWriter{w: stderr}
	b := &bencher{
		cfg:    cfg,
		root:   root,
		stderr: errOut,
		log:    slog.New(slog.NewTextHandler(errOut, &slog.HandlerOptions{Level: slog.LevelInfo})),
		quiet:  slog.New(slog.NewTextHandler(errOut, &slog.HandlerOptions{Level: slog.LevelWarn})),
	}
	machine := bench.ThisMachine()
	fmt.Fprintf(errOut, "cloudhub bench: %s; durability %s; %d-byte documents; dir %s\n", machine, cfg.durability, cfg.size, root)

	var rows []benchRow
	loads := map[string]float64{}
	for _, name := range cfg.runs {
		if err := ctx.Err(); err != nil {
			return err
		}
		f := map[string]func(context.Context, string) ([]benchRow, error){runSync: b.syncAll, runCatchup: b.catchup, runFanout: b.fanoutAll,
			runTakeover: b.takeover}[name]
		dir, err := os.MkdirTemp(root, name+"-")
		if err != nil {
			return err
		}
		fmt.Fprintf(errOut, "%s: start\n", name)
		rs, err := f(ctx, dir)
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		loads[name] = bench.LoadAverage()
		for i, r := range rs {
			if r.Hub == "" {
				rs[i].Hub = hubSQLite
			}
			fmt.Fprintf(errOut, "%s: %s\n", name, rs[i])
		}
		fmt.Fprintf(errOut, "%s: load average %.2f\n", name, loads[name])
		rows = append(rows, rs...)
		if err := os.RemoveAll(dir); err != nil {
			return err
		}
	}
	if cfg.json {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(struct {
			Machine     bench.Machine      `json:"machine"`
			Durability  string             `json:"durability"`
			Size        int                `json:"size"`
			Rows        []benchRow         `json:"rows"`
			LoadAverage map[string]float64 `json:"loadAverage"` // 1 min, at the end of each run
		}{machine, cfg.durability, cfg.size, rows, loads})
	}
	fmt.Fprintf(stdout, "cloudhub bench: hub and edges in one process, real SQLite data dirs, WebSockets over 127.0.0.1\n")
	fmt.Fprintf(stdout, "machine: %s\n", machine)
	fmt.Fprintf(stdout, "durability: %s for the hub and every edge%s; %d-byte documents\n", cfg.durability, durabilityNote(cfg.durability), cfg.size)
	if cfg.postgres != "" {
		fmt.Fprintf(stdout, "postgres: sync also on a hub kept in PostgreSQL %s (its own server settings; synchronous_commit on)\n", pgServer(ctx, cfg.postgres))
	}
	fmt.Fprintln(stdout)
	fmt.Fprintf(stdout, "%-8s %-8s %-56s %9s %9s %9s %9s %9s %5s  %s\n", "run", "hub", "measurement", "docs", "time", "docs/s", "p50", "p99", "cpu", "target")
	for _, r := range rows {
		cpu := "-"
		if r.CPUCores > 0 {
			cpu = strconv.FormatFloat(r.CPUCores, 'f', 2, 64)
		}
		rate := fmtRate(r.DocsPerSec)
		if r.Ratio > 0 {
			rate = strconv.FormatFloat(r.Ratio, 'f', 2, 64) + "x"
		}
		fmt.Fprintf(stdout, "%-8s %-8s %-56s %9d %9s %9s %9s %9s %5s  %s\n", r.Run, r.Hub, r.Name, r.Docs, fmtSeconds(r.Seconds), rate,
			fmtMillis(r.P50ms), fmtMillis(r.P99ms), cpu, r.targetText())
	}
	fmt.Fprintf(stdout, "\ncpu: cores this process kept busy during the measurement (CPU time / wall time; %d available)\n", min(machine.NumCPU, machine.GOMAXPROCS))
	fmt.Fprintf(stdout, "load average (1 min) at the end of each run:")
	for _, name := range cfg.runs {
		fmt.Fprintf(stdout, " %s %.2f", name, loads[name])
	}
	fmt.Fprintln(stdout)
	return nil
}

func durabilityNote(d string) string {
	if d == sqlitestore.DurabilityFull {
		return " (fsync at every commit, like production)"
	}
	return " (fsync at checkpoints only; production uses full)"
}

// benchRow is one line of the report.
type benchRow struct {
	Run        string  `json:"run"`
	Hub        string  `json:"hub"` // the hub's store: sqlite or postgres
	Name       string  `json:"name"`
	Docs       int     `json:"docs"`
	Seconds    float64 `json:"seconds,omitempty"`
	DocsPerSec float64 `json:"docsPerSec,omitempty"`
	P50ms      float64 `json:"p50ms,omitempty"`
	P99ms      float64 `json:"p99ms,omitempty"`
	MaxMs      float64 `json:"maxMs,omitempty"`
	// CPUCores is the process's CPU time over the wall time of the phase
	// measured: below the cores available, it waited (for I/O, or for a
	// machine others keep busy).
	CPUCores float64 `json:"cpuCores,omitempty"`
	// CPU is the CPU time per document of each process of the run (the
	// hub tier's sync run).
	CPU *cpuPerDoc `json:"cpuPerDoc,omitempty"`
	// Ratio compares two rows' docs/s (shown instead of docs/s).
	Ratio  float64 `json:"ratio,omitempty"`
	Target string  `json:"target,omitempty"`
	Met    *bool   `json:"met,omitempty"`
}

func (r benchRow) targetText() string {
	if r.Target == "" {
		return ""
	}
	if *r.Met {
		return r.Target + ": met"
	}
	return r.Target + ": MISSED"
}

func (r benchRow) String() string {
	s := fmt.Sprintf("%s: %d docs", r.Name, r.Docs)
	if r.Hub != "" {
		s = r.Hub + " hub, " + s
	}
	if r.Seconds > 0 {
		s += " in " + fmtSeconds(r.Seconds)
	}
	if r.DocsPerSec > 0 {
		s += fmt.Sprintf(", %s docs/s", fmtRate(r.DocsPerSec))
	}
	if r.Ratio > 0 {
		s += fmt.Sprintf(", %.2fx", r.Ratio)
	}
	if r.P50ms > 0 {
		s += fmt.Sprintf(", p50 %s, p99 %s, max %s", fmtMillis(r.P50ms), fmtMillis(r.P99ms), fmtMillis(r.MaxMs))
	}
	if r.CPUCores > 0 {
		s += fmt.Sprintf(", %.2f cores busy", r.CPUCores)
	}
	if r.Target != "" {
		s += " (target " + r.targetText() + ")"
	}
	if r.CPU != nil {
		s += "; " + r.CPU.String()
	}
	return s
}

// throughputRow is a row for n documents done in d.
func throughputRow(run, name string, n int, d time.Duration) benchRow {
	return benchRow{Run: run, Name: name, Docs: n, Seconds: d.Seconds(), DocsPerSec: float64(n) / d.Seconds()}
}

// phase measures the wall and CPU time of part of a run.
type phase struct {
	start time.Time
	cpu   time.Duration
}

// startPhase starts a measured phase on a collected heap (bench.Settle).
func startPhase() phase {
	bench.Settle()
	return phase{time.Now(), bench.ProcessCPU()}
}

// cores is the CPU time used since the phase started over the wall time.
func (p phase) cores() float64 {
	return float64(bench.ProcessCPU()-p.cpu) / float64(time.Since(p.start))
}

// latencyRow is a row for a set of latencies.
func latencyRow(run, name string, lats []time.Duration, elapsed time.Duration) benchRow {
	s := bench.Summarize(name, lats, elapsed)
	ms := func(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e6 }
	r := throughputRow(run, name, s.Ops, elapsed)
	r.P50ms, r.P99ms, r.MaxMs = ms(s.P50), ms(s.P99), ms(s.Max)
	return r
}

func (r *benchRow) target(text string, met bool) {
	r.Target, r.Met = text, &met
}

func fmtSeconds(s float64) string {
	if s == 0 {
		return "-"
	}
	return strconv.FormatFloat(s, 'f', 2, 64) + "s"
}

func fmtRate(r float64) string {
	if r == 0 {
		return "-"
	}
	return strconv.FormatFloat(r, 'f', 0, 64)
}

func fmtMillis(ms float64) string {
	if ms == 0 {
		return "-"
	}
	if ms < 10 {
		return strconv.FormatFloat(ms, 'f', 2, 64) + "ms"
	}
	return strconv.FormatFloat(ms, 'f', 1, 64) + "ms"
}

// bencher runs the benchmark's runs.
type bencher struct {
	cfg    benchConfig
	root   string
	stderr io.Writer    // safe for concurrent use: progress and the loggers share it
	log    *slog.Logger // text, info: the sync client's connection and catch-up lines
	quiet  *slog.Logger // text, warnings only: for the many sessions of fanout
}

// lockedWriter serialises writes from the loggers and the progress lines.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (w *lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.w.Write(p)
}

// cleanups are undone in reverse order; each run's teardown.
type cleanups []func() error

func (c *cleanups) add(f func() error) { *c = append(*c, f) }

func (c *cleanups) run() error {
	var err error
	for i := len(*c) - 1; i >= 0; i-- {
		err = errors.Join(err, (*c)[i]())
	}
	*c = nil
	return err
}

func closeCtx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), 30*time.Second)
}

func benchContainer() replica.Container {
	return replica.Container{Name: bench.Container, PartitionKey: bench.PartitionKey}
}

// The stores a benchmark hub can keep its state in.
const (
	hubSQLite   = "sqlite"
	hubPostgres = "postgres"
	hubTier     = "tier" // --tier-hubs cloudhub processes on one PostgreSQL database
)

// benchHub is a hub served as in production (web.NewHub) on a loopback port.
type benchHub struct {
	h      *hub.Hub
	url    string
	srv    *http.Server
	cancel context.CancelFunc
	served chan error
	drop   func() error // removes what the hub's store kept (PostgreSQL), after the hub closed
}

// startHub starts a hub on the SQLite store in dir.
func (b *bencher) startHub(ctx context.Context, dir string, log *slog.Logger) (*benchHub, error) {
	return b.startHubOn(ctx, hubSQLite, dir, log)
}

// startHubOn starts a hub keeping its state in store: SQLite in dir, or a
// new schema of the --postgres database, dropped when the hub closes.
func (b *bencher) startHubOn(ctx context.Context, store, dir string, log *slog.Logger) (*benchHub, error) {
	var st hub.Store
	drop := func() error { return nil }
	switch store {
	case hubSQLite:
		st = sqlitehub.New(sqlitehub.Config{Dir: dir, Durability: b.cfg.durability, Logger: log})
	case hubPostgres:
		url, d, err := pgSchema(ctx, b.cfg.postgres)
		if err != nil {
			return nil, err
		}
		st, drop = pghub.New(pghub.Config{URL: url, Logger: log}), d
	default:
		return nil, fmt.Errorf("unknown hub store %q", store)
	}
	h := hub.New(hub.Config{Store: st, Logger: log})
	if err := h.Open(ctx); err != nil {
		return nil, errors.Join(fmt.Errorf("open hub: %w", err), drop())
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		cctx, cancel := closeCtx()
		defer cancel()
		return nil, errors.Join(err, h.Close(cctx), drop())
	}
	base, cancel := context.WithCancel(context.Background())
	bh := &benchHub{h: h, url: "http://" + ln.Addr().String(), cancel: cancel, served: make(chan error, 1), drop: drop}
	bh.srv = &http.Server{
		Handler:           web.NewHub(h, web.HubOptions{Logger: log, AdminToken: "bench-admin-token", BaseContext: base}),
		ReadHeaderTimeout: 10 * time.Second,
		BaseContext:       func(net.Listener) context.Context { return base },
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	go func() { bh.served <- bh.srv.Serve(ln) }()
	return bh, nil
}

// close waits for the sessions to end (close the edges' sync clients
// first), then stops the server and closes the hub.
func (bh *benchHub) close() error {
	for deadline := time.Now().Add(5 * time.Second); bh.h.EdgesOnline() > 0 && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	bh.cancel()
	cctx, cancel := closeCtx()
	defer cancel()
	err := bh.srv.Shutdown(cctx)
	if serr := <-bh.served; !errors.Is(serr, http.ErrServerClosed) {
		err = errors.Join(err, serr)
	}
	err = errors.Join(err, bh.h.Close(cctx))
	return errors.Join(err, bh.drop())
}

func (b *bencher) openEdge(ctx context.Context, dir string, cl *cleanups) (*edge.Replica, error) {
	r := edge.New(edge.Config{Dir: dir, Durability: b.cfg.durability})
	if err := r.Open(ctx); err != nil {
		return nil, fmt.Errorf("open edge: %w", err)
	}
	cl.add(func() error {
		cctx, cancel := closeCtx()
		defer cancel()
		return r.Close(cctx)
	})
	return r, nil
}

func startSyncer(r *edge.Replica, url, token string, log *slog.Logger, cl *cleanups) (*edge.Syncer, error) {
	s, err := edge.NewSyncer(r, edge.SyncConfig{Hubs: []string{url}, Token: token, Logger: log})
	if err != nil {
		return nil, err
	}
	if err := s.Open(context.Background()); err != nil {
		return nil, err
	}
	cl.add(func() error {
		cctx, cancel := closeCtx()
		defer cancel()
		return s.Close(cctx)
	})
	return s, nil
}

// profile starts a CPU profile of run's measured phase; the returned stop
// ends it.
func (b *bencher) profile(run string, cl *cleanups) (stop func() error, err error) {
	if b.cfg.cpuProfile == "" {
		return func() error { return nil }, nil
	}
	ext := filepath.Ext(b.cfg.cpuProfile)
	path := strings.TrimSuffix(b.cfg.cpuProfile, ext) + "." + run + ext
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	var once sync.Once
	stop = func() error {
		var err error
		once.Do(func() {
			pprof.StopCPUProfile()
			err = f.Close()
			fmt.Fprintf(b.stderr, "%s: CPU profile of the measured phase in %s\n", run, path)
		})
		return err
	}
	cl.add(stop)
	return stop, nil
}

// writerMark is a writer's counters at some point, to report the work done
// since.
type writerMark struct {
	st                  *sqlitestore.WriterStats
	commits, writes, ns int64
}

func markWriter(st *sqlitestore.WriterStats) writerMark {
	return writerMark{st, st.Commits.Load(), st.Writes.Load(), st.CommitNanos.Load()}
}

func (m writerMark) String() string {
	c, w, ns := m.st.Commits.Load()-m.commits, m.st.Writes.Load()-m.writes, m.st.CommitNanos.Load()-m.ns
	return fmt.Sprintf("%d commits, %.1f jobs each, %.2f ms each (%.1f s in all)", c, float64(w)/float64(max(c, 1)), float64(ns)/float64(max(c, 1))/1e6, float64(ns)/1e9)
}

// syncAll is the sync run on every hub store asked for: SQLite, then
// PostgreSQL with --postgres, and how the two compare.
func (b *bencher) syncAll(ctx context.Context, dir string) ([]benchRow, error) {
	rows, err := b.sync(ctx, hubSQLite, filepath.Join(dir, hubSQLite))
	if err != nil || b.cfg.postgres == "" {
		return rows, err
	}
	lite := rows[len(rows)-1]
	pg, err := b.sync(ctx, hubPostgres, filepath.Join(dir, hubPostgres))
	if err != nil {
		return nil, fmt.Errorf("hub on PostgreSQL: %w", err)
	}
	e2e := &pg[len(pg)-1]
	e2e.target(fmt.Sprintf(">= %d docs/s", pgSyncTargetDocsPerSec), e2e.DocsPerSec >= pgSyncTargetDocsPerSec)
	ratio := benchRow{Run: runSync, Hub: hubPostgres, Name: "end to end, postgres hub / sqlite hub", Docs: b.cfg.docs,
		Ratio: e2e.DocsPerSec / lite.DocsPerSec}
	ratio.target(fmt.Sprintf(">= %.2fx", pgTargetRatio), ratio.Ratio >= pgTargetRatio)
	rows = append(append(rows, pg...), ratio)
	if b.cfg.tierHubs == 0 {
		return rows, nil
	}
	tier, err := b.syncTier(ctx, filepath.Join(dir, hubTier))
	if err != nil {
		return nil, fmt.Errorf("hub tier: %w", err)
	}
	te := &tier[len(tier)-1]
	te.target(fmt.Sprintf(">= %d docs/s", pgSyncTargetDocsPerSec), te.DocsPerSec >= pgSyncTargetDocsPerSec)
	tratio := benchRow{Run: runSync, Hub: hubTier, Name: fmt.Sprintf("end to end, %d-hub tier / sqlite hub", b.cfg.tierHubs), Docs: b.cfg.docs,
		Ratio: te.DocsPerSec / lite.DocsPerSec}
	tratio.target(fmt.Sprintf(">= %.2fx", pgTargetRatio), tratio.Ratio >= pgTargetRatio)
	return append(append(rows, tier...), tratio), nil
}

// fanoutAll is the fan-out run on the SQLite hub, then, with --postgres,
// on the hub tier.
func (b *bencher) fanoutAll(ctx context.Context, dir string) ([]benchRow, error) {
	rows, err := b.fanout(ctx, filepath.Join(dir, hubSQLite))
	if err != nil || b.cfg.postgres == "" || b.cfg.tierHubs == 0 {
		return rows, err
	}
	tier, err := b.fanoutTier(ctx, filepath.Join(dir, hubTier))
	if err != nil {
		return nil, fmt.Errorf("hub tier: %w", err)
	}
	return append(rows, tier...), nil
}

// sync: an edge's outbox written offline, then pushed to a hub keeping its
// state in store.
func (b *bencher) sync(ctx context.Context, store, dir string) (rows []benchRow, err error) {
	var cl cleanups
	defer func() { err = errors.Join(err, cl.run()) }()
	n := b.cfg.docs
	bh, err := b.startHubOn(ctx, store, filepath.Join(dir, "hub"), b.log)
	if err != nil {
		return nil, err
	}
	cl.add(bh.close)
	h := bh.h
	if _, _, err := h.PutContainer(ctx, benchContainer()); err != nil {
		return nil, err
	}
	token, err := h.RegisterEdge(ctx, "bench-sync", nil)
	if err != nil {
		return nil, err
	}
	r, err := b.openEdge(ctx, filepath.Join(dir, "edge"), &cl)
	if err != nil {
		return nil, err
	}
	if _, _, err := r.PutContainer(ctx, benchContainer()); err != nil {
		return nil, err
	}

	bodies := make([][]byte, n)
	for i := range bodies {
		bodies[i] = bench.Doc(i, b.cfg.size)
	}
	fmt.Fprintf(b.stderr, "sync: hub on %s\n", store)
	fmt.Fprintf(b.stderr, "sync: writing %d documents at the edge through the Go API, %d writers, sync client not started ...\n", n, b.cfg.clients)
	edgeLocal, localPhase := markWriter(r.WriterStats()), startPhase()
	local, err := bench.Run("", n, b.cfg.clients, func(i int) error {
		_, err := r.Create(ctx, bench.Container, bodies[i])
		return err
	})
	if err != nil {
		return nil, err
	}
	bodies = nil
	if got := r.Pending(); got != int64(n) {
		return nil, fmt.Errorf("edge has %d writes pending after %d local writes", got, n)
	}
	localRow := latencyRow(runSync, fmt.Sprintf("edge local writes, %d writers, offline (baseline)", b.cfg.clients), local.Lats, local.Elapsed)
	localRow.CPUCores = localPhase.cores()
	fmt.Fprintf(b.stderr, "sync: %s; edge writer: %s\n", localRow, edgeLocal)

	head0 := h.Head()
	hubMark, edgeMark := markWriter(h.WriterStats()), markWriter(r.WriterStats())
	stopProfile, err := b.profile(runSync, &cl)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(b.stderr, "sync: starting the sync client with %d writes in the outbox ...\n", n)
	ph := startPhase()
	start := ph.start
	if _, err := startSyncer(r, bh.url, token, b.log, &cl); err != nil {
		return nil, err
	}
	wctx, cancel := context.WithTimeout(ctx, b.cfg.timeout)
	defer cancel()
	tick := time.NewTicker(progressEvery)
	defer tick.Stop()
	var hubDone, edgeDone time.Duration
	lastDone, lastAt := int64(0), start
	for {
		hubCh, edgeCh := h.Changed(), r.Changed()
		confirmed, pending := h.Head()-head0, r.Pending()
		if hubDone == 0 && confirmed >= int64(n) {
			hubDone = time.Since(start)
		}
		if pending == 0 {
			edgeDone = time.Since(start)
			if confirmed != int64(n) {
				return nil, fmt.Errorf("the edge has every outcome but the hub confirmed %d of %d writes", confirmed, n)
			}
			break
		}
		select {
		case <-hubCh:
		case <-edgeCh:
		case now := <-tick.C:
			done := int64(n) - pending
			fmt.Fprintf(b.stderr, "sync: hub confirmed %d/%d, edge has %d outcomes, applied LSN %d; %.0f outcomes/s over the last %s\n",
				confirmed, n, done, r.ResumeLSN(), float64(done-lastDone)/now.Sub(lastAt).Seconds(), progressEvery)
			lastDone, lastAt = done, now
		case <-wctx.Done():
			return nil, fmt.Errorf("after %s: hub confirmed %d of %d, edge still has %d pending: %w",
				time.Since(start).Round(time.Millisecond), confirmed, n, pending, context.Cause(wctx))
		}
	}
	cores := ph.cores()
	if err := stopProfile(); err != nil {
		return nil, err
	}
	fmt.Fprintf(b.stderr, "sync: hub writer: %s; edge writer: %s\n", hubMark, edgeMark)
	hubRow := throughputRow(runSync, "hub confirmed all (from sync client start)", n, hubDone)
	e2e := throughputRow(runSync, "end to end: hub confirmed all, edge has every outcome", n, edgeDone)
	e2e.CPUCores = cores
	if store == hubSQLite {
		e2e.target(fmt.Sprintf(">= %d docs/s", syncTargetDocsPerSec), e2e.DocsPerSec >= syncTargetDocsPerSec)
	}
	rows = []benchRow{localRow, hubRow, e2e}
	for i := range rows {
		rows[i].Hub = store
	}
	return rows, nil
}

// catchup: a hub holding many documents, then a new edge.
func (b *bencher) catchup(ctx context.Context, dir string) (rows []benchRow, err error) {
	var cl cleanups
	defer func() { err = errors.Join(err, cl.run()) }()
	m := b.cfg.catchupDocs
	bh, err := b.startHub(ctx, filepath.Join(dir, "hub"), b.log)
	if err != nil {
		return nil, err
	}
	cl.add(bh.close)
	h := bh.h
	if _, _, err := h.PutContainer(ctx, benchContainer()); err != nil {
		return nil, err
	}
	hubMark, loadPhase := markWriter(h.WriterStats()), startPhase()
	load, err := b.loadHub(ctx, h, m)
	if err != nil {
		return nil, err
	}
	loadRow := throughputRow(runCatchup, fmt.Sprintf("hub load: push batches of %d, %d goroutines", wire.MaxPushVersions, b.cfg.loadWorkers), m, load)
	loadRow.CPUCores = loadPhase.cores()
	fmt.Fprintf(b.stderr, "catchup: %s; hub writer: %s\n", loadRow, hubMark)

	token, err := h.RegisterEdge(ctx, "bench-catchup", nil)
	if err != nil {
		return nil, err
	}
	r, err := b.openEdge(ctx, filepath.Join(dir, "edge"), &cl)
	if err != nil {
		return nil, err
	}
	head := h.Head()
	stopProfile, err := b.profile(runCatchup, &cl)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(b.stderr, "catchup: a new edge connects to a hub at LSN %d ...\n", head)
	edgeMark, ph := markWriter(r.WriterStats()), startPhase()
	start := ph.start
	if _, err := startSyncer(r, bh.url, token, b.log, &cl); err != nil {
		return nil, err
	}
	wctx, cancel := context.WithTimeout(ctx, b.cfg.timeout)
	defer cancel()
	tick := time.NewTicker(progressEvery)
	defer tick.Stop()
	lastLSN, lastAt := int64(0), start
	for {
		changed := r.Changed()
		applied := r.ResumeLSN()
		if applied == h.Head() {
			break
		}
		select {
		case <-changed:
		case now := <-tick.C:
			fmt.Fprintf(b.stderr, "catchup: applied LSN %d / head %d (%.1f%%), %.0f docs/s over the last %s, %.0f docs/s overall\n",
				applied, head, 100*float64(applied)/float64(max(head, 1)), float64(applied-lastLSN)/now.Sub(lastAt).Seconds(), progressEvery,
				float64(applied)/now.Sub(start).Seconds())
			lastLSN, lastAt = applied, now
		case <-wctx.Done():
			return nil, fmt.Errorf("after %s: edge applied up to LSN %d of %d: %w", time.Since(start).Round(time.Millisecond), applied, head, context.Cause(wctx))
		}
	}
	took, cores := time.Since(start), ph.cores()
	if err := stopProfile(); err != nil {
		return nil, err
	}
	fmt.Fprintf(b.stderr, "catchup: edge writer: %s\n", edgeMark)
	row := throughputRow(runCatchup, "new edge catch-up: ResumeLSN() == hub Head()", m, took)
	row.CPUCores = cores
	row.target(fmt.Sprintf("< %.0fs", catchupTarget.Seconds()), took < catchupTarget)
	return []benchRow{loadRow, row}, nil
}

// loadHub writes m documents into the hub as push batches from a node that
// is not connected, from several goroutines so that group commit merges them.
func (b *bencher) loadHub(ctx context.Context, h *hub.Hub, m int) (time.Duration, error) {
	const node = "eloader"
	batch := wire.MaxPushVersions
	batches := (m + batch - 1) / batch
	var next, loaded atomic.Int64
	var firstErr error
	var errOnce sync.Once
	var wg sync.WaitGroup
	ts := time.Now().Unix()
	head0 := h.Head()
	fmt.Fprintf(b.stderr, "catchup: loading %d documents into the hub ...\n", m)
	start := time.Now()
	for range b.cfg.loadWorkers {
		wg.Go(func() {
			for {
				bi := int(next.Add(1) - 1)
				if bi >= batches || ctx.Err() != nil {
					return
				}
				lo, hi := bi*batch, min((bi+1)*batch, m)
				vs := make([]wire.Version, 0, hi-lo)
				for i := lo; i < hi; i++ {
					vs = append(vs, wire.Version{Container: bench.Container, ID: bench.DocID(i), Op: replica.OpCreate,
						Version: node + "-" + strconv.Itoa(i+1), TS: ts, Body: bench.Doc(i, b.cfg.size)})
				}
				outs, _, err := h.Push(ctx, node, nil, vs)
				for i := 0; err == nil && i < len(outs); i++ {
					if outs[i].Outcome != replica.OutcomeConfirmed {
						err = fmt.Errorf("load: %s got %s: %s", outs[i].Version, outs[i].Outcome, outs[i].Reason)
					}
				}
				if err != nil {
					errOnce.Do(func() { firstErr = err })
					next.Store(int64(batches)) // stop the others
					return
				}
				loaded.Add(int64(len(vs)))
			}
		})
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	tick := time.NewTicker(progressEvery)
	defer tick.Stop()
	for waiting := true; waiting; {
		select {
		case <-done:
			waiting = false
		case now := <-tick.C:
			l := loaded.Load()
			fmt.Fprintf(b.stderr, "catchup: loaded %d/%d documents, %.0f docs/s\n", l, m, float64(l)/now.Sub(start).Seconds())
		}
	}
	took := time.Since(start)
	if firstErr != nil {
		return 0, firstErr
	}
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	if got := h.Head() - head0; got != int64(m) {
		return 0, fmt.Errorf("load: hub head moved by %d, want %d", got, m)
	}
	return took, nil
}

// fanout: hub writes reaching many edges.
func (b *bencher) fanout(ctx context.Context, dir string) (rows []benchRow, err error) {
	var cl cleanups
	defer func() { err = errors.Join(err, cl.run()) }()
	k, w := b.cfg.edges, b.cfg.writes
	bh, err := b.startHub(ctx, filepath.Join(dir, "hub"), b.quiet)
	if err != nil {
		return nil, err
	}
	cl.add(bh.close)
	h := bh.h
	if _, _, err := h.PutContainer(ctx, benchContainer()); err != nil {
		return nil, err
	}
	bodies := make([][]byte, 2*w)
	for i := range bodies {
		bodies[i] = bench.Doc(i, b.cfg.size)
	}

	fmt.Fprintf(b.stderr, "fanout: baseline: %d hub writes, %s apart, no edge connected ...\n", w, b.cfg.interval)
	basePhase := startPhase()
	_, baseLats, _, err := b.paceWrites(ctx, h, bodies[:w])
	if err != nil {
		return nil, err
	}
	baseRow := latencyRow(runFanout, "hub write, 0 edges (commit only, baseline)", baseLats, time.Since(basePhase.start))
	baseRow.CPUCores = basePhase.cores()
	fmt.Fprintf(b.stderr, "fanout: %s\n", baseRow)

	fmt.Fprintf(b.stderr, "fanout: opening and connecting %d edges ...\n", k)
	connStart := time.Now()
	edges, err := b.openFanoutEdges(ctx, dir, bh, k, &cl)
	if err != nil {
		return nil, err
	}
	head := h.Head()
	wctx, cancel := context.WithTimeout(ctx, b.cfg.timeout)
	defer cancel()
	for i, r := range edges {
		for r.ResumeLSN() < head {
			select {
			case <-r.Changed():
			case <-wctx.Done():
				return nil, fmt.Errorf("edge %d applied up to %d of %d: %w", i, r.ResumeLSN(), head, context.Cause(wctx))
			}
		}
	}
	fmt.Fprintf(b.stderr, "fanout: %d edges connected and caught up (LSN %d) in %s; %d sessions online\n",
		k, head, time.Since(connStart).Round(time.Millisecond), h.EdgesOnline())
	if got := h.EdgesOnline(); got != k {
		return nil, fmt.Errorf("%d edges online, want %d", got, k)
	}

	base := h.Head()
	applied, allDone := watchEdges(wctx, cancel, edges, base, w, &cl)
	stopProfile, err := b.profile(runFanout, &cl)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(b.stderr, "fanout: %d hub writes, %s apart, %d edges connected ...\n", w, b.cfg.interval, k)
	hubMark, ph := markWriter(h.WriterStats()), startPhase()
	start := ph.start
	sent, commitLats, lsns, err := b.paceWrites(ctx, h, bodies[w:])
	if err != nil {
		return nil, err
	}
	for i, l := range lsns {
		if l != base+int64(i)+1 {
			return nil, fmt.Errorf("write %d got LSN %d, want %d (is something else writing?)", i, l, base+int64(i)+1)
		}
	}
	select {
	case <-allDone:
	case <-wctx.Done():
		behind := 0
		for _, r := range edges {
			if r.ResumeLSN() < base+int64(w) {
				behind++
			}
		}
		return nil, fmt.Errorf("%d of %d edges have not applied all %d writes: %w", behind, k, w, context.Cause(wctx))
	}
	elapsed, cores := time.Since(start), ph.cores()
	if err := stopProfile(); err != nil {
		return nil, err
	}
	fmt.Fprintf(b.stderr, "fanout: hub writer during the writes: %s\n", hubMark)
	last, each := appliedLatencies(sent, applied)
	rows = []benchRow{
		baseRow,
		latencyRow(runFanout, fmt.Sprintf("hub write, %d edges connected (commit only)", k), commitLats, elapsed),
		latencyRow(runFanout, fmt.Sprintf("last of %d edges applied (per write)", k), last, elapsed),
		latencyRow(runFanout, "each edge applied (per write and edge)", each, elapsed),
	}
	// The writes are paced: their rate says nothing.
	for i := range rows {
		rows[i].DocsPerSec = 0
		if i > 0 {
			rows[i].CPUCores = cores
		}
	}
	return rows, nil
}

// paceWrites creates each body at the hub, one at a time, starting one
// every --interval (or at once after the previous one if it took longer).
// It returns when each write started, how long its commit took, and its LSN.
func (b *bencher) paceWrites(ctx context.Context, h *hub.Hub, bodies [][]byte) ([]time.Time, []time.Duration, []int64, error) {
	sent := make([]time.Time, len(bodies))
	lats := make([]time.Duration, len(bodies))
	lsns := make([]int64, len(bodies))
	start := time.Now()
	for i, body := range bodies {
		if err := ctx.Err(); err != nil {
			return nil, nil, nil, err
		}
		if d := time.Until(start.Add(time.Duration(i) * b.cfg.interval)); d > 0 {
			time.Sleep(d)
		}
		t := time.Now()
		it, err := h.Create(ctx, bench.Container, body)
		if err != nil {
			return nil, nil, nil, fmt.Errorf("hub write %d: %w", i, err)
		}
		sent[i], lats[i], lsns[i] = t, time.Since(t), it.LSN
	}
	return sent, lats, lsns, nil
}

// watchEdges starts one watchApplied per edge for the w LSNs after base:
// applied[e] are the times edge e applied each. allDone is closed when every
// edge applied all w. cancel ends the watchers (ctx is its context); cl,
// whatever happens, cancels and waits for them, before the edges close.
func watchEdges(ctx context.Context, cancel context.CancelFunc, edges []*edge.Replica, base int64, w int, cl *cleanups) (applied [][]time.Time, allDone <-chan struct{}) {
	applied = make([][]time.Time, len(edges))
	var wg sync.WaitGroup
	for e, r := range edges {
		applied[e] = make([]time.Time, w)
		wg.Go(func() { watchApplied(ctx, r, base, applied[e]) })
	}
	cl.add(func() error { cancel(); wg.Wait(); return nil })
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	return applied, done
}

// watchApplied records in at[i] when r's resume point reached base+i+1,
// waking at each of r's commits, until it has seen them all or ctx ends.
func watchApplied(ctx context.Context, r *edge.Replica, base int64, at []time.Time) {
	prev, last := base, base+int64(len(at))
	for prev < last {
		changed := r.Changed()
		if cur := min(r.ResumeLSN(), last); cur > prev {
			now := time.Now()
			for l := prev + 1; l <= cur; l++ {
				at[l-base-1] = now
			}
			prev = cur
			continue
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return
		}
	}
}

// openFanoutEdges registers, opens and connects k edges, a few at a time.
func (b *bencher) openFanoutEdges(ctx context.Context, dir string, bh *benchHub, k int, cl *cleanups) ([]*edge.Replica, error) {
	edges := make([]*edge.Replica, k)
	edgeCl := make([]cleanups, k)
	errs := make([]error, k)
	var next atomic.Int64
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= k {
					return
				}
				name := fmt.Sprintf("fan-%03d", i)
				token, err := bh.h.RegisterEdge(ctx, name, nil)
				if err == nil {
					edges[i], err = b.openEdge(ctx, filepath.Join(dir, name), &edgeCl[i])
				}
				if err == nil {
					_, err = startSyncer(edges[i], bh.url, token, b.quiet, &edgeCl[i])
				}
				errs[i] = err
			}
		})
	}
	wg.Wait()
	// Each edge's cleanups close its sync client, then its replica; the
	// run's cleanups undo them in turn.
	for i := range edgeCl {
		cl.add(edgeCl[i].run)
	}
	return edges, errors.Join(errs...)
}

// appliedLatencies is, for writes sent at sent and applied at edge e at
// applied[e], how long after it was sent each write was applied at its last
// edge (last, per write), and at each edge (each, per write and edge).
func appliedLatencies(sent []time.Time, applied [][]time.Time) (last, each []time.Duration) {
	last = make([]time.Duration, len(sent))
	each = make([]time.Duration, 0, len(applied)*len(sent))
	for i := range sent {
		for e := range applied {
			d := applied[e][i].Sub(sent[i])
			each = append(each, d)
			last[i] = max(last[i], d)
		}
	}
	return last, each
}
