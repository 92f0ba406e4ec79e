package client

import (
	"context"
	"encoding/json"
	"fmt"
	"iter"
	"net/http"
	"net/url"
	"strconv"
)

// Health checks GET /healthz.
func (c *Client) Health(ctx context.Context) error {
	_, err := c.do(ctx, request{method: http.MethodGet, path: "/healthz", retry: retryIdempotent})
	return err
}

// EdgeStatus reads an edge node's status.
func (c *Client) EdgeStatus(ctx context.Context) (EdgeStatus, error) {
	var st EdgeStatus
	err := c.getJSON(ctx, "/api/v1/status", &st)
	return st, err
}

// HubStatus reads the hub's status.
func (c *Client) HubStatus(ctx context.Context) (HubStatus, error) {
	var st HubStatus
	err := c.getJSON(ctx, "/api/v1/status", &st)
	return st, err
}

// SetOnline turns an edge's syncing on or off (POST /api/v1/sync/online,
// /api/v1/sync/offline); its writes wait in the outbox while it is off.
func (c *Client) SetOnline(ctx context.Context, online bool) error {
	path := "/api/v1/sync/offline"
	if online {
		path = "/api/v1/sync/online"
	}
	// Idempotent: turning it on twice leaves it on.
	_, err := c.do(ctx, request{method: http.MethodPost, path: path, retry: retryIdempotent, okStatus: []int{http.StatusNoContent}})
	return err
}

func (c *Client) getJSON(ctx context.Context, path string, v any) error {
	r, err := c.do(ctx, request{method: http.MethodGet, path: path, retry: retryIdempotent})
	if err != nil {
		return err
	}
	return decode(r, v)
}

// Containers lists the node's containers (on the hub with their counts).
func (c *Client) Containers(ctx context.Context) ([]Container, error) {
	var out struct {
		Containers []Container `json:"containers"`
	}
	err := c.getJSON(ctx, "/api/v1/containers", &out)
	return out.Containers, err
}

// Container reads one container's definition.
func (c *Client) Container(ctx context.Context, name string) (Container, error) {
	var out Container
	err := c.getJSON(ctx, "/api/v1/containers/"+seg(name), &out)
	return out, err
}

// PutContainer creates a container (created true) or updates its conflict
// policy. def.Name names it.
func (c *Client) PutContainer(ctx context.Context, def Container) (Container, bool, error) {
	body, err := json.Marshal(struct {
		PartitionKey   string          `json:"partitionKey"`
		ConflictPolicy *ConflictPolicy `json:"conflictPolicy,omitempty"`
	}{def.PartitionKey, policyOrNil(def.ConflictPolicy)})
	if err != nil {
		return Container{}, false, err
	}
	r, err := c.do(ctx, request{method: http.MethodPut, path: "/api/v1/containers/" + seg(def.Name), body: body,
		retry: retryIdempotent, okStatus: []int{http.StatusOK, http.StatusCreated}})
	if err != nil {
		return Container{}, false, err
	}
	var out Container
	err = decode(r, &out)
	return out, r.status == http.StatusCreated, err
}

func policyOrNil(p ConflictPolicy) *ConflictPolicy {
	if p == (ConflictPolicy{}) {
		return nil
	}
	return &p
}

func docPath(container, id string) string {
	return "/api/v1/containers/" + seg(container) + "/docs/" + seg(id)
}

// readDocument decodes a document answer and takes its ETag header.
func readDocument(r *response) (Document, error) {
	var d Document
	if err := decode(r, &d); err != nil {
		return Document{}, err
	}
	if et := r.header.Get("ETag"); et != "" {
		d.ETag = et
	}
	return d, nil
}

// Create creates a document (POST): doc is a json.RawMessage, []byte,
// string of JSON, or a value to encode, with its "id". A live item of
// that id fails with ErrConflict. Never retried once sent (see the
// package comment).
func (c *Client) Create(ctx context.Context, container string, doc any) (Document, error) {
	body, err := jsonBody(doc)
	if err != nil {
		return Document{}, err
	}
	r, err := c.do(ctx, request{method: http.MethodPost, path: "/api/v1/containers/" + seg(container) + "/docs", body: body,
		retry: retryUnsent, okStatus: []int{http.StatusCreated}})
	if err != nil {
		return Document{}, err
	}
	return readDocument(r)
}

// WriteOptions are the conditions of a write.
type WriteOptions struct {
	// IfMatch, when set, makes the write happen only if the item is at
	// this ETag; else ErrPreconditionFailed.
	IfMatch string
}

// Put creates or replaces a document (upsert): created reports a new one.
// Without IfMatch it is retried like a GET; with it, never once sent.
func (c *Client) Put(ctx context.Context, container, id string, doc any, opt WriteOptions) (Document, bool, error) {
	body, err := jsonBody(doc)
	if err != nil {
		return Document{}, false, err
	}
	req := request{method: http.MethodPut, path: docPath(container, id), body: body, retry: retryIdempotent,
		okStatus: []int{http.StatusOK, http.StatusCreated}}
	if opt.IfMatch != "" {
		req.header = http.Header{"If-Match": {opt.IfMatch}}
		req.retry = retryUnsent
	}
	r, err := c.do(ctx, req)
	if err != nil {
		return Document{}, false, err
	}
	d, err := readDocument(r)
	return d, r.status == http.StatusCreated, err
}

// Delete deletes a document; ErrNotFound when there is none. Never retried
// once sent.
func (c *Client) Delete(ctx context.Context, container, id string, opt WriteOptions) error {
	req := request{method: http.MethodDelete, path: docPath(container, id), retry: retryUnsent, okStatus: []int{http.StatusNoContent}}
	if opt.IfMatch != "" {
		req.header = http.Header{"If-Match": {opt.IfMatch}}
	}
	_, err := c.do(ctx, req)
	return err
}

// ReadOptions choose what a read returns.
type ReadOptions struct {
	// Consistency "confirmed" reads the hub-confirmed version on an edge
	// (ErrNotFound until there is one); "" the newest, tentative or not.
	Consistency string
	// IfNoneMatch: when the item is still at this ETag, Get returns
	// ErrNotModified instead of the document.
	IfNoneMatch string
}

// Get reads a document.
func (c *Client) Get(ctx context.Context, container, id string, opt ReadOptions) (Document, error) {
	path := docPath(container, id)
	if opt.Consistency != "" {
		path += "?consistency=" + url.QueryEscape(opt.Consistency)
	}
	req := request{method: http.MethodGet, path: path, retry: retryIdempotent}
	if opt.IfNoneMatch != "" {
		req.header = http.Header{"If-None-Match": {opt.IfNoneMatch}}
	}
	r, err := c.do(ctx, req)
	if err != nil {
		return Document{}, err
	}
	return readDocument(r)
}

// ETag reads a document's current ETag with HEAD.
func (c *Client) ETag(ctx context.Context, container, id string) (string, error) {
	r, err := c.do(ctx, request{method: http.MethodHead, path: docPath(container, id), retry: retryIdempotent})
	if err != nil {
		return "", err
	}
	return r.header.Get("ETag"), nil
}

// ListOptions choose a page of a listing.
type ListOptions struct {
	// PK, when not nil, lists one partition key value only.
	PK *string
	// Limit is the page size, 1..1000; 0: the server's default (100).
	Limit int
	// Continuation is the previous page's; "" the first page.
	Continuation string
	// Consistency "confirmed" lists hub-confirmed versions (edge).
	Consistency string
}

// List reads a page of a container's live documents, in id order.
func (c *Client) List(ctx context.Context, container string, opt ListOptions) (DocumentPage, error) {
	q := url.Values{}
	if opt.PK != nil {
		q.Set("pk", *opt.PK)
	}
	if opt.Limit > 0 {
		q.Set("limit", strconv.Itoa(opt.Limit))
	}
	if opt.Continuation != "" {
		q.Set("continuation", opt.Continuation)
	}
	if opt.Consistency != "" {
		q.Set("consistency", opt.Consistency)
	}
	var out struct {
		Documents    []Document `json:"documents"`
		Continuation *string    `json:"continuation"`
	}
	if err := c.getJSON(ctx, withQuery("/api/v1/containers/"+seg(container)+"/docs", q), &out); err != nil {
		return DocumentPage{}, err
	}
	p := DocumentPage{Documents: out.Documents}
	if out.Continuation != nil {
		p.Continuation = *out.Continuation
	}
	return p, nil
}

// maxPages bounds the pages an iterator reads: a server that never ends
// its continuation cannot keep one going for ever.
const maxPages = 1 << 20

// ListAll iterates over every live document of a container (or of one
// partition, opt.PK), a page at a time from opt.Continuation. It stops at
// the first error, which it yields.
func (c *Client) ListAll(ctx context.Context, container string, opt ListOptions) iter.Seq2[Document, error] {
	return func(yield func(Document, error) bool) {
		for range maxPages {
			p, err := c.List(ctx, container, opt)
			if err != nil {
				yield(Document{}, err)
				return
			}
			for _, d := range p.Documents {
				if !yield(d, nil) {
					return
				}
			}
			if p.Continuation == "" || p.Continuation == opt.Continuation {
				return
			}
			opt.Continuation = p.Continuation
		}
		yield(Document{}, fmt.Errorf("client: listing %s: over %d pages", container, maxPages))
	}
}

func withQuery(path string, q url.Values) string {
	if len(q) == 0 {
		return path
	}
	return path + "?" + q.Encode()
}

// ChangesOptions choose a page of a change feed.
type ChangesOptions struct {
	// Since is the position to read after: 0 from the start, or a page's
	// Next (a stream's last Change.Position()).
	Since int64
	// Limit is the page size, 1..1000; 0: the server's default.
	Limit int
	// Outcomes adds an edge's outcome records (op "outcome").
	Outcomes bool
}

func (o ChangesOptions) query() url.Values {
	q := url.Values{}
	q.Set("since", strconv.FormatInt(o.Since, 10))
	if o.Limit > 0 {
		q.Set("limit", strconv.Itoa(o.Limit))
	}
	if o.Outcomes {
		q.Set("outcomes", "true")
	}
	return q
}

// Changes reads a page of a container's change feed after opt.Since.
func (c *Client) Changes(ctx context.Context, container string, opt ChangesOptions) (ChangePage, error) {
	var out struct {
		Changes      []Change `json:"changes"`
		Continuation string   `json:"continuation"`
	}
	if err := c.getJSON(ctx, withQuery("/api/v1/containers/"+seg(container)+"/changes", opt.query()), &out); err != nil {
		return ChangePage{}, err
	}
	next, err := strconv.ParseInt(out.Continuation, 10, 64)
	if err != nil {
		return ChangePage{}, fmt.Errorf("client: change feed continuation %q: %w", out.Continuation, err)
	}
	return ChangePage{Changes: out.Changes, Next: next}, nil
}

// ConflictsOptions choose a page of a conflicts feed.
type ConflictsOptions struct {
	Status string // StatusUnresolved, StatusResolved, or "" for both
	Limit  int
	After  int64 // a page's Next; 0 from the start
}

// Conflicts reads a page of a container's conflicts feed.
func (c *Client) Conflicts(ctx context.Context, container string, opt ConflictsOptions) (ConflictPage, error) {
	q := url.Values{}
	if opt.Status != "" {
		q.Set("status", opt.Status)
	}
	if opt.Limit > 0 {
		q.Set("limit", strconv.Itoa(opt.Limit))
	}
	if opt.After > 0 {
		q.Set("continuation", strconv.FormatInt(opt.After, 10))
	}
	var out struct {
		Conflicts    []Conflict `json:"conflicts"`
		Continuation string     `json:"continuation"`
	}
	if err := c.getJSON(ctx, withQuery("/api/v1/containers/"+seg(container)+"/conflicts", q), &out); err != nil {
		return ConflictPage{}, err
	}
	next, err := strconv.ParseInt(out.Continuation, 10, 64)
	if err != nil {
		return ConflictPage{}, fmt.Errorf("client: conflicts continuation %q: %w", out.Continuation, err)
	}
	return ConflictPage{Conflicts: out.Conflicts, Next: next}, nil
}

// ResolveConflict settles an unresolved conflict at the hub; one already
// resolved fails with ErrConflict. Never retried once sent.
func (c *Client) ResolveConflict(ctx context.Context, container string, id int64, res Resolution) (Resolved, error) {
	body, err := json.Marshal(res)
	if err != nil {
		return Resolved{}, err
	}
	r, err := c.do(ctx, request{method: http.MethodPost, body: body, retry: retryUnsent,
		path: "/api/v1/containers/" + seg(container) + "/conflicts/" + strconv.FormatInt(id, 10) + "/resolve"})
	if err != nil {
		return Resolved{}, err
	}
	var out Resolved
	return out, decode(r, &out)
}

// Versions lists every version the hub has of an item.
func (c *Client) Versions(ctx context.Context, container, id string) ([]ItemVersion, error) {
	var out struct {
		Versions []ItemVersion `json:"versions"`
	}
	err := c.getJSON(ctx, docPath(container, id)+"/versions", &out)
	return out.Versions, err
}

// RegisterEdge registers an edge at the hub (scope nil: everything) and
// returns its token. A name already registered fails with ErrConflict.
// Never retried once sent: the token exists only in the first answer.
func (c *Client) RegisterEdge(ctx context.Context, name string, scope []ScopeEntry) (RegisteredEdge, error) {
	body, err := json.Marshal(struct {
		Name  string       `json:"name"`
		Scope []ScopeEntry `json:"scope,omitempty"`
	}{name, scope})
	if err != nil {
		return RegisteredEdge{}, err
	}
	r, err := c.do(ctx, request{method: http.MethodPost, path: "/api/v1/edges", body: body, retry: retryUnsent,
		okStatus: []int{http.StatusCreated}})
	if err != nil {
		return RegisteredEdge{}, err
	}
	var out RegisteredEdge
	return out, decode(r, &out)
}

// Edges lists the registered edges.
func (c *Client) Edges(ctx context.Context) ([]Edge, error) {
	var out struct {
		Edges []Edge `json:"edges"`
	}
	err := c.getJSON(ctx, "/api/v1/edges", &out)
	return out.Edges, err
}

// RevokeEdge revokes an edge's token and closes its connection;
// ErrNotFound when no such edge is registered. Never retried once sent.
func (c *Client) RevokeEdge(ctx context.Context, name string) error {
	_, err := c.do(ctx, request{method: http.MethodDelete, path: "/api/v1/edges/" + seg(name), retry: retryUnsent,
		okStatus: []int{http.StatusNoContent}})
	return err
}

// PutResolver uploads a WebAssembly resolver module: created is true for
// new bytes (a new version), false when the newest version has the same
// bytes. Retried like a GET: the same bytes give the same version.
func (c *Client) PutResolver(ctx context.Context, name string, module []byte) (Resolver, bool, error) {
	if module == nil {
		module = []byte{}
	}
	r, err := c.do(ctx, request{method: http.MethodPut, path: "/api/v1/resolvers/" + seg(name), body: module,
		ctype: "application/wasm", retry: retryIdempotent, okStatus: []int{http.StatusOK, http.StatusCreated}})
	if err != nil {
		return Resolver{}, false, err
	}
	var out Resolver
	err = decode(r, &out)
	return out, r.status == http.StatusCreated, err
}

// Resolvers lists every uploaded resolver version with its statistics.
func (c *Client) Resolvers(ctx context.Context) ([]Resolver, error) {
	var out struct {
		Resolvers []Resolver `json:"resolvers"`
	}
	err := c.getJSON(ctx, "/api/v1/resolvers", &out)
	return out.Resolvers, err
}

// TryResolver runs a resolver version on a recorded conflict without
// applying its decision. It changes nothing, so it is retried like a GET.
func (c *Client) TryResolver(ctx context.Context, name string, req TryRequest) (TryResult, error) {
	body, err := json.Marshal(req)
	if err != nil {
		return TryResult{}, err
	}
	r, err := c.do(ctx, request{method: http.MethodPost, path: "/api/v1/resolvers/" + seg(name) + "/try", body: body, retry: retryIdempotent})
	if err != nil {
		return TryResult{}, err
	}
	var out TryResult
	return out, decode(r, &out)
}

// QueryRequest is a query in the subset of Cosmos DB's NoSQL query
// language that edges and hubs run (docs/queries.md).
type QueryRequest struct {
	Query      string           `json:"query"`
	Parameters []QueryParameter `json:"parameters,omitempty"`
	// Limit is the page size, 1..1000; 0: the server's default (100).
	Limit int `json:"limit,omitempty"`
	// Continuation is the previous page's; "" the first page.
	Continuation string `json:"continuation,omitempty"`
	// Consistency "confirmed" reads hub-confirmed versions only (edge).
	Consistency string `json:"consistency,omitempty"`
}

// QueryParameter is a value for an @name of the query; Value is encoded as
// JSON (a json.RawMessage goes as it is).
type QueryParameter struct {
	Name  string `json:"name"`
	Value any    `json:"value"`
}

// QueryPage is a page of a query's results: documents, projections or
// values (SELECT VALUE), each as JSON.
type QueryPage struct {
	Documents []json.RawMessage
	// Continuation asks for the next page; "" on the last page.
	Continuation string
}

// Query runs a query over a container's live items. It changes nothing,
// so it is retried like a GET. A query that does not parse fails with
// ErrBadRequest (code bad_query), one that runs past the node's time
// limit with ErrQueryTimeout.
func (c *Client) Query(ctx context.Context, container string, q QueryRequest) (QueryPage, error) {
	body, err := json.Marshal(q)
	if err != nil {
		return QueryPage{}, fmt.Errorf("client: encode query: %w", err)
	}
	r, err := c.do(ctx, request{method: http.MethodPost, path: "/api/v1/containers/" + seg(container) + "/query", body: body, retry: retryIdempotent})
	if err != nil {
		return QueryPage{}, err
	}
	var out struct {
		Documents    []json.RawMessage `json:"documents"`
		Continuation *string           `json:"continuation"`
	}
	if err := decode(r, &out); err != nil {
		return QueryPage{}, err
	}
	p := QueryPage{Documents: out.Documents}
	if out.Continuation != nil {
		p.Continuation = *out.Continuation
	}
	return p, nil
}

// QueryAll iterates over every result of a query, a page at a time from
// q.Continuation. It stops at the first error, which it yields.
func (c *Client) QueryAll(ctx context.Context, container string, q QueryRequest) iter.Seq2[json.RawMessage, error] {
	return func(yield func(json.RawMessage, error) bool) {
		for range maxPages {
			p, err := c.Query(ctx, container, q)
			if err != nil {
				yield(nil, err)
				return
			}
			for _, d := range p.Documents {
				if !yield(d, nil) {
					return
				}
			}
			if p.Continuation == "" || p.Continuation == q.Continuation {
				return
			}
			q.Continuation = p.Continuation
		}
		yield(nil, fmt.Errorf("client: query of %s: over %d pages", container, maxPages))
	}
}
