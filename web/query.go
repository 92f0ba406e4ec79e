package web

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"

	"github.com/labstack/echo/v4"

	"github.com/edgesync/edgesync/replica"
	"github.com/edgesync/edgesync/replica/query"
)

// maxQueryBody bounds the body of POST .../query: the query text (at most
// query.DefaultMaxQueryLength unless configured lower) and its parameters.
const maxQueryBody = 1 << 20

// queryBody is the body of POST /api/v1/containers/{c}/query.
type queryBody struct {
	query.Request
	Consistency string `json:"consistency,omitempty"`
}

// queryHandler serves POST /api/v1/containers/{c}/query over run, which
// runs the query on one engine.
func queryHandler(run func(ctx context.Context, container string, b queryBody) (query.Page, error)) echo.HandlerFunc {
	return func(c echo.Context) error {
		name, err := pathParam(c, "c")
		if err != nil {
			return err
		}
		body, err := readBody(c, maxQueryBody)
		if err != nil {
			return err
		}
		var b queryBody
		if err := decodeStrict(body, &b); err != nil {
			return err
		}
		p, err := run(c.Request().Context(), name, b)
		if err != nil {
			return err
		}
		buf := append(make([]byte, 0, 256), `{"documents":[`...)
		for i, d := range p.Documents {
			if i > 0 {
				buf = append(buf, ',')
			}
			buf = append(buf, d...)
		}
		buf = append(buf, `],"continuation":`...)
		if p.Continuation == "" {
			buf = append(buf, "null"...)
		} else {
			buf = strconv.AppendQuote(buf, p.Continuation)
		}
		if p.Plan != nil {
			plan, err := json.Marshal(p.Plan)
			if err != nil {
				return err
			}
			buf = append(append(buf, `,"plan":`...), plan...)
		}
		buf = append(buf, '}')
		return c.Blob(http.StatusOK, echo.MIMEApplicationJSON, buf)
	}
}

// edgeQuery runs a query on the edge replica.
func (a *Edge) edgeQuery(ctx context.Context, container string, b queryBody) (query.Page, error) {
	return a.r.Query(ctx, container, b.Request, b.Consistency, a.opt.Query)
}

// hubQuery runs a query on the hub, whose state is all confirmed.
func (a *Hub) hubQuery(ctx context.Context, container string, b queryBody) (query.Page, error) {
	if b.Consistency != "" && b.Consistency != "confirmed" {
		return query.Page{}, fmt.Errorf("%w: consistency %q: want \"confirmed\" or nothing (a hub holds confirmed versions only)", replica.ErrInvalid, b.Consistency)
	}
	return a.h.Query(ctx, container, b.Request, a.opt.Query)
}
