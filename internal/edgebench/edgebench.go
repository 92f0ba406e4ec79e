// Package edgebench is `edgenode bench`: it measures an edge replica's
// local write and read paths, through the Go API and through HTTP, against
// raw SQLite. The edgenode binary dispatches to Run; the flags, the table
// and the --json report are the command's.
package edgebench

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"runtime"
	"runtime/pprof"
	"runtime/trace"
	"strings"
	"time"

	"github.com/edgesync/edgesync/internal/bench"
	"github.com/edgesync/edgesync/internal/cli"
	"github.com/edgesync/edgesync/replica"
	"github.com/edgesync/edgesync/replica/edge"
	"github.com/edgesync/edgesync/replica/sqlitestore"
	"github.com/edgesync/edgesync/web"
)

// Run is `edgenode bench ARGS`. It measures local write latency and throughput of the edge replica
// through the Go API and through HTTP, against raw SQLite inserts of the same
// documents measured in the same run.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("edgenode bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	seqDocs := fs.Int("seq-docs", 3000, "documents written one at a time (latency runs)")
	docs := fs.Int("docs", 30000, "documents written by the concurrent runs")
	clients := fs.Int("clients", 32, "concurrent writers in the concurrent runs")
	size := fs.Int("size", 1024, "document size in bytes")
	dir := fs.String("dir", "", "where to put the benchmark databases (default: a new temp dir, removed after)")
	durability := fs.String("durability", sqlitestore.DurabilityFull, "full or normal")
	asJSON := fs.Bool("json", false, "print the results as JSON")
	only := fs.String("only", "", "run only the steps whose name contains this (e.g. HTTP)")
	rounds := fs.Int("rounds", 3, "rounds; each runs every step once, so that baseline and replica interleave in time")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the runs to this file")
	traceFile := fs.String("trace", "", "write an execution trace of the runs to this file (go tool trace; -pprof=sched shows where goroutines waited for a CPU)")
	if err := cli.ParseFlags(fs, args, "EDGENODE_BENCH_"); err != nil {
		return err
	}
	if *seqDocs <= 0 || *docs <= 0 || *clients <= 0 || *rounds <= 0 || *size < 64 || *size > replica.MaxDocumentSize {
		return cli.UsageError("--seq-docs, --docs, --clients and --rounds must be positive, --size 64..2097152")
	}
	root := *dir
	if root == "" {
		tmp, err := os.MkdirTemp("", "edgenode-bench-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(tmp)
		root = tmp
	}
	bodies := make([][]byte, max(*seqDocs, *docs))
	for i := range bodies {
		bodies[i] = bench.Doc(i, *size)
	}
	fmt.Fprintf(stderr, "edgenode bench: %d-byte documents, durability %s, %d CPUs, GOMAXPROCS %d, dir %s\n", *size, *durability, runtime.NumCPU(), runtime.GOMAXPROCS(0), root)

	step := 0
	run := func(name string, f func(dir string) (bench.Summary, error)) (bench.Summary, error) {
		step++
		d := fmt.Sprintf("%s/run%d", root, step)
		if err := os.MkdirAll(d, 0o700); err != nil {
			return bench.Summary{}, err
		}
		fmt.Fprintf(stderr, "  running %s ...\n", name)
		s, err := f(d)
		if err != nil {
			return bench.Summary{}, fmt.Errorf("%s: %w", name, err)
		}
		s.Name = name
		fmt.Fprintf(stderr, "  %s\n", s)
		return s, os.RemoveAll(d)
	}
	rawRun := func(n, c int) func(string) (bench.Summary, error) {
		return func(dir string) (bench.Summary, error) {
			db, err := bench.OpenRawSQLite(ctx, dir, *durability)
			if err != nil {
				return bench.Summary{}, err
			}
			defer db.Close()
			return bench.Run("", n, c, func(i int) error { return db.Insert(ctx, bench.DocID(i), bodies[i]) })
		}
	}
	apiRun := func(n, c int) func(string) (bench.Summary, error) {
		return func(dir string) (bench.Summary, error) {
			r, err := openBenchReplica(ctx, dir, *durability)
			if err != nil {
				return bench.Summary{}, err
			}
			defer r.Close(context.Background())
			defer reportCommits(stderr, r)
			return bench.Run("", n, c, func(i int) error {
				_, err := r.Create(ctx, bench.Container, bodies[i])
				return err
			})
		}
	}
	// probeRun times the disk alone, with the write sizes of a single
	// write's commit and of an HTTP group's.
	probeRun := func(n, size int) func(string) (bench.Summary, error) {
		return func(dir string) (bench.Summary, error) {
			p, err := bench.NewSyncProbe(dir, size)
			if err != nil {
				return bench.Summary{}, err
			}
			defer p.Close()
			return bench.Run("", n, 1, func(int) error { return p.Sync() })
		}
	}
	// loopRun times a loopback round trip between two goroutines, the
	// path each HTTP request takes twice.
	loopRun := func(n int) func(string) (bench.Summary, error) {
		return func(string) (bench.Summary, error) {
			p, err := bench.NewLoopProbe()
			if err != nil {
				return bench.Summary{}, err
			}
			defer p.Close()
			return bench.Run("", n, 1, func(int) error { return p.RoundTrip() })
		}
	}
	httpRun := func(n, c int, stdClient bool) func(string) (bench.Summary, error) {
		return func(dir string) (bench.Summary, error) {
			r, err := openBenchReplica(ctx, dir, *durability)
			if err != nil {
				return bench.Summary{}, err
			}
			defer r.Close(context.Background())
			defer reportCommits(stderr, r)
			return benchHTTP(r, bodies[:n], c, stdClient)
		}
	}
	steps := []struct {
		name string
		f    func(string) (bench.Summary, error)
	}{
		{"raw SQLite insert, 1 writer", rawRun(*seqDocs, 1)},
		{"edge Go API create, 1 writer", apiRun(*seqDocs, 1)},
		{fmt.Sprintf("raw SQLite insert, %d writers", *clients), rawRun(max(*docs/4, 1), *clients)},
		{fmt.Sprintf("edge Go API create, %d writers", *clients), apiRun(*docs, *clients)},
		{fmt.Sprintf("edge HTTP POST, %d clients", *clients), httpRun(*docs, *clients, false)},
		{fmt.Sprintf("edge HTTP POST, %d net/http clients", *clients), httpRun(*docs, *clients, true)},
		{"disk: 8 KiB write + fdatasync", probeRun(syncProbeOps, 8<<10)},
		{"disk: 128 KiB write + fdatasync", probeRun(syncProbeOps, 128<<10)},
		{"loopback: 64-byte TCP round trip", loopRun(loopProbeOps)},
	}
	stopCPU, err := record(*cpuProfile, pprof.StartCPUProfile, pprof.StopCPUProfile)
	if err != nil {
		return err
	}
	defer stopCPU()
	stopTrace, err := record(*traceFile, trace.Start, trace.Stop)
	if err != nil {
		return err
	}
	defer stopTrace()
	results := make([]bench.Summary, len(steps))
	ran := 0
	for round := 1; round <= *rounds; round++ {
		fmt.Fprintf(stderr, "round %d of %d\n", round, *rounds)
		for i, s := range steps {
			if err := ctx.Err(); err != nil {
				return err
			}
			if *only != "" && !strings.Contains(s.name, *only) {
				continue
			}
			sum, err := run(s.name, s.f)
			if err != nil {
				return err
			}
			results[i] = bench.Merge(results[i], sum)
			ran++
		}
	}
	if ran != len(steps)**rounds {
		for _, s := range results {
			if s.Ops > 0 {
				fmt.Fprintln(stdout, s)
			}
		}
		return nil
	}
	ratio := float64(results[1].P99) / float64(results[0].P99)
	if *asJSON {
		type row struct {
			Name      string  `json:"name"`
			Ops       int     `json:"ops"`
			OpsPerSec float64 `json:"opsPerSec"`
			P50us     float64 `json:"p50us"`
			P99us     float64 `json:"p99us"`
		}
		out := struct {
			Rows             []row   `json:"rows"`
			GoAPIP99VsRaw    float64 `json:"goApiP99VsRawP99"`
			HTTPWritesPerSec float64 `json:"httpWritesPerSec"`
			NetHTTPPerSec    float64 `json:"httpNetHTTPClientWritesPerSec"`
			DiskSync8KiBus   float64 `json:"diskSync8KiBP50us"`
			DiskSync128KiBus float64 `json:"diskSync128KiBP50us"`
			LoopbackRTTus    float64 `json:"loopbackRoundTripP50us"`
		}{GoAPIP99VsRaw: ratio, HTTPWritesPerSec: results[4].OpsPerSec(), NetHTTPPerSec: results[5].OpsPerSec(),
			DiskSync8KiBus: float64(results[6].P50.Nanoseconds()) / 1e3, DiskSync128KiBus: float64(results[7].P50.Nanoseconds()) / 1e3,
			LoopbackRTTus: float64(results[8].P50.Nanoseconds()) / 1e3}
		for _, s := range results {
			out.Rows = append(out.Rows, row{s.Name, s.Ops, s.OpsPerSec(), float64(s.P50.Nanoseconds()) / 1e3, float64(s.P99.Nanoseconds()) / 1e3})
		}
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(out)
	}
	fmt.Fprintf(stdout, "%-34s %12s %13s %14s %14s\n", "run", "ops", "ops/s", "p50", "p99")
	for _, s := range results {
		fmt.Fprintf(stdout, "%-34s %12d %13.0f %14s %14s\n", s.Name, s.Ops, s.OpsPerSec(), s.P50.Round(time.Microsecond), s.P99.Round(time.Microsecond))
	}
	fmt.Fprintf(stdout, "\n%d rounds, latencies pooled over the rounds; %d-byte documents; durability %s; %d CPUs, GOMAXPROCS %d\n", *rounds, *size, *durability, runtime.NumCPU(), runtime.GOMAXPROCS(0))
	fmt.Fprintf(stdout, "write p99, Go API / raw SQLite: %.2fx (target <= 1.5x); p50: %.2fx\n", ratio, float64(results[1].P50)/float64(results[0].P50))
	fmt.Fprintf(stdout, "HTTP writes/s with %d clients: %.0f (target >= 10000 on 2 cores, this machine has %d; with net/http's client: %.0f); vs raw SQLite %d writers: %.1fx\n",
		*clients, results[4].OpsPerSec(), runtime.NumCPU(), results[5].OpsPerSec(), *clients, results[4].OpsPerSec()/results[2].OpsPerSec())
	fmt.Fprintf(stdout, "the machine in this run: fdatasync after an 8 KiB write %s at p50, after 128 KiB %s; a loopback round trip %s\n",
		results[6].P50.Round(time.Microsecond), results[7].P50.Round(time.Microsecond), results[8].P50.Round(time.Microsecond))
	return nil
}

func openBenchReplica(ctx context.Context, dir, durability string) (*edge.Replica, error) {
	r := edge.New(edge.Config{Dir: dir, Durability: durability})
	if err := r.Open(ctx); err != nil {
		return nil, err
	}
	if _, _, err := r.PutContainer(ctx, replica.Container{Name: bench.Container, PartitionKey: bench.PartitionKey}); err != nil {
		r.Close(ctx)
		return nil, err
	}
	return r, nil
}

// benchHTTP serves the edge API on a loopback port and posts every body from
// clients keep-alive connections, each a bench.Poster (a lean HTTP/1.1
// client, like wrk's) or, with stdClient, net/http's client.
func benchHTTP(r *edge.Replica, bodies [][]byte, clients int, stdClient bool) (bench.Summary, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return bench.Summary{}, err
	}
	srv := &http.Server{Handler: web.NewEdge(r, web.EdgeOptions{}), ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	defer srv.Close()
	path := "/api/v1/containers/" + bench.Container + "/docs"
	var post func(i int) error
	if stdClient {
		client := &http.Client{Transport: &http.Transport{MaxIdleConns: clients, MaxIdleConnsPerHost: clients}, Timeout: 30 * time.Second}
		defer client.CloseIdleConnections()
		url := "http://" + ln.Addr().String() + path
		post = func(i int) error {
			resp, err := client.Post(url, "application/json", bytes.NewReader(bodies[i]))
			if err != nil {
				return err
			}
			_, err = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusCreated {
				return fmt.Errorf("POST status %d", resp.StatusCode)
			}
			return err
		}
	} else {
		pool := make(chan *bench.Poster, clients)
		for range clients {
			pool <- bench.NewPoster(ln.Addr().String(), path, 30*time.Second)
		}
		defer func() {
			for range clients {
				(<-pool).Close()
			}
		}()
		post = func(i int) error {
			p := <-pool
			defer func() { pool <- p }()
			status, body, err := p.Post(bodies[i])
			if err != nil {
				return err
			}
			if status != http.StatusCreated {
				return fmt.Errorf("POST status %d: %s", status, body)
			}
			return nil
		}
	}
	return bench.Run("", len(bodies), clients, post)
}

// syncProbeOps and loopProbeOps are how many syncs each disk probe, and
// how many round trips the loopback probe, times per round.
const (
	syncProbeOps = 500
	loopProbeOps = 2000
)

// record starts a profile or trace writing to path and returns what stops
// it; with an empty path it records nothing.
func record(path string, start func(io.Writer) error, stop func()) (func(), error) {
	if path == "" {
		return func() {}, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := start(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() {
		stop()
		f.Close()
	}, nil
}

// reportCommits prints how the group commits went: how many writes each took
// and how long they spent committing.
func reportCommits(w io.Writer, r *edge.Replica) {
	st := r.WriterStats()
	n := max(st.Commits.Load(), 1)
	fmt.Fprintf(w, "    %d group commits, %.1f writes each, %.2f ms each\n",
		st.Commits.Load(), float64(st.Writes.Load())/float64(n), float64(st.CommitNanos.Load())/float64(n)/1e6)
}
