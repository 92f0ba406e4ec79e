package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	iofs "io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/edgesync/edgesync"
	"github.com/edgesync/edgesync/internal/cli"
	"github.com/edgesync/edgesync/replica"
	"github.com/edgesync/edgesync/replica/edge"
	"github.com/edgesync/edgesync/replica/hub"
	"github.com/edgesync/edgesync/replica/hub/sqlitehub"
	"github.com/edgesync/edgesync/wasmhost"
	"github.com/edgesync/edgesync/web"
)

// demoMemberKey is the log attribute that says which of the demo's hub and
// edges a line comes from ("node" is an edge's node id).
const demoMemberKey = "member"

// demo runs a hub and a few edges in this process, each with its own SQLite
// data dir, with sample e-commerce data, and prints how to play with them.
func demo(ctx context.Context, args []string, stdout, stderr io.Writer) (err error) {
	fs := flag.NewFlagSet("cloudhub demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dir := fs.String("dir", "", "data directory for the hub and edges (default: a temp dir, removed at exit)")
	listen := fs.String("listen", "127.0.0.1:8080", "hub address")
	edgePort := fs.Int("edge-port", 7071, "first edge port; edges take consecutive ports (0: any free port)")
	nEdges := fs.Int("edges", 3, "number of edges")
	logFormat := fs.String("log-format", "text", "text or json")
	resolverDir := fs.String("resolvers", "", "a directory with cart-merge-c.wasm and counter-c.wasm to install as cart-merge and counter (default: the modules built into this binary)")
	if err := cli.ParseFlags(fs, args, "CLOUDHUB_DEMO_"); err != nil {
		return err
	}
	if *nEdges < 1 || *nEdges > 20 {
		return cli.UsageError("--edges: 1..20")
	}
	log, err := cli.NewLogger(*logFormat, stderr)
	if err != nil {
		return err
	}
	root := *dir
	if root == "" {
		if root, err = os.MkdirTemp("", "edgesync-demo-"); err != nil {
			return err
		}
		defer os.RemoveAll(root)
	}
	baseCtx, cancelBase := context.WithCancel(context.Background())
	defer cancelBase()
	var closers []func(context.Context) error
	defer func() {
		cancelBase()
		cctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		for i := len(closers) - 1; i >= 0; i-- {
			err = errors.Join(err, closers[i](cctx))
		}
	}()
	serveOn := func(addr string, h http.Handler) (string, error) {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return "", fmt.Errorf("listen %s: %w", addr, err)
		}
		srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, BaseContext: func(net.Listener) context.Context { return baseCtx }}
		go srv.Serve(web.Listener(ln))
		closers = append(closers, srv.Shutdown)
		return "http://" + ln.Addr().String(), nil
	}

	const token = "demo"
	wh, err := wasmhost.New(ctx, wasmhost.Config{CacheDir: filepath.Join(root, "hub", "wasm-cache")})
	if err != nil {
		return err
	}
	reg := wasmhost.NewRegistry(wh)
	closers = append(closers, wh.Close, reg.Close)
	h := hub.New(hub.Config{Store: sqlitehub.New(sqlitehub.Config{Dir: filepath.Join(root, "hub"), Logger: log.With(demoMemberKey, "hub")}), Logger: log.With(demoMemberKey, "hub"), Resolvers: reg,
		Name: hub.DefaultHubName(*listen)})
	if err := h.Open(ctx); err != nil {
		return fmt.Errorf("open hub: %w", err)
	}
	closers = append(closers, h.Close)
	// The demo's own routes, /demo/edges/{n}/offline and .../online, take an
	// edge off its hub and back; everything else is the hub's API.
	mux := http.NewServeMux()
	mux.Handle("/", web.NewHub(h, web.HubOptions{Logger: log, Version: cli.Version(version), AdminToken: token, BaseContext: baseCtx,
		Resolvers: reg}))
	syncers := map[string]*edge.Link{}
	type demoEdgeInfo struct {
		Name   string `json:"name"`
		URL    string `json:"url"`
		Online bool   `json:"online"`
		api    http.Handler
	}
	var demoMu sync.Mutex // guards demoEdges and syncers: edges start after the hub serves
	var demoEdges []*demoEdgeInfo
	lookup := func(name string) (*demoEdgeInfo, *edge.Link) {
		demoMu.Lock()
		defer demoMu.Unlock()
		for _, e := range demoEdges {
			if e.Name == name {
				return e, syncers[name]
			}
		}
		return nil, nil
	}
	mux.HandleFunc("GET /demo/edges", func(w http.ResponseWriter, r *http.Request) {
		demoMu.Lock()
		list := make([]demoEdgeInfo, 0, len(demoEdges))
		for _, e := range demoEdges {
			list = append(list, demoEdgeInfo{Name: e.Name, URL: e.URL, Online: syncers[e.Name].Online()})
		}
		demoMu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{"edges": list})
	})
	// A write made on a demo edge, from the dashboard: the edge's own API
	// answers it.
	mux.HandleFunc("PUT /demo/edges/{name}/containers/{c}/docs/{id}", func(w http.ResponseWriter, r *http.Request) {
		e, _ := lookup(r.PathValue("name"))
		if e == nil {
			http.Error(w, `{"code":"not_found","message":"no such demo edge"}`, http.StatusNotFound)
			return
		}
		r2 := r.Clone(r.Context())
		r2.URL.Path = "/api/v1/containers/" + r.PathValue("c") + "/docs/" + r.PathValue("id")
		r2.URL.RawPath = "/api/v1/containers/" + url.PathEscape(r.PathValue("c")) + "/docs/" + url.PathEscape(r.PathValue("id"))
		e.api.ServeHTTP(w, r2)
	})
	mux.HandleFunc("POST /demo/edges/{name}/{state}", func(w http.ResponseWriter, r *http.Request) {
		_, e := lookup(r.PathValue("name"))
		if e == nil {
			http.Error(w, `{"code":"not_found","message":"no such demo edge"}`, http.StatusNotFound)
			return
		}
		if err := e.SetOnline(r.PathValue("state") == "online"); err != nil {
			http.Error(w, fmt.Sprintf(`{"code":"bad_request","message":%q}`, err.Error()), http.StatusBadRequest)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	hubURL, err := serveOn(*listen, mux)
	if err != nil {
		return err
	}
	var modules iofs.FS
	if *resolverDir != "" {
		modules = os.DirFS(*resolverDir)
	} else if modules, err = iofs.Sub(edgesync.DemoResolvers, "testdata/resolvers"); err != nil {
		return err
	}
	if err := seedDemo(ctx, h, modules, log); err != nil {
		return fmt.Errorf("sample data: %w", err)
	}
	var edgeURLs []string
	for i := 1; i <= *nEdges; i++ {
		name := fmt.Sprintf("edge-%d", i)
		tok, err := h.RegisterEdge(ctx, name, nil)
		if errors.Is(err, replica.ErrExists) { // a kept --dir: register again
			if err = h.RevokeEdge(ctx, name); err == nil {
				tok, err = h.RegisterEdge(ctx, name, nil)
			}
		}
		if err != nil {
			return err
		}
		elog := log.With(demoMemberKey, name)
		r := edge.New(edge.Config{Dir: filepath.Join(root, name), Logger: elog})
		if err := r.Open(ctx); err != nil {
			return fmt.Errorf("open %s: %w", name, err)
		}
		closers = append(closers, r.Close)
		de, err := edge.NewLink(r, edge.SyncConfig{Hubs: []string{hubURL}, Token: tok, Logger: elog})
		if err != nil {
			return err
		}
		if err := de.SetOnline(true); err != nil {
			return err
		}
		demoMu.Lock()
		syncers[name] = de
		demoMu.Unlock()
		closers = append(closers, de.Close)
		addr := "127.0.0.1:0"
		if *edgePort > 0 {
			addr = fmt.Sprintf("127.0.0.1:%d", *edgePort+i-1)
		}
		api := web.NewEdge(r, web.EdgeOptions{Logger: elog, Version: cli.Version(version), Hubs: []string{hubURL}, Sync: de})
		u, err := serveOn(addr, api)
		if err != nil {
			return err
		}
		demoMu.Lock()
		demoEdges = append(demoEdges, &demoEdgeInfo{Name: name, URL: u, api: api})
		demoMu.Unlock()
		edgeURLs = append(edgeURLs, u)
	}
	printDemo(stdout, root, hubURL, token, edgeURLs)
	<-ctx.Done()
	log.Info("demo stopping")
	return nil
}

// seedDemo defines the sample containers and documents. The cart-merge and
// counter resolvers (the C builds: they compile in milliseconds) are
// installed from modules; without them carts fall back to the built-in
// merge and counters to manual resolution.
func seedDemo(ctx context.Context, h *hub.Hub, modules iofs.FS, log *slog.Logger) error {
	carts := replica.ConflictPolicy{Mode: replica.ModeMerge}
	counters := replica.ConflictPolicy{Mode: replica.ModeManual}
	for name, file := range map[string]string{"cart-merge": "cart-merge-c.wasm", "counter": "counter-c.wasm"} {
		wasm, err := iofs.ReadFile(modules, file)
		if err != nil {
			log.Warn("demo resolver not installed", "resolver", name, "err", err)
			continue
		}
		if _, _, err := h.PutResolver(ctx, name, wasm); err != nil {
			return fmt.Errorf("install resolver %s: %w", name, err)
		}
		switch name {
		case "cart-merge":
			carts = replica.ConflictPolicy{Mode: replica.ModeCustom, Resolver: name}
		case "counter":
			counters = replica.ConflictPolicy{Mode: replica.ModeCustom, Resolver: name}
		}
	}
	for _, c := range []replica.Container{
		{Name: "products", PartitionKey: "/category", ConflictPolicy: replica.ConflictPolicy{Mode: replica.ModeLWW, Path: "/price"}},
		{Name: "carts", PartitionKey: "/userId", ConflictPolicy: carts},
		{Name: "counters", PartitionKey: "/name", ConflictPolicy: counters},
		{Name: "notes", PartitionKey: "/topic", ConflictPolicy: replica.ConflictPolicy{Mode: replica.ModeManual}},
	} {
		if _, _, err := h.PutContainer(ctx, c); err != nil {
			return err
		}
	}
	for _, d := range []struct{ c, body string }{
		{"products", `{"id":"prod-123","category":"widgets","name":"Super Widget","price":19.99}`},
		{"products", `{"id":"prod-200","category":"phones","name":"Phone","price":499}`},
		{"products", `{"id":"prod-300","category":"books","name":"A Book","price":12.5}`},
		{"carts", `{"id":"cart-1","userId":"u1","items":["prod-200"],"note":""}`},
		{"counters", `{"id":"visits","name":"visits","count":0}`},
		{"notes", `{"id":"welcome","topic":"demo","text":"conflicts here wait for a person"}`},
	} {
		if _, _, err := h.Upsert(ctx, d.c, "", []byte(d.body), hub.WriteOptions{}); err != nil {
			return err
		}
	}
	return nil
}

func printDemo(w io.Writer, root, hubURL, token string, edges []string) {
	fmt.Fprintf(w, "\nedgesync demo: a hub and %d edges, data in %s\n\n", len(edges), root)
	fmt.Fprintf(w, "  hub   %s   (admin token: %s)\n", hubURL, token)
	for i, u := range edges {
		fmt.Fprintf(w, "  edge-%d %s\n", i+1, u)
	}
	fmt.Fprintf(w, `
Try a conflict: take edge-2 offline, change the same product's price on two edges, bring it back;
lww on /price keeps the higher price everywhere and the other one goes to the conflicts feed.
  curl -s -X POST %[1]s/demo/edges/edge-2/offline
  curl -s -X PUT -H 'Content-Type: application/json' %[2]s/api/v1/containers/products/docs/prod-123 -d '{"id":"prod-123","category":"widgets","name":"Super Widget","price":24.99}'
  curl -s -X PUT -H 'Content-Type: application/json' %[3]s/api/v1/containers/products/docs/prod-123 -d '{"id":"prod-123","category":"widgets","name":"Super Widget","price":21.99}'
  curl -s -X POST %[1]s/demo/edges/edge-2/online
  curl -s %[3]s/api/v1/containers/products/docs/prod-123        # confirmed everywhere: 24.99, _lsn, no _tentative
  curl -s -H 'Authorization: Bearer %[4]s' %[1]s/api/v1/containers/products/conflicts
  curl -s "%[3]s/api/v1/containers/products/changes?outcomes=true"  # edge-2's feed: its write's outcome, "lost"

Resolvers: carts merge their items as a set (cart-merge), counters add up offline increments
(counter), notes wait for a person:
  curl -s -X POST %[1]s/api/v1/containers/notes/conflicts/ID/resolve -H 'Authorization: Bearer %[4]s' -d '{"keep":"incoming"}'

Press Ctrl-C to stop.
`, hubURL, edges[0], edges[min(1, len(edges)-1)], token)
}
