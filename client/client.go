// Package client is a Go client for the HTTP API of edgesync's two
// binaries: an edge node's local API (edgenode) and the hub's API
// (cloudhub). docs/api.md describes every endpoint; docs/clients.md shows
// this package by example.
//
// A Client is safe for concurrent use. Every call takes a context, and its
// errors from the server are *Error values, which errors.Is matches against
// ErrNotFound, ErrConflict, ErrPreconditionFailed and the other sentinels
// below.
//
// # Retries
//
// A call is sent again, after an exponential backoff with full jitter
// (Config.MinBackoff doubling up to Config.MaxBackoff, at most
// Config.MaxAttempts attempts in all), only when sending it again cannot
// do something twice:
//
//   - any request, a POST included, when the connection could not be made
//     (refused, unreachable, DNS): no byte of it reached the server;
//   - a request that is idempotent in effect — GET, HEAD, a PUT without
//     If-Match (a document upsert, a container definition, a resolver
//     upload), a query, trying a resolver, and the edge's sync on/off
//     switches — also after a
//     connection that broke or a 502, 503 or 504 answer. A repeated upsert
//     leaves the same document, as a new version with the same content.
//
// A POST that creates something (a document, an edge registration and its
// token, a conflict's resolution), a PUT with If-Match and a DELETE are
// never sent again once a byte may have reached the server: the first
// attempt may have done it, and the second would report 409, 412 or 404
// for the client's own write. Such a call returns the error; the caller
// reads the state and decides.
//
// # Limits
//
// A response body over Config.MaxResponseBytes (default 64 MiB) fails the
// call with ErrResponseTooLarge; one event of a change stream over
// MaxEventBytes likewise ends the stream.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Defaults of Config.
const (
	DefaultMaxAttempts      = 4
	DefaultMinBackoff       = 100 * time.Millisecond
	DefaultMaxBackoff       = 2 * time.Second
	DefaultMaxResponseBytes = 64 << 20
	// MaxEventBytes bounds one Server-Sent Event of a change stream: a
	// change record holds a document of at most 2 MiB, escaped.
	MaxEventBytes = 8 << 20
	// maxErrorBody bounds the body of an error response that is read.
	maxErrorBody = 64 << 10
)

// Sentinel errors. An *Error matches the one for its status and code with
// errors.Is.
var (
	ErrBadRequest         = errors.New("bad request")         // 400
	ErrUnauthorized       = errors.New("unauthorized")        // 401
	ErrForbidden          = errors.New("forbidden")           // 403
	ErrNotFound           = errors.New("not found")           // 404, a document, a container or anything else
	ErrContainerNotFound  = errors.New("container not found") // 404 container_not_found
	ErrConflict           = errors.New("conflict")            // 409: exists, already resolved, definition mismatch
	ErrPreconditionFailed = errors.New("precondition failed") // 412: If-Match did not match
	ErrQueryTimeout       = errors.New("query timeout")       // 408: a query ran past its time limit
	ErrTooLarge           = errors.New("too large")           // 413
	ErrUnavailable        = errors.New("unavailable")         // 503: the node is shutting down
	ErrResponseTooLarge   = errors.New("response too large")  // a response over Config.MaxResponseBytes
	ErrNotModified        = errors.New("not modified")        // 304 to If-None-Match
	ErrStreamClosed       = errors.New("stream closed")       // Next after Close
)

// Error is an error answer of the API: its status and its {"code",
// "message"} body (docs/api.md, Errors).
type Error struct {
	Status  int
	Code    string
	Message string
}

func (e *Error) Error() string {
	if e.Message == "" {
		return fmt.Sprintf("edgesync: %d %s", e.Status, e.Code)
	}
	return fmt.Sprintf("edgesync: %d %s: %s", e.Status, e.Code, e.Message)
}

// Is matches the sentinel errors of this package by status (and, for
// ErrContainerNotFound, by code).
func (e *Error) Is(target error) bool {
	switch target {
	case ErrBadRequest:
		return e.Status == http.StatusBadRequest
	case ErrUnauthorized:
		return e.Status == http.StatusUnauthorized
	case ErrForbidden:
		return e.Status == http.StatusForbidden
	case ErrNotFound:
		return e.Status == http.StatusNotFound
	case ErrContainerNotFound:
		return e.Status == http.StatusNotFound && e.Code == "container_not_found"
	case ErrConflict:
		return e.Status == http.StatusConflict
	case ErrPreconditionFailed:
		return e.Status == http.StatusPreconditionFailed
	case ErrQueryTimeout:
		return e.Status == http.StatusRequestTimeout
	case ErrTooLarge:
		return e.Status == http.StatusRequestEntityTooLarge
	case ErrUnavailable:
		return e.Status == http.StatusServiceUnavailable
	case ErrNotModified:
		return e.Status == http.StatusNotModified
	}
	return false
}

// Config configures a Client. Zero fields take the defaults.
type Config struct {
	// URL is the node's base URL: "http://127.0.0.1:7070" for an edge,
	// "https://hub.example:8443" for a hub (no /api/v1).
	URL string
	// Token is sent as Authorization: Bearer: the hub's admin token, or an
	// edge's local token (--local-token); empty: none.
	Token string
	// HTTPClient sends the requests; default a client of its own with no
	// overall timeout (calls end with their context).
	HTTPClient *http.Client
	// MaxAttempts is the most times one call is sent (1: never retried);
	// default DefaultMaxAttempts. See the package comment for which calls
	// are retried.
	MaxAttempts int
	// MinBackoff and MaxBackoff bound the wait before a retry: attempt n
	// waits a random time up to min(MinBackoff·2ⁿ, MaxBackoff).
	MinBackoff, MaxBackoff time.Duration
	// MaxResponseBytes bounds a response body; default
	// DefaultMaxResponseBytes.
	MaxResponseBytes int64
}

// Client calls one node's API.
type Client struct {
	base  string // scheme://host[:port][/prefix], no trailing slash
	token string
	hc    *http.Client
	cfg   Config
}

// New returns a client for the node at cfg.URL.
func New(cfg Config) (*Client, error) {
	u, err := url.Parse(cfg.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" {
		return nil, fmt.Errorf("client: URL %q: want http(s)://host[:port]", cfg.URL)
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{}
	}
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = DefaultMaxAttempts
	}
	if cfg.MinBackoff <= 0 {
		cfg.MinBackoff = DefaultMinBackoff
	}
	if cfg.MaxBackoff <= 0 {
		cfg.MaxBackoff = DefaultMaxBackoff
	}
	if cfg.MaxBackoff < cfg.MinBackoff {
		cfg.MaxBackoff = cfg.MinBackoff
	}
	if cfg.MaxResponseBytes <= 0 {
		cfg.MaxResponseBytes = DefaultMaxResponseBytes
	}
	return &Client{base: strings.TrimSuffix(u.String(), "/"), token: cfg.Token, hc: cfg.HTTPClient, cfg: cfg}, nil
}

// URL is the node's base URL.
func (c *Client) URL() string { return c.base }

// retry says when a request may be sent again.
type retry int

const (
	// retryUnsent: only when no byte reached the server (the dial failed).
	retryUnsent retry = iota
	// retryIdempotent: also after a broken connection or a 502, 503, 504.
	retryIdempotent
)

// request is one API call.
type request struct {
	method   string
	path     string // under the base URL, escaped, with its query
	body     []byte // nil: none
	ctype    string
	header   http.Header
	retry    retry
	okStatus []int // statuses that are not errors; default 200
}

// response is a successful answer, its body read (bounded).
type response struct {
	status int
	header http.Header
	body   []byte
}

// do sends r, retrying it as r.retry allows, and reads the answer. A
// status not in r.okStatus comes back as an *Error.
func (c *Client) do(ctx context.Context, r request) (*response, error) {
	var lastErr error
	for attempt := 0; attempt < c.cfg.MaxAttempts; attempt++ {
		if attempt > 0 {
			if err := c.sleep(ctx, attempt); err != nil {
				return nil, errors.Join(lastErr, err)
			}
		}
		resp, err := c.send(ctx, r, false)
		if err != nil {
			lastErr = err
			if ctx.Err() != nil || !retryable(r.retry, err, 0) {
				return nil, err
			}
			continue
		}
		out, err := c.read(resp, r)
		if err != nil {
			lastErr = err
			var ae *Error
			if errors.As(err, &ae) && retryable(r.retry, nil, ae.Status) {
				continue
			}
			if ae == nil && !errors.Is(err, ErrResponseTooLarge) && retryable(r.retry, err, 0) {
				continue // the body broke off
			}
			return nil, err
		}
		return out, nil
	}
	return nil, lastErr
}

// send builds and sends one attempt of r; stream asks for the response
// unread.
func (c *Client) send(ctx context.Context, r request, stream bool) (*http.Response, error) {
	var body io.Reader
	if r.body != nil {
		body = bytes.NewReader(r.body)
	}
	req, err := http.NewRequestWithContext(ctx, r.method, c.base+r.path, body)
	if err != nil {
		return nil, fmt.Errorf("client: %s %s: %w", r.method, r.path, err)
	}
	for k, vs := range r.header {
		req.Header[k] = vs
	}
	if r.body != nil {
		ct := r.ctype
		if ct == "" {
			ct = "application/json"
		}
		req.Header.Set("Content-Type", ct)
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	if !stream {
		req.Header.Set("Accept", "application/json")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("client: %s %s: %w", r.method, r.path, err)
	}
	return resp, nil
}

// read reads a response: the body of an ok status, bounded, or the error.
func (c *Client) read(resp *http.Response, r request) (*response, error) {
	defer resp.Body.Close()
	ok := r.okStatus
	if ok == nil {
		ok = []int{http.StatusOK}
	}
	for _, s := range ok {
		if resp.StatusCode != s {
			continue
		}
		b, err := readLimited(resp.Body, c.cfg.MaxResponseBytes)
		if err != nil {
			return nil, fmt.Errorf("client: %s %s: %w", r.method, r.path, err)
		}
		return &response{status: resp.StatusCode, header: resp.Header, body: b}, nil
	}
	return nil, apiError(resp)
}

// apiError reads an error answer into an *Error.
func apiError(resp *http.Response) *Error {
	b, _ := readLimited(resp.Body, maxErrorBody)
	e := &Error{Status: resp.StatusCode}
	var body struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	}
	if json.Unmarshal(b, &body) == nil && body.Code != "" {
		e.Code, e.Message = body.Code, body.Message
		return e
	}
	// Not the API's error body (a proxy's page, a 304): the status text.
	e.Code = strings.ToLower(strings.ReplaceAll(http.StatusText(resp.StatusCode), " ", "_"))
	e.Message = strings.TrimSpace(string(b))
	if len(e.Message) > 200 {
		e.Message = e.Message[:200] + "..."
	}
	return e
}

// readLimited reads all of r up to limit bytes; more is ErrResponseTooLarge.
func readLimited(r io.Reader, limit int64) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, fmt.Errorf("read response: %w", err)
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%w: over %d bytes", ErrResponseTooLarge, limit)
	}
	return b, nil
}

// retryable reports whether an attempt that failed with err (a transport
// error) or status may be sent again under rule.
func retryable(rule retry, err error, status int) bool {
	if err != nil {
		if notSent(err) {
			return true
		}
		return rule == retryIdempotent
	}
	switch status {
	case http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return rule == retryIdempotent
	}
	return false
}

// notSent reports whether err means the request never reached the server:
// the connection could not be made.
func notSent(err error) bool {
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return true
	}
	var dns *net.DNSError
	return errors.As(err, &dns)
}

// sleep waits before attempt n (1, 2, ...): a random time up to
// min(MinBackoff·2ⁿ⁻¹, MaxBackoff), or until ctx ends.
func (c *Client) sleep(ctx context.Context, n int) error {
	ceil := c.cfg.MaxBackoff
	if n-1 < 30 {
		if d := c.cfg.MinBackoff << (n - 1); d > 0 && d < ceil {
			ceil = d
		}
	}
	t := time.NewTimer(rand.N(ceil) + 1)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

// jsonBody encodes v as a request body: json.RawMessage and []byte go as
// they are, anything else through encoding/json.
func jsonBody(v any) ([]byte, error) {
	switch b := v.(type) {
	case json.RawMessage:
		return b, nil
	case []byte:
		return b, nil
	case string:
		return []byte(b), nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("client: encode body: %w", err)
	}
	return b, nil
}

// decode decodes a response body into v.
func decode(r *response, v any) error {
	if err := json.Unmarshal(r.body, v); err != nil {
		return fmt.Errorf("client: decode response: %w", err)
	}
	return nil
}

// seg escapes one path segment.
func seg(s string) string { return url.PathEscape(s) }
