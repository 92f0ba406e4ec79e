package web

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/edgesync/edgesync/replica"
)

// store is what the document API needs of an engine; the edge replica and
// the hub both provide it (edgeStore, hubStore).
type store interface {
	Containers() []replica.Container
	Container(name string) (replica.Container, error)
	PutContainer(ctx context.Context, c replica.Container) (bool, replica.Container, error)
	Create(ctx context.Context, container string, body []byte) (replica.Item, error)
	Upsert(ctx context.Context, container, id string, body []byte, ifMatch string) (replica.Item, bool, error)
	Delete(ctx context.Context, container, id, ifMatch string) error
	Get(ctx context.Context, container, id, consistency string) (replica.Item, error)
	List(ctx context.Context, container string, q listQuery) (replica.Page, error)
	// Changes returns change records after position since (edge: local
	// seq; hub: LSN) and the position to continue from.
	Changes(ctx context.Context, container string, since int64, limit int) ([]replica.Change, int64, error)
	Changed() <-chan struct{}
	Done() <-chan struct{}
}

type listQuery struct {
	PK           string
	HasPK        bool
	Limit        int
	Continuation string
	Consistency  string
}

// position is a change record's place in its feed: the local seq on an
// edge, the LSN on the hub.
func position(c *replica.Change) int64 {
	if c.Seq > 0 {
		return c.Seq
	}
	return c.LSN
}

// docsAPI serves containers, documents and the change feed over a store.
type docsAPI struct {
	s         store
	log       *slog.Logger
	heartbeat time.Duration
}

func (a *docsAPI) register(api *echo.Group) {
	api.GET("/containers", a.listContainers)
	api.GET("/containers/:c", a.getContainer)
	api.PUT("/containers/:c", a.putContainer)
	api.POST("/containers/:c/docs", a.createDoc)
	api.GET("/containers/:c/docs", a.listDocs)
	api.GET("/containers/:c/docs/:id", a.getDoc)
	api.HEAD("/containers/:c/docs/:id", a.getDoc)
	api.PUT("/containers/:c/docs/:id", a.upsertDoc)
	api.DELETE("/containers/:c/docs/:id", a.deleteDoc)
	api.GET("/containers/:c/changes", a.changes)
}

func (a *docsAPI) listContainers(c echo.Context) error {
	return c.JSON(http.StatusOK, map[string]any{"containers": a.s.Containers()})
}

func (a *docsAPI) getContainer(c echo.Context) error {
	name, err := pathParam(c, "c")
	if err != nil {
		return err
	}
	def, err := a.s.Container(name)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, def)
}

func (a *docsAPI) putContainer(c echo.Context) error {
	name, err := pathParam(c, "c")
	if err != nil {
		return err
	}
	body, err := readBody(c, 64<<10)
	if err != nil {
		return err
	}
	var def replica.Container
	if err := decodeStrict(body, &def); err != nil {
		return err
	}
	if def.Name != "" && def.Name != name {
		return fmt.Errorf("%w: body name %q differs from the path's %q", replica.ErrInvalid, def.Name, name)
	}
	def.Name = name
	created, def, err := a.s.PutContainer(c.Request().Context(), def)
	if err != nil {
		return err
	}
	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	return c.JSON(status, def)
}

func (a *docsAPI) createDoc(c echo.Context) error {
	name, err := pathParam(c, "c")
	if err != nil {
		return err
	}
	body, err := readBody(c, replica.MaxDocumentSize)
	if err != nil {
		return err
	}
	it, err := a.s.Create(c.Request().Context(), name, body)
	if err != nil {
		return err
	}
	c.Response().Header().Set(echo.HeaderLocation, "/api/v1/containers/"+url.PathEscape(name)+"/docs/"+url.PathEscape(it.ID))
	return writeItem(c, http.StatusCreated, &it)
}

func (a *docsAPI) upsertDoc(c echo.Context) error {
	name, id, err := docParams(c)
	if err != nil {
		return err
	}
	body, err := readBody(c, replica.MaxDocumentSize)
	if err != nil {
		return err
	}
	it, created, err := a.s.Upsert(c.Request().Context(), name, id, body, c.Request().Header.Get("If-Match"))
	if err != nil {
		return err
	}
	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	return writeItem(c, status, &it)
}

func (a *docsAPI) getDoc(c echo.Context) error {
	name, id, err := docParams(c)
	if err != nil {
		return err
	}
	it, err := a.s.Get(c.Request().Context(), name, id, c.QueryParam("consistency"))
	if err != nil {
		return err
	}
	if inm := c.Request().Header.Get("If-None-Match"); inm != "" && etagMatchesWeak(inm, it.ETag()) {
		c.Response().Header().Set(headerETag, it.ETag())
		return c.NoContent(http.StatusNotModified)
	}
	return writeItem(c, http.StatusOK, &it)
}

func (a *docsAPI) deleteDoc(c echo.Context) error {
	name, id, err := docParams(c)
	if err != nil {
		return err
	}
	if err := a.s.Delete(c.Request().Context(), name, id, c.Request().Header.Get("If-Match")); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

func (a *docsAPI) listDocs(c echo.Context) error {
	name, err := pathParam(c, "c")
	if err != nil {
		return err
	}
	q := c.QueryParams()
	limit, err := intParam(q, "limit")
	if err != nil {
		return err
	}
	page, err := a.s.List(c.Request().Context(), name, listQuery{
		PK: q.Get("pk"), HasPK: q.Has("pk"), Limit: int(limit),
		Continuation: q.Get("continuation"), Consistency: q.Get("consistency"),
	})
	if err != nil {
		return err
	}
	buf := make([]byte, 0, 256*len(page.Items)+64)
	buf = append(buf, `{"documents":[`...)
	for i := range page.Items {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = page.Items[i].AppendJSON(buf)
	}
	buf = append(buf, `],"continuation":`...)
	if page.Continuation == "" {
		buf = append(buf, "null"...)
	} else {
		buf = strconv.AppendQuote(buf, page.Continuation)
	}
	buf = append(buf, "}\n"...)
	return c.Blob(http.StatusOK, echo.MIMEApplicationJSON, buf)
}

// changes serves the local change feed: a page (JSON) or, with ?stream=true
// or Accept: text/event-stream, a live Server-Sent Events stream.
func (a *docsAPI) changes(c echo.Context) error {
	name, err := pathParam(c, "c")
	if err != nil {
		return err
	}
	q := c.QueryParams()
	since, err := intParam(q, "since")
	if err != nil {
		return err
	}
	if cont := q.Get("continuation"); cont != "" {
		if since, err = strconv.ParseInt(cont, 10, 64); err != nil || since < 0 {
			return fmt.Errorf("%w: continuation %q is not one this node issued", replica.ErrInvalid, cont)
		}
	}
	limit, err := intParam(q, "limit")
	if err != nil {
		return err
	}
	outcomes, err := boolParam(q, "outcomes")
	if err != nil {
		return err
	}
	feed := a.feed(outcomes)
	if wantsStream(c) {
		if id := c.Request().Header.Get("Last-Event-ID"); id != "" {
			if since, err = strconv.ParseInt(id, 10, 64); err != nil || since < 0 {
				return fmt.Errorf("%w: Last-Event-ID %q is not a change position", replica.ErrInvalid, id)
			}
		}
		return a.streamChanges(c, feed, name, since, int(limit))
	}
	changes, next, err := feed(c.Request().Context(), name, since, int(limit))
	if err != nil {
		return err
	}
	if changes == nil {
		changes = []replica.Change{}
	}
	return c.JSON(http.StatusOK, map[string]any{"changes": changes, "continuation": strconv.FormatInt(next, 10)})
}

// changeFeed reads a page of a container's change feed.
type changeFeed func(ctx context.Context, container string, since int64, limit int) ([]replica.Change, int64, error)

// outcomeFeed is the edge's feed with its outcome records (op "outcome"),
// which ?outcomes=true asks for; the hub has none.
type outcomeFeed interface {
	ChangesWithOutcomes(ctx context.Context, container string, since int64, limit int) ([]replica.Change, int64, error)
}

// feed is the change feed to read: versions and deletes (docs/api.md, Change feed), or on
// an edge with outcomes, also what the hub decided for its writes.
func (a *docsAPI) feed(outcomes bool) changeFeed {
	if of, ok := a.s.(outcomeFeed); ok && outcomes {
		return of.ChangesWithOutcomes
	}
	return a.s.Changes
}

func wantsStream(c echo.Context) bool {
	if s := c.QueryParam("stream"); s == "true" || s == "1" {
		return true
	}
	return strings.Contains(c.Request().Header.Get(echo.HeaderAccept), "text/event-stream")
}

// streamChanges sends every change after since as an SSE event (id: the
// change's position, event: change, data: the change record), then waits for
// commits and sends new ones. A reconnecting client resumes with
// Last-Event-ID. The stream never queues: it reads the feed from its own
// position after each wake-up.
func (a *docsAPI) streamChanges(c echo.Context, feed changeFeed, name string, since int64, limit int) error {
	if _, err := a.s.Container(name); err != nil {
		return err
	}
	if limit <= 0 {
		limit = replica.MaxPageSize
	}
	if _, err := replica.PageLimit(limit); err != nil {
		return err // before the status line is sent
	}
	ctx := c.Request().Context()
	w := c.Response()
	if !startSSE(w, ": edgesync change stream\n\n") {
		return nil
	}
	heartbeat := time.NewTicker(a.heartbeat)
	defer heartbeat.Stop()
	var buf bytes.Buffer
	for {
		changed := a.s.Changed()
		changes, next, err := feed(ctx, name, since, limit)
		if err != nil {
			// The status line is gone; end the stream with an error event.
			_, body := errorResponse(err)
			fmt.Fprintf(w, "event: error\ndata: %s\n\n", mustJSON(body))
			w.Flush()
			return nil
		}
		buf.Reset()
		for i := range changes {
			data, err := json.Marshal(&changes[i])
			if err != nil {
				return err
			}
			fmt.Fprintf(&buf, "id: %d\nevent: change\ndata: %s\n\n", position(&changes[i]), data)
		}
		if buf.Len() > 0 {
			if _, err := w.Write(buf.Bytes()); err != nil {
				return nil // client gone
			}
			w.Flush()
		}
		since = next
		if len(changes) == limit {
			continue
		}
		select {
		case <-changed:
		case <-heartbeat.C:
			if _, err := io.WriteString(w, ": heartbeat\n\n"); err != nil {
				return nil
			}
			w.Flush()
		case <-ctx.Done():
			return nil
		case <-a.s.Done():
			return nil
		}
	}
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

// writeItem sends one document with its ETag header.
func writeItem(c echo.Context, status int, it *replica.Item) error {
	c.Response().Header().Set(headerETag, it.ETag())
	if c.Request().Method == http.MethodHead {
		return c.NoContent(status)
	}
	buf := it.AppendJSON(make([]byte, 0, len(it.Body)+128))
	buf = append(buf, '\n')
	return c.Blob(status, echo.MIMEApplicationJSON, buf)
}

// etagMatchesWeak implements If-None-Match's weak comparison against a list.
func etagMatchesWeak(header, etag string) bool {
	for part := range strings.SplitSeq(header, ",") {
		part = strings.TrimPrefix(strings.TrimSpace(part), "W/")
		if part == "*" || part == etag {
			return true
		}
	}
	return false
}

// presizeBody is the largest announced body length readBody allocates at
// once.
const presizeBody = 64 << 10

// readBody reads a request body of at most limit bytes; more is ErrTooLarge.
func readBody(c echo.Context, limit int64) ([]byte, error) {
	req := c.Request()
	if req.ContentLength > limit {
		return nil, fmt.Errorf("%w: request body is %d bytes, limit %d", replica.ErrTooLarge, req.ContentLength, limit)
	}
	if n := req.ContentLength; n >= 0 && n <= presizeBody {
		// net/http delivers exactly the announced length or fails the
		// read: one allocation of the right size instead of ReadAll's
		// growing (three allocations and copies for a 1 KiB document).
		// Larger bodies grow as they arrive, so that a client cannot make
		// the server allocate what it only announced.
		b := make([]byte, n)
		if _, err := io.ReadFull(req.Body, b); err != nil {
			return nil, fmt.Errorf("%w: read body: %v", replica.ErrInvalid, err)
		}
		return b, nil
	}
	b, err := io.ReadAll(io.LimitReader(req.Body, limit+1))
	if err != nil {
		return nil, fmt.Errorf("%w: read body: %v", replica.ErrInvalid, err)
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%w: request body is over the limit of %d bytes", replica.ErrTooLarge, limit)
	}
	return b, nil
}

// decodeStrict decodes a JSON request body, refusing unknown fields and
// trailing data.
func decodeStrict(body []byte, v any) error {
	if len(bytes.TrimSpace(body)) == 0 {
		return fmt.Errorf("%w: empty body: want a JSON object", replica.ErrInvalid)
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("%w: %v", replica.ErrInvalid, err)
	}
	if dec.More() {
		return fmt.Errorf("%w: trailing data after the JSON object", replica.ErrInvalid)
	}
	return nil
}

func intParam(q url.Values, name string) (int64, error) {
	s := q.Get(name)
	if s == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("%w: %s=%q: want a non-negative integer", replica.ErrInvalid, name, s)
	}
	return n, nil
}

// boolParam reads a query flag: absent, false or 0, or true or 1.
func boolParam(q url.Values, name string) (bool, error) {
	switch s := q.Get(name); s {
	case "", "false", "0":
		return false, nil
	case "true", "1":
		return true, nil
	default:
		return false, fmt.Errorf("%w: %s=%q: want true or false", replica.ErrInvalid, name, s)
	}
}

// pathParam returns a path parameter decoded from the request's escaped
// path, so that ids holding '%' or '+' arrive as the client sent them
// whatever echo matched on.
func pathParam(c echo.Context, name string) (string, error) {
	raw := c.Param(name)
	if c.Request().URL.RawPath == "" {
		return raw, nil // echo matched on the decoded path
	}
	v, err := url.PathUnescape(raw)
	if err != nil {
		return "", fmt.Errorf("%w: path parameter %s: %v", replica.ErrInvalid, name, err)
	}
	return v, nil
}

func docParams(c echo.Context) (string, string, error) {
	name, err := pathParam(c, "c")
	if err != nil {
		return "", "", err
	}
	id, err := pathParam(c, "id")
	if err != nil {
		return "", "", err
	}
	return name, id, nil
}

const headerETag = "ETag"
