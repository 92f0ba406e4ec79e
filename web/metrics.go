package web

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"runtime/debug"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/edgesync/edgesync/replica/edge"
	"github.com/edgesync/edgesync/replica/hub"
)

// requestMetrics counts requests and their latency by route, method and
// status code.
func requestMetrics(reg *prometheus.Registry) echo.MiddlewareFunc {
	requests := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "edgesync_http_requests_total",
		Help: "HTTP requests by route, method and status code.",
	}, []string{"route", "method", "code"})
	latency := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "edgesync_http_request_duration_seconds",
		Help:    "HTTP request latency by route and method (streams excluded).",
		Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
	}, []string{"route", "method"})
	reg.MustRegister(requests, latency, collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			start := time.Now()
			err := next(c)
			if err != nil {
				c.Error(err) // write the response now so the status is known
			}
			route := c.Path()
			if route == "" {
				route = "unmatched"
			}
			method := c.Request().Method
			requests.WithLabelValues(route, method, strconv.Itoa(c.Response().Status)).Inc()
			if c.Response().Header().Get(echo.HeaderContentType) != "text/event-stream" {
				latency.WithLabelValues(route, method).Observe(time.Since(start).Seconds())
			}
			return nil
		}
	}
}

// registerEdgeMetrics exposes the replica's counters.
func registerEdgeMetrics(reg *prometheus.Registry, r *edge.Replica) {
	st, ws := r.Stats(), r.WriterStats()
	counter := func(name, help string, f func() float64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help}, f)
	}
	reg.MustRegister(
		counter("edgesync_edge_commits_total", "Group commits of the write path.", func() float64 { return float64(ws.Commits.Load()) }),
		counter("edgesync_edge_commit_errors_total", "Group commits that failed as a whole.", func() float64 { return float64(ws.CommitErrors.Load()) }),
		counter("edgesync_edge_writes_total", "Writes acknowledged.", func() float64 { return float64(ws.Writes.Load()) }),
		counter("edgesync_edge_write_errors_total", "Writes refused (precondition, conflict, ...).", func() float64 { return float64(ws.WriteErrors.Load()) }),
		counter("edgesync_edge_commit_seconds_total", "Time spent in group commits.", func() float64 { return float64(ws.CommitNanos.Load()) / 1e9 }),
		counter("edgesync_edge_reads_total", "Items returned by reads and listings.", func() float64 { return float64(st.ReadsServed.Load()) }),
		counter("edgesync_edge_changes_served_total", "Change records served.", func() float64 { return float64(st.ChangesServed.Load()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "edgesync_edge_outbox_pending", Help: "Tentative versions waiting for the hub."},
			func() float64 { return float64(r.Status().Pending) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "edgesync_edge_change_seq", Help: "Newest position of the local change feed."},
			func() float64 { return float64(r.Status().LastSeq) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "edgesync_edge_max_batch", Help: "Largest group commit seen."},
			func() float64 { return float64(ws.MaxBatch.Load()) }),
		counter("edgesync_sqlite_checkpoints_total", "Background WAL checkpoints run.", func() float64 { return float64(r.CheckpointStats().Runs) }),
		counter("edgesync_sqlite_checkpoint_errors_total", "Background WAL checkpoints that failed.", func() float64 { return float64(r.CheckpointStats().Errors) }),
	)
	reg.MustRegister(edgeClockMetrics(r)...)
}

// hubClockMetrics exposes what the hub does about edges' clocks.
func hubClockMetrics(h *hub.Hub) []prometheus.Collector {
	return []prometheus.Collector{
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "edgesync_hub_clock_clamped_total",
			Help: "Pushed versions whose _ts was ahead of the hub's clock by more than --max-clock-skew and took part in decisions with the hub's receipt time."},
			func() float64 {
				n, err := h.ClampedTotal(context.Background())
				if err != nil {
					return math.NaN()
				}
				return float64(n)
			}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "edgesync_hub_max_clock_skew_seconds", Help: "The tolerance for a pushed _ts ahead of the hub's clock."},
			func() float64 { return h.MaxClockSkew().Seconds() }),
	}
}

// edgeClockMetrics exposes the edge's measured clock offset.
func edgeClockMetrics(r *edge.Replica) []prometheus.Collector {
	return []prometheus.Collector{
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "edgesync_edge_clock_offset_seconds",
			Help: "The hub's clock minus this node's, as last measured (0 until a hub was reached)."},
			func() float64 { return float64(r.Clock().OffsetMs) / 1000 }),
	}
}

func metricsHandler(reg *prometheus.Registry) echo.HandlerFunc {
	h := promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
	return echo.WrapHandler(h)
}

// recoverer turns a handler panic into a 500 and a logged stack, keeping the
// process up.
func recoverer(log *slog.Logger) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) (err error) {
			defer func() {
				if p := recover(); p != nil {
					if p == http.ErrAbortHandler {
						panic(p)
					}
					log.Error("handler panic", "path", c.Request().URL.Path, "panic", p, "stack", string(debug.Stack()))
					err = fmt.Errorf("panic: %v", p)
				}
			}()
			return next(c)
		}
	}
}

// newEcho builds the echo instance both APIs start from: the one error
// handler, panic recovery, request metrics on reg, /healthz and /metrics.
func newEcho(log *slog.Logger, reg *prometheus.Registry) *echo.Echo {
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.HTTPErrorHandler = ErrorHandler(log)
	e.Use(recoverer(log), requestMetrics(reg))
	e.GET("/healthz", func(c echo.Context) error { return c.JSON(http.StatusOK, map[string]string{"status": "ok"}) })
	e.GET("/metrics", metricsHandler(reg))
	return e
}
