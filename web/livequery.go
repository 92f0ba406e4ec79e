package web

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/edgesync/edgesync/replica"
	"github.com/edgesync/edgesync/replica/query"
)

// liveQueryEvery is the least time between two evaluations of a live
// query: commits closer together are answered by one evaluation.
const liveQueryEvery = 50 * time.Millisecond

// maxLiveParams bounds the p.NAME parameters of a live query, like a
// query's parameters.
const maxLiveParams = 100

// liveSource is what a live query runs on: an edge replica or a hub.
type liveSource struct {
	// run runs the query once.
	run func(ctx context.Context, container string, b queryBody) (query.Page, error)
	// changed is closed at the next commit (on a hub of a tier, another
	// hub's too, once this one has read its heads); done once the engine
	// stops.
	changed   func() <-chan struct{}
	done      func() <-chan struct{}
	heartbeat time.Duration
}

// liveQuery serves GET /api/v1/containers/{c}/query/live?q=...&p.NAME=VALUE
// as Server-Sent Events: an event "result" with the first page of the
// query's result ({"documents": [...], "continuation": ...}), then another
// each time a commit changes that page (on an edge a local write, a
// confirmation, an outcome, a change from the hub; on a hub a confirmed
// write, this hub's or, in a tier, another's). It never queues: after each
// wake-up it runs the query again and sends the page if it differs from
// the last one sent. A bad query is answered 400 before the stream starts;
// a later failure (a timeout) ends the stream with an event "error".
func liveQuery(src liveSource) echo.HandlerFunc {
	return func(c echo.Context) error {
		return serveLiveQuery(c, src)
	}
}

func serveLiveQuery(c echo.Context, src liveSource) error {
	name, err := pathParam(c, "c")
	if err != nil {
		return err
	}
	qp := c.QueryParams()
	req := query.Request{Query: qp.Get("q")}
	if req.Query == "" {
		return fmt.Errorf("%w: q (the query) is required", replica.ErrInvalid)
	}
	limit, err := intParam(qp, "limit")
	if err != nil {
		return err
	}
	req.Limit = int(limit)
	for k, vs := range qp {
		pname, ok := strings.CutPrefix(k, "p.")
		if !ok {
			continue
		}
		if len(req.Parameters) == maxLiveParams {
			return fmt.Errorf("%w: more than %d parameters", replica.ErrInvalid, maxLiveParams)
		}
		v := vs[0]
		raw := json.RawMessage(v)
		if !json.Valid(raw) {
			raw = mustJSON(v) // not JSON: a string
		}
		req.Parameters = append(req.Parameters, query.Parameter{Name: "@" + pname, Value: raw})
	}
	b := queryBody{Request: req, Consistency: qp.Get("consistency")}
	ctx := c.Request().Context()
	run := func() ([]byte, error) {
		p, err := src.run(ctx, name, b)
		if err != nil {
			return nil, err
		}
		p.Plan = nil
		return json.Marshal(p)
	}
	changed := src.changed()
	page, err := run()
	if err != nil {
		return err // before the status line: the usual error response
	}
	w := c.Response()
	if !startSSE(w, ": edgesync live query\n\n") {
		return nil
	}
	heartbeat := time.NewTicker(src.heartbeat)
	defer heartbeat.Stop()
	var sent []byte
	seq := 0
	for {
		if !bytes.Equal(page, sent) {
			seq++
			if _, err := fmt.Fprintf(w, "id: %d\nevent: result\ndata: %s\n\n", seq, page); err != nil {
				return nil
			}
			w.Flush()
			sent = page
		}
		last := time.Now()
	wait:
		for {
			select {
			case <-changed:
				break wait
			case <-heartbeat.C:
				if _, err := io.WriteString(w, ": heartbeat\n\n"); err != nil {
					return nil
				}
				w.Flush()
			case <-ctx.Done():
				return nil
			case <-src.done():
				return nil
			}
		}
		if d := liveQueryEvery - time.Since(last); d > 0 {
			select {
			case <-time.After(d):
			case <-ctx.Done():
				return nil
			}
		}
		changed = src.changed()
		if page, err = run(); err != nil {
			_, body := errorResponse(err)
			fmt.Fprintf(w, "event: error\ndata: %s\n\n", mustJSON(body))
			w.Flush()
			return nil
		}
	}
}
