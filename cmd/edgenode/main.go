// Command edgenode runs an edgesync edge node: a SQLite replica with a local
// HTTP API that works offline.
//
//	edgenode [serve] [--listen 127.0.0.1:7070] [--data ./edgenode-data] [--hub URL,...] [--token T]
//	edgenode bench [--docs N] [--clients N] ...
//	edgenode --version
//
// Every flag also reads EDGENODE_<FLAG> (dashes become underscores); a flag
// on the command line wins over the environment.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"
	"time"

	"github.com/edgesync/edgesync/replica/edge"
	"github.com/edgesync/edgesync/replica/sqlitestore"
	"github.com/edgesync/edgesync/web"
)

// version is set at build time with -ldflags "-X main.version=..."; without
// it the VCS revision from the build info is used.
var version = ""

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cmd := "serve"
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		cmd, args = args[0], args[1:]
	}
	var err error
	switch cmd {
	case "serve":
		err = serve(ctx, args, stdout, stderr)
	case "bench":
		err = runBench(ctx, args, stdout, stderr)
	case "help":
		fmt.Fprintln(stdout, "usage: edgenode [serve|bench] [flags]; edgenode <command> -h for the flags")
		return 0
	default:
		err = usageError(fmt.Sprintf("unknown command %q: want serve or bench", cmd))
	}
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return 0
	case errors.As(err, new(usageError)):
		fmt.Fprintln(stderr, "edgenode:", err)
		return 2
	default:
		fmt.Fprintln(stderr, "edgenode:", err)
		return 1
	}
}

type usageError string

func (e usageError) Error() string { return string(e) }

type serveConfig struct {
	listen     string
	data       string
	hubs       string
	token      string
	durability string
	logFormat  string
	version    bool
}

func (c *serveConfig) flags(fs *flag.FlagSet) {
	fs.StringVar(&c.listen, "listen", "127.0.0.1:7070", "address of the local HTTP API (loopback by default)")
	fs.StringVar(&c.data, "data", "./edgenode-data", "data directory (SQLite replica, node id)")
	fs.StringVar(&c.hubs, "hub", "", "hub URLs, comma-separated, tried in order: http(s)://host:port or ws(s)://host:port/api/v1/sync")
	fs.StringVar(&c.token, "token", "", "edge token issued by the hub")
	fs.StringVar(&c.durability, "durability", sqlitestore.DurabilityFull,
		"full: every acknowledged write is fsynced (survives power loss); normal: survives a process crash, the last writes may roll back on power loss")
	fs.StringVar(&c.logFormat, "log-format", "text", "log format: text or json")
	fs.BoolVar(&c.version, "version", false, "print the version and exit")
}

// parseFlags parses args, then fills every flag not given on the command
// line from its environment variable prefix+NAME.
func parseFlags(fs *flag.FlagSet, args []string, prefix string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageError(err.Error())
	}
	if fs.NArg() > 0 {
		return usageError(fmt.Sprintf("unexpected argument %q", fs.Arg(0)))
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		if set[f.Name] || err != nil {
			return
		}
		env := prefix + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		if v, ok := os.LookupEnv(env); ok {
			if serr := f.Value.Set(v); serr != nil {
				err = usageError(fmt.Sprintf("%s=%q: %v", env, v, serr))
			}
		}
	})
	return err
}

func buildVersion() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && len(s.Value) >= 12 {
				return "dev-" + s.Value[:12]
			}
		}
	}
	return "dev"
}

func newLogger(format string, w io.Writer) (*slog.Logger, error) {
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, nil)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, nil)), nil
	}
	return nil, usageError(fmt.Sprintf("--log-format %q: want text or json", format))
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
			return nil, usageError(fmt.Sprintf("--hub %q: want http(s)://host:port or ws(s)://host:port/api/v1/sync", h))
		}
		switch u.Scheme {
		case "http", "https", "ws", "wss":
		default:
			return nil, usageError(fmt.Sprintf("--hub %q: scheme %q: want http, https, ws or wss", h, u.Scheme))
		}
		hubs = append(hubs, h)
	}
	return hubs, nil
}

func serve(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var cfg serveConfig
	fs := flag.NewFlagSet("edgenode serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfg.flags(fs)
	if err := parseFlags(fs, args, "EDGENODE_"); err != nil {
		return err
	}
	if cfg.version {
		fmt.Fprintln(stdout, "edgenode", buildVersion())
		return nil
	}
	log, err := newLogger(cfg.logFormat, stderr)
	if err != nil {
		return err
	}
	hubs, err := parseHubs(cfg.hubs)
	if err != nil {
		return err
	}
	switch cfg.durability {
	case sqlitestore.DurabilityFull, sqlitestore.DurabilityNormal:
	default:
		return usageError(fmt.Sprintf("--durability %q: want full or normal", cfg.durability))
	}

	r := edge.New(edge.Config{Dir: cfg.data, Durability: cfg.durability, Logger: log})
	if err := r.Open(ctx); err != nil {
		return fmt.Errorf("open replica: %w", err)
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := r.Close(cctx); err != nil {
			log.Error("close replica", "err", err)
		}
	}()

	ln, err := net.Listen("tcp", cfg.listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	// Hijacked and streaming connections do not end on Shutdown: cancel
	// their base context first.
	baseCtx, cancelBase := context.WithCancel(context.Background())
	defer cancelBase()
	srv := &http.Server{
		Handler:           web.NewEdge(r, web.EdgeOptions{Logger: log, Version: buildVersion(), Hubs: hubs}),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		BaseContext:       func(net.Listener) context.Context { return baseCtx },
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	log.Info("edgenode listening", "addr", ln.Addr().String(), "data", cfg.data, "node", r.NodeID(), "version", buildVersion())
	if len(hubs) > 0 {
		log.Info("hubs configured", "hubs", strings.Join(hubs, ","))
	}

	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	log.Info("shutting down")
	cancelBase()
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	return nil
}
