package web

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/edgesync/edgesync/replica"
	"github.com/edgesync/edgesync/replica/hub"
	"github.com/edgesync/edgesync/replica/query"
	"github.com/edgesync/edgesync/replica/wire"
	"github.com/edgesync/edgesync/wasmhost"
)

// HubOptions configure the hub's HTTP API.
type HubOptions struct {
	Logger     *slog.Logger
	Version    string
	AdminToken string // required on /api/v1 except /api/v1/sync (edge tokens)
	// BaseContext ends sync sessions; cancel it before http.Server.Shutdown.
	BaseContext context.Context
	Heartbeat   time.Duration
	// SessionTTL is how long a dashboard session lasts after login.
	// Default DefaultSessionTTL.
	SessionTTL time.Duration
	// SecureCookie marks the session cookie Secure even when the request
	// did not come over TLS (a proxy in front terminates it); it is Secure
	// anyway on a TLS connection.
	SecureCookie bool
	// Resolvers is the wasm registry the hub loads resolvers into (for
	// limits and call statistics); nil when the hub runs none.
	Resolvers *wasmhost.Registry
	// Query bounds queries (docs/queries.md, Limits); zero values are the
	// defaults.
	Query query.Options
}

// Hub serves the hub's HTTP API (docs/api.md) and the sync
// endpoint.
type Hub struct {
	h       *hub.Hub
	opt     HubOptions
	log     *slog.Logger
	echo    *echo.Echo
	started time.Time
}

// NewHub builds the hub API around an open hub.
func NewHub(h *hub.Hub, opt HubOptions) *Hub {
	if opt.Logger == nil {
		opt.Logger = slog.New(slog.DiscardHandler)
	}
	if opt.Heartbeat <= 0 {
		opt.Heartbeat = 15 * time.Second
	}
	if opt.SessionTTL <= 0 {
		opt.SessionTTL = DefaultSessionTTL
	}
	if opt.BaseContext == nil {
		opt.BaseContext = context.Background()
	}
	reg := prometheus.NewRegistry()
	registerHubMetrics(reg, h)
	a := &Hub{h: h, opt: opt, log: opt.Logger, echo: newEcho(opt.Logger, reg), started: time.Now()}
	e := a.echo
	e.GET("/api/v1/sync", func(c echo.Context) error {
		h.ServeSync(opt.BaseContext, c.Response(), c.Request())
		return nil
	})
	// The tier's other hubs hand their edges' pushes to the sequencer
	// here, with the tier's secret (not the admin token).
	e.POST(hub.HandoffPath, func(c echo.Context) error {
		h.ServeTierPush(c.Response(), c.Request())
		return nil
	})
	serveUI(e, "hub")
	e.POST("/api/v1/session", a.login)
	e.DELETE("/api/v1/session", a.logout)
	api := e.Group("/api/v1", a.requireAdmin)
	api.GET("/status", a.status)
	api.GET("/events", a.events)
	(&docsAPI{s: hubStore{h}, log: a.log, heartbeat: opt.Heartbeat}).register(api)
	api.GET("/containers", a.listContainers) // with counts; replaces the plain list
	api.GET("/containers/:c/docs/:id/versions", a.itemVersions)
	api.POST("/resolvers/:name/try", a.tryResolver)
	api.GET("/containers/:c/conflicts", a.conflicts)
	api.POST("/containers/:c/query", queryHandler(a.hubQuery))
	api.GET("/containers/:c/query/live", liveQuery(liveSource{run: a.hubQuery, changed: h.Changed, done: h.Done, heartbeat: opt.Heartbeat}))
	api.POST("/containers/:c/conflicts/:cid/resolve", a.resolveConflict)
	api.PUT("/resolvers/:name", a.putResolver)
	api.GET("/resolvers", a.listResolvers)
	api.POST("/edges", a.registerEdge)
	api.GET("/edges", a.listEdges)
	api.DELETE("/edges/:name", a.revokeEdge)
	api.DELETE("/hubs/:name", a.removeHub)
	return a
}

// ServeHTTP makes Hub an http.Handler.
func (a *Hub) ServeHTTP(w http.ResponseWriter, r *http.Request) { a.echo.ServeHTTP(w, r) }

func (a *Hub) requireAdmin(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if err := a.authenticate(c); err != nil {
			return err
		}
		return next(c)
	}
}

// HubStatus is the body of GET /api/v1/status on a hub.
type HubStatus struct {
	HubID               string `json:"hubId"`
	LSN                 int64  `json:"lsn"`
	EdgesOnline         int    `json:"edgesOnline"`
	UnresolvedConflicts int64  `json:"unresolvedConflicts"`
	Containers          int    `json:"containers"`
	Version             string `json:"version"`
	UptimeSec           int64  `json:"uptimeSeconds"`
	// Name is this hub's name in its tier; Sequencer the hub that holds
	// the lease ("" while none does); Hubs the tier in order; Takeovers
	// the newest changes of sequencer, newest first.
	Name      string         `json:"name"`
	Sequencer string         `json:"sequencer"`
	Hubs      []hub.TierHub  `json:"hubs"`
	Takeovers []hub.Takeover `json:"takeovers"`
}

// statusTakeovers bounds the takeovers the status lists.
const statusTakeovers = 20

func (a *Hub) status(c echo.Context) error {
	ctx := c.Request().Context()
	n, err := a.h.UnresolvedConflicts(ctx)
	if err != nil {
		return err
	}
	hubs, err := a.h.Hubs(ctx)
	if err != nil {
		return err
	}
	takeovers, err := a.h.Takeovers(ctx, statusTakeovers)
	if err != nil {
		return err
	}
	st := HubStatus{HubID: a.h.HubID(), LSN: a.h.Head(), EdgesOnline: a.h.EdgesOnline(), UnresolvedConflicts: n,
		Containers: len(a.h.Containers()), Version: a.opt.Version, UptimeSec: int64(time.Since(a.started).Seconds()),
		Name: a.h.Name(), Hubs: hubs, Takeovers: takeovers}
	for _, th := range hubs {
		if th.Sequencer {
			st.Sequencer = th.Name
		}
	}
	return c.JSON(http.StatusOK, st)
}

func (a *Hub) removeHub(c echo.Context) error {
	name, err := pathParam(c, "name")
	if err != nil {
		return err
	}
	if err := a.h.RemoveHub(c.Request().Context(), name); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

func (a *Hub) conflicts(c echo.Context) error {
	p, err := conflictsPage(c, "hub")
	if err != nil {
		return err
	}
	list, next, err := a.h.Conflicts(c.Request().Context(), p.container, p.status, p.after, p.limit)
	if err != nil {
		return err
	}
	if list == nil {
		list = []hub.Conflict{}
	}
	return c.JSON(http.StatusOK, map[string]any{"conflicts": list, "continuation": strconv.FormatInt(next, 10)})
}

// conflictsQuery is a request for a page of a conflicts feed.
type conflictsQuery struct {
	container, status string
	after             int64
	limit             int
}

// conflictsPage reads GET .../containers/{c}/conflicts?status=&limit=&continuation=
// (the same on a hub and an edge; who names the server in errors).
func conflictsPage(c echo.Context, who string) (conflictsQuery, error) {
	var p conflictsQuery
	var err error
	if p.container, err = pathParam(c, "c"); err != nil {
		return p, err
	}
	q := c.QueryParams()
	limit, err := intParam(q, "limit")
	if err != nil {
		return p, err
	}
	p.limit, p.status = int(limit), q.Get("status")
	if cont := q.Get("continuation"); cont != "" {
		if p.after, err = strconv.ParseInt(cont, 10, 64); err != nil || p.after < 0 {
			return p, fmt.Errorf("%w: continuation %q is not one this %s issued", replica.ErrInvalid, cont, who)
		}
	}
	return p, nil
}

type registerRequest struct {
	Name  string            `json:"name"`
	Scope []wire.ScopeEntry `json:"scope"`
}

func (a *Hub) registerEdge(c echo.Context) error {
	body, err := readBody(c, 1<<20)
	if err != nil {
		return err
	}
	var req registerRequest
	if err := decodeStrict(body, &req); err != nil {
		return err
	}
	token, err := a.h.RegisterEdge(c.Request().Context(), req.Name, req.Scope)
	if err != nil {
		return err
	}
	scope := req.Scope
	if scope == nil {
		scope = []wire.ScopeEntry{}
	}
	return c.JSON(http.StatusCreated, map[string]any{"name": req.Name, "token": token, "scope": scope})
}

func (a *Hub) listEdges(c echo.Context) error {
	edges, err := a.h.Edges(c.Request().Context())
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"edges": edges})
}

func (a *Hub) revokeEdge(c echo.Context) error {
	name, err := pathParam(c, "name")
	if err != nil {
		return err
	}
	if err := a.h.RevokeEdge(c.Request().Context(), name); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

// hubStore adapts the hub to the document API.
type hubStore struct{ *hub.Hub }

func (s hubStore) Upsert(ctx context.Context, container, id string, body []byte, ifMatch string) (replica.Item, bool, error) {
	return s.Hub.Upsert(ctx, container, id, body, hub.WriteOptions{IfMatch: ifMatch})
}

func (s hubStore) Delete(ctx context.Context, container, id, ifMatch string) error {
	return s.Hub.Delete(ctx, container, id, hub.WriteOptions{IfMatch: ifMatch})
}

func (s hubStore) Get(ctx context.Context, container, id, consistency string) (replica.Item, error) {
	if consistency != "" && consistency != "confirmed" {
		return replica.Item{}, fmt.Errorf("%w: consistency %q: want \"confirmed\" or nothing (the hub has only confirmed state)", replica.ErrInvalid, consistency)
	}
	return s.Hub.Get(ctx, container, id)
}

func (s hubStore) List(ctx context.Context, container string, q listQuery) (replica.Page, error) {
	if q.Consistency != "" && q.Consistency != "confirmed" {
		return replica.Page{}, fmt.Errorf("%w: consistency %q: want \"confirmed\" or nothing", replica.ErrInvalid, q.Consistency)
	}
	return s.Hub.List(ctx, container, hub.ListOptions{PK: q.PK, HasPK: q.HasPK, Limit: q.Limit, Continuation: q.Continuation})
}

var _ store = hubStore{}

func registerHubMetrics(reg *prometheus.Registry, h *hub.Hub) {
	ws := h.WriterStats()
	counter := func(name, help string, f func() float64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help}, f)
	}
	reg.MustRegister(
		counter("edgesync_hub_commits_total", "Group commits of the hub's write path.", func() float64 { return float64(ws.Commits.Load()) }),
		counter("edgesync_hub_commit_errors_total", "Group commits that failed as a whole.", func() float64 { return float64(ws.CommitErrors.Load()) }),
		counter("edgesync_hub_writes_total", "Write jobs (push batches, hub writes) committed.", func() float64 { return float64(ws.Writes.Load()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "edgesync_hub_lsn", Help: "Newest LSN of the log."}, func() float64 { return float64(h.Head()) }),
		counter("edgesync_hub_sync_unauthorized_total", "Sync attempts refused for a missing, unknown or revoked edge token.",
			func() float64 { return float64(h.SyncUnauthorized()) }),
		counter("edgesync_hub_push_out_of_order_total", "Pushes decided only up to a version written over an earlier version of its edge not decided yet (the edge pushes the rest again).",
			func() float64 { return float64(h.PushesOutOfOrder()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "edgesync_hub_edges_online", Help: "Edges with a live sync session."}, func() float64 { return float64(h.EdgesOnline()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "edgesync_hub_lease_held", Help: "1 while this hub holds the tier's lease (sequences), else 0."},
			func() float64 {
				if h.Sequencing() {
					return 1
				}
				return 0
			}),
		counter("edgesync_hub_takeovers_total", "Times this hub took the tier's lease since it started.", func() float64 { return float64(h.TakeoverCount()) }),
		counter("edgesync_hub_handoff_pushes_total", "Edge pushes this hub handed to the sequencer's hub directly and had decided there.",
			func() float64 { p, _, _ := h.HandoffCounts(); return float64(p) }),
		counter("edgesync_hub_handoff_fallbacks_total", "Edge pushes this hub queued in the tier's queue table after a hand-off to the sequencer's hub failed.",
			func() float64 { _, f, _ := h.HandoffCounts(); return float64(f) }),
		counter("edgesync_hub_handoff_received_total", "Edge pushes the tier's other hubs handed to this hub (the sequencer).",
			func() float64 { _, _, r := h.HandoffCounts(); return float64(r) }),
		counter("edgesync_hub_sync_refused_busy_total", "Sync connections refused with 503 at the hub's handshake or session limit.",
			func() float64 { return float64(h.SyncRefusedBusy()) }),
		counter("edgesync_hub_stream_log_reads_total", "Log reads for the confirmed stream, each counted once however many sessions it served.",
			func() float64 { return float64(h.FanoutStats().Reads) }),
		counter("edgesync_hub_stream_frames_encoded_total", "Changes frames encoded for the confirmed stream, each counted once however many sessions it went to.",
			func() float64 { return float64(h.FanoutStats().Encodes) }),
	)
	reg.MustRegister(hubClockMetrics(h)...)
}
