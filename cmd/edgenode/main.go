// Command edgenode runs an edgesync edge node: a SQLite replica with a local
// HTTP API that works offline.
//
//	edgenode [serve] [--listen 127.0.0.1:7070] [--data ./edgenode-data] [--hub URL,...] [--token T]
//	         [--allowed-hosts H,...] [--cors-origin ORIGIN,...] [--local-token T]
//	         [--hub-ca FILE] [--tls-cert FILE --tls-key FILE]
//	         [--hub-timeout 0] [--hub-probe-interval 5s]
//	         [--cosmos-listen 127.0.0.1:8081 [--cosmos-key KEY]]
//	edgenode bench [--docs N] [--clients N] ...
//	edgenode --version
//	edgenode --help
//
// Every flag also reads EDGENODE_<FLAG> (dashes become underscores); a flag
// on the command line wins over the environment.
package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/edgesync/edgesync/internal/cli"
	"github.com/edgesync/edgesync/internal/edgebench"
	"github.com/edgesync/edgesync/replica/edge"
	"github.com/edgesync/edgesync/replica/sqlitestore"
	"github.com/edgesync/edgesync/web"
	"github.com/edgesync/edgesync/web/cosmos"
)

// version is set at build time with -ldflags "-X main.version=..."; without
// it the VCS revision from the build info is used.
var version = ""

func main() {
	cli.TuneGC()
	cli.TuneProcs()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return cli.Dispatch(ctx, "edgenode", "serve", []cli.Sub{
		{Name: "serve", Summary: "run the edge: local HTTP API and sync with the hub", Run: serve},
		{Name: "bench", Summary: "measure the local write and read paths", Run: edgebench.Run},
	}, args, stdout, stderr)
}

type serveConfig struct {
	listen     string
	data       string
	hubs       string
	token      string
	durability string
	logFormat  string
	version    bool

	allowedHosts string
	corsOrigins  string
	localToken   string

	// clockOffset shifts this node's own clock, as if the device's clock
	// were that far off: for tests and demos of clock skew.
	clockOffset time.Duration

	tls   cli.TLSFlags
	hubCA string

	hubTimeout       time.Duration
	hubProbeInterval time.Duration

	cosmos cli.CosmosFlags
}

func (c *serveConfig) flags(fs *flag.FlagSet) {
	fs.StringVar(&c.listen, "listen", "127.0.0.1:7070", "address of the local HTTP API (loopback by default)")
	fs.StringVar(&c.data, "data", "./edgenode-data", "data directory (SQLite replica, node id)")
	fs.StringVar(&c.hubs, "hub", "", "hub URLs, comma-separated, tried in order: http(s)://host:port or ws(s)://host:port/api/v1/sync; "+
		"the node syncs with the first that answers, moves to the next when it goes away and returns to an earlier one when it is back")
	fs.DurationVar(&c.hubTimeout, "hub-timeout", 0,
		"a hub from which nothing arrives (no frame, ping or pong) for this long is taken as gone: the node moves to the next of --hub; "+
			"0: the silence the hub's welcome names (40s for a hub with the default --ping-interval 20s), 30s with a hub that names none. The node pings at the hub's interval, at least every half of this")
	fs.DurationVar(&c.hubProbeInterval, "hub-probe-interval", edge.DefaultProbeInterval,
		"while syncing with a hub other than the first of --hub, how often (with jitter: half to one and a half times) the node checks whether an earlier one answers again, to return to it")
	fs.StringVar(&c.token, "token", "", "edge token issued by the hub")
	fs.StringVar(&c.durability, "durability", sqlitestore.DurabilityFull,
		"full: every acknowledged write is fsynced (survives power loss); normal: survives a process crash, the last writes may roll back on power loss")
	fs.StringVar(&c.logFormat, "log-format", "text", "log format: text or json")
	fs.BoolVar(&c.version, "version", false, "print the version and exit")
	fs.StringVar(&c.allowedHosts, "allowed-hosts", "",
		"host names the local API answers for besides localhost, 127.0.0.1 and ::1, comma-separated, no ports (default: the --listen host; "+
			"for a wildcard --listen, the machine's addresses and host name); a request for any other host gets 403")
	fs.StringVar(&c.corsOrigins, "cors-origin", "",
		"origins whose web pages may call the local API, comma-separated (https://app.example:8443); default none")
	fs.StringVar(&c.localToken, "local-token", "",
		"token the local API requires (Authorization: Bearer); default: none on a loopback --listen, "+
			"otherwise generated once and saved in the data dir as local-token")
	fs.DurationVar(&c.clockOffset, "clock-offset", 0,
		"simulate a wrong device clock for tests and demos: everything that reads this node's clock sees it shifted by this much (e.g. 1h, -90s); the node corrects its _ts once a hub has measured the offset")
	c.cosmos.Register(fs)
	c.tls.Register(fs)
	fs.StringVar(&c.hubCA, "hub-ca", "",
		"PEM bundle of the CA certificates that sign the hub's certificate (a private CA); default: the system's roots")
}

// splitList splits a comma-separated flag value, dropping empty entries.
func splitList(s string) []string {
	var out []string
	for v := range strings.SplitSeq(s, ",") {
		if v = strings.TrimSpace(v); v != "" {
			out = append(out, v)
		}
	}
	return out
}

// parseOrigins checks the --cors-origin list: scheme://host[:port] each.
func parseOrigins(s string) ([]string, error) {
	origins := splitList(s)
	for _, o := range origins {
		u, err := url.Parse(o)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") ||
			u.RawQuery != "" || u.User != nil {
			return nil, cli.UsageError(fmt.Sprintf("--cors-origin %q: want scheme://host[:port], as a browser sends it in Origin", o))
		}
	}
	return origins, nil
}

// loopback reports whether addr (host:port) listens on loopback only.
func loopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// localToken returns the token the local API requires on a listener at
// addr: the configured one; none on loopback; otherwise the one saved in
// the data dir, generated (and reported as new) the first time.
func localToken(configured, dir, addr string) (string, bool, error) {
	if configured != "" {
		return configured, false, nil
	}
	if loopback(addr) {
		return "", false, nil
	}
	return cli.SavedToken(dir, "local-token", "esl_")
}

// parseHubs checks the --hub list: base URLs or full WebSocket URLs.
func parseHubs(s string) ([]string, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	var hubs []string
	for h := range strings.SplitSeq(s, ",") {
		h = strings.TrimSpace(h)
		u, err := url.Parse(h)
		if err != nil || u.Host == "" {
			return nil, cli.UsageError(fmt.Sprintf("--hub %q: want http(s)://host:port or ws(s)://host:port/api/v1/sync", h))
		}
		switch u.Scheme {
		case "http", "https", "ws", "wss":
		default:
			return nil, cli.UsageError(fmt.Sprintf("--hub %q: scheme %q: want http, https, ws or wss", h, u.Scheme))
		}
		hubs = append(hubs, h)
	}
	return hubs, nil
}

func edgeOptions(log *slog.Logger, hubs []string, l *edge.Link) web.EdgeOptions {
	opt := web.EdgeOptions{Logger: log, Version: cli.Version(version), Hubs: hubs}
	if l != nil {
		opt.Sync = l
	}
	return opt
}

func serve(ctx context.Context, args []string, stdout, stderr io.Writer) (err error) {
	var cfg serveConfig
	fs := flag.NewFlagSet("edgenode serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfg.flags(fs)
	if err := cli.ParseFlags(fs, args, "EDGENODE_"); err != nil {
		return err
	}
	if cfg.version {
		fmt.Fprintln(stdout, "edgenode", cli.Version(version))
		return nil
	}
	log, err := cli.NewLogger(cfg.logFormat, stderr)
	if err != nil {
		return err
	}
	hubs, err := parseHubs(cfg.hubs)
	if err != nil {
		return err
	}
	origins, err := parseOrigins(cfg.corsOrigins)
	if err != nil {
		return err
	}
	switch cfg.durability {
	case sqlitestore.DurabilityFull, sqlitestore.DurabilityNormal:
	default:
		return cli.UsageError(fmt.Sprintf("--durability %q: want full or normal", cfg.durability))
	}
	if cfg.hubTimeout != 0 && cfg.hubTimeout < time.Second {
		return cli.UsageError(fmt.Sprintf("--hub-timeout %s: want 0 (the hub's) or at least 1s", cfg.hubTimeout))
	}
	if cfg.hubProbeInterval < 100*time.Millisecond {
		return cli.UsageError(fmt.Sprintf("--hub-probe-interval %s: want at least 100ms", cfg.hubProbeInterval))
	}
	tlsConfig, err := cfg.tls.Config()
	if err != nil {
		return err
	}
	var hubTLS *tls.Config
	if cfg.hubCA != "" {
		pool, err := cli.CertPool("--hub-ca", cfg.hubCA)
		if err != nil {
			return err
		}
		hubTLS = &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: pool}
	}

	ecfg := edge.Config{Dir: cfg.data, Durability: cfg.durability, Logger: log}
	if off := cfg.clockOffset; off != 0 {
		ecfg.Now = func() time.Time { return time.Now().Add(off) }
		log.Warn("simulated clock offset: this node's clock is shifted", "clockOffset", off.String())
	}
	r := edge.New(ecfg)
	// Opening is not interrupted half-way by a signal; the signal is seen
	// right after.
	if err := r.Open(context.WithoutCancel(ctx)); err != nil {
		return fmt.Errorf("open replica: %w", err)
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if cerr := r.Close(cctx); cerr != nil {
			err = errors.Join(err, fmt.Errorf("close replica: %w", cerr))
		}
	}()

	var link *edge.Link
	if len(hubs) > 0 {
		if link, err = edge.NewLink(r, edge.SyncConfig{Hubs: hubs, Token: cfg.token, Logger: log, TLS: hubTLS,
			HeartbeatTimeout: cfg.hubTimeout, ProbeInterval: cfg.hubProbeInterval}); err != nil {
			return cli.UsageError(err.Error())
		}
		if err := link.SetOnline(true); err != nil {
			return err
		}
		defer func() {
			cctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if cerr := link.Close(cctx); cerr != nil {
				err = errors.Join(err, fmt.Errorf("close sync: %w", cerr))
			}
		}()
	}

	token, created, err := localToken(cfg.localToken, cfg.data, cfg.listen)
	if err != nil {
		return err
	}
	srv, err := cli.Listen(cfg.listen, log)
	if err != nil {
		return err
	}
	opt := edgeOptions(log, hubs, link)
	opt.Listen, opt.AllowedHosts, opt.CORSOrigins, opt.LocalToken = srv.Addr(), splitList(cfg.allowedHosts), origins, token
	if opt.AllowedHosts == nil {
		opt.AllowedHosts = web.DefaultAllowedHosts(srv.Addr())
	}
	srv.WrapListener(web.Listener)
	srv.UseTLS(tlsConfig)
	srv.Serve(web.NewEdge(r, opt))
	log.Info("edgenode listening", "addr", srv.Addr(), "data", cfg.data, "node", r.NodeID(), "version", cli.Version(version), "gomaxprocs", runtime.GOMAXPROCS(0), "tls", srv.TLS(),
		"allowed_hosts", strings.Join(opt.AllowedHosts, ",")+" and loopback", "local_token", token != "")
	if created {
		fmt.Fprintf(stdout, "local API token (saved in %s, shown once): %s\n", filepath.Join(cfg.data, "local-token"), token)
	}
	ccfg := cosmos.Config{Engine: cosmos.EdgeEngine{R: r}, Logger: log}
	cs, err := cfg.cosmos.Serve(cfg.data, ccfg, tlsConfig, stdout)
	if err != nil {
		return errors.Join(err, srv.Shutdown())
	}
	defer cli.ShutdownCosmos(cs, &err)
	if len(hubs) > 0 {
		log.Info("syncing", "hubs", strings.Join(hubs, ","))
		if cfg.token == "" {
			log.Warn("no --token: the hub will refuse this edge until it has one")
		}
	}
	return srv.Run(ctx, log)
}
