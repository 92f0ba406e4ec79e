package web

import (
	"context"
	"crypto/subtle"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/edgesync/edgesync/replica"
	"github.com/edgesync/edgesync/replica/edge"
	"github.com/edgesync/edgesync/replica/hub"
	"github.com/edgesync/edgesync/replica/query"
)

// EdgeOptions configure the edge's HTTP API.
type EdgeOptions struct {
	Logger  *slog.Logger
	Version string   // build version, shown in status
	Hubs    []string // configured hub URLs, shown in status
	// Sync reports the sync client's state; nil: not syncing.
	Sync interface{ Status() edge.SyncStatus }
	// Heartbeat is the interval of keep-alive comments on change streams.
	// Default 15s.
	Heartbeat time.Duration

	// Listen is the address the API is served on; it names the default
	// AllowedHosts.
	Listen string
	// AllowedHosts are the host names (no port) a request's Host may name
	// besides the loopback ones (localhost, 127.0.0.1, ::1), which are
	// always allowed; any other gets 403, which defeats DNS rebinding.
	// Default DefaultAllowedHosts(Listen).
	AllowedHosts []string
	// CORSOrigins are the origins ("https://app.example:8443") whose pages
	// may call the API; a browser request from any other origin gets 403.
	CORSOrigins []string
	// LocalToken, when set, must come with every API call (/api/v1/...
	// and /metrics; not /healthz or the page itself): Authorization:
	// Bearer <token>, or the cookie edgesync_local that the page sets.
	LocalToken string
	// Query bounds queries (docs/queries.md, Limits); zero values are the
	// defaults.
	Query query.Options
}

// DefaultAllowedHosts are the host names an edge listening on listen
// accepts by default: localhost, 127.0.0.1, ::1 and the listen address's
// host; for a wildcard address (0.0.0.0, ::, or none), every address of the
// machine's interfaces and its host name instead.
func DefaultAllowedHosts(listen string) []string {
	hosts := slices.Clone(loopbackHosts)
	host, _, err := net.SplitHostPort(listen)
	if err != nil {
		host = listen
	}
	host = strings.Trim(host, "[]")
	if ip := net.ParseIP(host); host != "" && (ip == nil || !ip.IsUnspecified()) {
		return append(hosts, host)
	}
	if addrs, err := net.InterfaceAddrs(); err == nil {
		for _, a := range addrs {
			if ipn, ok := a.(*net.IPNet); ok {
				hosts = append(hosts, ipn.IP.String())
			}
		}
	}
	if name, err := os.Hostname(); err == nil && name != "" {
		hosts = append(hosts, name)
	}
	return hosts
}

// loopbackHosts are always allowed: a page of another site cannot make a
// browser send them as Host (its own name would be in the Host).
var loopbackHosts = []string{"localhost", "127.0.0.1", "::1"}

// localTokenCookie carries the local token for the edge's page, which sets
// it when the node asks for the token.
const localTokenCookie = "edgesync_local"

// The CORS answers for an allowed origin: every method and request header
// the API takes, and the response headers a client needs.
const (
	corsMethods       = "GET, HEAD, POST, PUT, DELETE"
	corsHeaders       = "Accept, Authorization, Content-Type, If-Match, If-None-Match, Last-Event-ID"
	corsExposeHeaders = "ETag, Location"
	corsMaxAge        = "600"
)

// guard runs before routing on every request but /healthz: the Host must be
// one of this node's names. On the API and /metrics, a browser request from
// a page of another origin is refused unless that origin is allowed (then it
// gets CORS headers, and a preflight its answer); with a local token, calls
// must carry it; and a state-changing request's body must be JSON.
func (a *Edge) guard(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		r := c.Request()
		if r.URL.Path == "/healthz" {
			return next(c)
		}
		if !a.hosts[hostName(r.Host)] {
			return fmt.Errorf("%w: host %q is not a name of this edge node (see --allowed-hosts)", replica.ErrForbidden, r.Host)
		}
		if !strings.HasPrefix(r.URL.Path, "/api/") && r.URL.Path != "/metrics" {
			// The page and its files hold no data: other sites may link to
			// them (framing is refused by their Content-Security-Policy).
			return next(c)
		}
		if origin, cross := crossOrigin(r); cross {
			if !a.origins[origin] {
				return fmt.Errorf("%w (allow it with --cors-origin)", errCrossOrigin(origin))
			}
			h := c.Response().Header()
			h.Set("Access-Control-Allow-Origin", origin)
			h.Add("Vary", "Origin")
			if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
				h.Set("Access-Control-Allow-Methods", corsMethods)
				h.Set("Access-Control-Allow-Headers", corsHeaders)
				h.Set("Access-Control-Max-Age", corsMaxAge)
				return c.NoContent(http.StatusNoContent)
			}
			h.Set("Access-Control-Expose-Headers", corsExposeHeaders)
		}
		if a.opt.LocalToken != "" && !a.localTokenOK(c) {
			return fmt.Errorf("%w: this edge node's API needs its local token: Authorization: Bearer <token> (the node saved it in its data directory as local-token)",
				hub.ErrUnauthorized)
		}
		if unsafeMethod(r.Method) {
			if err := jsonBody(r); err != nil {
				return err
			}
		}
		return next(c)
	}
}

// localTokenOK checks the local token, as a bearer token or the page's
// cookie, in constant time.
func (a *Edge) localTokenOK(c echo.Context) bool {
	t, ok := strings.CutPrefix(c.Request().Header.Get("Authorization"), "Bearer ")
	if !ok {
		ck, err := c.Cookie(localTokenCookie)
		if err != nil {
			return false
		}
		t = ck.Value
	}
	return subtle.ConstantTimeCompare([]byte(strings.TrimSpace(t)), []byte(a.opt.LocalToken)) == 1
}

// hostName is a Host header's host, without port or brackets, lower case.
func hostName(hostport string) string {
	host, _, err := net.SplitHostPort(hostport)
	if err != nil {
		host = hostport
	}
	return strings.TrimSuffix(strings.ToLower(strings.Trim(host, "[]")), ".")
}

// Edge serves the edge node's local HTTP API (docs/api.md).
type Edge struct {
	r       *edge.Replica
	opt     EdgeOptions
	log     *slog.Logger
	echo    *echo.Echo
	started time.Time
	hosts   map[string]bool // AllowedHosts, as hostName gives them
	origins map[string]bool // CORSOrigins
}

// NewEdge builds the edge API around an open replica.
func NewEdge(r *edge.Replica, opt EdgeOptions) *Edge {
	if opt.Logger == nil {
		opt.Logger = slog.New(slog.DiscardHandler)
	}
	if opt.Heartbeat <= 0 {
		opt.Heartbeat = 15 * time.Second
	}
	reg := prometheus.NewRegistry()
	registerEdgeMetrics(reg, r)
	if opt.Sync != nil {
		reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "edgesync_edge_rehomes_total",
			Help: "Moves of the sync session from one hub of the --hub list to another."},
			func() float64 { return float64(opt.Sync.Status().Rehomes) }))
	}
	if opt.AllowedHosts == nil {
		opt.AllowedHosts = DefaultAllowedHosts(opt.Listen)
	}
	a := &Edge{r: r, opt: opt, log: opt.Logger, echo: newEcho(opt.Logger, reg), started: time.Now(),
		hosts: map[string]bool{}, origins: map[string]bool{}}
	for _, h := range slices.Concat(loopbackHosts, opt.AllowedHosts) {
		a.hosts[hostName(h)] = true
	}
	for _, o := range opt.CORSOrigins {
		a.origins[strings.TrimSuffix(o, "/")] = true
	}
	a.echo.Pre(a.guard)
	serveUI(a.echo, "edge")
	api := a.echo.Group("/api/v1")
	api.GET("/status", a.status)
	api.GET("/containers/:c/conflicts", a.conflicts)
	api.POST("/containers/:c/query", queryHandler(a.edgeQuery))
	api.GET("/containers/:c/query/live", liveQuery(liveSource{run: a.edgeQuery, changed: r.Changed, done: r.Done, heartbeat: opt.Heartbeat}))
	api.GET("/events", a.events)
	api.POST("/sync/offline", a.setOnline(false))
	api.POST("/sync/online", a.setOnline(true))
	(&docsAPI{s: edgeStore{r}, log: a.log, heartbeat: opt.Heartbeat}).register(api)
	return a
}

// ServeHTTP makes Edge an http.Handler.
func (a *Edge) ServeHTTP(w http.ResponseWriter, r *http.Request) { a.echo.ServeHTTP(w, r) }

// EdgeStatus is the body of GET /api/v1/status on an edge.
type EdgeStatus struct {
	edge.Status
	Connected bool   `json:"connected"`
	Hub       string `json:"hub"`               // the hub currently connected, "" if none
	HubName   string `json:"hubName,omitempty"` // its name in its tier, if it tells
	// ConnectedAt is when the session with Hub began (absent when not
	// connected); Rehomes counts the moves from one hub of Hubs to another.
	ConnectedAt *time.Time     `json:"connectedAt,omitempty"`
	Rehomes     int64          `json:"rehomes"`
	Hubs        []string       `json:"hubs"`
	LastLSN     int64          `json:"lastLsn"` // hub LSN applied up to
	HeadLSN     int64          `json:"headLsn"` // newest LSN the hub announced
	LastError   string         `json:"lastError,omitempty"`
	Offline     bool           `json:"offline"` // syncing turned off (POST /api/v1/sync/offline)
	Sync        edge.SyncState `json:"sync"`
	Version     string         `json:"version"`
	UptimeSec   int64          `json:"uptimeSeconds"`
}

func (a *Edge) status(c echo.Context) error { return c.JSON(http.StatusOK, a.statusValue()) }

func (a *Edge) statusValue() EdgeStatus {
	hubs := a.opt.Hubs
	if hubs == nil {
		hubs = []string{}
	}
	st := EdgeStatus{
		Status:    a.r.Status(),
		Hubs:      hubs,
		LastLSN:   a.r.ResumeLSN(),
		Version:   a.opt.Version,
		UptimeSec: int64(time.Since(a.started).Seconds()),
		Sync:      a.r.SyncState(),
	}
	if a.opt.Sync != nil {
		ss := a.opt.Sync.Status()
		st.Connected, st.Hub, st.HubName, st.Rehomes, st.LastError, st.HeadLSN = ss.Connected, ss.Hub, ss.HubName, ss.Rehomes, ss.LastError, ss.HeadLSN
		if !ss.ConnectedAt.IsZero() {
			at := ss.ConnectedAt.UTC()
			st.ConnectedAt = &at
		}
		if l, ok := a.opt.Sync.(onlineSetter); ok {
			st.Offline = !l.Online()
		}
	}
	return st
}

// edgeStore adapts the edge replica to the document API.
type edgeStore struct{ *edge.Replica }

func (s edgeStore) Upsert(ctx context.Context, container, id string, body []byte, ifMatch string) (replica.Item, bool, error) {
	return s.Replica.Upsert(ctx, container, id, body, edge.WriteOptions{IfMatch: ifMatch})
}

func (s edgeStore) Delete(ctx context.Context, container, id, ifMatch string) error {
	return s.Replica.Delete(ctx, container, id, edge.WriteOptions{IfMatch: ifMatch})
}

func (s edgeStore) Get(ctx context.Context, container, id, consistency string) (replica.Item, error) {
	return s.Replica.Get(ctx, container, id, edge.ReadOptions{Consistency: consistency})
}

func (s edgeStore) List(ctx context.Context, container string, q listQuery) (replica.Page, error) {
	return s.Replica.List(ctx, container, edge.ListOptions{PK: q.PK, HasPK: q.HasPK, Limit: q.Limit, Continuation: q.Continuation, Consistency: q.Consistency})
}

var _ store = edgeStore{}

// conflicts serves the conflicts feed as this edge has it from its hub (its
// scope only; empty before the first sync).
func (a *Edge) conflicts(c echo.Context) error {
	p, err := conflictsPage(c, "edge")
	if err != nil {
		return err
	}
	list, next, err := a.r.Conflicts(c.Request().Context(), p.container, p.status, p.after, p.limit)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"conflicts": list, "continuation": strconv.FormatInt(next, 10)})
}
