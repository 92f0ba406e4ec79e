package web

import (
	"context"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/edgesync/edgesync/replica"
	"github.com/edgesync/edgesync/replica/edge"
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
}

// Edge serves the edge node's local HTTP API (DESIGN §9, edge column).
type Edge struct {
	r       *edge.Replica
	opt     EdgeOptions
	log     *slog.Logger
	echo    *echo.Echo
	started time.Time
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
	a := &Edge{r: r, opt: opt, log: opt.Logger, echo: newEcho(opt.Logger, reg), started: time.Now()}
	serveUI(a.echo, "edge")
	api := a.echo.Group("/api/v1")
	api.GET("/status", a.status)
	api.GET("/containers/:c/conflicts", a.conflicts)
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
	Connected bool           `json:"connected"`
	Hub       string         `json:"hub"` // the hub currently connected, "" if none
	Hubs      []string       `json:"hubs"`
	LastLSN   int64          `json:"lastLsn"` // hub LSN applied up to
	HeadLSN   int64          `json:"headLsn"` // newest LSN the hub announced
	LastError string         `json:"lastError,omitempty"`
	Offline   bool           `json:"offline"` // syncing turned off (POST /api/v1/sync/offline)
	Sync      edge.SyncState `json:"sync"`
	Version   string         `json:"version"`
	UptimeSec int64          `json:"uptimeSeconds"`
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
		st.Connected, st.Hub, st.LastError, st.HeadLSN = ss.Connected, ss.Hub, ss.LastError, ss.HeadLSN
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
