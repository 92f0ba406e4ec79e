// Command cloudhub runs an edgesync hub: it orders every write from its edges
// into one log, resolves conflicts, and streams confirmed state back.
//
//	cloudhub [serve] [--listen 127.0.0.1:8080] [--data ./cloudhub-data] [--admin-token T]
//	         [--tls-cert FILE --tls-key FILE] [--postgres URL [--hub-name NAME] [--advertise HOST:PORT] [--lease-timeout 5s]]
//	         [--cosmos-listen 127.0.0.1:8081 [--cosmos-key KEY]]
//	cloudhub demo
//	cloudhub bench [--run sync,catchup,fanout] [--docs N] ...
//	cloudhub loadtest [--edges N] [--writes K] [--storm] ...
//	cloudhub resolver test --wasm FILE --input CASE.json
//	cloudhub migrate --data DIR --postgres URL
//	cloudhub --version
//	cloudhub --help
//
// Every flag also reads CLOUDHUB_<FLAG> (dashes become underscores); a flag
// on the command line wins over the environment.
package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"syscall"
	"time"

	"github.com/edgesync/edgesync/internal/cli"
	"github.com/edgesync/edgesync/internal/hubbench"
	"github.com/edgesync/edgesync/internal/loadtest"
	"github.com/edgesync/edgesync/replica/hub"
	"github.com/edgesync/edgesync/replica/hub/pghub"
	"github.com/edgesync/edgesync/replica/hub/sqlitehub"
	"github.com/edgesync/edgesync/replica/sqlitestore"
	"github.com/edgesync/edgesync/replica/wire"
	"github.com/edgesync/edgesync/wasmhost"
	"github.com/edgesync/edgesync/web"
	"github.com/edgesync/edgesync/web/cosmos"
)

var version = ""

func main() {
	cli.TuneGC()
	cli.TuneProcs()
	stopProfile := cpuProfile(os.Getenv(cpuProfileEnv), os.Stderr)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	stopProfile()
	os.Exit(code)
}

// cpuProfileEnv names a file to write a CPU profile of the whole process
// to, until it exits normally (cloudhub bench sets it for the hubs it
// starts when given --cpuprofile). Not a CLOUDHUB_ variable: it is no
// flag's.
const cpuProfileEnv = "EDGESYNC_CPUPROFILE"

// cpuProfile starts a CPU profile into path (none if path is empty) and
// returns what ends it.
func cpuProfile(path string, stderr io.Writer) (stop func()) {
	if path == "" {
		return func() {}
	}
	f, err := os.Create(path)
	if err == nil {
		if err = pprof.StartCPUProfile(f); err != nil {
			f.Close()
		}
	}
	if err != nil {
		fmt.Fprintf(stderr, "cloudhub: %s: %v\n", cpuProfileEnv, err)
		return func() {}
	}
	return func() {
		pprof.StopCPUProfile()
		if err := f.Close(); err != nil {
			fmt.Fprintf(stderr, "cloudhub: %s: %v\n", cpuProfileEnv, err)
		}
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return cli.Dispatch(ctx, "cloudhub", "serve", []cli.Sub{
		{Name: "serve", Summary: "run the hub: HTTP API, sync endpoint and dashboard", Run: serve},
		{Name: "migrate", Summary: "migrate --data DIR --postgres URL: move a stopped SQLite hub into an empty PostgreSQL database, verified", Run: migrateCmd},
		{Name: "demo", Summary: "run a hub and a few edges in this process with sample data", Run: demo},
		{Name: "resolver", Summary: "resolver test --wasm FILE --input CASE.json: run a conflict resolver on one input", Run: resolverCmd},
		{Name: "bench", Summary: "measure sync, catch-up and fan-out", Run: hubbench.Run},
		{Name: "loadtest", Summary: "run many lightweight edges against a hub process and measure its cost per edge", Run: loadtest.Run},
	}, args, stdout, stderr)
}

type serveConfig struct {
	listen, data, adminToken, durability, logFormat string
	postgres, hubName, advertise                    string
	leaseTimeout                                    time.Duration
	tierHandoff                                     bool
	version, secureCookie                           bool
	sessionTTL                                      time.Duration
	resolvers                                       resolverFlags
	maxClockSkew                                    time.Duration
	maxEdges                                        int
	pingInterval                                    time.Duration
	tls                                             cli.TLSFlags
	cosmos                                          cli.CosmosFlags
}

// handoffTLS is the TLS configuration with which a hub of a tier that
// serves TLS (server) reaches the sequencer's hub: the system's roots and
// this hub's own certificate chain (hubs that share a certificate); nil
// for plain HTTP.
func handoffTLS(server *tls.Config) *tls.Config {
	if server == nil {
		return nil
	}
	pool, err := x509.SystemCertPool()
	if err != nil {
		pool = x509.NewCertPool()
	}
	for _, c := range server.Certificates {
		for _, der := range c.Certificate {
			if cert, err := x509.ParseCertificate(der); err == nil {
				pool.AddCert(cert)
			}
		}
	}
	return &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: pool}
}

// adminToken returns the configured token, or the one saved in the data dir,
// or generates one, saves it (mode 0600, written atomically) and reports it
// as new.
func adminToken(configured, dir string) (string, bool, error) {
	if configured != "" {
		return configured, false, nil
	}
	return cli.SavedToken(dir, "admin-token", "esa_")
}

func serve(ctx context.Context, args []string, stdout, stderr io.Writer) (err error) {
	var cfg serveConfig
	fs := flag.NewFlagSet("cloudhub serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&cfg.listen, "listen", "127.0.0.1:8080", "address of the HTTP API and the sync endpoint")
	fs.StringVar(&cfg.data, "data", "./cloudhub-data", "data directory (SQLite log, admin token)")
	fs.StringVar(&cfg.adminToken, "admin-token", "", "admin token for the API (default: generated once and saved in the data dir)")
	fs.StringVar(&cfg.durability, "durability", sqlitestore.DurabilityFull, "full or normal (see README)")
	fs.StringVar(&cfg.postgres, "postgres", "",
		"keep the hub in this PostgreSQL database (postgres://user:password@host:port/db) instead of SQLite in the data directory, which then holds only the admin token and the resolvers' compilation cache")
	fs.StringVar(&cfg.hubName, "hub-name", "", "this hub's name in its tier of hubs on one PostgreSQL database (default: the host name, ':' and the listen port)")
	fs.StringVar(&cfg.advertise, "advertise", "",
		"with --postgres: HOST:PORT at which the other hubs of the tier reach this one (the hand-off of pushes; the status lists it) (default: the listen address, or the host name and the listen port when it listens on every interface)")
	fs.DurationVar(&cfg.leaseTimeout, "lease-timeout", pghub.DefaultLeaseTimeout,
		"with --postgres: how long the sequencer's lease lasts without renewal; the next hub takes over within it (plus a fifth of it) when the sequencer stops")
	fs.BoolVar(&cfg.tierHandoff, "tier-handoff", true,
		"with --postgres: a hub that does not sequence hands its edges' pushes to the sequencer's hub over HTTP (POST "+hub.HandoffPath+
			" at the address the tier lists for it: its --listen address, reachable from the other hubs), falling back to the tier's queue table; false: always the queue")
	fs.StringVar(&cfg.logFormat, "log-format", "text", "log format: text or json")
	fs.DurationVar(&cfg.sessionTTL, "session-ttl", web.DefaultSessionTTL, "how long a dashboard login lasts")
	fs.BoolVar(&cfg.secureCookie, "secure-cookie", false,
		"mark the dashboard's session cookie Secure even on plain HTTP (a TLS proxy in front); over TLS it always is")
	fs.BoolVar(&cfg.version, "version", false, "print the version and exit")
	fs.DurationVar(&cfg.maxClockSkew, "max-clock-skew", hub.DefaultMaxClockSkew,
		"how far a pushed _ts may be ahead of the hub's clock; a later one takes part in conflict decisions with the hub's receipt time (whole seconds, at least 1s)")
	fs.IntVar(&cfg.maxEdges, "max-edges", hub.DefaultMaxSyncSessions,
		"edges connected at once; a sync connection beyond it is refused with 503 and Retry-After, and the memory limit (unless GOMEMLIMIT is set) is 1 GiB plus 64 KiB per edge")
	fs.DurationVar(&cfg.pingInterval, "ping-interval", hub.DefaultPingInterval,
		"how often edges ping the hub (the welcome tells them; older edges keep 10s); an edge silent for twice this, at least 30s, is pinged and dropped (1s to 1m)")
	cfg.resolvers.register(fs)
	cfg.tls.Register(fs)
	cfg.cosmos.Register(fs)
	if err := cli.ParseFlags(fs, args, "CLOUDHUB_"); err != nil {
		return err
	}
	if cfg.version {
		fmt.Fprintln(stdout, "cloudhub", cli.Version(version))
		return nil
	}
	limits, err := cfg.resolvers.limits()
	if err != nil {
		return err
	}
	log, err := cli.NewLogger(cfg.logFormat, stderr)
	if err != nil {
		return err
	}
	tlsConfig, err := cfg.tls.Config()
	if err != nil {
		return err
	}
	if cfg.sessionTTL <= 0 {
		return cli.UsageError(fmt.Sprintf("--session-ttl %v: want more than 0", cfg.sessionTTL))
	}
	if cfg.maxClockSkew < time.Second {
		return cli.UsageError(fmt.Sprintf("--max-clock-skew %s: want at least 1s", cfg.maxClockSkew))
	}
	if cfg.pingInterval < wire.MinPingInterval || cfg.pingInterval > wire.MaxPingInterval {
		return cli.UsageError(fmt.Sprintf("--ping-interval %s: want 1s to 1m", cfg.pingInterval))
	}
	if cfg.leaseTimeout < 100*time.Millisecond {
		return cli.UsageError(fmt.Sprintf("--lease-timeout %s: want at least 100ms", cfg.leaseTimeout))
	}
	if cfg.advertise != "" {
		if err := hub.CheckAdvertise(cfg.advertise); err != nil {
			return cli.UsageError(fmt.Sprintf("--advertise %q: %v", cfg.advertise, err))
		}
	}
	if len(cfg.hubName) > 200 {
		return cli.UsageError(fmt.Sprintf("--hub-name %q: at most 200 bytes", cfg.hubName))
	}
	if cfg.maxEdges < 1 {
		return cli.UsageError(fmt.Sprintf("--max-edges %d: want at least 1", cfg.maxEdges))
	}
	cli.SetMemoryLimit(cli.MemoryLimitForEdges(cfg.maxEdges))
	if cfg.durability != sqlitestore.DurabilityFull && cfg.durability != sqlitestore.DurabilityNormal {
		return cli.UsageError(fmt.Sprintf("--durability %q: want full or normal", cfg.durability))
	}
	token, created, err := adminToken(cfg.adminToken, cfg.data)
	if err != nil {
		return err
	}
	wh, err := wasmhost.New(ctx, wasmhost.Config{CacheDir: filepath.Join(cfg.data, "wasm-cache"), Limits: limits})
	if err != nil {
		return err
	}
	reg := wasmhost.NewRegistry(wh)
	defer func() {
		cctx := context.WithoutCancel(ctx)
		err = errors.Join(err, reg.Close(cctx), wh.Close(cctx))
	}()
	// The listener is bound before the hub opens, so that a hub given
	// port 0 is named (and reached by its tier) at the port it really has.
	srv, err := cli.Listen(cfg.listen, log)
	if err != nil {
		return err
	}
	listening := false
	defer func() {
		if !listening {
			srv.Abandon()
		}
	}()
	if cfg.hubName == "" {
		cfg.hubName = hub.DefaultHubName(srv.Addr())
	}
	var store hub.Store = sqlitehub.New(sqlitehub.Config{Dir: cfg.data, Durability: cfg.durability, Logger: log})
	storeName := "sqlite"
	var tier *pghub.Tier
	if cfg.postgres != "" {
		pg := pghub.New(pghub.Config{URL: cfg.postgres, Logger: log})
		store, storeName = pg, "postgres"
		tier = pghub.NewTier(pghub.TierConfig{Store: pg, Name: cfg.hubName, Address: advertised(cfg.advertise, srv.Addr()), LeaseTimeout: cfg.leaseTimeout, Logger: log})
	}
	hcfg := hub.Config{Store: store, Logger: log, Resolvers: reg, MaxClockSkew: cfg.maxClockSkew, Name: cfg.hubName, MaxSyncSessions: cfg.maxEdges, PingInterval: cfg.pingInterval}
	if tier != nil {
		hcfg.Tier = tier
		hcfg.Handoff, hcfg.HandoffTLS = cfg.tierHandoff, handoffTLS(tlsConfig)
	}
	h := hub.New(hcfg)
	if err := h.Open(context.WithoutCancel(ctx)); err != nil {
		return fmt.Errorf("open hub: %w", err)
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if cerr := h.Close(cctx); cerr != nil {
			err = errors.Join(err, fmt.Errorf("close hub: %w", cerr))
		}
	}()
	// At SIGTERM running resolver calls stop at once: the one in the hub's
	// writer would otherwise hold the writer, every request waiting on it
	// and so the shutdown, until its timeout. Its conflict goes to the feed
	// unresolved. (The deferred Close above returns this Close's error.)
	stopCalls := context.AfterFunc(ctx, func() { _ = wh.Close(context.WithoutCancel(ctx)) })
	defer stopCalls()
	srv.WrapListener(web.Listener)
	srv.UseTLS(tlsConfig)
	listening = true
	srv.Serve(web.NewHub(h, web.HubOptions{Logger: log, Version: cli.Version(version), AdminToken: token, BaseContext: srv.Base,
		Resolvers: reg, SessionTTL: cfg.sessionTTL, SecureCookie: cfg.secureCookie}))
	log.Info("cloudhub listening", "addr", srv.Addr(), "data", cfg.data, "store", storeName, "hub", h.HubID(), "hub_name", h.Name(), "version", cli.Version(version), "gomaxprocs", runtime.GOMAXPROCS(0), "tls", srv.TLS(),
		"max_edges", cfg.maxEdges, "memory_limit", debug.SetMemoryLimit(-1))
	if created {
		fmt.Fprintf(stdout, "admin token (saved in %s, shown once): %s\n", filepath.Join(cfg.data, "admin-token"), token)
	}
	cs, err := cfg.cosmos.Serve(cfg.data, cosmos.Config{Engine: cosmos.HubEngine{H: h}, Logger: log}, tlsConfig, stdout)
	if err != nil {
		return errors.Join(err, srv.Shutdown())
	}
	defer cli.ShutdownCosmos(cs, &err)
	return srv.Run(ctx, log)
}

// advertised is the address a hub's tier lists for it: --advertise, or
// the listen address (the host name on every interface).
func advertised(flag, listen string) string {
	if flag != "" {
		return flag
	}
	return hub.DefaultAdvertise(listen)
}
